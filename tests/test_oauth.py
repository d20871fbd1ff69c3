"""OAuth2 login (OAUTHBEARER / XOAUTH2) with token_cmd, against real Dovecot and SMTP servers.

Dovecot's oauth2 passdb and the aiosmtpd server both judge tokens by the same
loopback introspection endpoint (tests/servers.py: TokenEndpoint). The token
helper is a real script (conftest.TokenCmd) that counts its runs.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import USER, TokenCmd, Workspace, email_bytes, smtp_config
from servers import Dovecot, SmtpServer, TokenEndpoint

from triage.mailbox.oauth import oauthbearer, stderr_hint, xoauth2

# recognisable, so any leak into output, logs or the database is found by grep
TOKEN = "ya29.TRIAGE-LEAK-CANARY-7f3a9c0d41"
SMTP_TOKEN = "ya29.TRIAGE-SMTP-CANARY-55e2b8a913"
OWNER = "owner@example.com"

COMPLAINT = email_bytes(
    subject="Order #48213: blender arrived broken",
    body="My blender (order #48213) arrived broken. This is the second time. I want it fixed.",
    message_id="<oauth-1@customer.test>",
)


@pytest.fixture
def imap_token(tmp_path: Path, token_endpoint: TokenEndpoint) -> TokenCmd:
    helper = TokenCmd(tmp_path / "helpers", "imap")
    token_endpoint.grant(helper.set(TOKEN), USER)
    return helper


@pytest.fixture
def smtp_token(tmp_path: Path, token_endpoint: TokenEndpoint) -> TokenCmd:
    helper = TokenCmd(tmp_path / "helpers", "smtp")
    token_endpoint.grant(helper.set(SMTP_TOKEN), USER)
    return helper


def _encoded(token: str) -> list[str]:
    """The token as it goes over the wire (base64 SASL responses), in case a log shows those."""
    out = []
    for sasl in (xoauth2(USER, token), oauthbearer(USER, token)):
        start, end = sasl.index(token), sasl.index(token) + len(token)
        # the base64 characters that encode only bytes of the token
        out.append(base64.b64encode(sasl.encode()).decode()[(start // 3 + 1) * 4 : (end // 3) * 4])
    return out


LEAKS = [TOKEN, SMTP_TOKEN, *_encoded(TOKEN), *_encoded(SMTP_TOKEN)]


def no_leak(*texts: str) -> None:
    for text in texts:
        for leak in LEAKS:
            assert leak not in text


def logins(dovecot: Dovecot) -> list[str]:
    """The SASL mechanism of each successful IMAP login, from Dovecot's own log."""
    return [line.split("method=")[1].split(",")[0] for line in dovecot.log().splitlines() if ": Login: user=<" in line]


def test_poll_and_send_with_a_good_token_one_fresh_token_per_connection(
    oauth_dovecot: Dovecot, oauth_smtp: SmtpServer, token_endpoint: TokenEndpoint,
    imap_token: TokenCmd, smtp_token: TokenCmd, workspace: Workspace,
) -> None:
    uid = oauth_dovecot.append("INBOX", COMPLAINT)
    workspace.oauth_config(oauth_dovecot, oauth_smtp, imap_token, smtp_token)
    before = len(logins(oauth_dovecot))  # append() logs in with the password
    assert workspace.run_json("poll")["drafts"] == 1
    assert imap_token.calls == 1 and logins(oauth_dovecot)[before:] == ["OAUTHBEARER"]

    did = workspace.run_json("queue")[0]["id"]
    done = workspace.run("approve", str(did), "--agent", "dana")
    assert done.returncode == 0, done.stderr
    [mail] = oauth_smtp.messages
    assert mail.auth_user == USER and mail.rcpt_tos == ("ann@customer.test",)
    assert oauth_smtp.logins == [("OAUTHBEARER", USER, True)]  # offered both: the standard one
    # sending opened one more IMAP connection (Sent, \Answered) and one SMTP connection
    assert (imap_token.calls, smtp_token.calls) == (2, 1)
    assert "\\Answered" in oauth_dovecot.flags("INBOX", uid) and len(oauth_dovecot.messages("Sent")) == 1

    # a new token from the helper is used at once: nothing is cached between connections
    token_endpoint.expire(TOKEN)
    token_endpoint.grant(imap_token.set("ya29.rotated-token-2"), USER)
    done = workspace.run("poll", "--json")
    assert done.returncode == 0, done.stderr
    assert imap_token.calls == 3 and token_endpoint.asked[-1] == "ya29.rotated-token-2"


