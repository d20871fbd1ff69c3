"""`triage remind` and `triage status`, time-travelled with --now against a real SMTP server."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conftest import Workspace, email_bytes, smtp_config
from servers import SmtpServer
from test_followups import FURIOUS, poll_at

from triage.lock import run_lock

UTC = timezone.utc
AGENTS = ("agent@example.com", "dana@example.com")
OWNER = "owner@example.com"


def setup(workspace: Workspace, maildir: Any, smtp: SmtpServer, messages: list[bytes], extra: str = "") -> Path:
    path = maildir(messages)
    workspace.maildir_config(
        path,
        extra=smtp_config(smtp)
        + f'[reminders]\nto = ["{AGENTS[0]}"]\nowner = "{OWNER}"\n{extra}',
    )
    return path


def remind(workspace: Workspace, now: str, *args: str) -> dict[str, Any]:
    return workspace.run_json("remind", "--now", now, *args)  # type: ignore[no-any-return]


def to_whom(smtp: SmtpServer) -> list[tuple[str, ...]]:
    return [m.rcpt_tos for m in smtp.messages]


def test_furious_complaint_is_reminded_once_then_after_the_cadence_then_escalated(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes(body=FURIOUS)])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))

    assert remind(workspace, "2026-11-20T09:59")["reminded"] == []  # not yet due
    first = remind(workspace, "2026-11-20T10:01")
    assert [(i["case"], i["kind"]) for i in first["reminded"]] == [(1, "first-response")]
    assert first["escalated"] == [] and first["digests"] == [AGENTS[0]]
    [digest] = smtp_server.messages
    assert digest.rcpt_tos == (AGENTS[0],)
    msg = digest.message
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert "Overdue first replies (1)" in body and "triage show 1" in body and "furious" in body
    assert "overdue by 1m" in body

    again = remind(workspace, "2026-11-20T10:02")
    assert (again["reminded"], again["escalated"], again["drafted"]) == ([], [], [])
    assert len(smtp_server.messages) == 1

    later = remind(workspace, "2026-11-20T14:01")  # 4 h cadence and 4 h past due: reminded and escalated
    assert [i["case"] for i in later["reminded"]] == [1]
    assert [i["case"] for i in later["escalated"]] == [1]
    assert sorted(to_whom(smtp_server)[1:]) == [(AGENTS[0],), (OWNER,)]
    escalation = next(m.message for m in smtp_server.messages if m.rcpt_tos == (OWNER,))
    assert escalation["Auto-Submitted"] == "auto-generated" and "escalation" in escalation["Subject"]

    quiet = remind(workspace, "2026-11-20T14:02")
    assert quiet["reminded"] == [] and quiet["escalated"] == []  # escalated once only
    assert len(smtp_server.messages) == 3
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT reminders FROM deadlines").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM runs WHERE kind = 'remind' AND ok = 1").fetchone()[0] == 5


def test_a_reply_sent_before_the_deadline_means_no_reminder(workspace: Workspace, maildir: Any, smtp_server: SmtpServer) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes(body=FURIOUS)])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    draft = workspace.run_json("queue")[0]["id"]
    assert workspace.run("approve", str(draft), "--agent", "dana").returncode == 0
    out = remind(workspace, "2026-11-20T10:01")
    assert out["reminded"] == [] and out["escalated"] == []
    assert to_whom(smtp_server) == [("ann@customer.test",)]  # only the reply itself


def test_a_shop_name_with_a_comma_or_quotes_is_one_sender_named_in_full(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    # a From written as text would read "Smith, Jones" as two addresses and drop "(triage)" as a comment
    setup(workspace, maildir, smtp_server, [email_bytes(body=FURIOUS)])
    workspace.config.write_text(workspace.config.read_text(encoding="utf-8").replace(
        'name = "Example Shop"', 'name = "Smith, Jones & \\"Co\\""'), encoding="utf-8")
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    remind(workspace, "2026-11-20T10:01")
    [digest] = smtp_server.messages
    [sender] = digest.message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ('Smith, Jones & "Co" (triage)', "support@example.com")


def test_every_agent_gets_one_digest_and_dry_run_sends_nothing(workspace: Workspace, maildir: Any, smtp_server: SmtpServer) -> None:
    path = maildir([email_bytes(body=FURIOUS)])
    workspace.maildir_config(
        path,
        extra=smtp_config(smtp_server, timeout=None)
        + f'[reminders]\nto = ["{AGENTS[0]}", "{AGENTS[1]}"]\nowner = "{OWNER}"\n',
    )
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    dry = remind(workspace, "2026-11-20T10:01", "--dry-run")
    assert dry["dry_run"] and len(dry["reminded"]) == 1 and dry["digests"] == list(AGENTS)
    assert smtp_server.messages == []
    remind(workspace, "2026-11-20T10:01")
    assert sorted(to_whom(smtp_server)) == [(AGENTS[0],), (AGENTS[1],)]


def test_smtp_failure_records_nothing_and_exits_3_then_the_next_run_retries(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes(body=FURIOUS)])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    smtp_server.refuse_all = "451 4.3.0 try later"
    failed = workspace.run("remind", "--now", "2026-11-20T10:01")
    assert failed.returncode == 3 and "451" in failed.stderr and "Traceback" not in failed.stderr
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT reminded_at FROM deadlines").fetchone()[0] is None
        assert db.execute("SELECT ok FROM runs WHERE kind = 'remind'").fetchall() == [(0,)]
    smtp_server.refuse_all = None
    assert len(remind(workspace, "2026-11-20T10:05")["reminded"]) == 1
    assert len(smtp_server.messages) == 1


def test_resolve_then_a_week_later_the_check_in_is_drafted_not_sent_and_only_once(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes(body="My blender (order #48213) arrived broken.")])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    draft = workspace.run_json("queue")[0]["id"]
    assert workspace.run("approve", str(draft)).returncode == 0
    resolved = workspace.run_json("resolve", "1", "--root-cause", "courier damage", "--now", "2026-11-20T12:00")
    assert resolved["check_in_due"] == "2026-11-27T12:00:00+00:00"
    smtp_server.clear()

    assert remind(workspace, "2026-11-27T11:59")["drafted"] == []
    # the machine was off for two days: the run catches up once
    out = remind(workspace, "2026-11-29T08:00")
    [drafted] = out["drafted"]
    assert drafted["case"] == 1 and drafted["command"] == f"triage show {drafted['draft']}"
    assert [m.rcpt_tos for m in smtp_server.messages] == [(AGENTS[0],)]  # the digest; nothing to the customer
    assert "Check-ins to approve (1)" in smtp_server.messages[0].message.get_content()
    queue = workspace.run_json("queue")
    assert [(q["case"], q["status"]) for q in queue] == [(1, "pending")]
    shown = workspace.run_json("show", str(drafted["draft"]))
    assert "did this" in shown["body"].lower() or "check that everything" in shown["body"]
    assert "could have done better" in shown["body"]  # the feedback request
    assert remind(workspace, "2026-11-29T08:05")["drafted"] == []
    assert remind(workspace, "2026-12-05T08:05")["drafted"] == []
    assert len(smtp_server.messages) == 1


def test_a_customer_who_writes_after_resolution_gets_no_check_in(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    path = setup(workspace, maildir, smtp_server, [email_bytes(message_id="<c1@customer.test>")])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    assert workspace.run("resolve", "1", "--now", "2026-11-20T12:00").returncode == 0
    maildir([email_bytes(body="Thanks, all good now!", message_id="<c2@customer.test>",
                         headers={"In-Reply-To": "<c1@customer.test>"})], path)
    poll_at(workspace, datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    out = remind(workspace, "2026-11-28T09:00")
    assert out["drafted"] == []
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT closed FROM deadlines WHERE kind = 'follow-up'").fetchone()[0] == "cancelled"


def test_promises_due_today_are_listed_with_what_was_promised(workspace: Workspace, maildir: Any, smtp_server: SmtpServer) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes()])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    draft = workspace.run_json("queue")[0]["id"]
    assert workspace.run("approve", str(draft)).returncode == 0
    smtp_server.clear()
    made = workspace.run("promise", "1", "--by", "2026-11-24", "--what", "a replacement blender", "--now", "2026-11-20T10:00")
    assert made.returncode == 0, made.stderr
    assert remind(workspace, "2026-11-23T09:00")["reminded"] == []
    out = remind(workspace, "2026-11-24T09:00")
    assert [(i["kind"], i["what"]) for i in out["reminded"]] == [("promise", "a replacement blender")]
    body = smtp_server.messages[0].message.get_content()
    assert "Promises due today or overdue (1)" in body and "we promised: a replacement blender" in body
    assert workspace.run("kept", "1", "--now", "2026-11-24T10:00").returncode == 0
    assert remind(workspace, "2026-11-25T09:00")["reminded"] == []


def test_waiting_cases_are_not_reminded(workspace: Workspace, maildir: Any, smtp_server: SmtpServer) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes(body=FURIOUS)])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    assert workspace.run("wait", "1", "--now", "2026-11-20T09:30").returncode == 0
    assert remind(workspace, "2026-11-20T12:00")["reminded"] == []
    assert workspace.run("wait", "1", "--resume", "--now", "2026-11-20T12:00").returncode == 0
    assert remind(workspace, "2026-11-20T12:29")["reminded"] == []  # 30 minutes were left
    assert len(remind(workspace, "2026-11-20T12:31")["reminded"]) == 1


def _failed_polls(workspace: Workspace, count: int) -> None:
    with sqlite3.connect(workspace.db) as db:
        for _ in range(count):
            db.execute("INSERT INTO runs (kind, started_at, finished_at, ok, summary) VALUES "
                       "('poll', '2026-11-20T08:00:00+00:00', '2026-11-20T08:00:01+00:00', 0, "
                       "'{\"error\": \"cannot reach IMAP server\"}')")


def test_failing_polls_alert_the_owner_once_a_day_until_one_succeeds(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    setup(workspace, maildir, smtp_server, [], extra="failure_threshold = 3\n")
    poll_at(workspace, datetime(2026, 11, 20, 7, 0, tzinfo=UTC))  # creates the store
    assert workspace.run("status", "--json").returncode == 0
    with sqlite3.connect(workspace.db) as db:  # poll_at does not record runs; the CLI's poll does
        db.execute("INSERT INTO runs (kind, started_at, finished_at, ok) VALUES "
                   "('poll', '2026-11-20T07:00:00+00:00', '2026-11-20T07:00:01+00:00', 1)")
    _failed_polls(workspace, 2)
    assert remind(workspace, "2026-11-20T09:00")["poll_alert"] is False
    _failed_polls(workspace, 1)
    status = workspace.run_json("status", "--now", "2026-11-20T09:00")
    assert status["consecutive_failures"] == 3 and status["last_error"] == "cannot reach IMAP server"
    assert status["last_poll"] == "2026-11-20T07:00:01+00:00" and status["last_poll_age_minutes"] == 119
    assert remind(workspace, "2026-11-20T09:05")["poll_alert"] is True
    [alert] = smtp_server.messages
    assert alert.rcpt_tos == (OWNER,) and "3 times in a row" in alert.message["Subject"]
    assert alert.message["Auto-Submitted"] == "auto-generated"
    assert remind(workspace, "2026-11-20T17:00")["poll_alert"] is False
    assert remind(workspace, "2026-11-21T09:06")["poll_alert"] is True
    done = workspace.run("poll")
    assert done.returncode == 0, done.stderr
    assert remind(workspace, "2026-11-22T10:00")["poll_alert"] is False
    assert len(smtp_server.messages) == 2


def test_remind_holds_the_poll_lock(workspace: Workspace, maildir: Any, smtp_server: SmtpServer) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes(body=FURIOUS)])
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    with run_lock(workspace.dir / "triage.db.lock", "test"):
        done = workspace.run("remind", "--now", "2026-11-20T10:01")
    assert done.returncode == 0 and "another triage run holds" in done.stderr
    assert smtp_server.messages == []


def test_status_text_and_json(workspace: Workspace, maildir: Any, smtp_server: SmtpServer) -> None:
    setup(workspace, maildir, smtp_server, [email_bytes(body=FURIOUS), b"not an email at all"])
    assert workspace.run("poll").returncode == 0
    st = workspace.run_json("status")
    assert {"last_poll", "last_poll_age_minutes", "consecutive_failures", "quarantined", "pending_drafts",
            "overdue", "overdue_items", "waiting_cases", "last_remind"} <= set(st)
    assert (st["quarantined"], st["pending_drafts"], st["consecutive_failures"]) == (1, 1, 0)
    later = workspace.run_json("status", "--now", "2099-01-01T00:00")
    assert later["overdue"] == 1 and later["overdue_items"][0]["command"] == "triage show 1"
    text = workspace.run("status").stdout
    assert "last successful poll" in text and "quarantined messages: 1" in text


# -- a whole poll batch failing the same way (triage.pipeline's guard) -----------------


def _buggy_setup(workspace: Workspace, maildir: Any, smtp: SmtpServer, count: int = 6) -> tuple[Path, str]:
    from test_bad_input import buggy_templates, kettles

    templates, good = buggy_templates(workspace)
    workspace.maildir_config(maildir(kettles(count)), extra=f'[paths]\ntemplates = "{templates}"\n\n' + smtp_config(smtp)
                             + f'[reminders]\nto = ["{AGENTS[0]}"]\nowner = "{OWNER}"\n')
    return templates, good


def _owner_mail(smtp: SmtpServer) -> list[Any]:
    return [m.message for m in smtp.messages if m.rcpt_tos == (OWNER,)]


def test_a_batch_failure_released_between_two_daily_reminds_is_told_to_the_owner_once(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    """Polls every 5 minutes, remind once a day: the batch is held back three polls, quarantined
    by the fourth, and the polls after it succeed, so no streak of failures is left when remind
    runs. The owner still hears of it, once, with what to run."""
    from triage import pipeline

    _buggy_setup(workspace, maildir, smtp_server)
    assert remind(workspace, "2026-11-20T09:00")["batch_failures"] == []
    for _ in range(pipeline.SYSTEMIC_HOLDS):
        assert workspace.run("poll").returncode == 3
    [released] = workspace.run_json("poll")["released"]  # quarantines the batch
    assert (released["folder"], released["messages"], released["held"]) == ("INBOX", 6, pipeline.SYSTEMIC_HOLDS)
    assert "division or modulo by zero" in released["fault"], released
    assert workspace.run_json("poll")["released"] == []  # nothing new
    out = remind(workspace, "2026-11-21T09:00")
    assert out["poll_alert"] is False  # no failure streak is left for that alert
    [told] = out["batch_failures"]
    assert (told["folder"], told["failed_runs"], told["quarantined"], told["still_failing"]) == (
        "INBOX", pipeline.SYSTEMIC_HOLDS, 6, False), told
    assert "division or modulo by zero" in told["fault"] and told["command"] == "triage retry --all"
    [mail] = _owner_mail(smtp_server)
    body = mail.get_content()
    assert "failed the same way" in mail["Subject"] and mail["Auto-Submitted"] == "auto-generated"
    assert "INBOX" in body and "division or modulo by zero" in body and "triage retry --all" in body, body
    assert f"held back by {pipeline.SYSTEMIC_HOLDS} failed polls" in body and "6 messages quarantined" in body, body
    again = remind(workspace, "2026-11-22T09:00")
    assert again["batch_failures"] == [] and len(_owner_mail(smtp_server)) == 1


def test_a_batch_failure_fixed_before_remind_is_told_once_and_one_still_failing_says_so(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    """A batch held back once, then taken by the next poll after the fix: told once as over. One
    failing when remind runs is told as still failing, and its later release told next time."""
    templates, good = _buggy_setup(workspace, maildir, smtp_server)
    assert workspace.run("poll").returncode == 3
    out = remind(workspace, "2026-11-20T09:00")  # below failure_threshold: no poll alert
    [told] = out["batch_failures"]
    assert (told["failed_runs"], told["quarantined"], told["still_failing"]) == (1, 0, True), told
    assert "still held back" in _owner_mail(smtp_server)[0].get_content()
    (templates / "_sign_off.j2").write_text(good, encoding="utf-8")
    assert workspace.run_json("poll")["drafts"] == 6
    assert remind(workspace, "2026-11-20T10:00")["batch_failures"] == []
    assert len(_owner_mail(smtp_server)) == 1


def test_a_batch_failure_told_with_a_poll_alert_goes_in_the_same_mail(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    _buggy_setup(workspace, maildir, smtp_server)
    workspace.config.write_text(workspace.config.read_text(encoding="utf-8") + "failure_threshold = 1\n",
                                encoding="utf-8")
    assert workspace.run("poll").returncode == 3
    done = workspace.run("remind", "--now", "2026-11-20T09:00")
    assert done.returncode == 0, done.stderr
    assert "poll failure alert" in done.stdout and "1 whole-batch poll failure(s)" in done.stdout, done.stdout
    [mail] = _owner_mail(smtp_server)
    body = mail.get_content()
    assert "1 times in a row" in mail["Subject"] and "still held back" in body and "division or modulo" in body, body


def test_a_batch_quarantined_by_a_poll_that_then_fails_is_still_told(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    """The poll that quarantines a held-back batch of INBOX fails on the next folder (it cannot be
    read): the batch stays quarantined, so the failed run's record keeps it, and remind tells it."""
    from triage import pipeline

    _buggy_setup(workspace, maildir, smtp_server)
    for _ in range(pipeline.SYSTEMIC_HOLDS):
        assert workspace.run("poll").returncode == 3
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(text.replace('source = "maildir"\n', 'source = "maildir"\nfolders = ["INBOX", "Gone"]\n'),
                                encoding="utf-8")
    done = workspace.run("poll")
    assert done.returncode == 2 and "Gone" in done.stderr, done.stderr  # INBOX's batch quarantined first
    out = remind(workspace, "2026-11-21T09:00")
    [told] = out["batch_failures"]
    assert (told["failed_runs"], told["quarantined"], told["still_failing"], told["command"]) == (
        pipeline.SYSTEMIC_HOLDS, 6, False, "triage retry --all"), told
    assert "6 messages quarantined" in _owner_mail(smtp_server)[0].get_content()


