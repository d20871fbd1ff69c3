"""The ``drafts`` table: replies and check-ins, and the states an agent moves them through."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class NewDraft:
    """A draft about to be stored: a reply (poll) or a check-in (remind), always pending."""

    case_id: int
    message_id: int | None  # messages.id of the customer's message it answers
    kind: DraftKind
    template: str
    to_address: str
    subject: str
    body: str
    lint: tuple[dict[str, Any], ...]  # the tone findings, as Finding.to_dict()
    outgoing_message_id: str
    created_at: datetime
    cc: tuple[str, ...] = ()  # the original's other recipients, kept on the reply (reply-all)


@dataclass(frozen=True, slots=True)
class Draft:
    """A stored draft (a row of ``drafts``); times are ISO 8601 UTC text, as stored."""

    id: int
    case_id: int
    message_id: int | None  # messages.id of the message it answers
    kind: DraftKind
    template: str
    to_address: str
    subject: str
    body: str
    lint: list[dict[str, Any]]  # tone findings, decoded
    status: DraftStatus
    outgoing_message_id: str
    created_at: str
    updated_at: str
    edited_by: str | None
    approved_by: str | None
    approved_at: str | None
    sent_at: str | None
    error: str
    override_reason: str | None
    cc: list[str]  # Cc addresses of the reply, decoded

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Draft:
        return cls(**{**row, "kind": DraftKind(row["kind"]), "status": DraftStatus(row["status"]),
                      "lint": json.loads(row["lint"]), "cc": json.loads(row.get("cc") or "[]")})

    @property
    def in_queue(self) -> bool:
        """Waiting for an agent (pending) or for ``send`` (approved, sending)."""
        return self.status in IN_QUEUE


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

    def insert_draft(self, new: NewDraft) -> int:
        return self._insert(
            "drafts",
            {
                "case_id": new.case_id,
                "message_id": new.message_id,
                "kind": str(new.kind),
                "template": new.template,
                "to_address": new.to_address,
                "subject": new.subject,
                "body": new.body,
                "lint": _dumps(list(new.lint)),
                "status": str(DraftStatus.PENDING),
                "outgoing_message_id": new.outgoing_message_id,
                "cc": _dumps(list(new.cc)),
                "created_at": iso(new.created_at),
                "updated_at": iso(new.created_at),
            },
        )

    def draft(self, draft_id: int) -> Draft | None:
        row = self._one("SELECT * FROM drafts WHERE id = ?", (draft_id,))
        return Draft.from_row(row) if row else None

    def update_draft(self, draft_id: int, **fields: Any) -> None:
        for key in ("lint", "cc"):
            if key in fields:
                fields[key] = _dumps(list(fields[key]))
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.conn.execute(f"UPDATE drafts SET {sets} WHERE id = ?", [*fields.values(), draft_id])

    def drafts_to_send(self) -> list[int]:
        """Approved drafts not yet sent, and drafts a crash left in 'sending'."""
        rows = self.conn.execute(
            f"SELECT id FROM drafts WHERE status IN ('{DraftStatus.APPROVED}', '{DraftStatus.SENDING}') "
            "ORDER BY approved_at, id"
        ).fetchall()
        return [int(r[0]) for r in rows]

    def case_drafts(self, case_id: int) -> list[Draft]:
        return [Draft.from_row(r) for r in self._all("SELECT * FROM drafts WHERE case_id = ? ORDER BY id", (case_id,))]

    def report_drafts(self, kind: DraftKind) -> list[Draft]:
        return [Draft.from_row(r) for r in self._all("SELECT * FROM drafts WHERE kind = ?", (kind,))]

    def sent_replies(self, case_id: int, since: str | None = None) -> list[tuple[datetime, str]]:
        """(when it went out, body) of each of the case's sent drafts (after ``since``), oldest first."""
        rows = self.conn.execute(
            f"SELECT sent_at, body FROM drafts WHERE case_id = ? AND status = '{DraftStatus.SENT}' AND sent_at IS NOT NULL "
            "AND sent_at > ? ORDER BY sent_at, id",
            (case_id, since or ""),
        ).fetchall()
        return [(datetime.fromisoformat(r[0]), r[1]) for r in rows]