def test_xoauth2_where_the_server_offers_nothing_else(
    token_endpoint: TokenEndpoint, imap_token: TokenCmd, smtp_token: TokenCmd, workspace: Workspace
) -> None:
    with Dovecot({USER: "pw"}, oauth2=token_endpoint, oauth2_mechanisms=("xoauth2",)) as imap, \
            SmtpServer(oauth2=token_endpoint, oauth2_mechanisms=("XOAUTH2",)) as smtp:
        imap.append("INBOX", COMPLAINT)
        before = len(logins(imap))
        workspace.oauth_config(imap, smtp, imap_token, smtp_token)
        done = workspace.run("poll")
        assert done.returncode == 0, done.stderr
        assert logins(imap)[before:] == ["XOAUTH2"]
        did = workspace.run_json("queue")[0]["id"]
        done = workspace.run("approve", str(did), "--agent", "dana")
        assert done.returncode == 0, done.stderr
        assert smtp.logins == [("XOAUTH2", USER, True)] and len(smtp.messages) == 1


def test_a_server_without_oauth2_is_one_line_and_the_helper_is_not_run(
    dovecot: Dovecot, imap_token: TokenCmd, workspace: Workspace
) -> None:
    workspace.oauth_config(dovecot, None, imap_token)
    done = workspace.run("poll")
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "offers no OAuth2 login" in done.stderr
    assert imap_token.calls == 0


def status(workspace: Workspace) -> dict[str, object]:
    return workspace.run_json("status")  # type: ignore[no-any-return]


@pytest.mark.parametrize("why", ["expired", "another account"])
def test_a_refused_token_fails_the_poll_is_recorded_and_the_owner_is_alerted(
    why: str, oauth_dovecot: Dovecot, oauth_smtp: SmtpServer, token_endpoint: TokenEndpoint,
    imap_token: TokenCmd, smtp_token: TokenCmd, workspace: Workspace,
) -> None:
    if why == "expired":
        token_endpoint.expire(TOKEN)
    else:
        token_endpoint.grant(TOKEN, "other@example.com")
    # the owner's alert goes out over SMTP, whose own token is still good
    workspace.oauth_config(oauth_dovecot, oauth_smtp, imap_token, smtp_token,
                           extra=f'[reminders]\nowner = "{OWNER}"\nfailure_threshold = 2\n')
    outputs = []
    for _ in range(2):
        done = workspace.run("poll")
        outputs += [done.stdout, done.stderr]
        assert done.returncode == 3
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"error: IMAP server refused the OAuth2 token for {USER} at ")
        assert "expired, revoked, or issued for another account?" in done.stderr
        assert "Traceback" not in done.stderr
    assert imap_token.calls == 2
    st = status(workspace)
    assert st["consecutive_failures"] == 2 and "refused the OAuth2 token" in str(st["last_error"])
    done = workspace.run("remind", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["poll_alert"] is True
    [alert] = oauth_smtp.messages
    assert alert.rcpt_tos == (OWNER,) and "refused the OAuth2 token" in alert.message.get_content()
    no_leak(*outputs, done.stdout, done.stderr, alert.raw.decode(errors="replace"))


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (None, "error: [mailbox] token_cmd: command not found: "),
        ("echo 'oama: no refresh token for support@example.com; run: oama authorize' >&2; exit 1",
         "error: [mailbox] token_cmd exited 1: oama: no refresh token for support@example.com; run: oama authorize"),
        ("echo 'invalid_grant refresh_token=1//0gSECRETrefreshTOKENvalue' >&2; exit 2",
         "error: [mailbox] token_cmd exited 2: invalid_grant […]"),
        ("exit 1", "error: [mailbox] token_cmd exited 1\n"),
        ("sleep 30 & sleep 30", "error: [mailbox] token_cmd timed out after 1s"),
        ("echo '   '", "error: [mailbox] token_cmd printed nothing: expected an access token on stdout"),
        (f"echo 'Your token is:'; echo {TOKEN}", "error: [mailbox] token_cmd printed something that is not one access token"),
    ],
    ids=["missing", "exit-1-with-reason", "secret-in-stderr", "exit-1-silent", "timeout", "nothing", "chatty"],
)
def test_each_token_cmd_failure_is_one_line_exit_3_and_a_failed_run(
    script: str | None, message: str, oauth_dovecot: Dovecot, imap_token: TokenCmd, workspace: Workspace
) -> None:
    if script is None:
        imap_token.path.unlink()
    else:
        imap_token.script(script)
    workspace.oauth_config(oauth_dovecot, None, imap_token)
    text = workspace.config.read_text().replace("timeout = 10", "timeout = 1")
    workspace.write_config(text)
    started = time.monotonic()
    done = workspace.run("poll")
    assert time.monotonic() - started < 10  # a hung helper (and its children) is killed at the timeout
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "SECRET" not in done.stderr and "Traceback" not in done.stderr
    no_leak(done.stdout, done.stderr)
    st = status(workspace)
    assert st["consecutive_failures"] == 1 and "[mailbox] token_cmd" in str(st["last_error"])


