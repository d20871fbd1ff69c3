"""A case with no draft waiting still needs its reply: "needs reply" in the queue, its deadline
open, and every command a reminder prints runs; the queue filtered to mine or unassigned."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from conftest import Workspace, email_bytes
from servers import SmtpServer
from test_followups import FURIOUS, poll_at
from test_remind import remind, setup

CALM = "Hello, my kettle (order #5512) arrived with a dent. Could you send a replacement? Thanks."


def _queue(workspace: Workspace, *args: str) -> list[dict[str, Any]]:
    return workspace.run_json("queue", *args)  # type: ignore[no-any-return]


def test_a_rejected_draft_leaves_the_case_in_the_queue_as_needs_reply_and_the_reminder_runs(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes(body=FURIOUS)])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    [row] = _queue(workspace)
    did, case = row["id"], row["case"]
    assert workspace.run("reject", str(did), "--reason", "too stiff").returncode == 0

    [needs] = _queue(workspace)
    assert needs["id"] is None and needs["case"] == case and needs["status"] == "needs-reply"
    assert needs["last_draft"] == did and needs["due"] == row["due"] and needs["error"].startswith("needs reply")
    text = workspace.run("queue").stdout
    assert "Needs reply (1)" in text and f"needs reply (draft {did} rejected)" in text
    assert "The queue is empty." not in text
    with sqlite3.connect(workspace.db) as db:  # the first reply is still owed
        assert db.execute("SELECT done_at FROM deadlines WHERE kind = 'first-response'").fetchone() == (None,)

    reminded = remind(workspace, "2026-11-20T10:01")
    [item] = reminded["reminded"]
    assert item["case"] == case and item["needs_reply"] is True and item["command"] == f"triage redraft {did}"
    body = smtp_server.messages[-1].message.get_content()
    printed = [line.strip() for line in body.splitlines() if line.startswith("    triage ")]  # each item's command
    assert printed == [f"triage redraft {did}"]
    for command in printed:  # every command the reminder prints runs as it stands
        done = workspace.run(*command.split()[1:])
        assert done.returncode == 0, (command, done.stderr)
    [fresh] = _queue(workspace)
    assert fresh["id"] not in (None, did) and fresh["status"] == "pending" and fresh["case"] == case

    later = remind(workspace, "2026-11-20T14:01")  # the next reminder points at the new draft
    assert [i["command"] for i in later["reminded"]] == [f"triage show {fresh['id']}"]
    assert workspace.run("show", str(fresh["id"])).returncode == 0


def test_a_case_answered_or_resolved_after_a_reject_does_not_need_a_reply(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes(body=FURIOUS)])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    [row] = _queue(workspace)
    assert workspace.run("reject", str(row["id"]), "--reason", "phoned her").returncode == 0
    assert [r["status"] for r in _queue(workspace)] == ["needs-reply"]
    done = workspace.run("resolve", str(row["case"]), "--root-cause", "answered by phone")
    assert done.returncode == 0, done.stderr
    assert _queue(workspace) == []


def test_queue_mine_and_unassigned(workspace: Workspace, maildir: Any, smtp_server: SmtpServer) -> None:
    setup(workspace, maildir, smtp_server, [
        email_bytes(body=FURIOUS, sender="Ann Lee <ann@customer.test>", subject="Refund now"),
        email_bytes(body=CALM, sender="Bo Chan <bo@customer.test>", subject="Dented kettle"),
        email_bytes(body=FURIOUS, sender="Cy Dee <cy@customer.test>", subject="Useless"),
    ])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    rows = {r["customer"]: r for r in _queue(workspace)}
    ann, bo, cy = rows["ann@customer.test"], rows["bo@customer.test"], rows["cy@customer.test"]
    assert workspace.run("assign", str(ann["case"]), "dana").returncode == 0
    assert workspace.run("assign", str(bo["case"]), "sam").returncode == 0
    assert workspace.run("reject", str(cy["id"]), "--reason", "needs a call").returncode == 0

    assert [r["customer"] for r in _queue(workspace, "--mine")] == ["ann@customer.test"]  # as dana
    assert [r["customer"] for r in _queue(workspace, "--mine", "--agent", "sam")] == ["bo@customer.test"]
    unassigned = _queue(workspace, "--unassigned")
    assert [(r["customer"], r["status"]) for r in unassigned] == [("cy@customer.test", "needs-reply")]
    assert workspace.run("assign", str(cy["case"]), "dana").returncode == 0
    mine = _queue(workspace, "--mine")
    assert [(r["customer"], r["status"], r["owner"]) for r in mine] == [
        ("ann@customer.test", "pending", "dana"), ("cy@customer.test", "needs-reply", "dana")]
    assert _queue(workspace, "--unassigned") == []
    text = workspace.run("queue", "--mine").stdout
    assert "ann@customer.test" in text and "bo@customer.test" not in text and "Needs reply (1)" in text
    stranger = workspace.run("queue", "--mine", "--agent", "nobody")
    assert stranger.returncode == 1 and "no agent named 'nobody'" in stranger.stderr
    both = workspace.run("queue", "--mine", "--unassigned")
    assert both.returncode == 2 and "exclude each other" in both.stderr
