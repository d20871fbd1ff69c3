"""Security end to end: injection through every customer-controlled field, the review
page's guards on every route, secrets kept out of every output, TLS verification and
no silent plaintext.
"""

from __future__ import annotations

import re
from email.header import Header
from pathlib import Path

import pytest
from conftest import USER, Workspace, email_bytes, smtp_config
from servers import Dovecot, SmtpServer

from triage import config
from triage.errors import ConfigError
from triage.web import create_app

# -- template and header injection: poll -> approve -> what the SMTP server receives ----------

INJECT = "{{7*7}} {% for x in range(3) %}loop{% endfor %} {{ config }}"


def hostile_message() -> bytes:
    crlf_name = Header("Ann\r\nBcc: evil@attacker.test\r\nX-Injected: 1 {{7*7}}", "utf-8").encode()
    crlf_subject = Header(f"Broken blender {INJECT}\r\nBcc: evil2@attacker.test", "utf-8").encode()
    return (
        f"From: {crlf_name} <ann@customer.test>\n"
        f"To: {USER}\n"
        f"Subject: {crlf_subject}\n"
        "Reply-To: =?utf-8?q?Ann=0D=0ABcc=3A_evil3=40attacker=2Etest?= <ann.reply@customer.test>\n"
        "Message-ID: <hostile@customer.test>\n"
        "References: <a@x.test>\n <b@x.test>\r\n\tBcc: evil4@attacker.test <c@x.test>"
        " <{{7*7}}@evil.test> <bad\n"
        "In-Reply-To: <d@x.test>\n"
        "Date: Fri, 20 Nov 2026 09:00:00 +0000\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        f"My blender arrived broken, I want a refund. {INJECT}\n"
        "\nBcc: evil5@attacker.test\n"
    ).encode()