def test_a_failing_smtp_token_cmd_leaves_the_draft_approved_with_the_reason(
    oauth_dovecot: Dovecot, oauth_smtp: SmtpServer, imap_token: TokenCmd, smtp_token: TokenCmd,
    workspace: Workspace,
) -> None:
    oauth_dovecot.append("INBOX", COMPLAINT)
    workspace.oauth_config(oauth_dovecot, oauth_smtp, imap_token, smtp_token)
    assert workspace.run("poll").returncode == 0
    did = workspace.run_json("queue")[0]["id"]
    smtp_token.script("echo 'pizauth: token unavailable' >&2; exit 1")
    done = workspace.run("approve", str(did), "--agent", "dana")
    assert done.returncode == 3
    assert f"error: draft {did} approved but not sent: [smtp] token_cmd exited 1: pizauth: token unavailable" in done.stderr
    assert oauth_smtp.messages == []
    smtp_token.script(f"cat {smtp_token.dir / 'smtp.txt'}")  # the helper works again: cron's next run sends it
    assert workspace.run_json("send-pending")["sent"] == [did] and len(oauth_smtp.messages) == 1


def test_a_refused_smtp_token_is_one_line_naming_the_account(
    oauth_dovecot: Dovecot, oauth_smtp: SmtpServer, token_endpoint: TokenEndpoint,
    imap_token: TokenCmd, smtp_token: TokenCmd, workspace: Workspace,
) -> None:
    oauth_dovecot.append("INBOX", COMPLAINT)
    workspace.oauth_config(oauth_dovecot, oauth_smtp, imap_token, smtp_token)
    assert workspace.run("poll").returncode == 0
    did = workspace.run_json("queue")[0]["id"]
    token_endpoint.expire(SMTP_TOKEN)
    done = workspace.run("--debug", "approve", str(did), "--agent", "dana", "--json")
    assert done.returncode == 3
    assert json.loads(done.stdout)["failed"][str(did)].startswith(
        f"SMTP server refused the OAuth2 token for {USER} at {oauth_smtp.host}:{oauth_smtp.port} (OAUTHBEARER: 535 "
    )
    assert oauth_smtp.messages == []
    no_leak(done.stdout, done.stderr)


def test_the_token_never_appears_in_output_logs_json_or_the_database(
    oauth_dovecot: Dovecot, oauth_smtp: SmtpServer, token_endpoint: TokenEndpoint,
    imap_token: TokenCmd, smtp_token: TokenCmd, workspace: Workspace,
) -> None:
    oauth_dovecot.append("INBOX", COMPLAINT)
    workspace.oauth_config(oauth_dovecot, oauth_smtp, imap_token, smtp_token)
    runs = [workspace.run("--debug", "poll", "--json"), workspace.run("poll")]
    did = workspace.run_json("queue")[0]["id"]
    runs += [workspace.run("--debug", "approve", str(did), "--agent", "dana", "--json")]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert "DEBUG" in runs[0].stderr and "AUTHENTICATE" in runs[0].stderr  # the IMAP dialogue was logged
    imap_token.script(f"echo helper-diagnostic >&2; cat {imap_token.dir / 'imap.txt'}")
    token_endpoint.expire(TOKEN)
    runs += [workspace.run("--debug", "poll"), workspace.run("status", "--json"), workspace.run("queue", "--json")]
    assert runs[3].returncode != 0 and "Traceback" in runs[3].stderr  # --debug re-raises: the traceback too
    assert "helper-diagnostic" in runs[3].stderr  # the helper's stderr, at DEBUG only
    for r in runs:
        no_leak(r.stdout, r.stderr)
    assert "helper-diagnostic" not in workspace.run("poll").stderr
    dump = "\n".join(sqlite3.connect(workspace.db).iterdump())
    no_leak(dump)


def test_stderr_hint_keeps_the_reason_and_drops_secret_looking_runs() -> None:
    assert stderr_hint("\n  \nerror: invalid_grant\nsecond line") == "error: invalid_grant"
    assert stderr_hint("refresh token 1//0gAbCdEfGhIjKlMnOpQr rejected") == "refresh token […] rejected"
    assert "GOCSPX" not in stderr_hint("bad client_secret=GOCSPX-abcdefghijklmnopqrstuvwx")
    pizauth = ("ERROR - Token unavailable until authorised with URL https://login.microsoftonline.com/common/oauth2/"
               "v2.0/authorize?client_id=abc&client_secret=s3cr3t&login_hint=support@example.com")
    assert stderr_hint(pizauth) == "ERROR - Token unavailable until authorised with URL [URL]"
    assert len(stderr_hint("word " * 100)) == 80
    assert stderr_hint("") == ""


