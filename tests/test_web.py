"""The review page through Flask's test client: login, CSRF, Host check, cookies, escaping, actions.

Fast checks on a store polled once from a Maildir; the browser test
(test_web_browser.py) drives the same app in real Chromium against Dovecot.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import mailbox
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner
from conftest import ROOT, email_bytes, smtp_config
from flask import Flask
from servers import SmtpServer, free_port
from werkzeug.test import TestResponse

from triage import agents, config, poll
from triage.cli import cli
from triage.errors import ConfigError
from triage.store import NewMessage, Store, utcnow
from triage.web import create_app, render, security

BASE = "http://127.0.0.1:8025"
PASSWORD = "correct horse battery"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
CLEAN = "Hi,\n\nI am sorry about the blender. A replacement ships today.\n\nSam\n"
MESSAGES = [
    email_bytes(
        subject=f"Broken again {XSS}",
        body=f"My order arrived broken. {XSS} I want a refund now, this is unacceptable!",
        sender=f'"Eve {XSS}" <eve@customer.test>',
    ),
    email_bytes(
        subject="BROKEN AGAIN!!! Order #48213",
        body="This is the SECOND blender you sent me that arrived broken!!! You people are useless. "
        "I want a refund TODAY or I'm calling my lawyer.",
        sender="Derek Holt <derek@customer.test>",
    ),
    email_bytes(
        subject="Question about delivery",
        body="Hi, could you tell me when my order will ship? Thanks!",
        sender="Amy <amy@customer.test>",
    ),
]


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a Maildir and a store polled from it, agents dana and sam, one quarantined row."""
    base = tmp_path_factory.mktemp("polled")
    box = mailbox.Maildir(str(base / "Maildir"), create=True)
    for raw in MESSAGES:
        box.add(raw)
    box.close()
    settings = _settings(base)
    summary = poll.run(settings)
    assert summary.drafts == 3
    with Store(settings.store_path) as store:
        agents.create(store, "dana", PASSWORD)
        agents.create(store, "sam", PASSWORD)
        with store.write():
            now = utcnow()
            store.insert_message(
                NewMessage(mailbox="maildir", folder="INBOX", source_key="bad", message_id="<bad@x>",
                           raw_hash="h", status="quarantined", received_at=now, date=now,
                           subject=f"bad {XSS}", error=f"ParseError: {XSS}"),
                None, None,
            )
    return base


def _settings(directory: Path, smtp: SmtpServer | None = None, extra: str = "") -> config.Settings:
    text = f'[mailbox]\nsource = "maildir"\npath = "{directory / "Maildir"}"\n[store]\npath = "triage.db"\n' + extra
    if smtp is not None:
        text += smtp_config(smtp)
    (directory / "triage.toml").write_text(text, encoding="utf-8")
    return config.load(directory / "triage.toml")


def _copy_store(source: Path, target: Path) -> None:
    """Copy triage.db with SQLite's backup API (a file copy would miss pages still in the WAL)."""
    with sqlite3.connect(source / "triage.db") as src, sqlite3.connect(target / "triage.db") as dst:
        src.backup(dst)
    src.close()
    dst.close()


@dataclass
class Web:
    """A test client that speaks to the app as a browser on 127.0.0.1:8025 would."""

    app: Flask
    settings: config.Settings

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.client.get(path, base_url=BASE, **kw)

    def post(self, path: str, data: dict[str, str] | None = None, csrf: bool = True, **kw: Any) -> TestResponse:
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.csrf()
        return self.client.post(path, data=data, base_url=BASE, **kw)

    def csrf(self) -> str:
        page = self.get("/login") if not self.agent() else self.get("/")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match, page.text
        return match.group(1)

    def agent(self) -> str | None:
        """The agent the client's cookie logs in as, by its server-side session record (None: none)."""
        with self.client.session_transaction(base_url=BASE) as session:
            token = session.get("sid")
        if not token:
            return None
        with self.store() as store:
            record = store.session_record(hashlib.sha256(token.encode()).hexdigest())
        return None if record is None else str(record["agent"])

    def login(self, name: str = "dana", password: str = PASSWORD) -> TestResponse:
        return self.post("/login", {"name": name, "password": password})

    def store(self) -> Store:
        return Store(self.settings.store_path)

    def draft_for(self, sender: str) -> int:
        with self.store() as store:
            return next(r.id for r in store.queue() if r.customer == sender)


@pytest.fixture
def web(polled: Path, tmp_path: Path, smtp_server: SmtpServer) -> Web:
    """A fresh copy of the polled store, with SMTP pointing at the test server."""
    _copy_store(polled, tmp_path)
    (tmp_path / "Maildir").symlink_to(polled / "Maildir")
    settings = _settings(tmp_path, smtp_server)
    return Web(create_app(settings, secret="s" * 48, port=8025), settings)


@pytest.fixture
def agent(web: Web) -> Web:
    assert web.login().status_code == 302
    return web


# -- login, sessions, cookies -------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/drafts/1", "/quarantine", "/no-such-page", "/?sort=due"])
def test_pages_without_login_redirect_to_login(web: Web, path: str) -> None:
    response = web.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_login_page_and_static_need_no_login(web: Web) -> None:
    assert web.get("/login").status_code == 200
    css = web.get("/static/style.css")
    try:
        assert css.status_code == 200 and b"mark" in css.data
    finally:
        css.close()


