"""Mail, customers, cases, detections, drafts, deadlines and the audit log: what poll and review write."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from triage.store.base import LISTED_CHARS, NewMessage, StoreBase, _dumps, iso, utcnow


class MailStore(StoreBase):
    """Queries of the poll pipeline and of agents' actions."""

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
            f"SELECT id, mailbox, folder, substr(message_id, 1, {LISTED_CHARS}) AS message_id, "
            f"substr(sender, 1, {LISTED_CHARS}) AS sender, substr(subject, 1, {LISTED_CHARS}) AS subject, "
            f"substr(error, 1, {LISTED_CHARS}) AS error, retries, received_at "
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
                "asks": _dumps(d.get("asks", [])),
                "rules_version": d.get("rules_version", ""),
                "topic": d.get("topic") or "",
            },
        )

    def detection_for(self, message_row: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM detections WHERE message_id = ?", (message_row,))
        if row:
            for key in ("archetypes", "evidence", "facts", "asks"):
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
            f"""
            SELECT d.id, d.case_id AS "case", substr(d.subject, 1, {LISTED_CHARS}) AS draft_subject, d.template,
                   d.created_at, d.status, d.error, d.kind,
                   c.level, c.score, c.archetypes, substr(c.subject, 1, {LISTED_CHARS}) AS subject,
                   substr(cu.address, 1, {LISTED_CHARS}) AS customer,
                   substr(cu.name, 1, {LISTED_CHARS}) AS customer_name,
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


    # -- auto-responder loops (triage.automatic.is_loop; flagged by events) ----------

    def sent_times(self, case_id: int, since: str | None = None) -> list[datetime]:
        """When each of the case's sent drafts went out (after ``since``), oldest first."""
        rows = self.conn.execute(
            "SELECT sent_at FROM drafts WHERE case_id = ? AND status = 'sent' AND sent_at IS NOT NULL "
            "AND sent_at > ? ORDER BY sent_at, id",
            (case_id, since or ""),
        ).fetchall()
        return [datetime.fromisoformat(r[0]) for r in rows]

    def answers_from(self, case_id: int, sender: str, since: datetime) -> list[tuple[datetime, str]]:
        """(received, text) of the case's messages from ``sender`` received from ``since`` on."""
        rows = self.conn.execute(
            "SELECT received_at, text, full_text FROM messages WHERE case_id = ? AND sender = ? "
            "AND received_at >= ? AND status != 'quarantined' ORDER BY received_at, id",
            (case_id, sender, iso(since)),
        ).fetchall()
        return [(datetime.fromisoformat(r[0]), r[1] or r[2]) for r in rows]

    def loop_flags(self, case_ids: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        """Cases flagged "possible auto-responder loop" and not cleared since: case id ->
        ``{"since", "held", "last"}`` (first flag, messages held without a draft, latest)."""
        where, params = "", []
        if case_ids is not None:
            ids = list(case_ids)
            if not ids:
                return {}
            where, params = f" AND case_id IN ({', '.join('?' for _ in ids)})", ids
        flags: dict[int, dict[str, Any]] = {}
        for case_id, kind, at in self.conn.execute(
            "SELECT case_id, kind, at FROM events WHERE kind IN ('loop-suspected', 'loop-cleared') "
            f"AND case_id IS NOT NULL{where} ORDER BY id",
            params,
        ):
            if kind == "loop-cleared":
                flags.pop(case_id, None)
                continue
            flag = flags.setdefault(case_id, {"since": at, "held": 0})
            flag["held"] += 1
            flag["last"] = at
        return flags

    def loop_cleared_at(self, case_id: int) -> str | None:
        row = self.conn.execute(
            "SELECT MAX(at) FROM events WHERE case_id = ? AND kind = 'loop-cleared'", (case_id,)
        ).fetchone()
        return row[0] if row else None

    def loop_cases(self) -> list[dict[str, Any]]:
        """Every flagged case (``loop_flags``) with its customer and subject, latest flag first."""
        flags = self.loop_flags()
        if not flags:
            return []
        marks = ", ".join("?" for _ in flags)
        rows = self._all(
            f"SELECT c.id AS \"case\", substr(c.subject, 1, {LISTED_CHARS}) AS subject, c.status, "
            f"substr(cu.address, 1, {LISTED_CHARS}) AS customer, "
            f"(SELECT MAX(d.id) FROM drafts d WHERE d.case_id = c.id) AS draft FROM cases c "
            f"JOIN customers cu ON cu.id = c.customer_id WHERE c.id IN ({marks})",
            list(flags),
        )
        for row in rows:
            row.update(flags[row["case"]])
        return sorted(rows, key=lambda r: (r["last"], r["case"]), reverse=True)
