"""The SQLite store: schema, migrations and queries. The only module that writes SQL.

WAL mode and a busy timeout let the worker and the web page share the file.
Transactions that read then write use ``BEGIN IMMEDIATE`` (``Store.write``):
a deferred transaction that upgrades to a write fails at once under
contention, whatever the busy timeout.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import sqlite_utils



def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _migration_1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY,
            address TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            tier TEXT NOT NULL DEFAULT '',
            messages INTEGER NOT NULL DEFAULT 0,
            complaints INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            subject TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'open',
            score REAL NOT NULL DEFAULT 0,
            level TEXT NOT NULL DEFAULT 'calm',
            archetypes TEXT NOT NULL DEFAULT '[]',
            root_cause TEXT,
            outcome TEXT,
            opened_at TEXT NOT NULL,
            first_response_at TEXT,
            resolved_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX cases_customer ON cases(customer_id);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            mailbox TEXT NOT NULL,
            folder TEXT NOT NULL,
            source_key TEXT NOT NULL,
            uidvalidity INTEGER,
            uid INTEGER,
            message_id TEXT NOT NULL,
            in_reply_to TEXT NOT NULL DEFAULT '',
            refs TEXT NOT NULL DEFAULT '[]',
            sender TEXT NOT NULL DEFAULT '',
            sender_name TEXT NOT NULL DEFAULT '',
            reply_to TEXT NOT NULL DEFAULT '',
            recipients TEXT NOT NULL DEFAULT '[]',
            subject TEXT NOT NULL DEFAULT '',
            date TEXT NOT NULL,
            received_at TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            full_text TEXT NOT NULL DEFAULT '',
            attachments TEXT NOT NULL DEFAULT '[]',
            defects TEXT NOT NULL DEFAULT '[]',
            raw_hash TEXT NOT NULL,
            raw BLOB,
            status TEXT NOT NULL,
            auto_reason TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            retries INTEGER NOT NULL DEFAULT 0,
            rate_limited INTEGER NOT NULL DEFAULT 0,
            customer_id INTEGER REFERENCES customers(id),
            case_id INTEGER REFERENCES cases(id)
        );
        CREATE UNIQUE INDEX messages_source ON messages(mailbox, folder, source_key);
        CREATE UNIQUE INDEX messages_mid ON messages(mailbox, message_id);
        CREATE INDEX messages_case ON messages(case_id);
        CREATE INDEX messages_sender ON messages(sender, received_at);
        CREATE INDEX messages_status ON messages(status);
        CREATE INDEX messages_msgid ON messages(message_id);
        CREATE TABLE detections (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL UNIQUE REFERENCES messages(id),
            score REAL NOT NULL,
            level TEXT NOT NULL,
            angry INTEGER NOT NULL,
            complaint INTEGER NOT NULL,
            archetypes TEXT NOT NULL DEFAULT '[]',
            evidence TEXT NOT NULL DEFAULT '[]',
            facts TEXT NOT NULL DEFAULT '{}',
            rules_version TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE drafts (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases(id),
            message_id INTEGER REFERENCES messages(id),
            kind TEXT NOT NULL DEFAULT 'reply',
            template TEXT NOT NULL,
            to_address TEXT NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            lint TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL DEFAULT 'pending',
            outgoing_message_id TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            edited_by TEXT,
            approved_by TEXT,
            approved_at TEXT,
            sent_at TEXT,
            error TEXT NOT NULL DEFAULT '',
            override_reason TEXT
        );
        CREATE INDEX drafts_status ON drafts(status);
        CREATE INDEX drafts_case ON drafts(case_id);
        CREATE TABLE deadlines (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases(id),
            kind TEXT NOT NULL,
            due TEXT NOT NULL,
            what TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            done_at TEXT,
            reminded_at TEXT,
            escalated_at TEXT
        );
        CREATE INDEX deadlines_open ON deadlines(done_at, due);
        CREATE INDEX deadlines_case ON deadlines(case_id);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            kind TEXT NOT NULL,
            case_id INTEGER,
            draft_id INTEGER,
            message_id INTEGER,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX events_case ON events(case_id);
        CREATE TABLE checkpoints (
            mailbox TEXT NOT NULL,
            folder TEXT NOT NULL,
            uidvalidity INTEGER NOT NULL,
            last_uid INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (mailbox, folder)
        );
        CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id),
            angry INTEGER,
            archetype TEXT,
            agent TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            ok INTEGER NOT NULL,
            summary TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX runs_kind ON runs(kind, id);
        """
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    """Agents who log in to the review page."""
    db.executescript(
        """
        CREATE TABLE agents (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        """
    )


