"""Follow-up policy (rules/followup.toml), business time, promises, waiting and the poll hooks."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT, Workspace, email_bytes

from triage import config, pipeline
from triage.errors import RulesError
from triage.followups import deadlines
from triage.followups import policy as followup
from triage.mailbox import open_source
from triage.store import CaseDeadline, Store

LONDON = ZoneInfo("Europe/London")
UTC = timezone.utc
FURIOUS = "This is UNACCEPTABLE!!! I am furious, you people are useless. I want a refund NOW or I will report you."


def policy_with(tmp_path: Path, text: str) -> followup.Policy:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "followup.toml").write_text(text, encoding="utf-8")
    return followup.load_policy(rules)


LONDON_HOURS = """
timezone = "Europe/London"
[business_hours]
start = "09:00"
end = "18:00"
days = ["mon", "tue", "wed", "thu", "fri"]
holidays = [2026-12-25]
"""


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # Friday 17:30 + 4 h of 09-18 Mon-Fri: half an hour on Friday, 3.5 h on Monday
        (datetime(2026, 11, 20, 17, 30, tzinfo=LONDON), 4, datetime(2026, 11, 23, 12, 30, tzinfo=LONDON)),
        # the same in summer time (BST): local wall-clock hours, not UTC
        (datetime(2026, 6, 5, 17, 30, tzinfo=LONDON), 4, datetime(2026, 6, 8, 12, 30, tzinfo=LONDON)),
        # Saturday arrival: the clock starts Monday 09:00
        (datetime(2026, 11, 21, 11, 0, tzinfo=LONDON), 1, datetime(2026, 11, 23, 10, 0, tzinfo=LONDON)),
        # before opening
        (datetime(2026, 11, 18, 7, 0, tzinfo=LONDON), 2, datetime(2026, 11, 18, 11, 0, tzinfo=LONDON)),
        # a holiday (Friday 25 December) is skipped
        (datetime(2026, 12, 24, 17, 0, tzinfo=LONDON), 4, datetime(2026, 12, 28, 12, 0, tzinfo=LONDON)),
        # 24 h of business time = 2 days and 6 hours of opening hours
        (datetime(2026, 11, 16, 9, 0, tzinfo=LONDON), 24, datetime(2026, 11, 18, 15, 0, tzinfo=LONDON)),
    ],
)
def test_business_hours_deadlines(tmp_path: Path, start: datetime, hours: int, due: datetime) -> None:
    policy = policy_with(tmp_path, LONDON_HOURS)
    got = policy.add(start, timedelta(hours=hours))
    assert got == due.astimezone(UTC)
    assert policy.between(start, got) == timedelta(hours=hours)


def test_without_business_hours_deadlines_run_round_the_clock() -> None:
    friday = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
    assert followup.DEFAULT.add(friday, timedelta(hours=4)) == datetime(2026, 11, 20, 21, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("level", "archetypes", "hours"),
    [("furious", (), 1), ("angry", (), 4), ("calm", (), 24), ("calm", ("high_roller",), 2),
     ("furious", ("high_roller",), 1), ("annoyed", ("cancelling",), 4), ("unknown", (), 24)],
)
def test_first_response_takes_the_shortest_of_level_and_archetypes(level: str, archetypes: tuple[str, ...], hours: int) -> None:
    policy = followup.load_policy(ROOT / "rules")
    assert policy.first_response_hours(level, archetypes) == hours


def test_shipped_file_matches_the_built_in_defaults() -> None:
    shipped = followup.load_policy(ROOT / "rules")
    assert {**shipped.__dict__, "source": ""} == {**followup.DEFAULT.__dict__, "source": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('timezone = "Mars/Olympus"\n', "key 'timezone': expected an IANA time zone"),
        ("[first_response.levels]\nfurius = 1\n", "key 'first_response.levels.furius': unknown level"),
        ("[first_response.levels]\nfurious = -2\n", "expected a positive number of hours"),
        ("[first_response.archetypes]\nvip = 1\n", "unknown archetype"),
        ('[business_hours]\nstart = "18:00"\nend = "09:00"\n', "must be later than start"),
        ('[business_hours]\nstart = "9am"\nend = "18:00"\n', "expected a time like"),
        ('[business_hours]\nstart = "09:00"\nend = "18:00"\ndays = ["funday"]\n', "business_hours.days"),
        ("[check_in]\nafter_days = 0\n", "check_in.after_days"),
        ("[reminders]\nevery = 4\n", "key 'reminders.every': unknown key"),
        ("[escalation]\npromise_after_hours = \"soon\"\n", "escalation.promise_after_hours"),
    ],
)
def test_broken_policy_names_file_key_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(RulesError) as err:
        policy_with(tmp_path, "# comment\n" + text)
    message = str(err.value)
    assert "followup.toml:" in message and expected in message, message


def test_rules_check_reports_followup_problems(workspace: Workspace, maildir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "myrules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "followup.toml").write_text("[check_in]\nafter_days = \"soon\"\n")
    workspace.maildir_config(maildir([]), extra=f'[paths]\nrules = "{rules}"\ntemplates = "{ROOT / "templates"}"\n')
    done = workspace.run("rules", "check")
    assert done.returncode == 2
    assert "followup.toml:2: key 'check_in.after_days'" in done.stderr


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("2026-11-24", datetime(2026, 11, 24, 18, 0, tzinfo=LONDON)),  # closing time that day
        ("2026-11-24T15:00", datetime(2026, 11, 24, 15, 0, tzinfo=LONDON)),
        ("2026-11-24T15:00+00:00", datetime(2026, 11, 24, 15, 0, tzinfo=UTC)),
        ("2d", datetime(2026, 11, 22, 17, 30, tzinfo=LONDON)),
        ("4h", datetime(2026, 11, 20, 21, 30, tzinfo=LONDON)),
        ("today", datetime(2026, 11, 20, 18, 0, tzinfo=LONDON)),
        ("tomorrow", datetime(2026, 11, 21, 18, 0, tzinfo=LONDON)),
        ("Friday", datetime(2026, 11, 27, 18, 0, tzinfo=LONDON)),  # said on a Friday: next week's
        ("mon", datetime(2026, 11, 23, 18, 0, tzinfo=LONDON)),
    ],
)
def test_promise_dates(tmp_path: Path, text: str, due: datetime) -> None:
    policy = policy_with(tmp_path, LONDON_HOURS)
    now = datetime(2026, 11, 20, 17, 30, tzinfo=LONDON)  # a Friday
    assert followup.parse_when(text, now, policy) == due.astimezone(UTC)


def test_unreadable_promise_date_says_what_works() -> None:
    with pytest.raises(ValueError, match="2d, 4h, today"):
        followup.parse_when("next-ish", datetime(2026, 11, 20, tzinfo=UTC), followup.DEFAULT)


# --------------------------------------------------------------------------- with poll


def poll_at(workspace: Workspace, when: datetime) -> pipeline.Summary:
    """poll with an injected clock (a Maildir message is received at its Date, bounded by its file's time)."""
    settings = config.load(workspace.config)
    with Store(settings.store_path) as store:
        source = open_source(settings.mailbox)
        try:
            return pipeline.poll(settings, store, source, now=lambda: when)
        finally:
            source.close()


def open_deadlines(workspace: Workspace) -> list[CaseDeadline]:
    with Store(workspace.db) as store:
        return store.deadline_rows()


def test_poll_uses_the_owners_policy_and_business_hours(workspace: Workspace, maildir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "myrules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "followup.toml").write_text(LONDON_HOURS)
    workspace.maildir_config(maildir([email_bytes(body="My order is late and I am annoyed. Please fix it.",
                                                  date=datetime(2026, 11, 20, 17, 30, tzinfo=UTC))]),
                             extra=f'[paths]\nrules = "{rules}"\ntemplates = "{ROOT / "templates"}"\n')
    poll_at(workspace, datetime(2026, 11, 20, 17, 30, tzinfo=UTC))  # Friday 17:30 in London (GMT)
    [row] = open_deadlines(workspace)
    assert row.kind == "first-response" and row.level in ("annoyed", "angry")
    expected = {"annoyed": "2026-11-23T16:30:00+00:00", "angry": "2026-11-23T12:30:00+00:00"}[row.level]
    assert row.due == expected


def test_broken_followup_rules_stop_poll_instead_of_quarantining(workspace: Workspace, maildir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "myrules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "followup.toml").write_text("timezone = 3\n")
    workspace.maildir_config(maildir([email_bytes()]),
                             extra=f'[paths]\nrules = "{rules}"\ntemplates = "{ROOT / "templates"}"\n')
    done = workspace.run("poll")
    assert done.returncode == 2 and "followup.toml" in done.stderr
    assert workspace.run("status", "--json").stdout.count('"quarantined": 0') == 1


def test_waiting_pauses_the_clock_and_the_customers_answer_restarts_it(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    path = maildir([email_bytes(body=FURIOUS, message_id="<w1@customer.test>")])
    workspace.maildir_config(path)
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    [row] = open_deadlines(workspace)
    assert row.due == "2026-11-20T10:00:00+00:00"
    with Store(workspace.db) as store:
        assert deadlines.wait(store, row.case_id, "dana", datetime(2026, 11, 20, 9, 20, tzinfo=UTC)) == [row.id]
        assert store.case(row.case_id).status == "waiting"
    maildir([email_bytes(subject="Re: Order #123 arrived broken", body="The order number is 123. Still broken.",
                         message_id="<w2@customer.test>", headers={"In-Reply-To": "<w1@customer.test>"},
                         date=datetime(2026, 11, 21, 12, 0, tzinfo=UTC))], path)
    poll_at(workspace, datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
    [row] = open_deadlines(workspace)
    assert row.paused_at is None and row.due == "2026-11-21T12:40:00+00:00"  # 40 minutes were left
    with Store(workspace.db) as store:
        assert store.case(row.case_id).status == "open"
        assert [e["kind"] for e in store.events(row.case_id)].count("case-resumed") == 1


def test_resolved_case_reopens_on_a_customer_message_and_its_check_in_is_cancelled(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    path = maildir([email_bytes(message_id="<r1@customer.test>")])
    workspace.maildir_config(path)
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    assert workspace.run("resolve", "1", "--root-cause", "Courier damage", "--now", "2026-11-20T12:00").returncode == 0
    [check_in] = [r for r in open_deadlines(workspace) if r.kind == "follow-up"]
    assert check_in.due == "2026-11-27T12:00:00+00:00"
    # automatic mail on the thread neither reopens nor cancels
    maildir([email_bytes(body="I am out of the office.", message_id="<ooo@customer.test>",
                         headers={"In-Reply-To": "<r1@customer.test>", "Auto-Submitted": "auto-replied"})], path)
    poll_at(workspace, datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    with Store(workspace.db) as store:
        assert store.case(1).status == "resolved"
    assert [r.kind for r in open_deadlines(workspace)] == ["follow-up"]
    maildir([email_bytes(body="It broke again!", message_id="<r2@customer.test>",
                         headers={"In-Reply-To": "<r1@customer.test>"})], path)
    poll_at(workspace, datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    with Store(workspace.db) as store:
        assert store.case(1).status == "open"
        closed = store.deadline_rows(open_only=False, kinds=["follow-up"])
    assert [r.closed for r in closed] == ["cancelled"]


def test_promise_and_kept_from_the_cli(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    workspace.maildir_config(maildir([email_bytes()]))
    poll_at(workspace, datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    bad = workspace.run("promise", "1", "--by", "someday", "--what", "a refund")
    assert bad.returncode == 2 and "cannot read 'someday'" in bad.stderr
    assert workspace.run("promise", "99", "--by", "2d", "--what", "x").returncode == 2
    made = workspace.run("promise", "1", "--by", "friday", "--what", "a replacement blender",
                         "--now", "2026-11-20T09:30", "--json")
    assert made.returncode == 0, made.stderr
    assert '"due": "2026-11-27T23:59:00+00:00"' in made.stdout
    assert workspace.run("kept", "1", "--now", "2026-11-25T10:00").returncode == 0
    with Store(workspace.db) as store:
        [row] = store.deadline_rows(open_only=False, kinds=["promise"])
    assert row.closed == "kept" and row.what == "a replacement blender"
    assert workspace.run("kept", "1").returncode == 1  # nothing open any more
