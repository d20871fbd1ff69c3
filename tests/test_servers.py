"""The real-server helpers in tests/servers.py really work (no skips: missing software fails)."""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import imapclient
import pytest
import servers
from imapclient.imapclient import SENT
from servers import (
    Dovecot,
    ServerStartError,
    ServerUnavailable,
    SmtpServer,
    TokenEndpoint,
    free_port,
    make_self_signed,
)

USER, PASSWORD = "support@example.com", "secret"
RAW = (
    b"From: Ann Customer <ann@example.org>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: broken again\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"\r\n"
    b"Third time this month.\r\n"
)


def alive(pids: set[int]) -> set[int]:
    """The PIDs from ``pids`` that are still running (zombies and vanished ones excluded)."""
    out = subprocess.run(
        ["ps", "-o", "pid=,stat=", "-p", ",".join(map(str, pids))],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {int(pid) for pid, stat in (line.split() for line in out.splitlines()) if "Z" not in stat}


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with Dovecot({USER: PASSWORD, "other@example.com": "pw2"}, ssl=True) as server:
        yield server


# ------------------------------------------------------------------- Dovecot


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_append_and_read_back(dovecot: Dovecot) -> None:
    uid = dovecot.append("INBOX", RAW, flags=[r"\Flagged"])
    msgs = {u: (raw, flags) for u, raw, flags in dovecot.messages("INBOX")}
    raw, flags = msgs[uid]
    assert raw == RAW
    assert r"\Flagged" in flags and r"\Seen" not in flags  # messages() peeks
    assert dovecot.flags("INBOX", uid) == flags
    with dovecot.client() as c:  # an ordinary imapclient session sees the same message
        c.select_folder("INBOX")
        data = c.fetch([uid], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        assert data[uid][b"BODY[HEADER.FIELDS (SUBJECT)]"].strip() == b"Subject: broken again"
        assert b"UIDPLUS" in c.capabilities() and b"MOVE" in c.capabilities()


def test_users_are_separate(dovecot: Dovecot) -> None:
    dovecot.append("INBOX", RAW, user="other@example.com")
    assert len(dovecot.messages("INBOX", user="other@example.com")) >= 1
    c = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False)
    with pytest.raises(imapclient.exceptions.LoginError):
        c.login(USER, "wrong")
    c.shutdown()


def test_flags_unknown_uid(dovecot: Dovecot) -> None:
    with pytest.raises(KeyError):
        dovecot.flags("INBOX", 999_999)


def test_sent_folder_has_special_use(dovecot: Dovecot) -> None:
    assert r"\Sent" in dovecot.folders()["Sent"]
    with dovecot.client() as c:
        assert c.find_special_folder(SENT) == "Sent"


def test_delete_and_recreate_changes_uidvalidity(dovecot: Dovecot) -> None:
    dovecot.create_folder("Work")
    dovecot.append("Work", RAW)
    before = dovecot.uidvalidity("Work")
    dovecot.delete_folder("Work")
    assert "Work" not in dovecot.folders()
    dovecot.create_folder("Work")
    assert dovecot.uidvalidity("Work") != before
    assert dovecot.messages("Work") == []
    dovecot.delete_folder("Work")


def test_tls_port_needs_the_ca(dovecot: Dovecot) -> None:
    assert dovecot.tls_port and dovecot.ca_file
    with (
        socket.create_connection((dovecot.host, dovecot.tls_port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname=dovecot.host)
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    c = imapclient.IMAPClient(dovecot.host, port=dovecot.tls_port, ssl=True, ssl_context=context)
    c.login(USER, PASSWORD)
    assert c.select_folder("INBOX")[b"EXISTS"] >= 0
    c.logout()
    with dovecot.client(tls=True) as c:  # the helper's own TLS paths
        assert c.list_folders()
    with dovecot.client(starttls=True) as c:
        assert c.list_folders()


def test_starttls_on_plain_port(dovecot: Dovecot) -> None:
    c = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False)
    assert b"STARTTLS" in c.capabilities()
    with pytest.raises(ssl.SSLCertVerificationError):
        c.starttls(ssl.create_default_context())  # the failed handshake closes the socket
    c = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False)
    c.starttls(ssl.create_default_context(cafile=str(dovecot.ca_file)))
    c.login(USER, PASSWORD)
    c.logout()


def test_restart_keeps_mail_port_and_uidvalidity() -> None:
    with Dovecot() as server:
        uid = server.append("INBOX", RAW)
        port, validity, mail_dir = server.port, server.uidvalidity("INBOX"), server.mail_dir
        server.restart()
        assert (server.port, server.mail_dir) == (port, mail_dir)
        assert server.uidvalidity("INBOX") == validity
        assert [(u, raw) for u, raw, _ in server.messages("INBOX")] == [(uid, RAW)]
        assert "starting up" in server.log()


def test_stop_leaves_nothing_behind() -> None:
    server = Dovecot().start()
    server.append("INBOX", RAW)  # spawns imap-login and imap processes too
    assert server._proc is not None
    group = set(servers._live_group_members(server._proc.pid))
    assert len(group) >= 4  # master, log, config, anvil, auth, ...
    directory, port = server.dir, server.port
    server.stop()
    assert alive(group) == set()
    assert not directory.exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    server.stop()  # idempotent


def test_stop_keep_dir_then_start_again() -> None:
    server = Dovecot().start()
    try:
        server.append("INBOX", RAW)
        server.stop(keep_dir=True)
        with pytest.raises(ConnectionRefusedError):  # a real outage for fault tests
            server.client()
        server.start()
        assert len(server.messages("INBOX")) == 1
    finally:
        server.stop()


def test_missing_dovecot_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "_which", lambda name: None)
    with pytest.raises(ServerUnavailable, match="apt-get install -y dovecot-imapd"):
        Dovecot().start()


