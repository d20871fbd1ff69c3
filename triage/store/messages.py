"""The ``messages`` table (mail as read, parsed or quarantined), its ``detections`` and the ``checkpoints`` of each folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from triage.store.base import LISTED_CHARS, StoreBase, _dumps, iso, utcnow


class MessageStatus(StrEnum):
    """``messages.status``."""

    TRIAGED = "triaged"  # a customer's message, detected (and drafted for)
    IGNORED = "ignored"  # automatic mail (bounces, auto-replies, lists): stored, not drafted for
    QUARANTINED = "quarantined"  # could not be parsed or processed; retried on the next poll


@dataclass(frozen=True)
class NewMessage:
    """A message row about to be stored (parsed or quarantined)."""

    mailbox: str
    folder: str
    source_key: str
    message_id: str
    raw_hash: str
    status: MessageStatus
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
    size: int | None = None  # the whole message in bytes (a too-large one keeps only its headers in ``raw``)



@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A stored message (a row of ``messages``), lists decoded; times are ISO 8601 UTC text.

    Not ``triage.message.Message``, the parsed email: this is what the store
    kept of one, with where it was read from and what became of it.
    """

    id: int
    mailbox: str
    folder: str
    source_key: str
    uidvalidity: int | None
    uid: int | None
    message_id: str
    in_reply_to: str
    refs: list[str]  # References, oldest first
    sender: str
    sender_name: str
    reply_to: str
    recipients: list[str]
    subject: str
    date: str
    received_at: str
    text: str  # the customer's own words (quotes and signature stripped)
    full_text: str
    attachments: list[dict[str, Any]]  # name, type, size
    defects: list[str]
    raw_hash: str
    raw: bytes | None  # kept while quarantined, and for a message with attachments (to download them)
    status: MessageStatus
    auto_reason: str  # why it is automatic mail ("" for a customer's)
    error: str  # why it is quarantined
    retries: int
    rate_limited: bool
    customer_id: int | None
    case_id: int | None
    size: int | None = None  # bytes; a message over max_message_mb keeps only its headers in ``raw``
    clash: int = 0  # 0: the first message stored under its Message-ID; 1, 2...: different ones reusing it

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StoredMessage:
        return cls(**{
            **row,
            **{key: json.loads(row[key]) for key in ("refs", "recipients", "attachments", "defects")},
            "status": MessageStatus(row["status"]),
            "rate_limited": bool(row["rate_limited"]),
        })


