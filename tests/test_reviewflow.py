"""An agent's day at the terminal: collisions refused, every case has a way forward, against real servers."""

from __future__ import annotations

from conftest import Workspace, email_bytes
from servers import Dovecot, SmtpServer
from test_send import COMPLAINT, draft_id, setup

from triage.store import Store


def test_approve_refuses_when_the_customer_wrote_again_after_the_draft(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace, extra="[poll]\nrate_limit = 1\n")
    did = draft_id(workspace)
    # the rate limit stores her second message on the case without a new draft
    dovecot.append("INBOX", email_bytes(
        subject="Re: Order #48213: blender arrived broken", body="Where is my blender? Cancel it.",
        sender="Ann Lee <ann@customer.test>", message_id="<complaint-2@customer.test>",
        headers={"In-Reply-To": "<complaint-1@customer.test>"}))
    assert workspace.run_json("poll")["drafts"] == 0
    with Store(workspace.db) as store:
        case_id = store.draft(did).case_id  # type: ignore[union-attr]
        assert len(store.case_messages(case_id)) == 2
    done = workspace.run("approve", str(did), "--agent", "dana")
    assert done.returncode == 1, done.stderr
    assert "wrote again on case" in done.stderr and "Where is my blender? Cancel it." in done.stderr
    assert f"triage redraft {did}" in done.stderr
    assert smtp_server.messages == []
    with Store(workspace.db) as store:
        assert store.draft(did).status == "pending"  # type: ignore[union-attr]
        assert store.case(case_id) is not None


def test_approve_without_smtp_refuses_and_leaves_the_draft_pending(
    dovecot: Dovecot, workspace: Workspace
) -> None:
    dovecot.append("INBOX", COMPLAINT)
    workspace.imap_config(dovecot)
    assert workspace.run("poll").returncode == 0
    did = draft_id(workspace)
    done = workspace.run("approve", str(did), "--agent", "dana")
    assert done.returncode == 1 and "no [smtp] host is configured" in done.stderr, done.stderr
    [row] = workspace.run_json("queue")
    assert row["status"] == "pending" and row["id"] == did




def test_redraft_after_reject_makes_a_fresh_draft_that_can_be_sent(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    assert workspace.run("reject", str(did), "--reason", "too stiff", "--agent", "dana").returncode == 0
    assert workspace.run("approve", str(did), "--agent", "dana").returncode == 1  # a rejected draft stays so
    unknown = workspace.run("redraft", str(did), "--template", "nonesuch")
    assert unknown.returncode == 1 and "no template 'nonesuch'" in unknown.stderr and "meek" in unknown.stderr
    done = workspace.run("redraft", str(did), "--template", "meek", "--agent", "dana")
    assert done.returncode == 0, done.stderr
    [row] = workspace.run_json("queue")
    assert row["id"] != did and row["template"] == "meek" and row["status"] == "pending"
    assert f"triage show {row['id']}" in done.stdout
    again = workspace.run("redraft", str(row["id"]), "--scratch")  # supersedes the pending one
    assert again.returncode == 0, again.stderr
    [scratch] = workspace.run_json("queue")
    assert scratch["template"] == "(from scratch)"
    shown = workspace.run_json("show", str(scratch["id"]))
    assert shown["body"].startswith("Hi Ann,\n\n") and "Best wishes," in shown["body"]
    sent = workspace.run("approve", str(scratch["id"]), "--agent", "dana")
    assert sent.returncode == 0, sent.stderr
    [mail] = smtp_server.messages
    assert mail.message["In-Reply-To"] == "<complaint-1@customer.test>"


def test_assign_names_a_known_agent_as_the_owner(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    with Store(workspace.db) as store:
        case_id = store.draft(did).case_id  # type: ignore[union-attr]
    workspace.add_agents()  # dana and sam, password conftest.AGENT_PASSWORD
    unknown = workspace.run("assign", str(case_id), "nobody")
    assert unknown.returncode == 2 and "no agent named 'nobody'" in unknown.stderr
    done = workspace.run("assign", str(case_id), "dana", "--agent", "sam")
    assert done.returncode == 0 and f"Case {case_id} assigned to dana." in done.stdout, done.stderr
    with Store(workspace.db) as store:
        assert store.owners([case_id]) == {case_id: "dana"}