def test_login_sets_an_httponly_samesite_cookie_and_clears_what_the_session_held(web: Web) -> None:
    with web.client.session_transaction(base_url=BASE) as session:  # as if an attacker planted a session
        session["planted"] = "x"
        session["csrf"] = "attacker-known-token"
    response = web.post("/login", {"name": "dana", "password": PASSWORD, "csrf_token": "attacker-known-token"}, csrf=False)
    assert response.status_code == 302 and response.headers["Location"] == "/", response.text
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("triage_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    with web.client.session_transaction(base_url=BASE) as session:
        assert "planted" not in session and "agent" not in session  # the cookie names nobody
        assert session["csrf"] != "attacker-known-token"
    assert web.agent() == "dana"


def test_wrong_password_or_unknown_agent_is_refused(web: Web) -> None:
    for name, password in (("dana", "wrong password"), ("nobody", PASSWORD), ("", "")):
        response = web.login(name, password)
        assert response.status_code == 200 and "Unknown agent or wrong password." in response.text
        assert web.agent() is None
    assert web.get("/").status_code == 302


# ``next`` as it appears in the query string (percent-encoded as an attacker would send it).
NEXT_TARGETS = [
    ("/quarantine", "/quarantine"),
    ("/%3Fsort%3Ddue%26dir%3Ddesc", "/?sort=due&dir=desc"),
    ("//evil.example/x", "/"),
    ("https://evil.example/", "/"),
    ("https:evil.example", "/"),
    ("evil.example", "/"),
    ("/%09/evil.example", "/"),  # a tab: browsers drop it and read //evil.example
    ("/%0A/evil.example", "/"),
    ("/%0D/evil.example", "/"),
    ("/%0D%0A/evil.example", "/"),
    ("/%00/evil.example", "/"),
    ("/%7F/evil.example", "/"),
    ("/%1B/evil.example", "/"),
    ("/%09%09/evil.example", "/"),
    ("/%5Cevil.example", "/"),  # a backslash: browsers read /\ as //
    ("/%5C%5Cevil.example", "/"),
    ("%5C%5Cevil.example", "/"),
    ("/%20/evil.example", "/"),
    ("%20//evil.example", "/"),
    ("/%C2%A0/evil.example", "/"),  # no-break space
    ("/%E2%80%A8/evil.example", "/"),  # line separator
    ("/%E2%80%8B/evil.example", "/"),  # zero-width space
    ("/%2F/evil.example", "/"),  # decodes to ///evil.example
    ("/%09", "/"),
]


@pytest.mark.parametrize(("target", "expected"), NEXT_TARGETS)
def test_login_returns_only_to_pages_of_this_site(web: Web, target: str, expected: str) -> None:
    token = web.csrf()
    response = web.client.post(f"/login?next={target}", data={"name": "dana", "password": PASSWORD, "csrf_token": token},
                               base_url=BASE)
    assert response.status_code == 302
    assert response.headers["Location"] == expected


@pytest.mark.parametrize(("target", "expected"), NEXT_TARGETS)
def test_safe_next_refuses_control_characters_and_backslashes(web: Web, target: str, expected: str) -> None:
    from urllib.parse import unquote

    with web.app.test_request_context("/login", base_url=BASE):
        assert security.safe_next(unquote(target)) == expected


def test_logout_and_disabled_agents_lose_the_session(agent: Web) -> None:
    assert agent.get("/").status_code == 200
    assert agent.post("/logout").status_code == 302
    assert agent.get("/").status_code == 302
    agent.login()
    with sqlite3.connect(agent.settings.store_path) as db:
        db.execute("UPDATE agents SET disabled = 1 WHERE name = 'dana'")
    assert agent.get("/").headers["Location"].startswith("/login")
    assert agent.agent() is None


def test_a_session_signed_with_another_secret_is_not_accepted(web: Web) -> None:
    other = Web(create_app(web.settings, secret="o" * 48, port=8025), web.settings)
    other.login()
    cookie = other.client.get_cookie("triage_session", domain="127.0.0.1")
    assert cookie is not None
    web.client.set_cookie("triage_session", cookie.value, domain="127.0.0.1")
    assert web.get("/").status_code == 302


# -- server-side sessions and password guessing ----------------------------------


class Clock:
    """A clock the app reads for sessions and the login backoff; tests move it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)  # the CLI, on the real clock, sees the same records

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def _clocked(polled: Path, tmp_path: Path, extra: str = "") -> tuple[Web, Clock]:
    _copy_store(polled, tmp_path)
    (tmp_path / "Maildir").symlink_to(polled / "Maildir")
    settings = _settings(tmp_path, extra=extra)
    clock = Clock()
    return Web(create_app(settings, secret="s" * 48, port=8025, clock=clock), settings), clock


def _from(web: Web, address: str) -> Web:
    """Another browser on the same app, connecting from ``address``."""
    other = Web(web.app, web.settings)
    other.client.environ_base["REMOTE_ADDR"] = address
    return other


def test_a_cookie_captured_before_logout_no_longer_logs_in(agent: Web) -> None:
    cookie = agent.client.get_cookie("triage_session", domain="127.0.0.1")
    assert cookie is not None and agent.get("/").status_code == 200
    token = agent.csrf()
    assert agent.post("/logout").status_code == 302
    thief = Web(agent.app, agent.settings)
    thief.client.set_cookie("triage_session", cookie.value, domain="127.0.0.1")
    assert thief.get("/").status_code == 302 and thief.get("/").headers["Location"].startswith("/login")
    did = agent.draft_for("derek@customer.test")
    thief.client.set_cookie("triage_session", cookie.value, domain="127.0.0.1")
    refused = thief.client.post(f"/drafts/{did}/reject", data={"reason": "x", "csrf_token": token}, base_url=BASE)
    assert refused.status_code == 403
    with agent.store() as store:
        assert store.draft(did).status == "pending"
        assert store.sessions_of("dana") == 0


def test_the_cookie_holds_a_random_id_and_the_session_lives_in_the_store(agent: Web) -> None:
    with agent.client.session_transaction(base_url=BASE) as session:
        assert set(session) <= {"sid", "csrf", "_flashes", "_permanent"} and len(session["sid"]) >= 40
        token = session["sid"]
    with sqlite3.connect(agent.settings.store_path) as db:
        rows = db.execute("SELECT id, agent FROM sessions").fetchall()
    db.close()
    assert rows == [(hashlib.sha256(token.encode()).hexdigest(), "dana")]  # the token itself is not stored
    second = Web(agent.app, agent.settings)
    second.login()
    assert second.agent() == agent.agent() == "dana"
    second.post("/logout")
    assert second.agent() is None and agent.agent() == "dana"  # one logout ends one session


def test_a_session_ends_after_the_idle_time_and_the_absolute_maximum(polled: Path, tmp_path: Path) -> None:
    web, clock = _clocked(polled, tmp_path, "[web]\nsession_idle_minutes = 30\nsession_max_hours = 2\n")
    assert web.login().status_code == 302
    for _ in range(3):  # each request keeps it alive
        clock.advance(minutes=29)
        assert web.get("/").status_code == 200
    clock.advance(minutes=31)
    assert web.get("/").status_code == 302 and web.agent() is None
    web.login()
    for _ in range(6):
        clock.advance(minutes=20)
        assert web.get("/").status_code == 200
    clock.advance(minutes=1)  # 2 h 1 min after logging in, however busy
    assert web.get("/").status_code == 302 and web.agent() is None


def test_the_idle_time_defaults_to_an_hour(polled: Path, tmp_path: Path) -> None:
    web, clock = _clocked(polled, tmp_path)
    web.login()
    clock.advance(minutes=59)
    assert web.get("/").status_code == 200
    clock.advance(minutes=61)
    assert web.get("/").status_code == 302


def test_failed_logins_back_off_then_lock_the_account_until_unlocked(
    polled: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    web, clock = _clocked(polled, tmp_path)
    caplog.set_level(logging.INFO, logger="triage.agents")
    accepted = refused = 0
    waits: list[int] = []
    while True:
        response = web.login("dana", f"guess-{accepted}")
        if response.status_code == 429:
            refused += 1
            if "locked" in response.text:
                break
            wait = int(response.headers["Retry-After"])
            waits.append(wait)
            assert web.login("dana", PASSWORD).status_code == 429  # the right password is not even checked
            clock.advance(seconds=wait)
            continue
        assert response.status_code == 200 and "wrong password" in response.text
        accepted += 1
        assert accepted <= 10
    assert accepted == 10 and waits == [1, 2, 4, 8, 16, 32, 64]
    clock.advance(days=30)
    locked = web.login("dana", PASSWORD)
    assert locked.status_code == 429 and "triage agent unlock" in locked.text and web.agent() is None
    assert _from(web, "10.9.9.9").login("dana", PASSWORD).status_code == 429  # another client: still locked

    result = CliRunner().invoke(cli, ["--config", str(web.settings.file), "agent", "unlock", "dana"])
    assert result.exit_code == 0, result.output
    assert web.login("dana", PASSWORD).status_code == 302 and web.agent() == "dana"

    with web.store() as store:
        kinds = [e["kind"] for e in store.conn.execute("SELECT kind FROM events WHERE kind LIKE 'agent-%' "
                                                       "OR kind = 'login-failed' ORDER BY id")]
        details = " ".join(r[0] for r in store.conn.execute("SELECT detail FROM events"))
    assert kinds.count("login-failed") == 10 and kinds.count("agent-locked") == 1 and "agent-unlocked" in kinds
    logged = caplog.text
    assert "failed login for 'dana' from 127.0.0.1 (10 in a row)" in logged and "locked" in logged
    for text in (logged, details):
        assert "guess-" not in text and PASSWORD not in text  # never a password


def test_a_client_guessing_many_names_is_slowed_and_others_are_not(polled: Path, tmp_path: Path) -> None:
    web, clock = _clocked(polled, tmp_path)
    attacker = _from(web, "198.51.100.7")
    for i in range(5):  # five names, one guess each: under every account's free tries
        assert attacker.login(f"name{i}", "guess").status_code == 200
    slowed = attacker.login("sam", "guess")
    assert slowed.status_code == 429 and slowed.headers["Retry-After"] == "1"
    assert web.login("sam", PASSWORD).status_code == 302  # another client logs in as usual
    clock.advance(seconds=1)
    assert attacker.login("sam", "guess").status_code == 200
    assert attacker.login("sam", "guess").status_code == 429
    clock.advance(seconds=2)
    assert attacker.login("sam", "guess").status_code == 200
    for _ in range(20):  # the wait doubles and tops out at five minutes; a client is never locked for good
        response = attacker.login("dana", "guess")
        clock.advance(seconds=int(response.headers.get("Retry-After", 0)))
    assert int(attacker.login("sam", "guess").headers["Retry-After"]) <= 300
    result = CliRunner().invoke(cli, ["--config", str(web.settings.file), "agent", "unlock", "--client", "198.51.100.7"])
    assert result.exit_code == 0, result.output
    assert attacker.login("sam", PASSWORD).status_code == 302


def test_ipv6_clients_are_counted_by_their_slash_64(polled: Path, tmp_path: Path) -> None:
    web, _clock = _clocked(polled, tmp_path)
    for i in range(5):  # one host, five addresses of its /64, five names
        assert _from(web, f"2001:db8:1:2::{i + 1:x}").login(f"name{i}", "guess").status_code == 200
    assert _from(web, "2001:db8:1:2:ffff::9").login("name9", "guess").status_code == 429
    assert _from(web, "2001:db8:1:3::1").login("name9", "guess").status_code == 200  # another /64
    assert agents.client_key("::ffff:192.0.2.7") == agents.client_key("192.0.2.7") == "192.0.2.7"
    result = CliRunner().invoke(cli, ["--config", str(web.settings.file), "agent", "unlock", "--client", "2001:db8:1:2::77"])
    assert result.exit_code == 0 and "Unlocked client" in result.output
    assert _from(web, "2001:db8:1:2::1").login("name9", "guess").status_code == 200


def test_a_successful_login_clears_the_count(polled: Path, tmp_path: Path) -> None:
    web, clock = _clocked(polled, tmp_path)
    for _ in range(3):
        assert web.login("dana", "typo").status_code == 200
    assert web.login("dana", PASSWORD).status_code == 429
    clock.advance(seconds=1)
    assert web.login("dana", PASSWORD).status_code == 302
    web.post("/logout")
    for _ in range(3):  # counted from zero again: no wait
        assert web.login("dana", "typo").status_code == 200
    clock.advance(seconds=1)
    assert web.login("dana", PASSWORD).status_code == 302


# -- CSRF and Host --------------------------------------------------------------


def test_every_state_changing_post_needs_the_csrf_token(agent: Web) -> None:
    did = agent.draft_for("derek@customer.test")
    posts = {
        f"/drafts/{did}/edit": {"body": "changed"},
        f"/drafts/{did}/approve": {},
        f"/drafts/{did}/reject": {"reason": "x"},
        f"/drafts/{did}/assign": {"to": "sam"},
        f"/drafts/{did}/label": {"angry": "no"},
        "/logout": {},
    }
    for path, data in posts.items():
        assert agent.post(path, data, csrf=False).status_code == 403, path
        assert agent.post(path, {**data, "csrf_token": "forged"}, csrf=False).status_code == 403, path
    cross = agent.post(f"/drafts/{did}/reject", {"reason": "x"}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    with agent.store() as store:
        draft = store.draft(did)
        assert draft is not None and draft.status == "pending" and draft.body != "changed\n"
        assert store.labels_for(draft.message_id) == [] and store.owners([draft.case_id]) == {}
    assert agent.agent() == "dana"  # logout without a token did nothing


def test_login_itself_needs_the_csrf_token(web: Web) -> None:
    response = web.post("/login", {"name": "dana", "password": PASSWORD}, csrf=False)
    assert response.status_code == 403 and web.agent() is None


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8025", "127.0.0.1:8026", "localhost",
                                  "127.0.0.1.evil.example:8025", "[::2]:8025"])
def test_an_unexpected_host_header_is_refused(web: Web, host: str) -> None:
    for path in ("/login", "/static/style.css", "/"):
        assert web.get(path, headers={"Host": host}).status_code == 400, (host, path)


@pytest.mark.parametrize("host", ["localhost:8025", "127.0.0.1:8025", "[::1]:8025", "LocalHost:8025"])
def test_loopback_host_headers_with_the_port_are_accepted(web: Web, host: str) -> None:
    assert web.get("/login", headers={"Host": host}).status_code == 200


def test_the_host_given_to_serve_is_accepted_with_its_port_only(web: Web) -> None:
    app = create_app(web.settings, secret="s" * 48, host="review.lan", port=9000)
    client = app.test_client()
    assert client.get("/login", headers={"Host": "review.lan:9000"}).status_code == 200
    assert client.get("/login", headers={"Host": "review.lan:8025"}).status_code == 400
    assert security.allowed_hosts("::1", 80) >= {"[::1]", "[::1]:80", "localhost"}


# -- customer text is text ------------------------------------------------------


def test_customer_html_is_shown_as_text_everywhere(agent: Web) -> None:
    did = agent.draft_for("eve@customer.test")
    pages = {"queue": agent.get("/"), "case": agent.get(f"/drafts/{did}"), "quarantine": agent.get("/quarantine")}
    for name, page in pages.items():
        assert page.status_code == 200
        assert "<script>window.__xss" not in page.text and "<img src=x" not in page.text, name
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page.text, name
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "unsafe" not in csp  # only the app's own script file runs
        assert re.findall(r"<script[^>]*>", page.text) in ([], ['<script src="/static/keys.js" defer>']), name
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    case = pages["case"].text
    message = case[case.index('id="message-text"') : case.index("</pre>", case.index('id="message-text"'))]
    assert "<mark" in message and "&lt;img src=x onerror=&#34;window.__xss=2&#34;&gt;" in message
    assert set(re.findall(r"<(\w+)", message)) == {"mark"}


def test_highlight_escapes_the_text_and_adds_only_marks() -> None:
    text = 'a <b onclick="x">broken</b> & <script>'
    start = text.index("broken")
    evidence = [
        {"start": start, "end": start + 6, "text": "broken", "rule": 'r"<x>', "weight": 0.5},
        {"start": 0, "end": 1, "text": "not a", "rule": "stale", "weight": 1},  # text no longer matches: skipped
        {"start": start + 2, "end": start + 4, "text": "ok", "rule": "overlap", "weight": 1},
        {"start": 5, "end": 999, "text": None, "rule": "outside", "weight": 1},
    ]
    html = str(render.highlight(text, evidence))
    assert html == (
        'a &lt;b onclick=&#34;x&#34;&gt;<mark title="r&#34;&lt;x&gt; (+0.50)">broken</mark>'
        "&lt;/b&gt; &amp; &lt;script&gt;"
    )


# -- actions ----------------------------------------------------------------------


def test_edit_shows_findings_then_approving_the_fixed_draft_sends_it(agent: Web, smtp_server: SmtpServer) -> None:
    did = agent.draft_for("derek@customer.test")
    agent.post(f"/drafts/{did}/edit", {"body": "Hi Derek,\r\nplease calm down. As per my last email, it ships.\r\n"})
    page = agent.get(f"/drafts/{did}")
    assert "Saved with 2 tone finding(s)" in page.text
    findings = re.findall(r'<li class="finding"><mark>([^<]+)</mark>', page.text)
    assert any("calm down" in f for f in findings) and any("last email" in f.lower() for f in findings)

    agent.post(f"/drafts/{did}/approve")
    page = agent.get(f"/drafts/{did}")
    assert "tone finding" in page.text and smtp_server.messages == []

    agent.post(f"/drafts/{did}/edit", {"body": CLEAN})
    assert "Tone: no findings." in agent.get(f"/drafts/{did}").text
    response = agent.post(f"/drafts/{did}/approve")
    assert re.fullmatch(rf"/drafts/\d+\?from={did}", response.headers["Location"])  # the next waiting draft
    assert f"Draft {did} sent to derek@customer.test." in agent.get(response.headers["Location"]).text
    assert f'data-draft="{did}"' not in agent.get("/").text
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ("derek@customer.test",) and "A replacement ships today." in mail.message.get_content()
    with agent.store() as store:
        assert [e["actor"] for e in store.case_events(store.draft(did).case_id) if e["kind"] == "draft-approved"] == ["dana"]


def test_a_refused_send_stays_approved_with_the_error_on_the_page_and_can_be_retried(
    agent: Web, smtp_server: SmtpServer
) -> None:
    did = agent.draft_for("amy@customer.test")
    agent.post(f"/drafts/{did}/edit", {"body": CLEAN})
    smtp_server.refuse_all = "451 4.3.0 try later"
    response = agent.post(f"/drafts/{did}/approve")
    assert response.headers["Location"] == f"/drafts/{did}"
    page = agent.get(f"/drafts/{did}").text
    assert "Approved but not sent" in page and "451" in page and 'id="draft-status">approved<' in page
    queue = agent.get("/").text
    row = queue[queue.index(f'data-draft="{did}"') :].split("</tr>")[0]
    assert "approved" in row and "451" in row
    smtp_server.refuse_all = None
    assert "Retry sending" in page
    agent.post(f"/drafts/{did}/approve")
    assert len(smtp_server.wait_for(1)) == 1
    assert f'data-draft="{did}"' not in agent.get("/").text


def test_reject_needs_a_reason_and_leaves_the_queue(agent: Web) -> None:
    did = agent.draft_for("amy@customer.test")
    agent.post(f"/drafts/{did}/reject", {"reason": "  "})
    assert "a rejection needs a reason" in agent.get(f"/drafts/{did}").text
    landed = agent.post(f"/drafts/{did}/reject", {"reason": "answered by phone"}).headers["Location"]
    assert re.fullmatch(rf"/drafts/\d+\?from={did}", landed)  # the next waiting draft (amy's is the last)
    assert f'data-draft="{did}"' not in agent.get("/").text


def test_reassign_records_an_event_and_the_latest_owner_is_shown(agent: Web) -> None:
    did = agent.draft_for("derek@customer.test")
    agent.post(f"/drafts/{did}/assign", {"to": "sam"})
    assert '<span id="owner">sam</span>' in agent.get(f"/drafts/{did}").text
    agent.post(f"/drafts/{did}/assign", {"to": "dana"})
    assert '<span id="owner">dana</span>' in agent.get(f"/drafts/{did}").text
    agent.post(f"/drafts/{did}/assign", {"to": "mallory"})
    assert "no agent named &#39;mallory&#39;" in agent.get(f"/drafts/{did}").text
    row = agent.get("/").text.split(f'data-draft="{did}"')[1].split("</tr>")[0]
    assert "<td>dana</td>" in row
    with agent.store() as store:
        events = [e for e in store.case_events(store.draft(did).case_id) if e["kind"] == "case-assigned"]
    assert [(e["actor"], e["detail"]["to"]) for e in events] == [("dana", "sam"), ("dana", "dana")]


def test_the_queue_shows_mine_or_unassigned_and_a_rejected_case_as_needs_reply(agent: Web) -> None:
    derek, amy = agent.draft_for("derek@customer.test"), agent.draft_for("amy@customer.test")
    agent.post(f"/drafts/{derek}/assign", {"to": "dana"})
    agent.post(f"/drafts/{amy}/assign", {"to": "sam"})
    everyone = agent.get("/").text
    assert 'id="owner-mine"' in everyone and 'id="owner-unassigned"' in everyone
    mine = agent.get("/?owner=mine").text
    assert f'data-draft="{derek}"' in mine and f'data-draft="{amy}"' not in mine
    assert "<strong>mine</strong>" in mine and 'name="owner" value="mine"' in mine  # the filter form keeps it
    unassigned = agent.get("/?owner=unassigned").text
    assert f'data-draft="{derek}"' not in unassigned and f'data-draft="{amy}"' not in unassigned
    assert unassigned.count("data-draft=") == 1  # eve's, nobody's
    agent.post(f"/drafts/{derek}/reject", {"reason": "will phone him"})
    with agent.store() as store:
        case_id = store.draft(derek).case_id  # type: ignore[union-attr]
    for page in (agent.get("/").text, agent.get("/?owner=mine").text):
        assert f'<li class="needs-reply" data-case="{case_id}">' in page
        assert f'href="/drafts/{derek}"' in page and f"needs reply (draft {derek} rejected)" in page
    assert 'class="needs-reply"' not in agent.get("/?owner=unassigned").text


def test_a_detection_correction_is_stored_as_a_label(agent: Web) -> None:
    did = agent.draft_for("amy@customer.test")
    agent.post(f"/drafts/{did}/label", {"angry": "no", "archetype": "meek"})
    agent.post(f"/drafts/{did}/label", {"angry": "", "archetype": ""})
    assert "a correction needs angry yes/no or an archetype" in agent.get(f"/drafts/{did}").text
    with agent.store() as store:
        draft = store.draft(did)
        labels = store.labels_for(draft.message_id)
    assert [(lb["angry"], lb["archetype"], lb["agent"]) for lb in labels] == [(0, "meek", "dana")]



def test_triage_label_records_the_same_audit_event_as_the_page(agent: Web) -> None:
    did = agent.draft_for("amy@customer.test")
    agent.post(f"/drafts/{did}/label", {"angry": "no", "archetype": "meek"})
    with agent.store() as store:
        draft = store.draft(did)
    conf = ["--config", str(agent.settings.store_path.with_name("triage.toml"))]
    done = CliRunner().invoke(
        cli, [*conf, "label", str(draft.message_id), "--angry", "no", "--archetype", "meek", "--agent", "dana"]
    )
    assert done.exit_code == 0, done.output
    with agent.store() as store:
        events = [e for e in store.case_events(draft.case_id) if e["kind"] == "label-recorded"]
        labels = store.labels_for(draft.message_id)
    assert [(lb["angry"], lb["archetype"], lb["agent"]) for lb in labels] == [(0, "meek", "dana")] * 2
    expected = {"actor": "dana", "case_id": draft.case_id, "message_id": draft.message_id,
                "detail": {"angry": False, "archetype": "meek"}}
    assert [{k: e[k] for k in expected} for e in events] == [expected, expected]  # the page's, then the command's

# -- the queue on a large store ---------------------------------------------------


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_web", ROOT / "bench" / "web.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HUGE = 2 * 1024 * 1024


def _make_huge(web: Web) -> None:
    """Every case's subject, customer name and quarantined subject become 2 MB (as a hostile mail could make them)."""
    with sqlite3.connect(web.settings.store_path) as db:
        db.execute("UPDATE cases SET subject = ? || subject", ("Refund now " * (HUGE // 11),))
        db.execute("UPDATE customers SET name = ?", ("Eve " * (HUGE // 4),))
        db.execute("UPDATE messages SET subject = ?, sender = ? WHERE status = 'quarantined'",
                   ("x" * HUGE, "y" * HUGE + "@example.test"))
    db.close()


def test_huge_subjects_and_names_are_stored_whole_but_cut_in_the_queue(agent: Web) -> None:
    normal = len(agent.get("/").data)
    _make_huge(agent)
    page = agent.get("/")
    assert page.status_code == 200 and len(page.data) < normal + 3 * 1000, len(page.data)
    assert "Refund now Refund now" in page.text and "…" in page.text
    quarantine = agent.get("/quarantine")
    assert quarantine.status_code == 200 and len(quarantine.data) < 20_000, len(quarantine.data)
    did = agent.draft_for("derek@customer.test")
    case_page = agent.get(f"/drafts/{did}")
    assert case_page.status_code == 200 and len(case_page.data) < 100_000, len(case_page.data)

    conf = ["--config", str(agent.settings.file)]
    text = CliRunner().invoke(cli, [*conf, "queue"])
    listed = CliRunner().invoke(cli, [*conf, "queue", "--json"])
    quarantined = CliRunner().invoke(cli, [*conf, "queue", "--quarantined", "--json"])
    assert text.exit_code == listed.exit_code == quarantined.exit_code == 0
    assert len(text.output) < 2_000 and len(listed.output) < 10_000 and len(quarantined.output) < 5_000
    rows = json.loads(listed.output)
    assert all(len(r["subject"]) <= 500 and len(r["customer_name"]) <= 500 for r in rows)
    with agent.store() as store:  # stored in full
        case_id = store.draft(did).case_id
        assert len(store.case(case_id).subject) > HUGE - 100


def test_queue_pages_filters_and_sorts(tmp_path: Path) -> None:
    bench = _bench()
    bench.build_store(tmp_path / "triage.db", drafts=250, messages=1000)
    settings = bench.settings_for(tmp_path)
    with Store(settings.store_path) as store:
        agents.create(store, "dana", PASSWORD)
        cli_order = [r.id for r in store.queue()]
        by_due, _ = store.queue_page(sort="due", limit=250)
        by_due_desc, _ = store.queue_page(sort="due", descending=True, limit=250)
        angry, angry_total = store.queue_page(level="angry", archetype="meek", limit=250)
        overdue, _ = store.queue_page(overdue_at=utcnow(), limit=250)
    dues = [r.due for r in by_due]
    assert dues == sorted(dues) and [r.due for r in by_due_desc] == sorted(dues, reverse=True)
    assert angry_total == len(angry) > 0 and all(r.level == "angry" and "meek" in r.archetypes for r in angry)
    assert overdue and all(render.overdue(r.due) for r in overdue)

    web = Web(create_app(settings, secret="s" * 48), settings)
    web.login()
    ids = lambda page: [int(i) for i in re.findall(r'data-draft="(\d+)"', page.text)]
    first, third = web.get("/"), web.get("/?page=3")
    assert "250 draft(s)" in first.text and "page 1 of 3" in first.text
    assert ids(first) + ids(web.get("/?page=2")) + ids(third) == cli_order  # the CLI's order, paged
    assert len(ids(third)) == 50
    assert ids(web.get("/?level=angry&archetype=meek&sort=urgency")) == [r.id for r in angry][:100]
    assert web.get("/?sort=nonsense&page=x").status_code == 200


# -- secret, agents, CLI ----------------------------------------------------------


def test_the_session_secret_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    db = tmp_path / "triage.db"
    first = security.load_secret(db, environ={})
    path = tmp_path / "triage.db.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) >= 32
    assert security.load_secret(db, environ={}) == first
    assert security.load_secret(db, environ={"TRIAGE_WEB_SECRET": "e" * 40}) == "e" * 40
    with pytest.raises(ConfigError, match="at least 32"):
        security.load_secret(db, environ={"TRIAGE_WEB_SECRET": "short"})
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        security.load_secret(db, environ={})


def test_create_app_without_a_secret_uses_the_file_next_to_the_store(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIAGE_WEB_SECRET", raising=False)
    app = create_app(web.settings)
    secret_file = web.settings.store_path.with_name("triage.db.secret")
    assert app.secret_key == secret_file.read_text().strip()


def test_agents_are_hashed_and_verified(tmp_path: Path) -> None:
    with Store(tmp_path / "t.db") as store:
        agents.create(store, "dana", PASSWORD)
        row = store.agent("dana")
        assert row is not None and PASSWORD not in row["password_hash"] and row["password_hash"].startswith("scrypt:")
        assert agents.verify(store, "dana", PASSWORD) and not agents.verify(store, "dana", PASSWORD + "x")
        assert not agents.verify(store, "nobody", PASSWORD)
        for name, password, message in (("dana", PASSWORD, "already"), ("bad name", PASSWORD, "agent name"),
                                        ("lee", "short", "at least 8")):
            with pytest.raises(agents.AgentError, match=message):
                agents.create(store, name, password)


def test_cli_agent_add_from_env_or_a_hidden_prompt(polled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(polled / "triage.toml", tmp_path / "triage.toml")
    (tmp_path / "Maildir").symlink_to(polled / "Maildir")
    conf = ["--config", str(tmp_path / "triage.toml")]
    monkeypatch.setenv("NEW_AGENT_PW", "from-the-env-123")
    done = CliRunner().invoke(cli, [*conf, "agent", "add", "lee", "--password-env", "NEW_AGENT_PW"])
    assert done.exit_code == 0 and "Agent lee added." in done.output and "from-the-env" not in done.output
    done = CliRunner().invoke(cli, [*conf, "agent", "add", "kim"], input="typed-password-1\ntyped-password-1\n")
    assert done.exit_code == 0, done.output
    assert "typed-password-1" not in done.output
    again = CliRunner().invoke(cli, [*conf, "agent", "add", "kim", "--password-env", "NEW_AGENT_PW"])
    assert again.exit_code == 2 and "already an agent named 'kim'" in again.output
    missing = CliRunner().invoke(cli, [*conf, "agent", "add", "zed", "--password-env", "UNSET_VAR_XYZ"])
    assert missing.exit_code == 2 and "UNSET_VAR_XYZ" in missing.output
    with Store(tmp_path / "triage.db") as store:
        assert agents.verify(store, "lee", "from-the-env-123") and agents.verify(store, "kim", "typed-password-1")


def test_cli_agent_passwd_changes_the_password_and_logs_every_session_out(
    agent: Web, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    conf = ["--config", str(agent.settings.file)]
    other = Web(agent.app, agent.settings)
    other.login()
    sam = Web(agent.app, agent.settings)
    sam.login("sam")
    assert agent.get("/").status_code == 200 and other.get("/").status_code == 200
    monkeypatch.setenv("NEW_PW", "a-new-password-9")
    done = CliRunner().invoke(cli, [*conf, "agent", "passwd", "dana", "--password-env", "NEW_PW"])
    assert done.exit_code == 0, done.output
    assert "Password of dana changed; 2 session(s) logged out." in done.output and "a-new-password" not in done.output
    assert agent.get("/").status_code == 302 and other.get("/").status_code == 302  # both of dana's sessions
    assert sam.get("/").status_code == 200  # nobody else's
    assert agent.login("dana", PASSWORD).status_code == 200  # the old password no longer works
    assert agent.login("dana", "a-new-password-9").status_code == 302
    typed = CliRunner().invoke(cli, [*conf, "agent", "passwd", "sam"], input="typed-password-2\ntyped-password-2\n")
    assert typed.exit_code == 0 and "typed-password-2" not in typed.output, typed.output
    with agent.store() as store:
        assert agents.verify(store, "sam", "typed-password-2")
        details = " ".join(r[0] for r in store.conn.execute("SELECT detail FROM events WHERE kind = 'agent-password-changed'"))
    assert "dana" in details and "sam" in details and "password-" not in details
    unknown = CliRunner().invoke(cli, [*conf, "agent", "passwd", "nobody", "--password-env", "NEW_PW"])
    assert unknown.exit_code == 2 and "no agent named 'nobody'" in unknown.output
    short = CliRunner().invoke(cli, [*conf, "agent", "passwd", "dana"], input="short\nshort\n")
    assert short.exit_code == 2 and "at least 8" in short.output
    unset = CliRunner().invoke(cli, [*conf, "agent", "passwd", "dana", "--password-env", "UNSET_VAR_XYZ"])
    assert unset.exit_code == 2 and "UNSET_VAR_XYZ" in unset.output
    assert CliRunner().invoke(cli, [*conf, "agent", "unlock", "nobody"]).exit_code == 2
    assert CliRunner().invoke(cli, [*conf, "agent", "unlock"]).exit_code == 2


def test_cli_agent_list_shows_created_last_login_and_locks(polled: Path, tmp_path: Path) -> None:
    web, clock = _clocked(polled, tmp_path)
    conf = ["--config", str(web.settings.file)]
    web.login("dana")
    sam = _from(web, "10.1.1.1")
    sam.login("sam")
    sam.post("/logout")
    started = clock.now
    for i in range(30):  # sam's password guessed until the account locks
        response = _from(web, f"10.0.0.{i}").login("sam", "guess")
        if "locked" in response.text:
            break
        clock.advance(seconds=int(response.headers.get("Retry-After", 0)))
    listed = CliRunner().invoke(cli, [*conf, "agent", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in json.loads(listed.output)}
    assert list(rows) == ["dana", "sam"]
    assert rows["dana"]["last_login_at"] == started.isoformat() and rows["dana"]["sessions"] == 1
    with web.store() as store:  # the clock ran on past dana's idle time: a later listing drops the session
        later = agents.listing(store, web.settings.web, now=clock.now + timedelta(hours=13))
    assert [r["sessions"] for r in later] == [0, 0]
    assert rows["dana"]["locked"] is False and rows["dana"]["created_at"]
    assert rows["sam"]["locked"] is True and rows["sam"]["failed_logins"] == 10 and rows["sam"]["sessions"] == 0
    text = CliRunner().invoke(cli, [*conf, "agent", "list"])
    assert text.exit_code == 0
    lines = text.output.splitlines()
    assert lines[0].split() == ["NAME", "SIGNS", "AS", "CREATED", "LAST", "LOGIN", "LOCKED", "FAILED", "SESSIONS"]
    assert lines[1].split()[0] == "dana" and started.strftime("%Y-%m-%d %H:%M") in lines[1]
    assert lines[2].split()[0] == "sam" and " yes " in lines[2]


def test_triage_serve_listens_on_loopback_and_checks_the_host(polled: Path, tmp_path: Path) -> None:
    _copy_store(polled, tmp_path)
    (tmp_path / "Maildir").symlink_to(polled / "Maildir")
    _settings(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage", "--config", str(tmp_path / "triage.toml"), "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != "TRIAGE_WEB_SECRET"},
    )
    try:
        assert _status(port, f"127.0.0.1:{port}", wait=15) == 302
        assert _status(port, "rebound.example") == 400
        process = psutil.Process(proc.pid)
        connections = getattr(process, "net_connections", process.connections)()  # psutil < 6 has only connections()
        listening = {c.laddr.ip for c in connections if c.status == "LISTEN"}
        assert listening == {"127.0.0.1"}
        assert stat.S_IMODE((tmp_path / "triage.db.secret").stat().st_mode) == 0o600
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in out


def _status(port: int, host: str, wait: float = 0) -> int:
    import http.client

    deadline = time.monotonic() + wait
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/", headers={"Host": host})
            status = conn.getresponse().status
            conn.close()
            return status
        except (TimeoutError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("TRIAGE_WEB_SECRET", raising=False)
    yield


def test_the_case_page_lists_the_asks(agent: Web) -> None:
    pages = [agent.get(f"/drafts/{n}").get_data(as_text=True) for n in (1, 2, 3)]
    assert any('<ul class="asks">' in p and "<strong>refund</strong>" in p and "asks.refund" in p for p in pages)
    assert any("<strong>status</strong>" in p for p in pages)
    assert all(XSS not in p for p in pages)  # the ask's words are the customer's: escaped like the rest
