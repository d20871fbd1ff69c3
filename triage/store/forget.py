"""Forgetting: erase a customer (a data-deletion request) or purge old resolved cases.

Both delete rows outright, in one transaction: the customer's messages (raw
bytes included, and their words in the search index), their detections and
labels, the cases with their drafts, deadlines and audit events, and the
customer row. What remains is one audit
event that says how much was erased and holds no personal data (no
address, no name, no subject, no ids of erased rows). ``report`` reads only
cases that still exist, so its totals stay consistent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from triage.store.base import iso
from triage.store.cases import CaseStatus
from triage.store.events import EventTable


@dataclass(frozen=True, slots=True)
class Erased:
    """How many rows of each kind were deleted."""

    customers: int = 0
    cases: int = 0
    messages: int = 0
    drafts: int = 0
    detections: int = 0
    labels: int = 0
    deadlines: int = 0
    events: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def nothing(self) -> bool:
        return not any(self.as_dict().values())


def _marks(ids: list[int]) -> str:
    return ", ".join("?" for _ in ids)


class ForgetTable(EventTable):
    """Deleting a customer's data, or old finished cases, with their dependent rows."""

    def forget_customer(self, address: str, actor: str, now: datetime) -> Erased:
        """Erase everything stored about ``address`` (any case); call inside ``write()``.

        Messages are matched by customer and by sender address (a quarantined
        or automatic message has no customer), case-insensitively.
        """
        key = address.strip().lower()
        customers = [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM customers WHERE lower(address) = ?", (key,))]
        cases = [int(r[0]) for r in self.conn.execute(
            f"SELECT id FROM cases WHERE customer_id IN ({_marks(customers)})", customers)] if customers else []
        messages = {int(r[0]) for r in self.conn.execute(
            "SELECT id FROM messages WHERE lower(sender) = ?", (key,))}
        if customers:
            messages |= {int(r[0]) for r in self.conn.execute(
                f"SELECT id FROM messages WHERE customer_id IN ({_marks(customers)})", customers)}
        for i in range(0, len(cases), 500):
            chunk = cases[i : i + 500]
            messages |= {int(r[0]) for r in self.conn.execute(
                f"SELECT id FROM messages WHERE case_id IN ({_marks(chunk)})", chunk)}
        self.conn.execute("DELETE FROM customer_addresses WHERE address = ?", (key,))  # tied to a customer
        erased = self._erase(sorted(cases), sorted(messages), customers)
        self.event("customer-forgotten", actor, now, **erased.as_dict())
        return erased

    def purge_resolved(self, before: datetime, actor: str, now: datetime) -> Erased:
        """Erase finished cases resolved before ``before``, and customers left with nothing.

        Call inside ``write()``. A customer's messages outside those cases stay.
        """
        cases = [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM cases WHERE status IN (?, ?) AND COALESCE(resolved_at, updated_at) < ?",
            (CaseStatus.RESOLVED, CaseStatus.CLOSED, iso(before)))]
        if not cases:
            return Erased()
        messages = []
        for i in range(0, len(cases), 500):
            chunk = cases[i : i + 500]
            messages += [int(r[0]) for r in self.conn.execute(
                f"SELECT id FROM messages WHERE case_id IN ({_marks(chunk)})", chunk)]
        owners = sorted({int(r[0]) for i in range(0, len(cases), 500) for r in self.conn.execute(
            f"SELECT customer_id FROM cases WHERE id IN ({_marks(cases[i:i + 500])})", cases[i : i + 500])})
        erased = self._erase(cases, messages, [])
        emptied = [c for c in owners if not self.conn.execute(
            "SELECT 1 FROM cases WHERE customer_id = ? UNION ALL SELECT 1 FROM messages WHERE customer_id = ? LIMIT 1",
            (c, c)).fetchone()]
        self._delete("customer_addresses", "customer_id", emptied)
        gone = self._delete("customers", "id", emptied)
        erased = Erased(**{**erased.as_dict(), "customers": gone})
        self.event("retention-purged", actor, now, before=iso(before), **erased.as_dict())
        return erased

    def _erase(self, cases: list[int], messages: list[int], customers: list[int]) -> Erased:
        drafts = self._ids("drafts", "case_id", cases) | self._ids("drafts", "message_id", messages)
        counts: dict[str, Any] = {}
        counts["events"] = (self._delete("events", "case_id", cases) + self._delete("events", "message_id", messages)
                            + self._delete("events", "draft_id", sorted(drafts)))
        counts["labels"] = self._delete("labels", "message_id", messages)
        counts["detections"] = self._delete("detections", "message_id", messages)
        counts["drafts"] = self._delete("drafts", "id", sorted(drafts))
        counts["deadlines"] = self._delete("deadlines", "case_id", cases)
        counts["messages"] = self._delete("messages", "id", messages)  # the search index follows by trigger
        if counts["messages"]:
            self._compact_search()
        for i in range(0, len(cases), 500):  # a stranger's case linked to an erased one keeps no pointer to it
            chunk = cases[i : i + 500]
            self.conn.execute(f"UPDATE cases SET linked_case = NULL WHERE linked_case IN ({_marks(chunk)})", chunk)
        counts["cases"] = self._delete("cases", "id", cases)
        self._delete("customer_addresses", "customer_id", customers)
        counts["customers"] = self._delete("customers", "id", customers)
        return Erased(**counts)

    def _compact_search(self) -> None:
        """Merge the search index so no trace of the erased messages' words is left in it."""
        self.conn.execute("INSERT INTO message_search(message_search) VALUES ('optimize')")

    def _ids(self, table: str, column: str, values: list[int]) -> set[int]:
        found: set[int] = set()
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            found |= {int(r[0]) for r in self.conn.execute(
                f"SELECT id FROM {table} WHERE {column} IN ({_marks(chunk)})", chunk)}
        return found

    def _delete(self, table: str, column: str, values: list[int]) -> int:
        """Delete rows whose ``column`` is in ``values`` (table and column are constants); the count."""
        total = 0
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            total += self.conn.execute(f"DELETE FROM {table} WHERE {column} IN ({_marks(chunk)})", chunk).rowcount
        return total
