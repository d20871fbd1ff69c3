"""The CLI shows the truth: send errors and held drafts in the queue, only earlier cases as
"Earlier cases", remind's output labelled by section, times in the policy's time zone."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

from conftest import ROOT, Workspace, email_bytes
from servers import SmtpServer
from test_followups import FURIOUS, poll_at
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


def test_queue_age_is_how_long_the_customer_has_waited(workspace: Workspace, maildir: Any) -> None:
    """AGE counts from the customer's message (a Maildir message's Date), not from when the draft
    was made: mail polled three days late is three days old, not "0m"."""
    wrote = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    workspace.maildir_config(maildir([email_bytes(subject="Kettle leaks", body="My kettle leaks, this is unacceptable.",
                                                  date=wrote)]))
    assert workspace.run("poll").returncode == 0
    out = workspace.run("queue").stdout
    [line] = [ln for ln in out.splitlines() if "Kettle leaks" in ln]
    assert re.search(r"\s3d\s", line), line
    [row] = workspace.run_json("queue")
    assert datetime.fromisoformat(row["received_at"]) == wrote
    assert datetime.fromisoformat(row["created_at"]) > wrote  # the draft was made at the poll


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


def _report(workspace: Workspace) -> dict[str, Any]:
    data: dict[str, Any] = workspace.run_json("report", "--since", "2026-11-01", "--until", "2026-12-31",
                                              "--now", "2027-01-01T00:00")
    volume = data["volume"]
    assert sum(volume["by_level"].values()) == volume["cases"]  # it still adds up
    assert sum(_count(v) for v in volume["by_day"]) == volume["cases"]
    return data


def _count(day: Any) -> int:
    return int(day["cases"] if isinstance(day, dict) else day[1])


def _dump(workspace: Workspace) -> str:
    with sqlite3.connect(workspace.db) as db:
        return "\n".join(str(line) for line in db.iterdump())


def test_forget_erases_a_customer_and_leaves_an_audit_event_without_personal_data(
    workspace: Workspace, maildir: Any
) -> None:
    ann = [email_bytes(subject="Kettle leaks", sender="Ann Lee <Ann@Customer.test>",
                       body="My kettle leaks, this is unacceptable. Ann Lee, 12 Elm Road",
                       date=datetime(2026, 11, 2, 9, 0, tzinfo=UTC)),
           email_bytes(subject="Toaster burns everything", sender="Ann Lee <ann@customer.test>",
                       body="The toaster is broken, I am furious.", date=datetime(2026, 11, 3, 9, 0, tzinfo=UTC))]
    bob = email_bytes(subject="Blender broken", sender="Bob Roe <bob@customer.test>",
                      date=datetime(2026, 11, 4, 9, 0, tzinfo=UTC))
    workspace.maildir_config(maildir([*ann, bob]))
    poll_at(workspace, datetime(2026, 11, 5, 9, 0, tzinfo=UTC))
    before = _report(workspace)
    assert before["volume"]["cases"] == 3
    with sqlite3.connect(workspace.db) as db:
        draft = db.execute("SELECT d.id FROM drafts d JOIN messages m ON m.id = d.message_id "
                           "WHERE m.sender = 'bob@customer.test'").fetchone()[0]
        anns = db.execute("SELECT id FROM messages WHERE lower(sender) = 'ann@customer.test'").fetchone()[0]
    labelled = workspace.run("label", str(anns), "--angry", "no", "--archetype", "meek")
    assert labelled.returncode == 0, labelled.stderr

    refused = workspace.run("forget", "nobody@customer.test", "--yes")
    assert refused.returncode == 2 and "nothing stored" in refused.stderr
    erased = workspace.run_json("forget", "ANN@customer.test", "--yes")
    assert erased["customers"] == 1 and erased["cases"] == 2 and erased["messages"] == 2 and erased["drafts"] == 2
    assert erased["detections"] == 2 and erased["labels"] == 1

    dump = _dump(workspace).lower()
    for personal in ("ann@customer.test", "ann lee", "kettle", "toaster", "elm road"):
        assert personal not in dump, personal
    assert "bob@customer.test" in dump  # the other customer is untouched
    with sqlite3.connect(workspace.db) as db:
        [(detail,)] = db.execute("SELECT detail FROM events WHERE kind = 'customer-forgotten'").fetchall()
        assert db.execute("SELECT COUNT(*) FROM messages WHERE raw IS NOT NULL AND sender != 'bob@customer.test'"
                          ).fetchone()[0] == 0
    assert json.loads(detail)["messages"] == 2
    after = _report(workspace)
    assert after["volume"]["cases"] == 1
    assert workspace.run("queue", "--json").stdout.count('"id"') == 1
    assert workspace.run("show", str(draft)).returncode == 0


def test_retention_days_purges_old_resolved_cases_during_remind(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    old = email_bytes(subject="Kettle leaks", sender="ann@customer.test", date=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    fresh = email_bytes(subject="Blender broken", sender="bob@customer.test",
                        date=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    setup(workspace, maildir, smtp_server, [old, fresh])
    with workspace.config.open("a", encoding="utf-8") as handle:
        handle.write("\n[store]\n" if "[store]" not in workspace.config.read_text() else "")
    text = workspace.config.read_text().replace('[store]\npath = "triage.db"', '[store]\npath = "triage.db"\nretention_days = 30')
    workspace.config.write_text(text)
    poll_at(workspace, datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    with sqlite3.connect(workspace.db) as db:
        cases = dict(db.execute("SELECT cu.address, c.id FROM cases c JOIN customers cu ON cu.id = c.customer_id"))
    assert workspace.run("resolve", str(cases["ann@customer.test"]), "--now", "2026-11-03T09:00").returncode == 0
    assert workspace.run("resolve", str(cases["bob@customer.test"]), "--now", "2026-11-25T09:00").returncode == 0

    assert workspace.run_json("remind", "--now", "2026-11-20T09:00")["purged"]["cases"] == 0
    purged = workspace.run("remind", "--now", "2026-12-04T09:00")
    assert purged.returncode == 0, purged.stderr
    assert "Retention: purged 1 resolved case(s) older than 30 days" in purged.stdout
    dump = _dump(workspace).lower()
    assert "ann@customer.test" not in dump and "kettle" not in dump
    assert "bob@customer.test" in dump
    assert _report(workspace)["volume"]["cases"] == 1
