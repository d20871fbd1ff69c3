"""Two messages are the same only when Message-ID and content agree (issue 12, item 2).

Against a real Dovecot and aiosmtpd through the CLI: a different message
reusing a Message-ID is stored as its own message; the same message seen
again is a duplicate that stays where it was first seen unless the folder's
UIDVALIDITY changed; ``\\Answered`` goes on the UID the draft answers.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from conftest import Workspace, email_bytes, smtp_config
from servers import Dovecot, SmtpServer

ANN = email_bytes(
    subject="Order #48213: blender arrived broken",
    body="My blender (order #48213) arrived broken. I want it fixed.",
    sender="Ann Lee <ann@customer.test>",
    message_id="<same@customer.test>",
)
MALLORY = email_bytes(
    subject="Refund please",
    body="My kettle arrived broken, I want a refund now.",
    sender="Mallory <mallory@evil.test>",
    message_id="<same@customer.test>",
)


def configure(dovecot: Dovecot, smtp: SmtpServer, workspace: Workspace) -> None:
    workspace.imap_config(
        dovecot, extra=smtp_config(smtp)
    )


def poll(workspace: Workspace) -> tuple[dict[str, Any], str]:
    done = workspace.run("poll", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def rows(workspace: Workspace) -> list[tuple[str, str, int]]:
    with sqlite3.connect(workspace.db) as db:
        return db.execute("SELECT message_id, sender, uid FROM messages ORDER BY id").fetchall()


def approve_for(workspace: Workspace, sender: str) -> None:
    queue = workspace.run_json("queue")
    draft = next(r["id"] for r in queue if r["customer"] == sender)
    done = workspace.run("approve", str(draft), "--agent", "dana")
    assert done.returncode == 0, done.stderr


def test_a_different_message_reusing_a_message_id_is_stored_and_not_flagged_for_the_other(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    ann_uid = dovecot.append("INBOX", ANN)
    configure(dovecot, smtp_server, workspace)
    poll(workspace)
    mallory_uid = dovecot.append("INBOX", MALLORY)
    summary, stderr = poll(workspace)
    assert (summary["triaged"], summary["duplicates"], summary["drafts"]) == (1, 0, 1)
    assert "<same@customer.test>" in stderr and "reused" in stderr  # logged
    assert rows(workspace) == [
        ("<same@customer.test>", "ann@customer.test", ann_uid),
        ("<same@customer.test>", "mallory@evil.test", mallory_uid),
    ]
    approve_for(workspace, "ann@customer.test")
    assert "\\Answered" in dovecot.flags("INBOX", ann_uid)
    assert "\\Answered" not in dovecot.flags("INBOX", mallory_uid)
    # each is in its own case, and the reply to each goes to its own sender
    approve_for(workspace, "mallory@evil.test")
    assert [m.rcpt_tos for m in smtp_server.messages] == [("ann@customer.test",), ("mallory@evil.test",)]
    assert "\\Answered" in dovecot.flags("INBOX", mallory_uid)
    assert poll(workspace)[0]["fetched"] == 0


def test_a_clash_within_one_batch_is_stored_too(dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace) -> None:
    dovecot.append("INBOX", ANN)
    dovecot.append("INBOX", MALLORY)
    dovecot.append("INBOX", ANN)  # the very same message twice: a duplicate
    configure(dovecot, smtp_server, workspace)
    summary, _ = poll(workspace)
    assert (summary["fetched"], summary["triaged"], summary["duplicates"]) == (3, 2, 1)
    assert [sender for _, sender, _ in rows(workspace)] == ["ann@customer.test", "mallory@evil.test"]


def test_the_same_message_again_in_the_same_folder_stays_where_it_was_first_seen(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    first = dovecot.append("INBOX", ANN)
    configure(dovecot, smtp_server, workspace)
    poll(workspace)
    again = dovecot.append("INBOX", ANN)  # delivered twice (a Cc and a To copy)
    summary, _ = poll(workspace)
    assert summary["duplicates"] == 1 and len(rows(workspace)) == 1
    assert rows(workspace)[0][2] == first  # not relocated: UIDVALIDITY did not change
    approve_for(workspace, "ann@customer.test")
    assert "\\Answered" in dovecot.flags("INBOX", first)
    assert "\\Answered" not in dovecot.flags("INBOX", again)


def test_the_same_mail_re_encoded_by_a_server_is_a_duplicate(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    from email import message_from_bytes, policy

    dovecot.append("INBOX", ANN)
    configure(dovecot, smtp_server, workspace)
    poll(workspace)
    copy = message_from_bytes(ANN, policy=policy.default)
    copy["Received"] = "from relay.test by mx.example.com; Fri, 20 Nov 2026 09:00:05 +0000"
    body = copy.get_content()
    del copy["Content-Transfer-Encoding"]
    copy.set_content(body, cte="quoted-printable")
    assert copy.as_bytes() != ANN
    dovecot.append("INBOX", copy.as_bytes())
    summary, _ = poll(workspace)
    assert (summary["duplicates"], summary["triaged"]) == (1, 0)
    assert len(rows(workspace)) == 1


def test_after_a_uidvalidity_change_the_stored_copy_moves_and_answered_follows(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    configure(dovecot, smtp_server, workspace)
    workspace.write_config(workspace.config.read_text().replace("batch_size = 50", 'batch_size = 50\nfolders = ["Support"]'))
    dovecot.create_folder("Support")
    dovecot.append("Support", MALLORY)
    dovecot.append("Support", ANN)
    poll(workspace)
    dovecot.delete_folder("Support")
    dovecot.create_folder("Support")
    dovecot.append("Support", email_bytes(message_id="<new@customer.test>", sender="zed@customer.test"))
    new_ann = dovecot.append("Support", ANN)
    new_mallory = dovecot.append("Support", MALLORY)
    summary, _ = poll(workspace)
    assert (summary["fetched"], summary["duplicates"], summary["triaged"]) == (3, 2, 1)
    by_sender = {sender: uid for _, sender, uid in rows(workspace)}
    assert (by_sender["ann@customer.test"], by_sender["mallory@evil.test"]) == (new_ann, new_mallory)
    approve_for(workspace, "ann@customer.test")
    assert "\\Answered" in dovecot.flags("Support", new_ann)
    assert "\\Answered" not in dovecot.flags("Support", new_mallory)