def test_template_and_header_injection_through_every_customer_field(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    dovecot.append("INBOX", hostile_message())
    workspace.imap_config(
        dovecot, extra=smtp_config(smtp_server))
    assert workspace.run_json("poll")["drafts"] == 1
    [row] = workspace.run_json("queue")
    done = workspace.run("approve", str(row["id"]), "--override-tone", "security test")
    assert done.returncode == 0, done.stderr

    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("ann.reply@customer.test",)
    names = [k.lower() for k in mail.message.keys()]
    assert sorted(names) == sorted(["from", "to", "subject", "date", "message-id", "in-reply-to", "references",
                                    "x-triage-sent", "content-type", "content-transfer-encoding", "mime-version"])
    head = re.split(rb"\r?\n\r?\n", mail.raw, maxsplit=1)[0].decode()
    starts = [line.split(":", 1)[0].lower() for line in re.split(r"\r?\n", head) if line and not line[0].isspace()]
    assert starts == names  # every header line is one we wrote: nothing injected, none split
    assert "attacker" not in str(mail.message["To"]) + str(mail.message["From"]) + str(mail.message["References"])
    body = mail.message.get_content()
    assert "49" not in body and "49" not in str(mail.message["Subject"])
    assert "{{7*7}}" in str(mail.message["Subject"]) or "{{7*7}}" in body  # customer text stays literal
    assert "loop" not in body.replace("{% for x in range(3) %}loop{% endfor %}", "")


# -- the review page: every route guarded ------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> object:
    (tmp_path / "Maildir").mkdir()
    (tmp_path / "triage.toml").write_text(f'[mailbox]\nsource = "maildir"\npath = "{tmp_path / "Maildir"}"\n'
                                          '[store]\npath = "triage.db"\n')
    return create_app(config.load(tmp_path / "triage.toml"), secret="s" * 48, port=8025)


def test_every_route_needs_a_login_and_every_post_a_csrf_token(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    rules = [r for r in app.url_map.iter_rules() if r.endpoint not in ("web.login", "static")]
    assert len(rules) >= 8
    for rule in rules:
        path = re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, base_url="http://127.0.0.1:8025")
            if method == "GET":
                assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path
            else:  # no session: no CSRF token and no login, either guard refuses
                assert response.status_code == 403, (method, path)


def test_login_gives_a_new_session_not_the_one_presented(app) -> None:  # type: ignore[no-untyped-def]
    from triage import agents
    from triage.store import Store

    with Store(app.extensions["triage.settings"].store_path) as store:
        agents.create(store, "dana", "correct horse battery")
    client = app.test_client()
    page = client.get("/login", base_url="http://127.0.0.1:8025")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    before = client.get_cookie("triage_session", domain="127.0.0.1").value  # type: ignore[union-attr]
    client.post("/login", data={"name": "dana", "password": "correct horse battery", "csrf_token": token},
                base_url="http://127.0.0.1:8025")
    after = client.get_cookie("triage_session", domain="127.0.0.1").value  # type: ignore[union-attr]
    assert after != before
    with client.session_transaction(base_url="http://127.0.0.1:8025") as session:
        assert session["csrf"] != token


# -- secrets never in logs, output or the database -------------------------------------------

IMAP_SECRET = "imap-Pw-7f3a9cQz"
SMTP_SECRET = "smtp-Pw-91abXy"


def test_passwords_never_appear_in_output_logs_or_the_database(workspace: Workspace) -> None:
    with Dovecot({USER: IMAP_SECRET}) as server, SmtpServer(auth={USER: SMTP_SECRET}) as smtp:
        server.append("INBOX", email_bytes())
        workspace.imap_config(server, extra=smtp_config(smtp, username=USER, password_env="SMTP_PW"))
        env = {"TRIAGE_TEST_PW": IMAP_SECRET, "SMTP_PW": SMTP_SECRET}
        outputs = [workspace.run("--debug", "poll", "--json", env=env)]
        [row] = workspace.run_json("queue", env=env)
        outputs.append(workspace.run("--debug", "approve", str(row["id"]), "--json", "--override-tone", "t", env=env))
        outputs.append(workspace.run("--debug", "poll", env={"TRIAGE_TEST_PW": "wrong-" + IMAP_SECRET}))
        outputs.append(workspace.run("--debug", "status", "--json", env=env))
        assert outputs[0].returncode == 0 and outputs[1].returncode == 0, outputs[1].stderr
        assert len(smtp.messages) == 1 and smtp.messages[0].auth_user == USER
        assert "DEBUG" in outputs[0].stderr  # --debug really logged
        for done in outputs:
            for secret in (IMAP_SECRET, SMTP_SECRET):
                assert secret not in done.stdout and secret not in done.stderr
        for path in workspace.dir.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert IMAP_SECRET.encode() not in data and SMTP_SECRET.encode() not in data, path


# -- TLS: self-signed refused by default, accepted with ca_file; no silent plaintext -------------


def test_smtp_starttls_with_a_self_signed_certificate(dovecot: Dovecot, workspace: Workspace) -> None:
    with SmtpServer(starttls=True) as smtp:
        dovecot.append("INBOX", email_bytes())
        base = smtp_config(smtp, host="localhost", security="starttls")
        workspace.imap_config(dovecot, extra=base)
        assert workspace.run("poll").returncode == 0
        [row] = workspace.run_json("queue")
        refused = workspace.run("approve", str(row["id"]), "--override-tone", "t")
        assert refused.returncode == 3 and "TLS certificate not trusted" in refused.stderr, refused.stderr
        assert smtp.messages == []
        workspace.imap_config(dovecot, extra=base + f'ca_file = "{smtp.ca_file}"\n')
        assert workspace.run_json("send-pending")["sent"] == [row["id"]]
        [mail] = smtp.messages
        assert mail.tls


def test_plaintext_to_a_remote_host_is_never_chosen_silently(tmp_path: Path) -> None:
    for section, extra in (("mailbox", 'source = "imap"\nusername = "u"\n'), ("smtp", "")):
        path = tmp_path / "t.toml"
        path.write_text(f'[{section}]\nhost = "mail.example.net"\n{extra}')
        s = config.load(path)
        part = s.mailbox if section == "mailbox" else s.smtp
        assert part.security == "tls" and part.port in (993, 465)  # the default is TLS, never plaintext
        path.write_text(f'[{section}]\nhost = "mail.example.net"\n{extra}security = "none"\n')
        assert getattr(config.load(path), section).security == "none"  # stated explicitly: allowed
        path.write_text(f'[{section}]\nhost = "mail.example.net"\n{extra}security = "plain"\n')
        with pytest.raises(ConfigError, match="security"):
            config.load(path)


def test_a_plaintext_server_with_tls_expected_gets_no_login(dovecot: Dovecot, workspace: Workspace) -> None:
    workspace.imap_config(dovecot)
    workspace.write_config(workspace.config.read_text().replace('security = "none"\n', ""))  # TLS by default
    done = workspace.run("poll")
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    assert "Login:" not in dovecot.log()
    workspace.write_config(workspace.config.read_text().replace("timeout = 10", 'security = "starttls"\ntimeout = 10'))
    done = workspace.run("poll")  # Dovecot here offers no STARTTLS: refused, never a plaintext fallback
    assert done.returncode == 3 and "STARTTLS failed" in done.stderr, done.stderr
    assert "Login:" not in dovecot.log()
