"""The ``drafts`` table: replies and check-ins, and the states an agent moves them through."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from triage.store.base import StoreBase, _dumps, iso


class DraftStatus(StrEnum):
    """``drafts.status``: the state machine an agent (and ``send``) moves a draft through.

    pending -> approved -> sending -> sent; pending -> rejected; pending ->
    superseded (a newer message on the case replaced it). A send that fails or
    is held goes back to approved; a crash mid-send leaves it in sending, and
    the next ``send`` decides from the audit log whether it went out.
    """

    PENDING = "pending"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


#: States of drafts in the queue (waiting for an agent or for ``send``).
IN_QUEUE = (DraftStatus.PENDING, DraftStatus.APPROVED, DraftStatus.SENDING)
#: The same, for ``status IN (...)`` in SQL (constants, never user text).
IN_QUEUE_SQL = "(" + ", ".join(f"'{s}'" for s in IN_QUEUE) + ")"


class DraftKind(StrEnum):
    """``drafts.kind``."""

    REPLY = "reply"  # a reply to a customer's message
    CHECK_IN = "check-in"  # asking, after a resolution, whether it stayed solved


class DraftTable(StoreBase):
    """Drafts and their states."""

    def supersede_pending(self, case_id: int, when: datetime) -> list[int]:
        ids = [
            int(r[0])
            for r in self.conn.execute(
                f"SELECT id FROM drafts WHERE case_id = ? AND status = '{DraftStatus.PENDING}'", (case_id,)
            ).fetchall()
        ]
        if ids:
            self.conn.execute(
                f"UPDATE drafts SET status = '{DraftStatus.SUPERSEDED}', updated_at = ? "
                f"WHERE case_id = ? AND status = '{DraftStatus.PENDING}'",
                (iso(when), case_id),
            )
        return ids

    def supersede_pending_kind(self, case_id: int, kind: str, when: datetime) -> list[int]:
        """Supersede the case's pending drafts of one kind (e.g. a check-in the customer overtook)."""
        ids = [
            int(r[0])
            for r in self.conn.execute(
                f"SELECT id FROM drafts WHERE case_id = ? AND kind = ? AND status = '{DraftStatus.PENDING}'",
                (case_id, kind),
            ).fetchall()
        ]
        for draft_id in ids:
            self.conn.execute(
                f"UPDATE drafts SET status = '{DraftStatus.SUPERSEDED}', updated_at = ? WHERE id = ?",
                (iso(when), draft_id),
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
            f"SELECT id FROM drafts WHERE status IN ('{DraftStatus.APPROVED}', '{DraftStatus.SENDING}') "
            "ORDER BY approved_at, id"
        ).fetchall()
        return [int(r[0]) for r in rows]

    def case_drafts(self, case_id: int) -> list[dict[str, Any]]:
        return self._all(
            "SELECT id, status, template, created_at, approved_by, sent_at, error FROM drafts "
            "WHERE case_id = ? ORDER BY id",
            (case_id,),
        )

    def report_drafts(self, kind: str) -> list[dict[str, Any]]:
        return self._all(
            "SELECT id, case_id, status, created_at, sent_at, outgoing_message_id FROM drafts WHERE kind = ?", (kind,)
        )

    def sent_times(self, case_id: int, since: str | None = None) -> list[datetime]:
        """When each of the case's sent drafts went out (after ``since``), oldest first."""
        rows = self.conn.execute(
            f"SELECT sent_at FROM drafts WHERE case_id = ? AND status = '{DraftStatus.SENT}' AND sent_at IS NOT NULL "
            "AND sent_at > ? ORDER BY sent_at, id",
            (case_id, since or ""),
        ).fetchall()
        return [datetime.fromisoformat(r[0]) for r in rows]
