"""The poll pipeline on local sources (Maildir, mbox)."""

from __future__ import annotations

import mailbox
import sqlite3
from pathlib import Path

from conftest import Workspace, email_bytes

from triage import config, pipeline
from triage.mailbox import open_source
from triage.store import Store


def run_poll(workspace: Workspace) -> pipeline.Summary:
    settings = config.load(workspace.config)
    with Store(settings.store_path) as store:
        source = open_source(settings.mailbox)
        try:
            return pipeline.poll(settings, store, source)
        finally:
            source.close()


def test_maildir_poll_is_idempotent_and_leaves_the_maildir_alone(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    path = maildir([email_bytes(message_id=f"<md{i}@customer.test>") for i in range(3)])
    before = sorted(p.name for p in path.rglob("*") if p.is_file())
    workspace.maildir_config(path)
    first = run_poll(workspace)
    assert (first.fetched, first.triaged, first.drafts) == (3, 3, 3)
    assert run_poll(workspace).fetched == 0
    assert sorted(p.name for p in path.rglob("*") if p.is_file()) == before


def test_mbox_source(workspace: Workspace, tmp_path: Path) -> None:
    box = mailbox.mbox(str(tmp_path / "inbox.mbox"))
    for i in range(2):
        box.add(email_bytes(message_id=f"<mb{i}@customer.test>"))
    box.close()
    workspace.write_config(
        f'[mailbox]\nsource = "mbox"\npath = "{tmp_path / "inbox.mbox"}"\n[store]\npath = "triage.db"\n'
    )
    assert run_poll(workspace).fetched == 2
    assert run_poll(workspace).fetched == 0


def test_reply_joins_its_case_and_supersedes_the_pending_draft(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    path = maildir([email_bytes(message_id="<first@customer.test>")])
    workspace.maildir_config(path)
    run_poll(workspace)
    maildir(
        [
            email_bytes(
                subject="Re: Order #123 arrived broken",
                body="Any news? Still broken.",
                message_id="<second@customer.test>",
                headers={"In-Reply-To": "<first@customer.test>", "References": "<first@customer.test>"},
            )
        ],
        path,
    )
    summary = run_poll(workspace)
    assert summary.triaged == 1
    with Store(workspace.db) as store:
        rows = store.db.execute("SELECT case_id FROM messages ORDER BY id").fetchall()
        assert rows[0][0] == rows[1][0]
        statuses = [r[0] for r in store.db.execute("SELECT status FROM drafts ORDER BY id")]
        assert statuses == ["superseded", "pending"]


def test_reply_to_our_own_message_id_threads_even_without_references(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    path = maildir([email_bytes(message_id="<first@customer.test>")])
    workspace.maildir_config(path)
    run_poll(workspace)
    with Store(workspace.db) as store:
        ours = store.db.execute("SELECT outgoing_message_id, case_id FROM drafts").fetchone()
    maildir([email_bytes(body="Still broken", message_id="<r@customer.test>", headers={"In-Reply-To": ours[0]})], path)
    run_poll(workspace)
    with Store(workspace.db) as store:
        assert store.db.execute("SELECT case_id FROM messages WHERE message_id = '<r@customer.test>'").fetchone()[0] == ours[1]


def test_automatic_mail_on_a_thread_never_reopens_nor_drafts(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    path = maildir([email_bytes(message_id="<first@customer.test>")])
    workspace.maildir_config(path)
    run_poll(workspace)
    with Store(workspace.db) as store, store.write():
        store.update_case(1, status="resolved")
    maildir(
        [
            email_bytes(
                body="I am out of the office.",
                message_id="<ooo@customer.test>",
                headers={"In-Reply-To": "<first@customer.test>", "Auto-Submitted": "auto-replied"},
            )
        ],
        path,
    )
    summary = run_poll(workspace)
    assert (summary.ignored, summary.drafts) == (1, 0)
    with Store(workspace.db) as store:
        assert store.case(1).status == "resolved"


def test_a_flooding_sender_is_recorded_but_gets_no_new_drafts(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    path = maildir([email_bytes(subject=f"complaint {i}", message_id=f"<f{i}@customer.test>") for i in range(5)])
    workspace.maildir_config(path, extra="[poll]\nrate_limit = 3\nrate_window_minutes = 60\n")
    summary = run_poll(workspace)
    assert (summary.triaged, summary.rate_limited, summary.drafts) == (5, 2, 3)


def test_retry_replaces_a_quarantined_row_once_it_can_be_triaged(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    path = maildir([b"\x00garbage without headers\n", email_bytes(message_id="<ok@customer.test>")])
    workspace.maildir_config(path)
    assert run_poll(workspace).quarantined == 1
    with Store(workspace.db) as store:
        [bad] = store.quarantined()
        # As if a message had failed under older rules: its raw bytes are a good email now.
        store.db.execute("UPDATE messages SET raw = ? WHERE id = ?", (email_bytes(message_id="<late@customer.test>"), bad["id"]))
    listed = workspace.run("queue", "--quarantined", "--json")
    assert [r["id"] for r in __import__("json").loads(listed.stdout)] == [bad["id"]]
    done = workspace.run("retry", "--all", "--json")
    assert done.returncode == 0, done.stderr
    summary = __import__("json").loads(done.stdout)
    assert (summary["triaged"], summary["quarantined"], summary["drafts"]) == (1, 0, 1)
    with Store(workspace.db) as store:
        assert store.quarantined() == []
        assert store.message_by_mid(store.db.execute("SELECT mailbox FROM messages LIMIT 1").fetchone()[0], "<late@customer.test>")
    assert run_poll(workspace).fetched == 0  # the Maildir key is still known: no refetch


def test_retry_that_fails_again_counts_retries(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    workspace.maildir_config(maildir([b"\x00garbage without headers\n"]))
    run_poll(workspace)
    for expected in (1, 2):
        assert workspace.run("retry", "--all").returncode == 0
        with Store(workspace.db) as store:
            [row] = store.quarantined()
            assert row["retries"] == expected and row["error"].startswith("parse:")


def test_thanks_all_sorted_closes_the_case_and_withdraws_its_pending_draft(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    path = maildir([email_bytes(message_id="<first@customer.test>")])
    workspace.maildir_config(path)
    run_poll(workspace)
    thanks = email_bytes(
        subject="Re: Order #123 arrived broken",
        body="Thanks, all sorted now! The replacement came this morning and works perfectly.",
        message_id="<thanks@customer.test>",
        headers={"In-Reply-To": "<first@customer.test>"},
    )
    maildir([thanks], path)
    summary = run_poll(workspace)
    assert (summary.triaged, summary.drafts) == (1, 0)
    with Store(workspace.db) as store:
        assert store.queue() == []
        assert store.case(1).status == "closed"


def test_a_customer_who_writes_again_after_our_reply_gets_a_new_response_deadline(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    from triage.store import iso, utcnow

    path = maildir([email_bytes(message_id="<first@customer.test>")])
    workspace.maildir_config(path)
    run_poll(workspace)
    with Store(workspace.db) as store, store.write():  # as if our reply had been sent
        store.complete_deadlines(1, "first-response", utcnow())
        store.update_case(1, first_response_at=iso(utcnow()))
    again = email_bytes(
        subject="Re: Order #123 arrived broken",
        body="Your reply did not help, the blender is still broken.",
        message_id="<again@customer.test>",
        headers={"In-Reply-To": "<first@customer.test>"},
    )
    maildir([again], path)
    run_poll(workspace)
    with Store(workspace.db) as store:
        assert store.open_deadline(1, "first-response") is not None


def test_ctrl_c_mid_poll_is_one_line_and_the_next_poll_resumes(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys
    import time

    path = maildir([email_bytes(message_id=f"<int{i}@customer.test>") for i in range(600)])
    workspace.maildir_config(path)
    workspace.write_config(workspace.config.read_text().replace("[mailbox]", "[mailbox]\nbatch_size = 50", 1))
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage", "--config", str(workspace.config), "poll"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=workspace.dir,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:  # interrupt once some batches are stored
        if workspace.db.exists() and sqlite3.connect(workspace.db).execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages'"
        ).fetchone()[0] and sqlite3.connect(workspace.db).execute("SELECT COUNT(*) FROM messages").fetchone()[0]:
            os.kill(proc.pid, signal.SIGINT)
            break
        time.sleep(0.02)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 130:
        assert err.strip().splitlines()[-1].startswith("interrupted:") and "Traceback" not in err
    else:
        assert proc.returncode == 0, err  # it finished before the interrupt landed
    with Store(workspace.db) as store:
        stored_before = store.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    summary = run_poll(workspace)
    assert summary.fetched == 600 - stored_before  # resumes where the interrupted run committed
    with Store(workspace.db) as store:
        assert tuple(store.conn.execute("SELECT COUNT(DISTINCT message_id), COUNT(*) FROM messages").fetchone()) == (600, 600)


def test_a_chronic_complainer_is_recognised_within_one_batch(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone

    bodies = [
        "The grinder I bought arrived broken.",
        "Now the kettle is leaking all over the counter.",
        "And the toaster stopped working after two days.",
    ]
    raws = [
        email_bytes(subject=f"problem {i}", body=body, message_id=f"<chronic{i}@customer.test>",
                    date=datetime(2026, 11, 2 + 3 * i, 9, 0, tzinfo=timezone.utc))
        for i, body in enumerate(bodies)
    ]
    workspace.maildir_config(maildir(raws))  # one poll, one batch: no earlier batch holds the history
    run_poll(workspace)
    with Store(workspace.db) as store:
        last = store.message_by_mid(store.conn.execute("SELECT mailbox FROM messages").fetchone()[0], "<chronic2@customer.test>")
        detection = store.detection_for(last.id)
    assert detection is not None and "chronic" in [a["name"] for a in detection["archetypes"]]
