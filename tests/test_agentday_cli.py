"""The CLI shows the truth: send errors and held drafts in the queue, only earlier cases as
"Earlier cases", remind's output labelled by section, times in the policy's time zone."""

from __future__ import annotations

import re
import shutil
import sqlite3
from datetime import datetime, timezone
from typing import Any

from conftest import ROOT, Workspace, email_bytes
from servers import SmtpServer
from test_followup import FURIOUS, poll_at
from test_remind import setup

from triage.review import HELD

UTC = timezone.utc


def test_queue_shows_send_errors_and_held_drafts(workspace: Workspace, maildir: Any) -> None:
    workspace.maildir_config(maildir([
        email_bytes(subject="Order #1 broken", sender="a@customer.test"),
        email_bytes(subject="Order #2 broken", sender="b@customer.test"),
        email_bytes(subject="Order #3 broken", sender="c@customer.test"),
    ]))
    assert workspace.run("poll").returncode == 0
    with sqlite3.connect(workspace.db) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM drafts ORDER BY id")]
        db.execute("UPDATE drafts SET status = 'approved', error = ? WHERE id = ?",
                   ("SMTP 550 mailbox unavailable", ids[0]))
        db.execute("UPDATE drafts SET status = 'approved', error = ? WHERE id = ?", (HELD, ids[1]))
    out = workspace.run("queue").stdout
    assert "approved, send failed: SMTP 550 mailbox unavailable" in out
    assert "held: the sender was interrupted" in out
    assert "2 not sent" in out
    assert out.count("\n           ! ") == 2  # the third draft simply waits


def test_earlier_cases_lists_only_cases_opened_before(workspace: Workspace, maildir: Any) -> None:
    first = email_bytes(subject="Kettle leaks", body="My kettle leaks, this is unacceptable.",
                        date=datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
    second = email_bytes(subject="Toaster burns everything", body="The toaster is broken, I am furious.",
                         date=datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
    workspace.maildir_config(maildir([first]))
    poll_at(workspace, datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
    workspace.maildir_config(maildir([first, second]))
    poll_at(workspace, datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
    with sqlite3.connect(workspace.db) as db:
        drafts = dict(db.execute("SELECT c.subject, d.id FROM drafts d JOIN cases c ON c.id = d.case_id"))
    assert len(drafts) == 2
    older = workspace.run("show", str(drafts["Kettle leaks"])).stdout
    assert "Earlier cases" not in older and "Toaster" not in older.split("To: ")[0]
    newer = workspace.run("show", str(drafts["Toaster burns everything"])).stdout
    assert "Earlier cases:" in newer and "Kettle leaks" in newer


def test_show_gives_times_in_the_policy_time_zone(workspace: Workspace, maildir: Any) -> None:
    workspace.maildir_config(maildir([email_bytes(date=datetime(2026, 7, 1, 9, 0, tzinfo=UTC))]))
    poll_at(workspace, datetime(2026, 7, 1, 9, 0, tzinfo=UTC))
    rules = workspace.dir / "rules"
    shutil.copytree(ROOT / "rules", rules)
    policy = rules / "followup.toml"
    policy.write_text(re.sub(r'(?m)^timezone = .*$', 'timezone = "Europe/London"', policy.read_text()))
    with workspace.config.open("a", encoding="utf-8") as handle:
        handle.write(f'[paths]\nrules = "{rules}"\n')
    out = workspace.run("show", "1")
    assert out.returncode == 0, out.stderr
    assert "Date:    2026-07-01 10:00 BST" in out.stdout


def test_remind_labels_each_section(workspace: Workspace, maildir: Any, smtp_server: SmtpServer) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes(body=FURIOUS)])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    done = workspace.run("remind", "--now", "2026-11-20T14:01")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    reminded, escalated = out.index("Reminded (1):"), out.index("Escalated to the owner (1):")
    assert reminded < escalated
    assert out.count("case 1 first-response") == 2