def test_bad_config_fails_with_log_tail() -> None:
    server = Dovecot(extra_config="no_such_setting = 1\n")
    with pytest.raises(ServerStartError, match="no_such_setting"):
        server.start()
    assert not server.running
    server.stop()


# ---------------------------------------------------------------------- SMTP


def outgoing(to: str = "ann@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "support@example.com"
    msg["To"] = to
    msg["Subject"] = "Re: broken again"
    msg["Message-ID"] = "<r1@example.com>"
    msg.set_content("Sorry — we are on it.\n")
    return msg


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def test_smtp_records_message(smtp: SmtpServer) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as s:
        s.send_message(outgoing(), to_addrs=["ann@example.org", "cc@example.org"])
    [got] = smtp.messages
    assert got.mail_from == "support@example.com"
    assert got.rcpt_tos == ("ann@example.org", "cc@example.org")
    assert isinstance(got.message, EmailMessage)
    assert got.message["Message-ID"] == "<r1@example.com>"
    assert got.message.get_content().rstrip() == "Sorry — we are on it."
    assert b"Subject: Re: broken again" in got.raw
    assert got.auth_user is None and not got.tls
    smtp.clear()
    assert smtp.messages == []


def test_smtp_refuse_rcpt(smtp: SmtpServer) -> None:
    smtp.refuse_rcpt = {"bad@x"}
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            s.send_message(outgoing("bad@x"))
        assert info.value.recipients["bad@x"] == (550, b"5.1.1 no such user")
        # a partly refused message is still delivered to the others
        refused = s.send_message(outgoing(), to_addrs=["ann@example.org", "BAD@x"])
        assert list(refused) == ["BAD@x"]
    assert [m.rcpt_tos for m in smtp.messages] == [("ann@example.org",)]


def test_smtp_refuse_all(smtp: SmtpServer) -> None:
    smtp.refuse_all = "451 4.3.0 try later"
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPDataError) as info:
            s.send_message(outgoing())
        assert info.value.smtp_code == 451
        smtp.refuse_all = None
        s.send_message(outgoing())
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtp_auth(mechanism: str) -> None:
    with SmtpServer(auth={"user": "pw"}) as server:
        with (
            smtplib.SMTP(server.host, server.port, timeout=10) as s,
            pytest.raises(smtplib.SMTPSenderRefused, match="Authentication required"),
        ):
            s.send_message(outgoing())
        with smtplib.SMTP(server.host, server.port, timeout=10) as s:
            s.ehlo()
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.login("user", "wrong")
        with smtplib.SMTP(server.host, server.port, timeout=10) as s:
            s.ehlo()
            s.user, s.password = "user", "pw"
            s.auth(mechanism, getattr(s, f"auth_{mechanism.lower()}"), initial_response_ok=False)
            s.send_message(outgoing())
        assert [m.auth_user for m in server.messages] == ["user"]