def _migration_3(db: sqlite_utils.Database) -> None:
    """Follow-ups (triage.followup): paused clocks, why a deadline closed, reminder counts."""
    db.executescript(
        """
        ALTER TABLE deadlines ADD COLUMN paused_at TEXT;
        ALTER TABLE deadlines ADD COLUMN closed TEXT;
        ALTER TABLE deadlines ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE deadlines ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
        CREATE INDEX deadlines_kind ON deadlines(kind, done_at, due);
        """
    )


def _migration_4(db: sqlite_utils.Database) -> None:
    """The detected topic (delivery, billing, a product...) for the owner's report."""
    db.executescript("ALTER TABLE detections ADD COLUMN topic TEXT NOT NULL DEFAULT '';")


MIGRATIONS = [_migration_1, _migration_2, _migration_3, _migration_4]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class NewMessage:
    """A message row about to be stored (parsed or quarantined)."""

    mailbox: str
    folder: str
    source_key: str
    message_id: str
    raw_hash: str
    status: str  # triaged | ignored | quarantined
    received_at: datetime
    date: datetime
    uidvalidity: int | None = None
    uid: int | None = None
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    sender: str = ""
    sender_name: str = ""
    reply_to: str = ""
    recipients: tuple[str, ...] = ()
    subject: str = ""
    text: str = ""
    full_text: str = ""
    attachments: tuple[dict[str, Any], ...] = ()
    defects: tuple[str, ...] = ()
    auto_reason: str = ""
    error: str = ""
    raw: bytes | None = None
    rate_limited: bool = False
    retries: int = 0


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class Store:
    """A triage database file. Open with ``Store(path)``; it migrates itself."""

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

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -----------------------------------------------------

    @contextmanager
    def write(self, durable: bool = False) -> Iterator[Store]:
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
    def savepoint(self) -> Iterator[Store]:
        """A nested unit inside ``write``: rolled back alone if it raises."""
        self.conn.execute("SAVEPOINT unit")
        try:
            yield self
        except BaseException:
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

    # -- checkpoints ------------------------------------------------------

    def checkpoint(self, mailbox: str, folder: str) -> tuple[int, int] | None:
        row = self._one(
            "SELECT uidvalidity, last_uid FROM checkpoints WHERE mailbox = ? AND folder = ?",
            (mailbox, folder),
        )
        return (row["uidvalidity"], row["last_uid"]) if row else None

    def set_checkpoint(self, mailbox: str, folder: str, uidvalidity: int, last_uid: int) -> None:
        self.conn.execute(
            "INSERT INTO checkpoints (mailbox, folder, uidvalidity, last_uid, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(mailbox, folder) DO UPDATE SET "
            "uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, "
            "updated_at = excluded.updated_at",
            (mailbox, folder, uidvalidity, last_uid, iso(utcnow())),
        )

    # -- messages ---------------------------------------------------------

    def known_keys(self, mailbox: str, folder: str, keys: list[str]) -> set[str]:
        """Which of ``keys`` (source keys) are already stored for this folder."""
        known: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = self.conn.execute(
                "SELECT source_key FROM messages WHERE mailbox = ? AND folder = ? "
                f"AND source_key IN ({', '.join('?' for _ in chunk)})",
                [mailbox, folder, *chunk],
            ).fetchall()
            known.update(r[0] for r in rows)
        return known

    def message_by_mid(self, mailbox: str, message_id: str) -> dict[str, Any] | None:
        return self._one(
            "SELECT * FROM messages WHERE mailbox = ? AND message_id = ?", (mailbox, message_id)
        )

    def known_keys_for(self, mailbox: str) -> Callable[[str, list[str]], set[str]]:
        return lambda folder, keys: self.known_keys(mailbox, folder, keys)

    def relocate_message(self, row_id: int, source_key: str, uidvalidity: int | None, uid: int | None) -> None:
        """The same message seen at a new UID (after a UIDVALIDITY change)."""
        self.conn.execute(
            "UPDATE messages SET source_key = ?, uidvalidity = ?, uid = ? WHERE id = ?",
            (source_key, uidvalidity, uid, row_id),
        )

    def insert_message(self, m: NewMessage, customer_id: int | None, case_id: int | None) -> int:
        return self._insert(
            "messages",
            {
                "mailbox": m.mailbox,
                "folder": m.folder,
                "source_key": m.source_key,
                "uidvalidity": m.uidvalidity,
                "uid": m.uid,
                "message_id": m.message_id,
                "in_reply_to": m.in_reply_to,
                "refs": _dumps(list(m.references)),
                "sender": m.sender,
                "sender_name": m.sender_name,
                "reply_to": m.reply_to,
                "recipients": _dumps(list(m.recipients)),
                "subject": m.subject,
                "date": iso(m.date),
                "received_at": iso(m.received_at),
                "text": m.text,
                "full_text": m.full_text,
                "attachments": _dumps(list(m.attachments)),
                "defects": _dumps(list(m.defects)),
                "raw_hash": m.raw_hash,
                "raw": m.raw,
                "status": m.status,
                "auto_reason": m.auto_reason,
                "error": m.error,
                "rate_limited": int(m.rate_limited),
                "retries": m.retries,
                "customer_id": customer_id,
                "case_id": case_id,
            },
        )

    def recent_from(self, sender: str, since: datetime) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM messages WHERE sender = ? AND received_at >= ?",
            (sender, iso(since)),
        ).fetchone()
        return int(row[0])

    def message(self, row_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM messages WHERE id = ?", (row_id,))

    def quarantined(self) -> list[dict[str, Any]]:
        return self._all(
            "SELECT id, mailbox, folder, message_id, sender, subject, error, retries, received_at "
            "FROM messages WHERE status = 'quarantined' ORDER BY id"
        )

    def delete_message(self, row_id: int) -> None:
        """Remove a quarantined row that is being retried (it is re-inserted in the same transaction)."""
        self.conn.execute("DELETE FROM messages WHERE id = ? AND status = 'quarantined'", (row_id,))

    # -- customers and cases ----------------------------------------------

    def customer(self, address: str, name: str, when: datetime, complaint: bool) -> int:
        """Insert or update the customer at ``address``; return its id."""
        self.conn.execute(
            "INSERT INTO customers (address, name, messages, complaints, first_seen, last_seen) "
            "VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT(address) DO UPDATE SET "
            "name = CASE WHEN excluded.name != '' THEN excluded.name ELSE customers.name END, "
            "messages = customers.messages + 1, "
            "complaints = customers.complaints + excluded.complaints, "
            "last_seen = MAX(customers.last_seen, excluded.last_seen)",
            (address, name, int(complaint), iso(when), iso(when)),
        )
        return int(self.conn.execute("SELECT id FROM customers WHERE address = ?", (address,)).fetchone()[0])

    def case_for_thread(self, mailbox: str, ids: Iterable[str]) -> int | None:
        """The case a reply belongs to: a stored message or one of our drafts it names."""
        for mid in ids:
            row = self.conn.execute(
                "SELECT case_id FROM messages WHERE mailbox = ? AND message_id = ? "
                "AND case_id IS NOT NULL",
                (mailbox, mid),
            ).fetchone()
            if row:
                return int(row[0])
            row = self.conn.execute(
                "SELECT case_id FROM drafts WHERE outgoing_message_id = ?", (mid,)
            ).fetchone()
            if row:
                return int(row[0])
        return None

    def case_exists(self, case_id: int) -> bool:
        return self.conn.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is not None

    def open_case(self, customer_id: int, subject: str, when: datetime) -> int:
        return self._insert(
            "cases",
            {
                "customer_id": customer_id,
                "subject": subject,
                "status": "open",
                "opened_at": iso(when),
                "updated_at": iso(when),
            },
        )

    def case(self, case_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM cases WHERE id = ?", (case_id,))

    def update_case(self, case_id: int, **fields: Any) -> None:
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [_dumps(v) if isinstance(v, (list, tuple, dict)) else v for v in fields.values()]
        self.conn.execute(f"UPDATE cases SET {sets} WHERE id = ?", [*values, case_id])

    def customer_history_by_address(self, address: str, since: datetime) -> list[dict[str, Any]]:
        """The customer's triaged messages since ``since`` with their detections."""
        rows = self._all(
            "SELECT m.id, m.case_id, m.received_at, d.complaint, d.archetypes "
            "FROM messages m JOIN detections d ON d.message_id = m.id "
            "WHERE m.sender = ? AND m.received_at >= ? ORDER BY m.received_at",
            (address, iso(since)),
        )
        for row in rows:
            row["archetypes"] = [a["name"] if isinstance(a, dict) else a for a in json.loads(row["archetypes"])]
        return rows

    def customer_cases(self, customer_id: int) -> list[dict[str, Any]]:
        return self._all(
            "SELECT * FROM cases WHERE customer_id = ? ORDER BY opened_at DESC", (customer_id,)
        )

    # -- detections, drafts, deadlines, events ----------------------------

    def insert_detection(self, message_row: int, d: dict[str, Any]) -> int:
        return self._insert(
            "detections",
            {
                "message_id": message_row,
                "score": d["score"],
                "level": d["level"],
                "angry": int(d["angry"]),
                "complaint": int(d["complaint"]),
                "archetypes": _dumps(d["archetypes"]),
                "evidence": _dumps(d["evidence"]),
                "facts": _dumps(d.get("facts", {})),
                "rules_version": d.get("rules_version", ""),
                "topic": d.get("topic") or "",
            },
        )

    def detection_for(self, message_row: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM detections WHERE message_id = ?", (message_row,))
        if row:
            for key in ("archetypes", "evidence", "facts"):
                row[key] = json.loads(row[key])
        return row

    def supersede_pending(self, case_id: int, when: datetime) -> list[int]:
        ids = [
            int(r[0])
            for r in self.conn.execute(
                "SELECT id FROM drafts WHERE case_id = ? AND status = 'pending'", (case_id,)
            ).fetchall()
        ]
        if ids:
            self.conn.execute(
                "UPDATE drafts SET status = 'superseded', updated_at = ? "
                "WHERE case_id = ? AND status = 'pending'",
                (iso(when), case_id),
            )
        return ids

    def insert_draft(self, row: dict[str, Any]) -> int:
        row = {**row, "lint": _dumps(row.get("lint", []))}
        return self._insert("drafts", row)

    def draft(self, draft_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM drafts WHERE id = ?", (draft_id,))
        if row:
            row["lint"] = json.loads(row["lint"])
        return row

    def update_draft(self, draft_id: int, **fields: Any) -> None:
        if "lint" in fields:
            fields["lint"] = _dumps(fields["lint"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.conn.execute(f"UPDATE drafts SET {sets} WHERE id = ?", [*fields.values(), draft_id])

    def drafts_to_send(self) -> list[int]:
        """Approved drafts not yet sent, and drafts a crash left in 'sending'."""
        rows = self.conn.execute(
            "SELECT id FROM drafts WHERE status IN ('approved', 'sending') ORDER BY approved_at, id"
        ).fetchall()
        return [int(r[0]) for r in rows]

    def complete_deadlines(self, case_id: int, kind: str, when: datetime) -> None:
        self.conn.execute(
            "UPDATE deadlines SET done_at = ? WHERE case_id = ? AND kind = ? AND done_at IS NULL",
            (iso(when), case_id, kind),
        )

    def queue(self) -> list[dict[str, Any]]:
        """Pending drafts with what the queue shows, most urgent first."""
        rows = self._all(
            """
            SELECT d.id, d.case_id AS "case", d.subject AS draft_subject, d.template,
                   d.created_at, d.status, d.error, d.kind,
                   c.level, c.score, c.archetypes, c.subject,
                   cu.address AS customer, cu.name AS customer_name,
                   (SELECT MIN(due) FROM deadlines dl WHERE dl.case_id = d.case_id
                      AND dl.done_at IS NULL) AS due
            FROM drafts d
            JOIN cases c ON c.id = d.case_id
            JOIN customers cu ON cu.id = c.customer_id
            WHERE d.status IN ('pending', 'approved', 'sending')
            ORDER BY CASE c.level WHEN 'furious' THEN 0 WHEN 'angry' THEN 1
                     WHEN 'annoyed' THEN 2 ELSE 3 END,
                     due IS NULL, due, d.created_at, d.id
            """
        )
        for row in rows:
            row["archetypes"] = json.loads(row["archetypes"])
        return rows

    def add_deadline(self, case_id: int, kind: str, due: datetime, what: str, when: datetime) -> int:
        return self._insert(
            "deadlines",
            {"case_id": case_id, "kind": kind, "due": iso(due), "what": what, "created_at": iso(when)},
        )

    def open_deadline(self, case_id: int, kind: str) -> dict[str, Any] | None:
        return self._one(
            "SELECT * FROM deadlines WHERE case_id = ? AND kind = ? AND done_at IS NULL",
            (case_id, kind),
        )

    def event(
        self,
        kind: str,
        actor: str,
        when: datetime,
        case_id: int | None = None,
        draft_id: int | None = None,
        message_id: int | None = None,
        **detail: Any,
    ) -> None:
        self._insert(
            "events",
            {
                "at": iso(when),
                "actor": actor,
                "kind": kind,
                "case_id": case_id,
                "draft_id": draft_id,
                "message_id": message_id,
                "detail": _dumps(detail),
            },
        )

    def events(self, case_id: int) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM events WHERE case_id = ? ORDER BY id", (case_id,))

    def record_run(self, kind: str, started: datetime, ok: bool, summary: dict[str, Any]) -> None:
        with self.write():
            self._insert(
                "runs",
                {
                    "kind": kind,
                    "started_at": iso(started),
                    "finished_at": iso(utcnow()),
                    "ok": int(ok),
                    "summary": _dumps(summary),
                },
            )

    def case_messages(self, case_id: int) -> list[dict[str, Any]]:
        return self._all(
            "SELECT id, message_id, sender, subject, date, status, text, full_text FROM messages "
            "WHERE case_id = ? ORDER BY date, id",
            (case_id,),
        )

    # -- review page: queue pages, agents, assignments, labels (triage.web) --

    #: ``sort`` keys of ``queue_page`` -> ORDER BY (ascending); never user text in SQL.
    QUEUE_SORTS: ClassVar[dict[str, str]] = {
        "urgency": "level_rank, dl.due IS NULL, dl.due, d.created_at, d.id",
        "due": "dl.due IS NULL, dl.due, level_rank, d.id",
        "age": "d.created_at, d.id",
        "level": "level_rank, c.score DESC, d.id",
        "customer": "cu.address, d.id",
        "subject": "c.subject COLLATE NOCASE, d.id",
    }

    def queue_page(
        self,
        *,
        level: str = "",
        archetype: str = "",
        overdue_at: datetime | None = None,
        sort: str = "urgency",
        descending: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the queue (pending, approved, sending drafts) and the total matching.

        ``overdue_at`` keeps only drafts whose case has an open deadline before it;
        ``sort`` is a key of ``QUEUE_SORTS`` (unknown keys raise ``KeyError``);
        each row also carries ``owner``, the case's latest assignment (or None).
        """
        order = self.QUEUE_SORTS[sort]
        if descending:
            order = ", ".join(  # flip every key, but drafts without a deadline stay last
                part if part.endswith("IS NULL") else part[: -len(" DESC")] if part.endswith(" DESC")
                else part + " DESC"
                for part in order.split(", ")
            )
        where = ["d.status IN ('pending', 'approved', 'sending')"]
        params: list[Any] = []
        if level:
            where.append("c.level = ?")
            params.append(level)
        if archetype:
            where.append("EXISTS (SELECT 1 FROM json_each(c.archetypes) WHERE value = ?)")
            params.append(archetype)
        if overdue_at is not None:
            where.append(
                "EXISTS (SELECT 1 FROM deadlines dl WHERE dl.case_id = d.case_id "
                "AND dl.done_at IS NULL AND dl.due < ?)"
            )
            params.append(iso(overdue_at))
        sql_where = " AND ".join(where)
        # Phase 1 sorts narrow rows (id and sort keys) for the whole queue; the open
        # deadlines are aggregated once and joined, not looked up per draft.
        page = self.conn.execute(
            f"""
            SELECT d.id,
                   CASE c.level WHEN 'furious' THEN 0 WHEN 'angry' THEN 1
                        WHEN 'annoyed' THEN 2 ELSE 3 END AS level_rank,
                   dl.due AS due
            FROM drafts d
            JOIN cases c ON c.id = d.case_id
            JOIN customers cu ON cu.id = c.customer_id
            LEFT JOIN (SELECT case_id, MIN(due) AS due FROM deadlines
                       WHERE done_at IS NULL GROUP BY case_id) dl ON dl.case_id = d.case_id
            WHERE {sql_where}
            ORDER BY {order}
            LIMIT ? OFFSET ?
            """,
            [*params, limit, offset],
        ).fetchall()
        total = int(
            self.conn.execute(
                f"SELECT COUNT(*) FROM drafts d JOIN cases c ON c.id = d.case_id WHERE {sql_where}", params
            ).fetchone()[0]
        )
        if not page:
            return [], total
        # Phase 2: the shown columns for this page only, in phase 1's order.
        due = {int(r[0]): r[2] for r in page}
        marks = ", ".join("?" for _ in page)
        found = {
            row["id"]: row
            for row in self._all(
                f"""
                SELECT d.id, d.case_id AS "case", d.template, d.created_at, d.status, d.error, d.kind,
                       c.level, c.score, c.archetypes, c.subject,
                       cu.address AS customer, cu.name AS customer_name
                FROM drafts d
                JOIN cases c ON c.id = d.case_id
                JOIN customers cu ON cu.id = c.customer_id
                WHERE d.id IN ({marks})
                """,
                list(due),
            )
        }
        rows = [found[i] for i in due if i in found]
        owners = self.owners([r["case"] for r in rows])
        for row in rows:
            row["due"] = due[row["id"]]
            row["archetypes"] = json.loads(row["archetypes"])
            row["owner"] = owners.get(row["case"])
        return rows, total

    def queue_archetypes(self) -> list[str]:
        """Archetype names on cases that have a draft in the queue (for the filter)."""
        names: set[str] = set()
        for (value,) in self.conn.execute(
            "SELECT DISTINCT c.archetypes FROM drafts d JOIN cases c ON c.id = d.case_id "
            "WHERE d.status IN ('pending', 'approved', 'sending')"
        ):
            names.update(str(a) for a in json.loads(value or "[]"))
        return sorted(names)

    def owners(self, case_ids: list[int]) -> dict[int, str]:
        """Each case's latest ``case-assigned`` event's agent (cases never assigned are absent)."""
        owners: dict[int, str] = {}
        for i in range(0, len(case_ids), 500):
            chunk = case_ids[i : i + 500]
            rows = self.conn.execute(
                "SELECT case_id, detail FROM events WHERE kind = 'case-assigned' "
                f"AND case_id IN ({', '.join('?' for _ in chunk)}) ORDER BY id",
                chunk,
            ).fetchall()
            for case_id, detail in rows:
                owners[int(case_id)] = str(json.loads(detail).get("to", ""))
        return owners

    def case_events(self, case_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """The case's latest ``limit`` audit events, oldest first, ``detail`` decoded."""
        rows = self._all(
            "SELECT * FROM (SELECT * FROM events WHERE case_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
            (case_id, limit),
        )
        for row in rows:
            row["detail"] = json.loads(row["detail"])
        return rows

    def case_drafts(self, case_id: int) -> list[dict[str, Any]]:
        return self._all(
            "SELECT id, status, template, created_at, approved_by, sent_at, error FROM drafts "
            "WHERE case_id = ? ORDER BY id",
            (case_id,),
        )

    def quarantined_page(self, limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Quarantined messages, newest first, and how many there are (uses ``messages_status``)."""
        total = int(
            self.conn.execute("SELECT COUNT(*) FROM messages WHERE status = 'quarantined'").fetchone()[0]
        )
        rows = self._all(
            "SELECT id, mailbox, folder, message_id, sender, subject, error, retries, received_at "
            "FROM messages WHERE status = 'quarantined' ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return rows, total

    def add_label(self, message_row: int, angry: bool | None, archetype: str | None, agent: str, when: datetime) -> int:
        """An agent's correction of a detection (``angry``/``archetype`` None = not judged)."""
        return self._insert(
            "labels",
            {
                "message_id": message_row,
                "angry": None if angry is None else int(angry),
                "archetype": archetype or None,
                "agent": agent,
                "at": iso(when),
            },
        )

    def labelled_messages(self) -> list[dict[str, Any]]:
        """Each labelled message's text and sender with its latest label (for `triage eval --labels`)."""
        return self._all(
            "SELECT m.id, m.text, m.sender, l.angry, l.archetype FROM labels l "
            "JOIN messages m ON m.id = l.message_id "
            "WHERE l.id = (SELECT MAX(id) FROM labels WHERE message_id = l.message_id) ORDER BY m.id"
        )

    def labels_for(self, message_row: int) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM labels WHERE message_id = ? ORDER BY id", (message_row,))

    def add_agent(self, name: str, password_hash: str, when: datetime) -> int:
        """A new agent; ``sqlite3.IntegrityError`` if the name is taken."""
        return self._insert("agents", {"name": name, "password_hash": password_hash, "created_at": iso(when)})

    def agent(self, name: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM agents WHERE name = ?", (name,))

    def agent_names(self) -> list[str]:
        """Names of agents who may log in, alphabetically."""
        return [str(r[0]) for r in self.conn.execute("SELECT name FROM agents WHERE disabled = 0 ORDER BY name")]

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

    # -- follow-ups, reminders, status, reports (triage.followup, remind, report) --

    def deadline_rows(
        self,
        *,
        open_only: bool = True,
        case_id: int | None = None,
        kinds: Iterable[str] = (),
        closed: str | None = None,
        unreminded: bool = False,
    ) -> list[dict[str, Any]]:
        """Deadlines with their case, customer and the case's newest draft, earliest due first."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if open_only:
            where.append("dl.done_at IS NULL")
        if case_id is not None:
            where.append("dl.case_id = ?")
            params.append(case_id)
        kinds = list(kinds)
        if kinds:
            where.append(f"dl.kind IN ({', '.join('?' for _ in kinds)})")
            params += kinds
        if closed is not None:
            where.append("dl.closed = ?")
            params.append(closed)
        if unreminded:
            where.append("dl.reminded_at IS NULL")
        rows = self._all(
            f"""
            SELECT dl.*, c.subject, c.level, c.archetypes, c.status AS case_status,
                   c.resolved_at, c.customer_id, cu.address AS customer, cu.name AS customer_name,
                   (SELECT MAX(d.id) FROM drafts d WHERE d.case_id = dl.case_id
                      AND d.status IN ('pending', 'approved', 'sending')) AS pending_draft,
                   (SELECT MAX(d.id) FROM drafts d WHERE d.case_id = dl.case_id) AS last_draft
            FROM deadlines dl
            JOIN cases c ON c.id = dl.case_id
            JOIN customers cu ON cu.id = c.customer_id
            WHERE {' AND '.join(where)}
            ORDER BY dl.due, dl.id
            """,
            params,
        )
        for row in rows:
            row["archetypes"] = json.loads(row["archetypes"])
        return rows

    def update_deadline(self, deadline_id: int, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.conn.execute(f"UPDATE deadlines SET {sets} WHERE id = ?", [*fields.values(), deadline_id])

    def close_deadlines(self, case_id: int, kinds: Iterable[str], when: datetime, closed: str) -> list[int]:
        """Close the case's open deadlines of ``kinds`` as ``closed`` (done, kept, cancelled...); their ids."""
        kinds = list(kinds)
        marks = ", ".join("?" for _ in kinds)
        ids = [
            int(r[0])
            for r in self.conn.execute(
                f"SELECT id FROM deadlines WHERE case_id = ? AND done_at IS NULL AND kind IN ({marks})",
                [case_id, *kinds],
            ).fetchall()
        ]
        if ids:
            self.conn.execute(
                f"UPDATE deadlines SET done_at = ?, closed = ?, paused_at = NULL "
                f"WHERE id IN ({', '.join('?' for _ in ids)})",
                [iso(when), closed, *ids],
            )
        return ids

    def customer_messages(self, case_id: int, since: str | None = None) -> list[dict[str, Any]]:
        """The customer's own (triaged, not automatic) messages on a case, oldest first."""
        return self._all(
            "SELECT * FROM messages WHERE case_id = ? AND status = 'triaged' AND received_at > ? "
            "ORDER BY received_at, id",
            (case_id, since or ""),
        )

    def supersede_pending_kind(self, case_id: int, kind: str, when: datetime) -> list[int]:
        """Supersede the case's pending drafts of one kind (e.g. a check-in the customer overtook)."""
        ids = [
            int(r[0])
            for r in self.conn.execute(
                "SELECT id FROM drafts WHERE case_id = ? AND kind = ? AND status = 'pending'", (case_id, kind)
            ).fetchall()
        ]
        for draft_id in ids:
            self.conn.execute(
                "UPDATE drafts SET status = 'superseded', updated_at = ? WHERE id = ?", (iso(when), draft_id)
            )
        return ids

    def runs_of(self, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest runs of ``kind`` (poll, remind), newest first, summaries decoded."""
        rows = self._all("SELECT * FROM runs WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit))
        for row in rows:
            row["summary"] = json.loads(row["summary"])
        return rows

    def last_event_of(self, kind: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM events WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,))

    def status_counts(self) -> dict[str, int]:
        """Quarantined messages, drafts waiting for an agent, cases waiting on the customer."""
        row = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM messages WHERE status = 'quarantined'), "
            "(SELECT COUNT(*) FROM drafts WHERE status IN ('pending', 'approved', 'sending')), "
            "(SELECT COUNT(*) FROM cases WHERE status = 'waiting')"
        ).fetchone()
        return {"quarantined": int(row[0]), "pending_drafts": int(row[1]), "waiting_cases": int(row[2])}

    def report_cases(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Cases whose first customer message arrived in [since, until), with their customer."""
        rows = self._all(
            """
            SELECT * FROM (
                SELECT c.*, cu.address AS customer, cu.name AS customer_name,
                       COALESCE((SELECT MIN(m.received_at) FROM messages m
                                 WHERE m.case_id = c.id AND m.status = 'triaged'), c.opened_at) AS started_at
                FROM cases c JOIN customers cu ON cu.id = c.customer_id)
            WHERE started_at >= ? AND started_at < ?
            ORDER BY started_at, id
            """,
            (iso(since), iso(until)),
        )
        for row in rows:
            row["archetypes"] = json.loads(row["archetypes"])
        return rows

    def report_deadlines(self, kinds: Iterable[str]) -> list[dict[str, Any]]:
        kinds = list(kinds)
        return self._all(
            f"SELECT * FROM deadlines WHERE kind IN ({', '.join('?' for _ in kinds)}) ORDER BY due, id", kinds
        )

    def report_detections(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Detections of customer messages received in [since, until), with sender and case."""
        rows = self._all(
            "SELECT d.*, m.case_id, m.sender, m.received_at FROM detections d "
            "JOIN messages m ON m.id = d.message_id "
            "WHERE m.status = 'triaged' AND m.received_at >= ? AND m.received_at < ? ORDER BY m.id",
            (iso(since), iso(until)),
        )
        for row in rows:
            for key in ("archetypes", "evidence", "facts"):
                row[key] = json.loads(row[key])
        return rows

    def report_drafts(self, kind: str) -> list[dict[str, Any]]:
        return self._all(
            "SELECT id, case_id, status, created_at, sent_at, outgoing_message_id FROM drafts WHERE kind = ?", (kind,)
        )