def test_a_batch_still_held_back_when_the_next_poll_fails_otherwise_is_not_told_as_taken(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    """The batch is held back once, then the next poll fails for another reason (a folder it
    cannot read): nothing took the batch, so the owner is not told "nothing is left to do"."""
    _buggy_setup(workspace, maildir, smtp_server)
    assert workspace.run("poll").returncode == 3
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(text.replace('source = "maildir"\n', 'source = "maildir"\nfolders = ["Gone"]\n'),
                                encoding="utf-8")
    assert workspace.run("poll").returncode == 2
    [told] = remind(workspace, "2026-11-20T09:00")["batch_failures"]
    assert (told["failed_runs"], told["still_failing"], told["command"]) == (1, True, "triage poll"), told
    body = _owner_mail(smtp_server)[0].get_content()
    assert "still held back" in body and "nothing is left to do" not in body, body


def test_a_batch_failure_is_told_once_an_owner_is_configured_not_used_up_without_one(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    """remind runs while no owner is configured: it tells no one, so the failure is still told by
    the first run after an owner is set, and not again after that."""
    _buggy_setup(workspace, maildir, smtp_server)
    with_owner = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(with_owner.replace(f'owner = "{OWNER}"\n', ""), encoding="utf-8")
    assert workspace.run("poll").returncode == 3
    assert remind(workspace, "2026-11-20T09:00")["batch_failures"] == []
    assert _owner_mail(smtp_server) == []
    workspace.config.write_text(with_owner, encoding="utf-8")
    [told] = remind(workspace, "2026-11-20T10:00")["batch_failures"]
    assert (told["failed_runs"], told["still_failing"]) == (1, True), told
    assert remind(workspace, "2026-11-20T11:00")["batch_failures"] == [] and len(_owner_mail(smtp_server)) == 1


def test_a_batch_failure_due_when_smtp_fails_is_told_by_the_next_run(
    workspace: Workspace, maildir: Any, smtp_server: SmtpServer
) -> None:
    _buggy_setup(workspace, maildir, smtp_server)
    assert workspace.run("poll").returncode == 3
    smtp_server.refuse_all = "451 4.3.0 try later"
    failed = workspace.run("remind", "--now", "2026-11-20T09:00")
    assert failed.returncode == 3 and "451" in failed.stderr, failed.stderr
    assert _owner_mail(smtp_server) == []
    smtp_server.refuse_all = None
    [told] = remind(workspace, "2026-11-20T10:00")["batch_failures"]
    assert (told["failed_runs"], told["still_failing"]) == (1, True), told
    assert "still held back" in _owner_mail(smtp_server)[0].get_content()
    assert remind(workspace, "2026-11-20T11:00")["batch_failures"] == [] and len(_owner_mail(smtp_server)) == 1