class MessageTable(StoreBase):
    """Messages, their detections and the read position in each folder."""

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

    def known_keys_for(self, mailbox: str) -> Callable[[str, list[str]], set[str]]:
        return lambda folder, keys: self.known_keys(mailbox, folder, keys)

    def message_by_mid(self, mailbox: str, message_id: str) -> StoredMessage | None:
        """The first message stored under this Message-ID (``messages_by_mid``: every one)."""
        row = self._one(
            "SELECT * FROM messages WHERE mailbox = ? AND message_id = ? ORDER BY clash LIMIT 1",
            (mailbox, message_id),
        )
        return StoredMessage.from_row(row) if row else None

    def messages_by_mid(self, mailbox: str, message_id: str) -> list[StoredMessage]:
        """Every message stored under this Message-ID: the first, then different ones reusing it."""
        rows = self._all(
            "SELECT * FROM messages WHERE mailbox = ? AND message_id = ? ORDER BY clash", (mailbox, message_id)
        )
        return [StoredMessage.from_row(r) for r in rows]

    def relocate_message(self, row_id: int, source_key: str, uidvalidity: int | None, uid: int | None) -> None:
        """The same message seen at a new UID (after a UIDVALIDITY change)."""
        self.conn.execute(
            "UPDATE messages SET source_key = ?, uidvalidity = ?, uid = ? WHERE id = ?",
            (source_key, uidvalidity, uid, row_id),
        )

    def insert_message(self, m: NewMessage, customer_id: int | None, case_id: int | None) -> int:
        """Store a message; a different one whose Message-ID is already stored gets the next ``clash``."""
        clash = self.conn.execute(
            "SELECT COALESCE(MAX(clash) + 1, 0) FROM messages WHERE mailbox = ? AND message_id = ?",
            (m.mailbox, m.message_id),
        ).fetchone()[0]
        return self._insert(
            "messages",
            {
                "mailbox": m.mailbox,
                "folder": m.folder,
                "source_key": m.source_key,
                "uidvalidity": m.uidvalidity,
                "uid": m.uid,
                "message_id": m.message_id,
                "clash": int(clash),
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
                "status": str(m.status),
                "auto_reason": m.auto_reason,
                "error": m.error,
                "rate_limited": int(m.rate_limited),
                "retries": m.retries,
                "size": m.size,
                "customer_id": customer_id,
                "case_id": case_id,
            },
        )

    def recent_from(self, sender: str, since: datetime) -> int:
        """The sender's triaged messages received since ``since`` (the rate limit's count).

        Automatic mail (ignored) and quarantined rows never count: anyone can forge
        an auto-reply "from" a customer, and it must not silence their complaint.
        """
        row = self.conn.execute(
            "SELECT COUNT(*) FROM messages WHERE sender = ? AND received_at >= ? AND status = ?",
            (sender, iso(since), MessageStatus.TRIAGED),
        ).fetchone()
        return int(row[0])

    def message(self, row_id: int) -> StoredMessage | None:
        row = self._one("SELECT * FROM messages WHERE id = ?", (row_id,))
        return StoredMessage.from_row(row) if row else None

    def delete_message(self, row_id: int) -> None:
        """Remove a quarantined row that is being retried (it is re-inserted in the same transaction)."""
        self.conn.execute(f"DELETE FROM messages WHERE id = ? AND status = '{MessageStatus.QUARANTINED}'", (row_id,))

    def quarantined(self) -> list[dict[str, Any]]:
        return self._all(
            f"SELECT id, mailbox, folder, substr(message_id, 1, {LISTED_CHARS}) AS message_id, "
            f"substr(sender, 1, {LISTED_CHARS}) AS sender, substr(subject, 1, {LISTED_CHARS}) AS subject, "
            f"substr(error, 1, {LISTED_CHARS}) AS error, retries, received_at, size "
            f"FROM messages WHERE status = '{MessageStatus.QUARANTINED}' ORDER BY id"
        )

    def quarantined_page(self, limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Quarantined messages, newest first, and how many there are (uses ``messages_status``)."""
        total = int(
            self.conn.execute(f"SELECT COUNT(*) FROM messages WHERE status = '{MessageStatus.QUARANTINED}'").fetchone()[0]
        )
        rows = self._all(
            f"SELECT id, mailbox, folder, substr(message_id, 1, {LISTED_CHARS}) AS message_id, "
            f"substr(sender, 1, {LISTED_CHARS}) AS sender, substr(subject, 1, {LISTED_CHARS}) AS subject, "
            f"substr(error, 1, {LISTED_CHARS}) AS error, retries, received_at, size "
            f"FROM messages WHERE status = '{MessageStatus.QUARANTINED}' ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return rows, total

    def case_messages(self, case_id: int) -> list[StoredMessage]:
        """Every message on the case (automatic ones too), by date."""
        rows = self._all("SELECT * FROM messages WHERE case_id = ? ORDER BY date, id", (case_id,))
        return [StoredMessage.from_row(r) for r in rows]

    # "The customer's own messages on a case", for both of the next two: triaged (not automatic, not
    # quarantined), received after a time ("": all), oldest first. ``m`` is the messages table.
    _CUSTOMER_OWN = (f"m.case_id = ? AND m.status = '{MessageStatus.TRIAGED}' AND m.received_at > ? "
                     "ORDER BY m.received_at, m.id")

    def customer_messages(self, case_id: int, since: str | None = None) -> list[StoredMessage]:
        """The customer's own (triaged, not automatic) messages on a case, oldest first."""
        rows = self._all(f"SELECT m.* FROM messages m WHERE {self._CUSTOMER_OWN}", (case_id, since or ""))
        return [StoredMessage.from_row(r) for r in rows]

    def customer_facts(self, case_id: int) -> list[dict[str, Any]]:
        """The detected facts of each of ``customer_messages(case_id)`` that has a detection, in one query."""
        rows = self.conn.execute(
            f"SELECT d.facts FROM messages m JOIN detections d ON d.message_id = m.id WHERE {self._CUSTOMER_OWN}",
            (case_id, ""),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

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
                "asks": _dumps(d.get("asks", [])),
            },
        )

    def detection_for(self, message_row: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM detections WHERE message_id = ?", (message_row,))
        if row:
            for key in ("archetypes", "evidence", "facts", "asks"):
                row[key] = json.loads(row[key])
        return row

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

    def report_detections(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Detections of customer messages received in [since, until), with sender and case."""
        rows = self._all(
            "SELECT d.*, m.case_id, m.sender, m.received_at FROM detections d "
            "JOIN messages m ON m.id = d.message_id "
            f"WHERE m.status = '{MessageStatus.TRIAGED}' AND m.received_at >= ? AND m.received_at < ? ORDER BY m.id",
            (iso(since), iso(until)),
        )
        for row in rows:
            for key in ("archetypes", "evidence", "facts"):
                row[key] = json.loads(row[key])
        return rows

    def answers_from(self, case_id: int, sender: str, since: datetime) -> list[tuple[datetime, str]]:
        """(received, text) of the case's messages from ``sender`` received from ``since`` on."""
        rows = self.conn.execute(
            "SELECT received_at, text, full_text FROM messages WHERE case_id = ? AND sender = ? "
            f"AND received_at >= ? AND status != '{MessageStatus.QUARANTINED}' ORDER BY received_at, id",
            (case_id, sender, iso(since)),
        ).fetchall()
        return [(datetime.fromisoformat(r[0]), r[1] or r[2]) for r in rows]
