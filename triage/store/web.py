"""Queries of the review page (triage.web): queue pages, agents, assignments, labels."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from triage.store.base import LISTED_CHARS, iso
from triage.store.mail import MailStore


class ReviewStore(MailStore):
    """Queue pages, agents, assignments and labels for the review page."""

    #: ``sort`` keys of ``queue_page`` -> ORDER BY (ascending); never user text in SQL.
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
        where = ["d.status IN ('pending', 'approved', 'sending')"]
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
            "WHERE d.status IN ('pending', 'approved', 'sending')"
        ):
            names.update(str(a) for a in json.loads(value or "[]"))
        return sorted(names)

    def owners(self, case_ids: list[int]) -> dict[int, str]:
        """Each case's latest ``case-assigned`` event's agent (cases never assigned are absent)."""
        owners: dict[int, str] = {}
        for i in range(0, len(case_ids), 500):
            chunk = case_ids[i : i + 500]
            rows = self.conn.execute(
                "SELECT case_id, detail FROM events WHERE kind = 'case-assigned' "
                f"AND case_id IN ({', '.join('?' for _ in chunk)}) ORDER BY id",
                chunk,
            ).fetchall()
            for case_id, detail in rows:
                owners[int(case_id)] = str(json.loads(detail).get("to", ""))
        return owners

    def case_events(self, case_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """The case's latest ``limit`` audit events, oldest first, ``detail`` decoded."""
        rows = self._all(
            "SELECT * FROM (SELECT * FROM events WHERE case_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
            (case_id, limit),
        )
        for row in rows:
            row["detail"] = json.loads(row["detail"])
        return rows

    def case_drafts(self, case_id: int) -> list[dict[str, Any]]:
        return self._all(
            "SELECT id, status, template, created_at, approved_by, sent_at, error FROM drafts "
            "WHERE case_id = ? ORDER BY id",
            (case_id,),
        )

    def quarantined_page(self, limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Quarantined messages, newest first, and how many there are (uses ``messages_status``)."""
        total = int(
            self.conn.execute("SELECT COUNT(*) FROM messages WHERE status = 'quarantined'").fetchone()[0]
        )
        rows = self._all(
            f"SELECT id, mailbox, folder, substr(message_id, 1, {LISTED_CHARS}) AS message_id, "
            f"substr(sender, 1, {LISTED_CHARS}) AS sender, substr(subject, 1, {LISTED_CHARS}) AS subject, "
            f"substr(error, 1, {LISTED_CHARS}) AS error, retries, received_at "
            "FROM messages WHERE status = 'quarantined' ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return rows, total

    def add_label(self, message_row: int, angry: bool | None, archetype: str | None, agent: str, when: datetime) -> int:
        """An agent's correction of a detection (``angry``/``archetype`` None = not judged)."""
        return self._insert(
            "labels",
            {
                "message_id": message_row,
                "angry": None if angry is None else int(angry),
                "archetype": archetype or None,
                "agent": agent,
                "at": iso(when),
            },
        )

    def labelled_messages(self) -> list[dict[str, Any]]:
        """Each labelled message's text and sender with its latest label (for `triage eval --labels`)."""
        return self._all(
            "SELECT m.id, m.text, m.sender, l.angry, l.archetype FROM labels l "
            "JOIN messages m ON m.id = l.message_id "
            "WHERE l.id = (SELECT MAX(id) FROM labels WHERE message_id = l.message_id) ORDER BY m.id"
        )

    def labels_for(self, message_row: int) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM labels WHERE message_id = ? ORDER BY id", (message_row,))

    def add_agent(self, name: str, password_hash: str, when: datetime) -> int:
        """A new agent; ``sqlite3.IntegrityError`` if the name is taken."""
        return self._insert("agents", {"name": name, "password_hash": password_hash, "created_at": iso(when)})

    def agent(self, name: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM agents WHERE name = ?", (name,))

    def agent_names(self) -> list[str]:
        """Names of agents who may log in, alphabetically."""
        return [str(r[0]) for r in self.conn.execute("SELECT name FROM agents WHERE disabled = 0 ORDER BY name")]

    _BULK_TABLES: ClassVar[frozenset[str]] = frozenset(
        {"customers", "cases", "messages", "detections", "drafts", "deadlines", "events", "labels", "agents"}
    )

    def bulk_insert(self, table: str, rows: Iterable[dict[str, Any]]) -> int:
        """Insert many rows of one shape with ``executemany`` (call inside ``write``); the count.

        For benchmarks and imports: values go in as given (JSON columns must be
        already encoded); every row must have the first row's keys.
        """
        if table not in self._BULK_TABLES:
            raise ValueError(f"bulk_insert: unknown table {table!r}")
        iterator = iter(rows)
        first = next(iterator, None)
        if first is None:
            return 0
        cols = list(first)
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
        cur = self.conn.executemany(sql, ([row[c] for c in cols] for row in itertools.chain([first], iterator)))
        return int(cur.rowcount)

