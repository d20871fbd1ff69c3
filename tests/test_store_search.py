"""Full-text search in the store (triage.store.search): the FTS5 index follows every message row."""

from __future__ import annotations

import inspect
import sqlite3
from pathlib import Path

from test_web import _copy_store, polled  # noqa: F401  (the fixture)

from triage.store import MIGRATIONS, Store, utcnow
from triage.store.search import fts_query


def _store(polled: Path, tmp_path: Path) -> Store:  # noqa: F811
    _copy_store(polled, tmp_path)
    return Store(tmp_path / "triage.db")


def _terms(store: Store) -> set[str]:
    """Every term the index holds (fts5vocab reads the index itself, not the messages)."""
    store.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, message_search, 'row')")
    return {str(r[0]) for r in store.conn.execute("SELECT term FROM temp.vocab")}


def test_search_finds_cases_by_customer_subject_and_text(polled: Path, tmp_path: Path) -> None:  # noqa: F811
    with _store(polled, tmp_path) as store:
        by_name = store.search("derek holt")
        by_address = store.search("derek@customer.test")
        by_subject = store.search("48213")
        by_text = store.search("LAWYER")  # case-insensitive, the customer's own words
        by_prefix = store.search("lawy")
        assert len(by_name) == len(by_address) == len(by_subject) == len(by_text) == len(by_prefix) == 1
        assert {h.case for h in by_name + by_address + by_subject + by_text + by_prefix} == {by_name[0].case}
        assert by_text[0].customer == "derek@customer.test" and by_text[0].in_queue and by_text[0].draft
        assert "\x02lawyer\x03" in by_text[0].snippet.lower()
        assert store.search("lawyer refund") and not store.search("lawyer kettle")  # every word must match
        assert store.search("") == [] and store.search("   ") == []


def test_fts_syntax_in_a_query_is_searched_for_as_text(polled: Path, tmp_path: Path) -> None:  # noqa: F811
    assert fts_query('say "hi" NEAR(a b) *') == '"say"* """hi"""* "NEAR(a"* "b)"* "*"*'
    with _store(polled, tmp_path) as store:
        for query in ['"', '""', "*", "NEAR", "NEAR(refund lawyer)", "refund OR", "AND", "NOT refund", "(",
                      "sender:derek", "^refund", "-", "a\"b", "{sender subject}: x", "\\", "'; DROP TABLE messages; --"]:
            store.search(query)  # never raises
        assert store.search('"refund') and store.search("refund*")
        assert store.search("NOT lawyer") == []  # NOT is a word here, and no message holds it


def test_the_index_follows_inserts_and_forget_leaves_no_word_of_the_customer(
    polled: Path, tmp_path: Path  # noqa: F811
) -> None:
    with _store(polled, tmp_path) as store:
        assert "lawyer" in _terms(store) and store.search("lawyer")
        with store.write():
            erased = store.forget_customer("derek@customer.test", "owner", utcnow())
        assert erased.messages == 1
        assert store.search("lawyer") == [] and store.search("derek") == []
        assert "lawyer" not in _terms(store) and "derek" not in _terms(store)
        assert store.search("delivery")  # others are still found
        rows = store.conn.execute("SELECT COUNT(*) FROM message_search").fetchone()[0]
        assert rows == store.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


def test_the_migration_indexes_the_messages_already_stored(polled: Path, tmp_path: Path) -> None:  # noqa: F811
    _copy_store(polled, tmp_path)
    path = tmp_path / "triage.db"
    number = next(i for i, m in enumerate(MIGRATIONS, 1) if "message_search" in inspect.getsource(m))
    with sqlite3.connect(path) as db:  # back to the schema before the index, messages kept
        db.executescript(
            "DROP TRIGGER message_search_insert; DROP TRIGGER message_search_delete; "
            "DROP TRIGGER message_search_update; DROP TABLE message_search;"
            # and what later migrations added, so running them again finds the schema they expect
            "ALTER TABLE agents DROP COLUMN display_name; ALTER TABLE agents DROP COLUMN email; "
            "ALTER TABLE drafts DROP COLUMN cc;"
        )
        db.execute(f"PRAGMA user_version = {number - 1}")
    db.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert len(store.search("lawyer")) == 1 and len(store.search("delivery")) == 1


def test_the_retention_purge_takes_the_purged_messages_out_of_the_index(
    polled: Path, tmp_path: Path  # noqa: F811
) -> None:
    with _store(polled, tmp_path) as store:
        [derek] = store.search("lawyer")
        with store.write():
            store.conn.execute("UPDATE cases SET status = 'resolved', resolved_at = '2026-01-01T00:00:00+00:00' "
                               "WHERE id = ?", (derek.case,))
            erased = store.purge_resolved(utcnow(), "remind", utcnow())
        assert erased.cases == 1 and erased.messages == 1
        assert store.search("lawyer") == [] and "lawyer" not in _terms(store)
        assert store.search("delivery")
