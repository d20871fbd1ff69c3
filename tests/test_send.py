"""Approve and send against real servers: one SMTP delivery, threaded, filed in Sent, original \\Answered."""

from __future__ import annotations

import email
import email.policy
import sqlite3

from conftest import Workspace, email_bytes, smtp_config
from servers import Dovecot, SmtpServer

COMPLAINT = email_bytes(
    subject="Order #48213: blender arrived broken",
    body="My blender (order #48213) arrived broken. This is the second time. I want it fixed.",
    sender="Ann Lee <ann@customer.test>",
    message_id="<complaint-1@customer.test>",
)


def setup(dovecot: Dovecot, smtp: SmtpServer, workspace: Workspace, extra: str = "") -> int:
    uid = dovecot.append("INBOX", COMPLAINT)
    workspace.imap_config(
        dovecot,
        extra=smtp_config(smtp) + extra,
    )
    assert workspace.run_json("poll")["drafts"] == 1
    return uid


def draft_id(workspace: Workspace) -> int:
    return int(workspace.run_json("queue")[0]["id"])


def test_approve_sends_once_threaded_and_files_it(dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace) -> None:
    uid = setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    done = workspace.run("approve", str(did), "--agent", "dana")
    assert done.returncode == 0, done.stderr

    [mail] = smtp_server.messages
    msg = mail.message
    assert mail.rcpt_tos == ("ann@customer.test",)
    assert msg["In-Reply-To"] == "<complaint-1@customer.test>"
    assert "<complaint-1@customer.test>" in msg["References"]
    assert msg["Subject"] == "Re: Order #48213: blender arrived broken"
    assert "support@example.com" in msg["From"]

    sent = dovecot.messages("Sent")
    assert len(sent) == 1 and msg["Message-ID"].encode() in sent[0][1]
    assert "\\Answered" in dovecot.flags("INBOX", uid)
    with dovecot.client() as c:
        c.select_folder("INBOX")
        # Sent and INBOX are separate folders; thread the original with a copy of the reply in INBOX
        c.append("INBOX", sent[0][1])
        c.select_folder("INBOX")
        threads = c.thread(algorithm="REFERENCES")
    assert any(len(_flatten(t)) == 2 for t in threads), threads

    assert workspace.run_json("queue") == []
    again = workspace.run("approve", str(did))
    assert again.returncode == 1 and "is sent" in again.stderr
    assert len(smtp_server.messages) == 1
    with sqlite3.connect(workspace.db) as db:
        kinds = [r[0] for r in db.execute("SELECT kind FROM events WHERE draft_id = ? ORDER BY id", (did,))]
        actors = {r[0] for r in db.execute("SELECT actor FROM events WHERE kind = 'draft-approved'")}
        deadline_done = db.execute("SELECT done_at FROM deadlines WHERE kind = 'first-response'").fetchone()[0]
    assert kinds == ["draft-created", "draft-approved", "smtp-data", "smtp-accepted", "sent"]
    assert actors == {"dana"} and deadline_done


def _flatten(thread: object) -> list[int]:
    if isinstance(thread, int):
        return [thread]
    return [x for part in thread for x in _flatten(part)]  # type: ignore[union-attr]


