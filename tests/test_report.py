"""`triage report`: figures checked against hand-computed ones on a small fixture; the HTML page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import Workspace

from triage.followups.report import quantile
from triage.store import DraftKind, DraftStatus, NewDraft, NewMessage, Store, iso

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def add_case(store: Store, n: int, address: str, received: str, level: str, archetypes: list[str],
             products: list[str], evidence: list[dict[str, Any]], topic: str = "", **fields: Any) -> int:
    when = at(received)
    customer = store.customer(address, address.split("@")[0].title(), when, True)
    case = store.open_case(customer, f"case {n}", when)
    store.update_case(case, level=level, archetypes=archetypes, **fields)
    row = store.insert_message(NewMessage(mailbox="m", folder="INBOX", source_key=f"k{n}", message_id=f"<{n}@x>",
                                          raw_hash=str(n), status="triaged", received_at=when, date=when,
                                          sender=address, subject=f"case {n}"), customer, case)
    store.insert_detection(row, {"score": 0.5, "level": level, "angry": level != "calm", "complaint": True,
                                 "archetypes": [{"name": a, "rule": "t"} for a in archetypes],
                                 "evidence": evidence, "facts": {"products": products}, "topic": topic})
    return case


def deadline(store: Store, case: int, kind: str, due: str, done: str | None = None, closed: str | None = None,
             what: str = "") -> int:
    did = store.add_deadline(case, kind, at(due), what, at(due) - timedelta(hours=1))
    if done:
        store.update_deadline(did, done_at=iso(at(done)), closed=closed)
    return did


@pytest.fixture
def fixture_db(workspace: Workspace, maildir: Any) -> Workspace:
    workspace.maildir_config(maildir([]))

    def ev(text: str, w: float = 1.0, kind: str = "anger") -> dict[str, Any]:
        return {"start": 0, "end": 1, "text": text, "rule": "r", "weight": w, "kind": kind}

    with Store(workspace.db) as store, store.write():
        a = add_case(store, 1, "ann@x.test", "2026-11-02T09:00:00", "furious", ["aggressive"], ["Blender"],
                     [ev("UNACCEPTABLE"), ev("not", 0.0, "negation")], topic="quality", first_response_at="2026-11-02T09:30:00+00:00",
                     resolved_at="2026-11-03T09:00:00+00:00", status="resolved", outcome="resolved",
                     root_cause="Courier damage")
        b = add_case(store, 2, "bob@x.test", "2026-11-03T10:00:00", "angry", [], ["blender", "kettle"],
                     [ev("unacceptable", 0.8)], topic="delivery", first_response_at="2026-11-03T16:00:00+00:00",
                     resolved_at="2026-11-05T10:00:00+00:00", status="resolved", outcome="resolved",
                     root_cause="courier  damage")
        c = add_case(store, 3, "ann@x.test", "2026-11-10T08:00:00", "calm", ["meek"], ["toaster"], [], topic="billing",
                     first_response_at="2026-11-11T08:00:00+00:00")
        d = add_case(store, 4, "carl@x.test", "2026-11-20T12:00:00", "annoyed", ["high_roller"], [], [ev("late", 0.5)],
                     topic="delivery")
        e = add_case(store, 5, "dora@x.test", "2026-10-15T12:00:00", "furious", [], ["blender"], [ev("awful")], topic="delivery",
                     root_cause="outside the period")
        deadline(store, a, "first-response", "2026-11-02T10:00:00", "2026-11-02T09:30:00", "done")
        deadline(store, b, "first-response", "2026-11-03T14:00:00", "2026-11-03T16:00:00", "done")
        deadline(store, c, "first-response", "2026-11-11T08:00:00", "2026-11-11T08:00:00", "done")
        deadline(store, d, "first-response", "2026-11-20T14:00:00")
        deadline(store, e, "first-response", "2026-10-15T13:00:00")
        deadline(store, a, "promise", "2026-11-02T17:00:00", "2026-11-02T15:00:00", "kept", "a new blender")
        deadline(store, b, "promise", "2026-11-04T12:00:00", "2026-11-05T10:00:00", "resolved", "a refund")
        deadline(store, c, "promise", "2026-11-25T12:00:00", what="a call back")
        f1 = deadline(store, a, "follow-up", "2026-11-10T09:00:00", "2026-11-10T09:00:00", "drafted")
        deadline(store, b, "follow-up", "2026-11-12T10:00:00", "2026-11-11T10:00:00", "cancelled")
        check_in = store.insert_draft(NewDraft(
            case_id=a, message_id=None, kind=DraftKind.CHECK_IN, template="follow_up", to_address="ann@x.test",
            subject="Re: case 1", body="Hi", lint=(), outgoing_message_id=f"<triage.c{a}.f{f1}@example.com>",
            created_at=datetime.fromisoformat("2026-11-10T09:00:00+00:00")))
        store.update_draft(check_in, status=DraftStatus.SENT)
    return workspace


def test_report_json_matches_hand_computed_figures(fixture_db: Workspace) -> None:
    r = fixture_db.run_json("report", "--since", "2026-11-01", "--until", "2026-11-30", "--now", "2026-11-30T12:00")
    assert r["period"] == {"since": "2026-11-01", "until": "2026-11-30", "timezone": "UTC",
                           "generated_at": "2026-11-30T12:00:00+00:00"}
    assert r["volume"]["cases"] == 4
    assert r["volume"]["by_level"] == {"calm": 1, "annoyed": 1, "angry": 1, "furious": 1}
    assert r["volume"]["by_archetype"] == {"aggressive": 1, "high_roller": 1, "meek": 1, "none": 1}
    assert len(r["volume"]["by_day"]) == 30
    assert r["volume"]["by_day"][1] == {"day": "2026-11-02", "cases": 1, "calm": 0, "annoyed": 0, "angry": 0, "furious": 1}
    # first response: 0.5 h, 6 h, 24 h -> median 6; p90 at rank 1.8 -> 6 + 0.8 * 18 = 20.4
    assert r["first_response"] == {"count": 3, "median_hours": 6.0, "p90_hours": 20.4, "hours": [0.5, 6.0, 24.0]}
    # resolution: 24 h, 48 h -> median 36; p90 at rank 0.9 -> 24 + 0.9 * 24 = 45.6
    assert r["resolution"] == {"count": 2, "median_hours": 36.0, "p90_hours": 45.6}
    # met: case 1 (early), case 3 (exactly on time); breached: case 2 (late), case 4 (open past due)
    assert r["sla"] == {"deadlines": 4, "breached": 2, "breach_rate": 0.5}
    assert r["promises"] == {"due": 3, "kept": 2, "kept_on_time": 1, "open": 1, "on_time_rate": 0.3333}
    assert r["check_ins"] == {"due": 2, "drafted": 1, "sent": 1, "cancelled": 1, "pending": 0}
    assert r["outcomes"] == {"open": 2, "resolved": 2}
    assert r["root_causes"] == [{"cause": "courier damage", "count": 2}]
    # calm case 3 (billing) does not count, nor case 5 outside the period
    assert r["anger_drivers"]["topics"] == [{"topic": "delivery", "count": 2}, {"topic": "quality", "count": 1}]
    assert r["anger_drivers"]["products"] == [{"product": "blender", "count": 2}, {"product": "kettle", "count": 1}]
    assert r["anger_drivers"]["phrases"] == [{"phrase": "unacceptable", "count": 2}, {"phrase": "late", "count": 1}]
    assert r["chronic_customers"] == [{"customer": "ann@x.test", "name": "Ann", "cases": 2, "angry_cases": 1,
                                       "chronic_flag": False}]


def test_report_text(fixture_db: Workspace) -> None:
    done = fixture_db.run("report", "--since", "2026-11-01", "--until", "2026-11-30", "--now", "2026-11-30T12:00")
    assert done.returncode == 0, done.stderr
    for line in ("Cases: 4", "median 6.0 h, 90th percentile 20.4 h", "2 of 4 breached (50%)",
                 "kept on time 1 (33%)", "courier damage", "ann@x.test"):
        assert line in done.stdout, line


def test_report_html_is_self_contained_and_escaped(fixture_db: Workspace, tmp_path: Path) -> None:
    with Store(fixture_db.db) as store, store.write():
        store.update_case(4, root_cause="<script>alert(1)</script>")
    out = tmp_path / "report.html"
    done = fixture_db.run("report", "--since", "2026-11-01", "--until", "2026-11-30", "--html", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 3
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "src=" not in page and "href=" not in page and "@import" not in page
    assert page.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0
    assert "&lt; 1 h" in page and ">< 1 h" not in page  # chart labels are escaped too


@pytest.mark.parametrize(("values", "q", "expected"), [([], 0.9, None), ([5.0], 0.9, 5.0),
                                                        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.5), ([1.0, 2.0, 3.0, 4.0], 0.9, 3.7)])
def test_quantile(values: list[float], q: float, expected: float | None) -> None:
    got = quantile(values, q)
    assert got == expected if expected is None else got == pytest.approx(expected)


def test_bad_dates_are_usage_errors(fixture_db: Workspace) -> None:
    done = fixture_db.run("report", "--since", "last week")
    assert done.returncode == 2 and "expected a date" in done.stderr
