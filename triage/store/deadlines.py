"""The ``deadlines`` table: first responses, promises and check-ins owed to customers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from triage.store.base import StoreBase, iso
from triage.store.cases import CaseStatus
from triage.store.drafts import IN_QUEUE_SQL


class DeadlineKind(StrEnum):
    """``deadlines.kind``."""

    FIRST_RESPONSE = "first-response"  # the first reply owed on a new case
    PROMISE = "promise"  # something an agent promised the customer by a date
    FOLLOW_UP = "follow-up"  # the check-in after a resolution


class DeadlineClosed(StrEnum):
    """``deadlines.closed``: why a deadline stopped being open (NULL when met by a reply)."""

    KEPT = "kept"  # a promise kept
    RESOLVED = "resolved"  # the case was resolved while it was open
    CANCELLED = "cancelled"  # no longer owed (the customer wrote first, the case was reopened)
    DRAFTED = "drafted"  # a check-in's draft was written



@dataclass(frozen=True, slots=True)
class Deadline:
    """A stored deadline (a row of ``deadlines``); times are ISO 8601 UTC text, as stored."""

    id: int
    case_id: int
    kind: DeadlineKind
    due: str
    what: str  # what was promised ("" for the others)
    created_at: str
    done_at: str | None  # None while open
    reminded_at: str | None
    escalated_at: str | None
    paused_at: str | None  # while the case waits on the customer
    closed: str | None  # why it closed: a DeadlineClosed value, or None when a reply met it
    reminders: int
    created_by: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Deadline:
        return cls(**{**row, "kind": DeadlineKind(row["kind"])})


@dataclass(frozen=True, slots=True)
class CaseDeadline(Deadline):
    """A deadline with its case, its customer and the case's newest drafts (what remind and status need)."""

    subject: str
    level: str
    archetypes: list[str]
    case_status: CaseStatus
    resolved_at: str | None
    customer_id: int
    customer: str  # address
    customer_name: str
    pending_draft: int | None  # the newest draft in the queue
    last_draft: int | None  # the newest draft, whatever its state
    last_draft_status: str | None = None  # its state (a DraftStatus value)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CaseDeadline:
        return cls(**{**row, "kind": DeadlineKind(row["kind"]), "case_status": CaseStatus(row["case_status"]),
                      "archetypes": json.loads(row["archetypes"])})

class DeadlineTable(StoreBase):
    """Deadlines, open and closed."""

    def add_deadline(self, case_id: int, kind: str, due: datetime, what: str, when: datetime) -> int:
        return self._insert(
            "deadlines",
            {"case_id": case_id, "kind": kind, "due": iso(due), "what": what, "created_at": iso(when)},
        )

    def open_deadline(self, case_id: int, kind: DeadlineKind) -> Deadline | None:
        row = self._one("SELECT * FROM deadlines WHERE case_id = ? AND kind = ? AND done_at IS NULL", (case_id, kind))
        return Deadline.from_row(row) if row else None

    def complete_deadlines(self, case_id: int, kind: str, when: datetime) -> None:
        self.conn.execute(
            "UPDATE deadlines SET done_at = ? WHERE case_id = ? AND kind = ? AND done_at IS NULL",
            (iso(when), case_id, kind),
        )

    def deadline_rows(
        self,
        *,
        open_only: bool = True,
        case_id: int | None = None,
        kinds: Iterable[str] = (),
        closed: str | None = None,
        unreminded: bool = False,
    ) -> list[CaseDeadline]:
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
                      AND d.status IN {IN_QUEUE_SQL}) AS pending_draft,
                   (SELECT MAX(d.id) FROM drafts d WHERE d.case_id = dl.case_id) AS last_draft,
                   (SELECT d.status FROM drafts d WHERE d.case_id = dl.case_id ORDER BY d.id DESC LIMIT 1)
                      AS last_draft_status
            FROM deadlines dl
            JOIN cases c ON c.id = dl.case_id
            JOIN customers cu ON cu.id = c.customer_id
            WHERE {' AND '.join(where)}
            ORDER BY dl.due, dl.id
            """,
            params,
        )
        return [CaseDeadline.from_row(r) for r in rows]

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

    def report_deadlines(self, kinds: Iterable[DeadlineKind]) -> list[Deadline]:
        kinds = list(kinds)
        rows = self._all(
            f"SELECT * FROM deadlines WHERE kind IN ({', '.join('?' for _ in kinds)}) ORDER BY due, id", kinds
        )
        return [Deadline.from_row(r) for r in rows]
