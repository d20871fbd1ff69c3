"""The queue: drafts waiting for an agent, with their case, customer, due date and owner, most urgent first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from triage.detect import LEVELS
from triage.store.base import LISTED_CHARS, iso
from triage.store.drafts import IN_QUEUE_SQL, DraftKind, DraftStatus
from triage.store.events import EventTable

#: Most urgent level first (0) to calm; levels are constants, never user text in SQL.
_LEVEL_RANK = (
    "CASE c.level "
    + " ".join(f"WHEN '{level}' THEN {rank}" for rank, level in enumerate(reversed(LEVELS)))
    + f" ELSE {len(LEVELS)} END"
)


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One draft in the queue with its case, customer, earliest open deadline and owner."""

    id: int  # the draft
    case: int
    template: str
    created_at: str
    status: DraftStatus
    error: str
    kind: DraftKind
    level: str
    score: float
    archetypes: list[str]
    subject: str  # the case's
    customer: str  # address
    customer_name: str
    due: str | None  # the case's earliest open deadline
    owner: str | None  # the agent of the case's latest assignment


class QueueTable(EventTable):
    """The queue the CLI and the review page show: one query, paged or whole."""

    def queue(self) -> list[QueueRow]:
        """The whole queue, most urgent first (the CLI's ``triage queue``)."""
        return self.queue_page(limit=None)[0]

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
        limit: int | None = 100,
        offset: int = 0,
    ) -> tuple[list[QueueRow], int]:
        """One page of the queue (pending, approved, sending drafts) and the total matching.

        ``overdue_at`` keeps only drafts whose case has an open deadline before it;
        ``sort`` is a key of ``QUEUE_SORTS`` (unknown keys raise ``KeyError``);
        ``limit`` None is the whole queue.
        """
        order = self.QUEUE_SORTS[sort]
        if descending:
            order = ", ".join(  # flip every key, but drafts without a deadline stay last
                part if part.endswith("IS NULL") else part[: -len(" DESC")] if part.endswith(" DESC")
                else part + " DESC"
                for part in order.split(", ")
            )
        where = [f"d.status IN {IN_QUEUE_SQL}"]
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
            SELECT d.id, {_LEVEL_RANK} AS level_rank, dl.due AS due
            FROM drafts d
            JOIN cases c ON c.id = d.case_id
            JOIN customers cu ON cu.id = c.customer_id
            LEFT JOIN (SELECT case_id, MIN(due) AS due FROM deadlines
                       WHERE done_at IS NULL GROUP BY case_id) dl ON dl.case_id = d.case_id
            WHERE {sql_where}
            ORDER BY {order}
            LIMIT ? OFFSET ?
            """,
            [*params, -1 if limit is None else limit, offset],
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
        ids = list(due)
        found: dict[int, dict[str, Any]] = {}
        for i in range(0, len(ids), 500):  # the whole queue may be more than SQLite's variable limit
            chunk = ids[i : i + 500]
            for row in self._all(
                f"""
                SELECT d.id, d.case_id AS "case", d.template, d.created_at, d.status, d.error, d.kind,
                       c.level, c.score, c.archetypes, substr(c.subject, 1, {LISTED_CHARS}) AS subject,
                       substr(cu.address, 1, {LISTED_CHARS}) AS customer,
                       substr(cu.name, 1, {LISTED_CHARS}) AS customer_name
                FROM drafts d
                JOIN cases c ON c.id = d.case_id
                JOIN customers cu ON cu.id = c.customer_id
                WHERE d.id IN ({", ".join("?" for _ in chunk)})
                """,
                chunk,
            ):
                found[row["id"]] = row
        owners = self.owners([int(r["case"]) for r in found.values()])
        rows = [
            QueueRow(
                **{**hit, "status": DraftStatus(hit["status"]), "kind": DraftKind(hit["kind"]),
                   "archetypes": json.loads(hit["archetypes"]), "due": due[i], "owner": owners.get(hit["case"])}
            )
            for i in ids
            if (hit := found.get(i)) is not None
        ]
        return rows, total

    def queue_archetypes(self) -> list[str]:
        """Archetype names on cases that have a draft in the queue (for the filter)."""
        names: set[str] = set()
        for (value,) in self.conn.execute(
            "SELECT DISTINCT c.archetypes FROM drafts d JOIN cases c ON c.id = d.case_id "
            f"WHERE d.status IN {IN_QUEUE_SQL}"
        ):
            names.update(str(a) for a in json.loads(value or "[]"))
        return sorted(names)
