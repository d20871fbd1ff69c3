"""The SQLite store: schema and migrations, the states it stores, the rows it returns."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from triage.store import (
    SCHEMA_VERSION,
    CaseStatus,
    DeadlineKind,
    DraftKind,
    DraftStatus,
    MessageStatus,
    NewDraft,
    NewMessage,
    Store,
)


def test_store_is_wal_versioned_and_migrates_once(tmp_path: Path) -> None:
    with Store(tmp_path / "t.db") as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Store(tmp_path / "t.db") as store:  # reopening does not migrate again
        assert store.schema_version == SCHEMA_VERSION
    with sqlite3.connect(tmp_path / "t.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"messages", "customers", "cases", "detections", "drafts", "deadlines", "events", "checkpoints", "labels"} <= tables


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "t.db") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer than this triage"):
        Store(tmp_path / "t.db")


def test_states_are_the_strings_the_database_and_json_hold() -> None:
    assert [str(s) for s in DraftStatus] == ["pending", "approved", "sending", "sent", "rejected", "superseded"]
    assert [str(s) for s in CaseStatus] == ["open", "waiting", "resolved", "closed"]
    assert [str(s) for s in MessageStatus] == ["triaged", "ignored", "quarantined"]
    assert [str(s) for s in DeadlineKind] == ["first-response", "promise", "follow-up"]
    assert [s for s in CaseStatus if s.finished] == [CaseStatus.RESOLVED, CaseStatus.CLOSED]


def _queued(store: Store, address: str, level: str, when: datetime, due: datetime | None = None) -> int:
    customer = store.customer(address, "", when, complaint=True)
    case_id = store.open_case(customer, f"about {level}", when)
    store.update_case(case_id, level=level, archetypes=["meek"] if level == "angry" else [])
    if due is not None:
        store.add_deadline(case_id, DeadlineKind.FIRST_RESPONSE, due, "", when)
    return store.insert_draft(NewDraft(
        case_id=case_id, message_id=None, kind=DraftKind.REPLY, template="t", to_address=address,
        subject="Re", body="Hi\n", lint=(), outgoing_message_id=f"<{address}>", created_at=when,
    ))


def test_one_queue_query_most_urgent_first_whole_or_paged(tmp_path: Path) -> None:
    t = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with Store(tmp_path / "t.db") as store, store.write():
        calm = _queued(store, "calm@x.test", "calm", t)
        late = _queued(store, "late@x.test", "angry", t, due=t + timedelta(hours=8))
        soon = _queued(store, "soon@x.test", "angry", t + timedelta(minutes=1), due=t + timedelta(hours=1))
        furious = _queued(store, "furious@x.test", "furious", t + timedelta(hours=2))
        done = _queued(store, "done@x.test", "furious", t)
        store.update_draft(done, status=DraftStatus.SENT)
        whole = store.queue()
        pages = [store.queue_page(limit=2, offset=o) for o in (0, 2)]
        angry, total = store.queue_page(level="angry", archetype="meek", sort="due", descending=True)
    # level first, then the earliest open deadline (none last), then age
    assert [r.id for r in whole] == [furious, soon, late, calm]
    assert [r.id for page, _ in pages for r in page] == [r.id for r in whole] and pages[0][1] == 4
    assert ([r.id for r in angry], total) == ([late, soon], 2)
    row = whole[1]
    assert (row.case, row.status, row.kind, row.archetypes, row.due, row.owner) == (
        3, DraftStatus.PENDING, DraftKind.REPLY, ["meek"], "2026-11-02T10:00:00+00:00", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.status = DraftStatus.SENT  # type: ignore[misc]


def test_drafts_and_cases_come_back_decoded(tmp_path: Path) -> None:
    t = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with Store(tmp_path / "t.db") as store, store.write():
        draft_id = _queued(store, "ann@x.test", "angry", t)
        store.update_draft(draft_id, lint=[{"text": "calm down"}])
        draft, case = store.draft(draft_id), store.case(1)
        missing = store.draft(99), store.case(99)
    assert draft is not None and case is not None
    assert (draft.status, draft.kind, draft.lint, draft.created_at) == (
        DraftStatus.PENDING, DraftKind.REPLY, [{"text": "calm down"}], "2026-11-02T09:00:00+00:00")
    assert draft.in_queue and (case.status, case.archetypes, case.level) == (CaseStatus.OPEN, ["meek"], "angry")
    assert missing == (None, None)


def test_a_stored_message_comes_back_with_its_lists_decoded(tmp_path: Path) -> None:
    t = datetime(2026, 11, 2, 9, tzinfo=UTC)
    new = NewMessage(
        mailbox="support", folder="INBOX", source_key="1", message_id="<a@x.test>", raw_hash="h",
        status=MessageStatus.TRIAGED, received_at=t, date=t, references=("<r1@x.test>", "<r2@x.test>"),
        recipients=("help@shop.test",), attachments=({"name": "a.pdf", "type": "application/pdf", "size": 3},),
        defects=("missing boundary",), rate_limited=True,
    )
    with Store(tmp_path / "t.db") as store, store.write():
        row_id = store.insert_message(new, None, None)
        got = store.message(row_id)
        same = store.message_by_mid("support", "<a@x.test>")
    assert got is not None and got == same
    assert (got.refs, got.recipients, got.defects, got.attachments[0]["name"]) == (
        ["<r1@x.test>", "<r2@x.test>"], ["help@shop.test"], ["missing boundary"], "a.pdf")
    assert (got.status, got.rate_limited, got.received_at) == (MessageStatus.TRIAGED, True, "2026-11-02T09:00:00+00:00")
