"""The queue: drafts waiting for an agent, with their case, customer, due date and owner, most urgent first."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from triage.store.base import LISTED_CHARS, iso
from triage.store.drafts import IN_QUEUE_SQL
from triage.store.events import EventTable


class QueueTable(EventTable):
    """The queue the CLI and the review page show."""

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
            WHERE d.status IN {IN_QUEUE_SQL}
            ORDER BY CASE c.level WHEN 'furious' THEN 0 WHEN 'angry' THEN 1
                     WHEN 'annoyed' THEN 2 ELSE 3 END,
                     due IS NULL, due, d.created_at, d.id
            """
        )
        for row in rows:
            row["archetypes"] = json.loads(row["archetypes"])
        return rows

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
                       c.level, c.score, c.archetypes, substr(c.subject, 1, {LISTED_CHARS}) AS subject,
                       substr(cu.address, 1, {LISTED_CHARS}) AS customer,
                       substr(cu.name, 1, {LISTED_CHARS}) AS customer_name
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
            f"WHERE d.status IN {IN_QUEUE_SQL}"
        ):
            names.update(str(a) for a in json.loads(value or "[]"))
        return sorted(names)