def test_crash_after_acceptance_is_recovered_from_sent_without_resending(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    assert workspace.run("approve", str(did)).returncode == 0
    assert len(smtp_server.messages) == 1
    # As if the process died after SMTP acceptance and the Sent append, before recording it:
    with sqlite3.connect(workspace.db) as db:
        db.execute("UPDATE drafts SET status = 'sending', sent_at = NULL WHERE id = ?", (did,))
    assert workspace.run_json("send-pending")["recovered"] == [did]
    assert len(smtp_server.messages) == 1 and len(dovecot.messages("Sent")) == 1


def test_smtp_refusal_leaves_it_approved_with_the_error_then_send_pending_delivers(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    smtp_server.refuse_all = "451 4.3.0 try later"
    failed = workspace.run("approve", str(did))
    assert failed.returncode == 3 and "451" in failed.stderr
    [row] = workspace.run_json("queue")
    assert row["status"] == "approved" and "451" in row["error"]
    smtp_server.refuse_all = None
    assert workspace.run_json("send-pending")["sent"] == [did]
    assert len(smtp_server.messages) == 1
    assert workspace.run("send-pending", "--json").stdout.count("[]") == 2  # nothing left to send


def test_draft_with_tone_findings_needs_an_override(dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    with sqlite3.connect(workspace.db) as db:
        db.execute("UPDATE drafts SET body = 'Hi Ann, calm down. As per my last email, it is fixed.' WHERE id = ?", (did,))
    refused = workspace.run("approve", str(did))
    assert refused.returncode == 1 and "tone finding" in refused.stderr
    assert smtp_server.messages == []
    ok = workspace.run("approve", str(did), "--override-tone", "customer asked for this wording")
    assert ok.returncode == 0, ok.stderr
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT override_reason FROM drafts WHERE id = ?", (did,)).fetchone()[0] == "customer asked for this wording"


def test_an_unanswered_question_marker_blocks_approval_even_with_an_override(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    with sqlite3.connect(workspace.db) as db:
        db.execute("UPDATE drafts SET body = ? WHERE id = ?",
                   ("Hi Ann,\n\n[[answer: Do you ship to Canada?]]\n\nBest wishes,\nMaya\n", did))
    refused = workspace.run("approve", str(did), "--override-tone", "looks fine")
    assert refused.returncode == 1 and "Do you ship to Canada?" in refused.stderr, refused.stderr
    assert smtp_server.messages == []
    with sqlite3.connect(workspace.db) as db:
        db.execute("UPDATE drafts SET body = ? WHERE id = ?",
                   ("Hi Ann,\n\nYes, we ship to Canada.\n\nBest wishes,\nMaya\n", did))
    ok = workspace.run("approve", str(did))
    assert ok.returncode == 0, ok.stderr
    assert len(smtp_server.messages) == 1 and b"[[" not in smtp_server.messages[0].raw


def test_reject_needs_a_reason_and_is_audited(dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    assert workspace.run("reject", str(did), "--reason", "answered by phone", "--agent", "sam").returncode == 0
    # no draft waits, but the case still needs its reply until someone redrafts or resolves it
    [row] = workspace.run_json("queue")
    assert (row["id"], row["status"], row["last_draft"]) == (None, "needs-reply", did)
    with sqlite3.connect(workspace.db) as db:
        detail = db.execute("SELECT actor, detail FROM events WHERE kind = 'draft-rejected'").fetchone()
    assert detail[0] == "sam" and "answered by phone" in detail[1]


def test_imap_down_at_approval_leaves_the_draft_approved_not_stuck_sending(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    dovecot.stop(keep_dir=True)
    failed = workspace.run("approve", str(did))
    assert failed.returncode == 3 and "cannot reach IMAP server" in failed.stderr
    [row] = workspace.run_json("queue")
    assert row["status"] == "approved" and smtp_server.messages == []
    dovecot.start()
    assert workspace.run_json("send-pending")["sent"] == [did]
    assert len(smtp_server.messages) == 1


def test_an_unconfirmed_checklist_item_blocks_approval_until_an_agent_confirms_it(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    body = ("Hi Ann,\n\n[[confirm: I've cancelled subscription KC-SUB-2291 from 30 November.]]\n\n"
            "[[confirm: I've refunded the last charge of 12.00.]]\n\nBest wishes,\nMaya\n")
    with sqlite3.connect(workspace.db) as db:
        db.execute("UPDATE drafts SET body = ? WHERE id = ?", (body, did))
    refused = workspace.run("approve", str(did), "--override-tone", "looks fine")
    assert refused.returncode == 1 and "KC-SUB-2291" in refused.stderr, refused.stderr
    ambiguous = workspace.run("confirm", str(did), "--agent", "dana")
    assert ambiguous.returncode == 1 and "Name one" in ambiguous.stderr, ambiguous.stderr
    assert workspace.run("confirm", str(did), "1", "--agent", "dana").returncode == 0
    still = workspace.run("approve", str(did))
    assert still.returncode == 1 and "refunded the last charge" in still.stderr and "KC-SUB" not in still.stderr
    assert smtp_server.messages == []
    assert workspace.run("confirm", str(did), "9").returncode == 1
    workspace.add_agents("lee")  # a second agent confirms the other item
    assert workspace.run("confirm", str(did), "--agent", "lee").returncode == 0
    ok = workspace.run("approve", str(did))
    assert ok.returncode == 0, ok.stderr
    raw = smtp_server.messages[0].raw
    sent = email.message_from_bytes(raw, policy=email.policy.default)
    text = sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert len(smtp_server.messages) == 1 and b"[[" not in raw and "[[" not in text
    assert "cancelled subscription KC-SUB-2291 from 30 November." in text
    with sqlite3.connect(workspace.db) as db:
        confirmed = db.execute("SELECT actor, detail FROM events WHERE kind = 'checklist-confirmed' ORDER BY id").fetchall()
    assert [actor for actor, _ in confirmed] == ["dana", "lee"]
    assert "KC-SUB-2291" in confirmed[0][1] and "12.00" in confirmed[1][1]


def test_show_highlights_open_items_and_lists_them_in_json_and_confirm_refuses_a_question(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    body = ("Hi Ann,\n\n[[answer: Do you ship to Canada?]]\n\n"
            "[[confirm: I've sent a prepaid return label.]]\n\nBest wishes,\nMaya\n")
    with sqlite3.connect(workspace.db) as db:
        db.execute("UPDATE drafts SET body = ? WHERE id = ?", (body, did))
    shown = workspace.run_json("show", str(did))
    assert shown["checklist"] == [
        {"number": 1, "kind": "answer", "text": "Do you ship to Canada?", "start": 9, "end": 43},
        {"number": 2, "kind": "confirm", "text": "I've sent a prepaid return label.", "start": 45, "end": 91},
    ]
    assert all(body[i["start"]:i["end"]].startswith("[[" + i["kind"]) for i in shown["checklist"])
    assert "body" in shown and "lint" in shown and "asks" in shown  # keys are only ever added
    text = workspace.run("show", str(did)).stdout
    assert "Checklist: 2 open" in text and f"triage confirm {did} 2" in text
    assert "1. answer 'Do you ship to Canada?'" in text and "[[confirm: I've sent a prepaid" in text
    from triage.cli.mail import _highlight_items
    from triage.drafting import checklist

    on_a_terminal = _highlight_items(body, checklist.items(body))
    assert "\x1b[1m\x1b[7m[[confirm: I've sent a prepaid return label.]]\x1b[0m" in on_a_terminal
    assert "\x1b[1m\x1b[7m[[answer: Do you ship to Canada?]]\x1b[0m" in on_a_terminal
    question = workspace.run("confirm", str(did), "1")
    assert question.returncode == 1 and "is a question" in question.stderr, question.stderr
    refused = workspace.run("approve", str(did))
    assert refused.returncode == 1, refused.stderr
    assert "1 checklist item(s) not confirmed and 1 question(s) with no answer yet" in refused.stderr
    assert workspace.run("confirm", str(did)).returncode == 0  # the only item to confirm
    after = workspace.run_json("show", str(did))["checklist"]
    assert [i["kind"] for i in after] == ["answer"]
    assert smtp_server.messages == []