# -- triage check-mailbox -------------------------------------------------------


def test_check_mailbox_on_the_demo_config_says_maildir_and_checks_the_path(workspace: Workspace) -> None:
    from triage.setup import write_demo_config

    write_demo_config(workspace.dir)
    done = workspace.run("check-mailbox")
    assert done.returncode == 0, done.stderr
    assert "mailbox: a local Maildir at " in done.stdout and "no server to log in to" in done.stdout
    assert "INBOX: 48 message(s)" in done.stdout and "SMTP: not configured" in done.stdout
    assert workspace.db.exists() is False  # nothing polled, nothing recorded
    workspace.maildir_config(workspace.dir / "no-such-maildir")
    done = workspace.run("check-mailbox", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["problems"] == [f"mailbox.path: {workspace.dir / 'no-such-maildir'} does not exist"]
    assert done.stderr == f"error: mailbox.path: {workspace.dir / 'no-such-maildir'} does not exist\n"


def test_check_mailbox_with_passwords_lists_folders_and_the_sent_folder(dovecot: Dovecot, workspace: Workspace) -> None:
    dovecot.create_folder("Support")
    with SmtpServer(auth={USER: "smtp-pw"}) as smtp:
        workspace.imap_config(
            dovecot,
            extra=smtp_config(smtp, username=USER, password_env="SMTP_PW"),
        )
        done = workspace.run("check-mailbox", env={"SMTP_PW": "smtp-pw"})
        assert done.returncode == 0, done.stderr
        assert f"logged in as {USER} (password from password_env TRIAGE_TEST_PW)" in done.stdout
        assert "folders: " in done.stdout and "Support" in done.stdout
        assert "Sent folder: Sent (found by the \\Sent flag)" in done.stdout
        assert f"SMTP {smtp.host}:{smtp.port} (none): logged in as {USER} (password from password_env SMTP_PW); nothing sent" in done.stdout
        assert done.stdout.endswith("OK: triage can poll and send.\n") and smtp.messages == []

        report = workspace.run_json("check-mailbox", env={"SMTP_PW": "wrong"}, code=3)
        assert report["mailbox"]["sent_folder"] == "Sent" and {"INBOX", "Sent", "Support"} <= set(report["mailbox"]["folders"])
        assert report["failures"] == [f"SMTP login failed for {USER} at {smtp.host}:{smtp.port}: 535"]

    text = workspace.config.read_text().replace("[smtp]", '[smtp]\nsent_folder = "Outbox"')
    workspace.write_config(text.replace('batch_size = 50', 'batch_size = 50\nfolders = ["INBOX", "Complaints"]'))
    done = workspace.run("check-mailbox", env={"SMTP_PW": "smtp-pw"})
    assert done.returncode == 3  # SMTP is gone now: a server failure outranks configuration
    assert "error: mailbox.folders: no folder 'Complaints'" in done.stderr
    assert "error: smtp.sent_folder: no folder 'Outbox'" in done.stderr
    assert "error: cannot reach SMTP server" in done.stderr


def test_check_mailbox_with_tokens_and_with_a_refused_token(
    oauth_dovecot: Dovecot, oauth_smtp: SmtpServer, token_endpoint: TokenEndpoint,
    imap_token: TokenCmd, smtp_token: TokenCmd, workspace: Workspace,
) -> None:
    workspace.oauth_config(oauth_dovecot, oauth_smtp, imap_token, smtp_token)
    done = workspace.run("check-mailbox")
    assert done.returncode == 0, done.stderr
    assert f"logged in as {USER} (OAUTHBEARER, a fresh token from token_cmd)" in done.stdout
    assert done.stdout.count("OAUTHBEARER, a fresh token from token_cmd") == 2  # IMAP and SMTP
    assert (imap_token.calls, smtp_token.calls) == (1, 1) and oauth_smtp.messages == []
    token_endpoint.expire(TOKEN)
    done = workspace.run("check-mailbox", "--json")
    assert done.returncode == 3
    report = json.loads(done.stdout)
    assert report["smtp"]["login"] == "OAUTHBEARER" and "login" not in report["mailbox"]
    [failure] = report["failures"]
    assert failure.startswith(f"IMAP server refused the OAuth2 token for {USER} at ")
    assert done.stderr == f"error: {failure}\n"
    no_leak(done.stdout, done.stderr)
    assert not workspace.db.exists()  # check-mailbox is not a poll: no run recorded
