"""The connection, transactions and the values every part of the store shares."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, overload

if TYPE_CHECKING:
    import sqlite_utils

from triage.store.schema import MIGRATIONS, SCHEMA_VERSION

# Listings (the queue, quarantine) carry at most this many characters of a subject, name or
# address: they are stored whole (``show`` has them), but a 2 MB subject must not make a 20 MB page.
LISTED_CHARS = 500


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@overload
def iso(when: datetime) -> str: ...


@overload
def iso(when: datetime | None) -> str | None: ...


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class StoreBase:
    """A triage database file: connection, migrations, transactions and small query helpers."""

    def __init__(self, path: Path | str, timeout: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self._db: sqlite_utils.Database | None = None
        self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection, for migrations and reports.

        Built on first use: importing sqlite-utils (and the numpy it pulls in)
        costs more than a cron poll that finds no mail should spend.
        """
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -----------------------------------------------------

    @contextmanager
    def write(self, durable: bool = False) -> Iterator[Self]:
        """A ``BEGIN IMMEDIATE`` transaction; ``durable`` commits with synchronous=FULL."""
        if durable:
            self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            if durable:
                self.conn.execute("PRAGMA synchronous = NORMAL")

    @contextmanager
    def savepoint(self) -> Iterator[Self]:
        """A nested unit inside ``write``: rolled back alone if it raises."""
        self.conn.execute("SAVEPOINT unit")
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:  # SQLite itself rolls everything back on a full disk
                self.conn.execute("ROLLBACK TO unit")
                self.conn.execute("RELEASE unit")
            raise
        else:
            self.conn.execute("RELEASE unit")

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path}: schema version {version} is newer than this triage "
                f"({SCHEMA_VERSION}); upgrade triage"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with self.write():
                MIGRATIONS[number - 1](self.db)
                self.conn.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        row = self.conn.execute(sql, list(params)).fetchone()
        return dict(row) if row else None

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, list(params)).fetchall()]

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cur = self.conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(row.values()))
        return int(cur.lastrowid or 0)


    _BULK_TABLES: ClassVar[frozenset[str]] = frozenset(
        {"customers", "cases", "messages", "detections", "drafts", "deadlines", "events", "labels", "agents"}
    )

    def bulk_insert(self, table: str, rows: Iterable[dict[str, Any]]) -> int:
        """Insert many rows of one shape with ``executemany`` (call inside ``write``); the count.

        For benchmarks and imports: values go in as given (JSON columns must be
        already encoded); every row must have the first row's keys.
        """
        if table not in self._BULK_TABLES:
            raise ValueError(f"bulk_insert: unknown table {table!r}")
        iterator = iter(rows)
        first = next(iterator, None)
        if first is None:
            return 0
        cols = list(first)
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
        cur = self.conn.executemany(sql, ([row[c] for c in cols] for row in itertools.chain([first], iterator)))
        return int(cur.rowcount)
