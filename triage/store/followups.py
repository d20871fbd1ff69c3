"""Queries of follow-ups, reminders, status and the owner's report."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from triage.store.base import iso
from triage.store.mail import MailStore


class FollowupStore(MailStore):
    """Deadlines, reminders, status counts and the owner's report figures."""

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

