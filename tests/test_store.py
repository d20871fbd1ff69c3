"""The SQLite store: schema and migrations, the states it stores, the rows it returns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from triage.store import SCHEMA_VERSION, CaseStatus, DeadlineKind, DraftStatus, MessageStatus, Store


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
