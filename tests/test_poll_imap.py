"""`triage poll` against a real Dovecot: once, unseen, incremental, UIDVALIDITY-safe, clear failures."""

from __future__ import annotations

import sqlite3

from conftest import USER, Workspace, email_bytes
from servers import Dovecot

from triage.store import Store


def stored(workspace: Workspace) -> list[tuple[str, str]]:
    with sqlite3.connect(workspace.db) as db:
        return db.execute("SELECT message_id, status FROM messages ORDER BY id").fetchall()


def poll_json(workspace: Workspace, *args: str) -> dict[str, int]:
    return workspace.run_json("poll", *args)


def test_messages_are_fetched_once_left_unseen_and_picked_up_incrementally(dovecot: Dovecot, workspace: Workspace) -> None:
    uids = [dovecot.append("INBOX", email_bytes(message_id=f"<m{i}@customer.test>")) for i in range(3)]
    workspace.imap_config(dovecot)

    first = poll_json(workspace)
    assert first["fetched"] == 3 and first["triaged"] == 3 and first["drafts"] == 3
    assert all("\\Seen" not in dovecot.flags("INBOX", uid) for uid in uids)

    assert poll_json(workspace)["fetched"] == 0

    dovecot.append("INBOX", email_bytes(message_id="<m3@customer.test>"))
    third = poll_json(workspace)
    assert third["fetched"] == 1
    assert [mid for mid, _ in stored(workspace)] == [f"<m{i}@customer.test>" for i in range(4)]
    assert len(dovecot.messages("INBOX")) == 4  # nothing moved or deleted


def test_uidvalidity_change_rescans_without_duplicates(dovecot: Dovecot, workspace: Workspace) -> None:
    dovecot.create_folder("Support")
    # Four separate problems (different orders), so each is its own case with its own draft.
    def problem(i: int) -> bytes:
        return email_bytes(subject=f"Order #{500 + i} arrived broken", message_id=f"<u{i}@customer.test>",
                           body=f"My blender from order #{500 + i} arrived broken. I want a refund.")

    raws = [problem(i) for i in range(3)]
    for raw in raws:
        dovecot.append("Support", raw)
    workspace.imap_config(dovecot, extra="")
    text = workspace.config.read_text().replace("batch_size = 50", 'batch_size = 50\nfolders = ["Support"]')
    workspace.write_config(text)
    assert poll_json(workspace)["fetched"] == 3
    before = dovecot.uidvalidity("Support")

    dovecot.delete_folder("Support")
    dovecot.create_folder("Support")
    for raw in raws + [problem(3)]:
        dovecot.append("Support", raw)
    assert dovecot.uidvalidity("Support") != before

    again = poll_json(workspace)
    assert again["fetched"] == 4 and again["duplicates"] == 3 and again["triaged"] == 1
    assert len(stored(workspace)) == 4
    with Store(workspace.db) as store:
        assert store.checkpoint(f"imap://{USER}@{dovecot.host}", "Support") == (dovecot.uidvalidity("Support"), 4)
        assert store.queue() and len(store.queue()) == 4


def test_malformed_message_is_quarantined_and_the_batch_goes_on(dovecot: Dovecot, workspace: Workspace) -> None:
    dovecot.append("INBOX", email_bytes(message_id="<good1@customer.test>"))
    dovecot.append("INBOX", b"\x00\x00\x00\n\n")
    dovecot.append("INBOX", email_bytes(message_id="<good2@customer.test>"))
    workspace.imap_config(dovecot)
    summary = poll_json(workspace)
    assert (summary["fetched"], summary["triaged"], summary["quarantined"]) == (3, 2, 1)
    with Store(workspace.db) as store:
        [q] = store.quarantined()
        assert q["error"].startswith("parse:")
        on_server = dovecot.messages("INBOX")[1][1]  # Dovecot keeps NUL as 0x80 and LF as CRLF
        assert store.message(q["id"]).raw == on_server


def test_automatic_mail_is_stored_but_never_drafted(dovecot: Dovecot, workspace: Workspace) -> None:
    dovecot.append("INBOX", email_bytes(headers={"Auto-Submitted": "auto-replied"}, body="I am out of office."))
    dovecot.append("INBOX", email_bytes(sender="MAILER-DAEMON@mx.test", body="Delivery failed"))
    workspace.imap_config(dovecot)
    summary = poll_json(workspace)
    assert (summary["ignored"], summary["drafts"]) == (2, 0)
    assert [status for _, status in stored(workspace)] == ["ignored", "ignored"]


def test_wrong_password_is_one_line_and_exit_3(dovecot: Dovecot, workspace: Workspace) -> None:
    workspace.imap_config(dovecot)
    done = workspace.run("poll", env={"TRIAGE_TEST_PW": "wrong"})
    assert done.returncode == 3
    assert done.stderr.startswith("error: IMAP login failed for support@example.com")
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr and "wrong" not in done.stderr


def test_unreachable_host_is_exit_3(workspace: Workspace) -> None:
    from servers import free_port

    workspace.write_config(
        f'[mailbox]\nsource = "imap"\nhost = "127.0.0.1"\nport = {free_port()}\nsecurity = "none"\n'
        'username = "u"\npassword_env = "TRIAGE_TEST_PW"\ntimeout = 5\n'
    )
    done = workspace.run("poll")
    assert done.returncode == 3
    assert "cannot reach IMAP server 127.0.0.1" in done.stderr and "connection refused" in done.stderr
    assert "Traceback" not in done.stderr


def test_nothing_stored_is_lost_when_a_later_poll_fails(dovecot: Dovecot, workspace: Workspace) -> None:
    dovecot.append("INBOX", email_bytes(message_id="<keep@customer.test>"))
    workspace.imap_config(dovecot)
    poll_json(workspace)
    assert workspace.run("poll", env={"TRIAGE_TEST_PW": "wrong"}).returncode == 3
    assert stored(workspace) == [("<keep@customer.test>", "triaged")]


def test_since_limits_a_first_run(dovecot: Dovecot, workspace: Workspace) -> None:
    from datetime import datetime, timezone

    dovecot.append("INBOX", email_bytes(message_id="<old@customer.test>"))
    workspace.imap_config(dovecot)
    future = datetime.now(timezone.utc).date().replace(year=datetime.now().year + 1)
    assert poll_json(workspace, "--since", future.isoformat())["fetched"] == 0


def test_self_signed_tls_is_refused_by_default_and_accepted_with_ca_file(workspace: Workspace) -> None:
    with Dovecot({USER: "secret"}, ssl=True) as server:
        server.append("INBOX", email_bytes(message_id="<tls@customer.test>"))
        for security, port in (("tls", server.tls_port), ("starttls", server.port)):
            base = (
                f'[mailbox]\nsource = "imap"\nhost = "localhost"\nport = {port}\nsecurity = "{security}"\n'
                f'username = "{USER}"\npassword_env = "TRIAGE_TEST_PW"\ntimeout = 10\n[store]\npath = "triage.db"\n'
            )
            workspace.write_config(base)
            refused = workspace.run("poll")
            assert refused.returncode == 3, refused.stderr
            assert "TLS certificate not trusted" in refused.stderr and "ca_file" in refused.stderr
            workspace.write_config(base.replace("timeout = 10", f'timeout = 10\nca_file = "{server.ca_file}"'))
            accepted = workspace.run("poll", "--json")
            assert accepted.returncode == 0, accepted.stderr