def test_smtp_starttls() -> None:
    with SmtpServer(starttls=True, auth={"user": "pw"}) as server:
        assert server.ca_file is not None
        with (
            smtplib.SMTP(server.host, server.port, timeout=10) as s,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            s.starttls(context=ssl.create_default_context())
        with smtplib.SMTP(server.host, server.port, timeout=10) as s:
            s.starttls(context=ssl.create_default_context(cafile=str(server.ca_file)))
            s.login("user", "pw")
            s.send_message(outgoing())
        [got] = server.messages
        assert got.tls and got.auth_user == "user"


def test_token_endpoint_answers_like_an_introspection_endpoint() -> None:
    with TokenEndpoint() as endpoint:
        endpoint.grant("good", USER)
        endpoint.grant("old", USER)
        endpoint.expire("old")

        def ask(token: str) -> dict[str, object]:
            request = urllib.request.Request(endpoint.url, data=f"token={token}".encode(), method="POST")
            with urllib.request.urlopen(request, timeout=5) as answer:
                return json.loads(answer.read())  # type: ignore[no-any-return]

        assert ask("good") == {"active": True, "username": USER}
        assert ask("old") == {"active": False} and ask("unknown") == {"active": False}
        assert endpoint.asked == ["good", "old", "unknown"]
    with pytest.raises(OSError):
        ask("good")  # stopped: nothing listens any more


def test_dovecot_oauth2_takes_a_good_token_by_either_mechanism_and_refuses_the_rest() -> None:
    with TokenEndpoint() as endpoint, Dovecot({USER: PASSWORD, "other@example.com": "pw2"}, oauth2=endpoint) as server:
        endpoint.grant("good", USER)
        endpoint.grant("theirs", "other@example.com")
        endpoint.grant("old", USER)
        endpoint.expire("old")
        with imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=10) as c:
            assert {b"AUTH=OAUTHBEARER", b"AUTH=XOAUTH2"} <= set(c.capabilities())
        for login in ("oauthbearer_login", "oauth2_login"):
            with imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=10) as c:
                getattr(c, login)(USER, "good")
                assert "Sent" in [name for _f, _s, name in c.list_folders()]
            for token in ("theirs", "old", "unknown"):
                with (
                    imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=10) as c,
                    pytest.raises(imapclient.exceptions.LoginError, match="AUTHENTICATIONFAILED"),
                ):
                    getattr(c, login)(USER, token)
        server.client().logout()  # passwords still work
        assert "did not match 'other@example.com'" in server.log()  # refused for the user, not by chance
    with TokenEndpoint() as endpoint, Dovecot({USER: PASSWORD}, oauth2=endpoint, oauth2_mechanisms=("xoauth2",)) as server:
        with imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=10) as c:
            caps = set(c.capabilities())
        assert b"AUTH=XOAUTH2" in caps and b"AUTH=OAUTHBEARER" not in caps


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_smtp_oauth2_checks_the_token_and_its_user(mechanism: str) -> None:
    def sasl(user: str, token: str) -> str:
        if mechanism == "XOAUTH2":
            return f"user={user}\x01auth=Bearer {token}\x01\x01"
        return f"n,a={user},\x01auth=Bearer {token}\x01\x01"

    with TokenEndpoint() as endpoint, SmtpServer(oauth2=endpoint) as server:
        endpoint.grant("good", USER)
        with (
            smtplib.SMTP(server.host, server.port, timeout=10) as s,
            pytest.raises(smtplib.SMTPSenderRefused, match="Authentication required"),
        ):
            s.send_message(outgoing())
        for user, token in ((USER, "bad"), ("other@example.com", "good")):
            with smtplib.SMTP(server.host, server.port, timeout=10) as s:
                s.ehlo()
                assert s.esmtp_features["auth"].split() == ["OAUTHBEARER", "XOAUTH2"]
                challenges: list[bytes] = []

                def answer(
                    challenge: bytes | None = None, user: str = user, token: str = token, seen: list[bytes] = challenges
                ) -> str:
                    if challenge is None:
                        return sasl(user, token)
                    seen.append(challenge)
                    return ""

                with pytest.raises(smtplib.SMTPAuthenticationError) as info:
                    s.auth(mechanism, answer)
                assert info.value.smtp_code == 535
                assert json.loads(challenges[0])["status"] == "401"  # Gmail's error challenge first
        with smtplib.SMTP(server.host, server.port, timeout=10) as s:
            s.ehlo()
            s.auth(mechanism, lambda challenge=None: sasl(USER, "good"))
            s.send_message(outgoing())
        assert [m.auth_user for m in server.messages] == [USER]
        assert server.logins == [(mechanism, USER, False), (mechanism, "other@example.com", False), (mechanism, USER, True)]
    with (
        TokenEndpoint() as endpoint,
        SmtpServer(oauth2=endpoint, oauth2_mechanisms=("XOAUTH2",)) as server,
        smtplib.SMTP(server.host, server.port, timeout=10) as s,
    ):
        s.ehlo()
        assert s.esmtp_features["auth"].split() == ["XOAUTH2"]


def test_make_self_signed(tmp_path: Path) -> None:
    cert, key = make_self_signed(tmp_path)
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in key.read_text()
    ctx = ssl.create_default_context(cafile=str(cert))
    assert ctx.cert_store_stats()["x509_ca"] == 1
