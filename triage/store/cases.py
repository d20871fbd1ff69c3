"""The ``cases`` table (one customer's complaint, across messages) and the ``customers`` it belongs to."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from triage.store.base import StoreBase, _dumps, iso
from triage.store.messages import MessageStatus


class CaseStatus(StrEnum):
    """``cases.status``: open -> waiting (on the customer) -> open ... -> resolved | closed."""

    OPEN = "open"
    WAITING = "waiting"  # an agent asked the customer something; deadlines are paused
    RESOLVED = "resolved"  # an agent resolved it; a check-in may follow
    CLOSED = "closed"  # the customer said thanks, or the case ended without a resolution

    @property
    def finished(self) -> bool:
        """Resolved or closed: a new customer message reopens it."""
        return self in (CaseStatus.RESOLVED, CaseStatus.CLOSED)


@dataclass(frozen=True, slots=True)
class Case:
    """A stored case (a row of ``cases``); times are ISO 8601 UTC text, as stored."""

    id: int
    customer_id: int
    subject: str
    status: CaseStatus
    score: float  # of the latest customer message
    level: str  # a detect.LEVELS name, of the latest customer message
    archetypes: list[str]  # names, of the latest customer message
    root_cause: str | None
    outcome: str | None  # resolved | unresolvable, once resolved
    opened_at: str
    first_response_at: str | None
    resolved_at: str | None
    updated_at: str
    linked_case: int | None = None  # another customer's case this one's thread named (never joined)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Case:
        return cls(**{**row, "status": CaseStatus(row["status"]), "archetypes": json.loads(row["archetypes"])})


class CaseTable(StoreBase):
    """Customers and their cases."""

    def customer(self, address: str, name: str, when: datetime, complaint: bool) -> int:
        """Insert or update the customer at ``address`` (or the one the owner tied it to); return its id."""
        linked = self.linked_customer(address)
        if linked is not None:
            self.conn.execute(
                "UPDATE customers SET messages = messages + 1, complaints = complaints + ?, "
                "last_seen = MAX(last_seen, ?) WHERE id = ?",
                (int(complaint), iso(when), linked),
            )
            return linked
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

    # -- addresses the owner tied to a customer (``customer_addresses``) ---------

    def customer_id(self, address: str) -> int | None:
        """The customer stored at ``address`` (its own row, not a linked address)."""
        row = self.conn.execute("SELECT id FROM customers WHERE address = ?", (address.strip().lower(),)).fetchone()
        return int(row[0]) if row else None

    def linked_customer(self, address: str) -> int | None:
        """The customer the owner tied ``address`` to (``triage customer link``), if any."""
        row = self.conn.execute(
            "SELECT customer_id FROM customer_addresses WHERE address = ?", (address.strip().lower(),)
        ).fetchone()
        return int(row[0]) if row else None

    def link_address(self, address: str, customer_id: int, agent: str, when: datetime) -> None:
        self.conn.execute(
            "INSERT INTO customer_addresses (address, customer_id, linked_by, linked_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(address) DO UPDATE SET customer_id = excluded.customer_id, "
            "linked_by = excluded.linked_by, linked_at = excluded.linked_at",
            (address.strip().lower(), customer_id, agent, iso(when)),
        )

    def unlink_address(self, address: str) -> bool:
        cur = self.conn.execute("DELETE FROM customer_addresses WHERE address = ?", (address.strip().lower(),))
        return cur.rowcount > 0

    def linked_addresses(self, customer_id: int) -> list[str]:
        return [
            str(r[0])
            for r in self.conn.execute(
                "SELECT address FROM customer_addresses WHERE customer_id = ? ORDER BY address", (customer_id,)
            )
        ]

    # -- threading ------------------------------------------------------------

    def thread_cases(self, mailbox: str, ids: Iterable[str]) -> list[int]:
        """The cases a reply's Message-IDs name, nearest first: stored messages, then drafts we made.

        Only ids we really hold count; who may join which of them is the caller's decision.
        """
        found: list[int] = []
        for mid in ids:
            rows = self.conn.execute(
                "SELECT case_id FROM messages WHERE mailbox = ? AND message_id = ? AND case_id IS NOT NULL "
                "UNION ALL SELECT case_id FROM drafts WHERE outgoing_message_id = ?",
                (mailbox, mid, mid),
            ).fetchall()
            found.extend(int(r[0]) for r in rows if int(r[0]) not in found)
        return found

    def case_customer(self, case_id: int) -> tuple[int, str] | None:
        """(customer id, address) of a case's customer."""
        row = self.conn.execute(
            "SELECT cu.id, cu.address FROM cases c JOIN customers cu ON cu.id = c.customer_id WHERE c.id = ?",
            (case_id,),
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def case_exists(self, case_id: int) -> bool:
        return self.conn.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is not None

    def open_case(self, customer_id: int, subject: str, when: datetime, linked_case: int | None = None) -> int:
        """A new open case; ``linked_case``: the other customer's case its thread named."""
        return self._insert(
            "cases",
            {
                "customer_id": customer_id,
                "subject": subject,
                "status": str(CaseStatus.OPEN),
                "opened_at": iso(when),
                "updated_at": iso(when),
                "linked_case": linked_case,
            },
        )

    def case(self, case_id: int) -> Case | None:
        row = self._one("SELECT * FROM cases WHERE id = ?", (case_id,))
        return Case.from_row(row) if row else None

    def update_case(self, case_id: int, **fields: Any) -> None:
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [_dumps(v) if isinstance(v, (list, tuple, dict)) else v for v in fields.values()]
        self.conn.execute(f"UPDATE cases SET {sets} WHERE id = ?", [*values, case_id])

    def customer_cases(self, customer_id: int) -> list[Case]:
        rows = self._all("SELECT * FROM cases WHERE customer_id = ? ORDER BY opened_at DESC", (customer_id,))
        return [Case.from_row(r) for r in rows]

    def earlier_cases(self, case: Case) -> list[Case]:
        """The customer's cases opened before ``case``, latest first (never ``case`` or a later one)."""
        rows = self._all(
            "SELECT * FROM cases WHERE customer_id = ? AND id != ? AND (opened_at < ? OR (opened_at = ? AND id < ?)) "
            "ORDER BY opened_at DESC, id DESC",
            (case.customer_id, case.id, case.opened_at, case.opened_at, case.id),
        )
        return [Case.from_row(r) for r in rows]

    def report_cases(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Cases whose first customer message arrived in [since, until), with their customer."""
        rows = self._all(
            f"""
            SELECT * FROM (
                SELECT c.*, cu.address AS customer, cu.name AS customer_name,
                       COALESCE((SELECT MIN(m.received_at) FROM messages m
                                 WHERE m.case_id = c.id AND m.status = '{MessageStatus.TRIAGED}'), c.opened_at) AS started_at
                FROM cases c JOIN customers cu ON cu.id = c.customer_id)
            WHERE started_at >= ? AND started_at < ?
            ORDER BY started_at, id
            """,
            (iso(since), iso(until)),
        )
        for row in rows:
            row["archetypes"] = json.loads(row["archetypes"])
        return rows
