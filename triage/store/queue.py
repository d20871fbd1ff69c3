"""The queue: drafts waiting for an agent, with their case, customer, due date and owner, most urgent first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from triage.detect import LEVELS
from triage.store.base import LISTED_CHARS, iso
from triage.store.cases import CaseStatus
from triage.store.drafts import IN_QUEUE_SQL, DraftKind, DraftStatus
from triage.store.events import EventTable
from triage.store.messages import MessageStatus

#: Most urgent level first (0) to calm; levels are constants, never user text in SQL.
_LEVEL_RANK = (
    "CASE c.level "
    + " ".join(f"WHEN '{level}' THEN {rank}" for rank, level in enumerate(reversed(LEVELS)))
    + f" ELSE {len(LEVELS)} END"
)


#: Each case's owner (the agent of its latest assignment, as ``owners``), joined only to sort by owner.
_OWNER_JOIN = (
    "LEFT JOIN events ow ON ow.id = (SELECT MAX(e.id) FROM events e WHERE e.case_id = d.case_id "
    "AND e.kind = 'case-assigned')"
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
    rate_limited: int = 0  # the case's messages newer than this draft's that the rate limit left undrafted
    received_at: str | None = None  # when the customer's message this draft answers arrived

    @property
    def waiting_since(self) -> str:
        """How long the customer has waited is counted from this: their message, else the draft."""
        return self.received_at or self.created_at


@dataclass(frozen=True, slots=True)
class RateLimitedCase:
    """An open case with rate-limited mail no draft answers and no draft in the queue:
    "rate-limited: no draft made", still owed an answer (its first-response deadline)."""

    case: int
    level: str
    score: float
    archetypes: list[str]
    subject: str
    customer: str
    customer_name: str
    since: str  # when the first of its undrafted rate-limited messages arrived
    due: str | None  # the case's earliest open deadline
    rate_limited: int  # how many messages
    draft: int | None  # the case's latest draft (sent or set aside), for its case page; None if it never had one

    ERROR: ClassVar[str] = "rate-limited: no draft made"


@dataclass(frozen=True, slots=True)
class NeedsReplyCase:
    """An open case that still owes the customer an answer but has no draft in the queue: its
    latest draft was rejected and nothing was sent after the customer's latest message. It
    stays in the queue as "needs reply", its first-response deadline open, until an agent
    makes a new draft (``triage redraft``) or resolves it."""

    case: int
    level: str
    score: float
    archetypes: list[str]
    subject: str
    customer: str
    customer_name: str
    since: str  # when the customer's latest message arrived
    due: str | None  # the case's earliest open deadline
    draft: int  # the case's latest draft, the rejected one: what ``triage redraft`` takes
    owner: str | None = None  # the agent of the case's latest assignment

    ERROR: ClassVar[str] = "needs reply: no draft waiting"


#: Rate-limited messages no draft answers: newer than the message the case's latest draft answers.
_UNANSWERED_LIMITED = (
    "m.rate_limited = 1 AND m.id > COALESCE((SELECT MAX(d.message_id) FROM drafts d WHERE d.case_id = m.case_id), 0)"
)


class QueueTable(EventTable):
    """The queue the CLI and the review page show: one query, paged or whole."""

    def queue(self) -> list[QueueRow]:
        """The whole queue, most urgent first (the CLI's ``triage queue``)."""
        return self.queue_page(limit=None)[0]

    def waiting_ids(self) -> list[int]:
        """The pending drafts' ids in the queue's default order (most urgent first): the page's next/previous."""
        return [int(r[0]) for r in self.conn.execute(
            f"""
            SELECT d.id, {_LEVEL_RANK} AS level_rank
            FROM drafts d
            JOIN cases c ON c.id = d.case_id
            LEFT JOIN (SELECT case_id, MIN(due) AS due FROM deadlines
                       WHERE done_at IS NULL GROUP BY case_id) dl ON dl.case_id = d.case_id
            WHERE d.status = '{DraftStatus.PENDING}'
            ORDER BY {self.QUEUE_SORTS["urgency"]}
            """
        )]

    QUEUE_SORTS: ClassVar[dict[str, str]] = {
        "urgency": "level_rank, dl.due IS NULL, dl.due, d.created_at, d.id",
        "due": "dl.due IS NULL, dl.due, level_rank, d.id",
        "age": "COALESCE((SELECT m.received_at FROM messages m WHERE m.id = d.message_id), d.created_at), d.id",
        "level": "level_rank, c.score DESC, d.id",
        "customer": "cu.address, d.id",
        "subject": "c.subject COLLATE NOCASE, d.id",
        # cases without an archetype or an owner stay last either way, as drafts without a deadline do
        "archetype": "NULLIF(c.archetypes,'[]') IS NULL, c.archetypes, level_rank, d.id",
        "status": "d.status, level_rank, d.id",
        "owner": "ow.id IS NULL, json_extract(ow.detail,'$.to'), level_rank, d.id",
    }

    def queue_page(
        self,
        *,
        level: str = "",
        archetype: str = "",
        overdue_at: datetime | None = None,
        owner: str | None = None,
        unassigned: bool = False,
        sort: str = "urgency",
        descending: bool = False,
        limit: int | None = 100,
        offset: int = 0,
    ) -> tuple[list[QueueRow], int]:
        """One page of the queue (pending, approved, sending drafts) and the total matching.

        ``overdue_at`` keeps only drafts whose case has an open deadline before it; ``owner``
        only those whose case's latest assignment is to that agent, ``unassigned`` only those
        of cases never assigned;
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
        if owner is not None or unassigned:
            latest = ("(SELECT json_extract(e.detail, '$.to') FROM events e WHERE e.kind = 'case-assigned' "
                      "AND e.case_id = d.case_id ORDER BY e.id DESC LIMIT 1)")
            if unassigned:
                where.append(f"{latest} IS NULL")
            else:
                where.append(f"{latest} = ?")
                params.append(owner)
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
            {_OWNER_JOIN if sort == "owner" else ""}
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
                       substr(cu.name, 1, {LISTED_CHARS}) AS customer_name, m.received_at
                FROM drafts d
                JOIN cases c ON c.id = d.case_id
                JOIN customers cu ON cu.id = c.customer_id
                LEFT JOIN messages m ON m.id = d.message_id
                WHERE d.id IN ({", ".join("?" for _ in chunk)})
                """,
                chunk,
            ):
                found[row["id"]] = row
        owners = self.owners([int(r["case"]) for r in found.values()])
        limited = self.rate_limited_counts([int(r["case"]) for r in found.values()])
        rows = [
            QueueRow(
                **{**hit, "status": DraftStatus(hit["status"]), "kind": DraftKind(hit["kind"]),
                   "archetypes": json.loads(hit["archetypes"]), "due": due[i], "owner": owners.get(hit["case"]),
                   "rate_limited": limited.get(hit["case"], 0)}
            )
            for i in ids
            if (hit := found.get(i)) is not None
        ]
        return rows, total

    def rate_limited_counts(self, case_ids: list[int]) -> dict[int, int]:
        """For each case, its rate-limited messages that no draft answers (cases without any are absent)."""
        counts: dict[int, int] = {}
        ids = sorted(set(case_ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for case_id, n in self.conn.execute(
                f"SELECT m.case_id, COUNT(*) FROM messages m WHERE {_UNANSWERED_LIMITED} "
                f"AND m.case_id IN ({', '.join('?' for _ in chunk)}) GROUP BY m.case_id",
                chunk,
            ):
                counts[int(case_id)] = int(n)
        return counts

    def rate_limited_cases(self) -> list[RateLimitedCase]:
        """Open cases whose rate-limited mail no draft answers and that have no draft in the queue,
        most urgent first: without these an agent would never see them (no draft was made)."""
        rows = self._all(
            f"""
            SELECT c.id AS "case", c.level, c.score, c.archetypes,
                   substr(c.subject, 1, {LISTED_CHARS}) AS subject,
                   substr(cu.address, 1, {LISTED_CHARS}) AS customer,
                   substr(cu.name, 1, {LISTED_CHARS}) AS customer_name,
                   lm.since, lm.n AS rate_limited,
                   (SELECT MIN(due) FROM deadlines dl WHERE dl.case_id = c.id AND dl.done_at IS NULL) AS due,
                   (SELECT MAX(d.id) FROM drafts d WHERE d.case_id = c.id) AS draft,
                   {_LEVEL_RANK} AS level_rank
            FROM (SELECT m.case_id, COUNT(*) AS n, MIN(m.received_at) AS since FROM messages m
                  WHERE {_UNANSWERED_LIMITED} AND m.case_id IS NOT NULL GROUP BY m.case_id) lm
            JOIN cases c ON c.id = lm.case_id
            JOIN customers cu ON cu.id = c.customer_id
            WHERE c.status IN ('{CaseStatus.OPEN}', '{CaseStatus.WAITING}')
              AND NOT EXISTS (SELECT 1 FROM drafts d WHERE d.case_id = c.id AND d.status IN {IN_QUEUE_SQL})
            ORDER BY level_rank, due IS NULL, due, lm.since, c.id
            """
        )
        return [
            RateLimitedCase(**{**{k: v for k, v in r.items() if k != "level_rank"},
                               "archetypes": json.loads(r["archetypes"])})
            for r in rows
        ]

    def needs_reply_cases(self, owner: str | None = None, unassigned: bool = False) -> list[NeedsReplyCase]:
        """Open cases whose latest draft was rejected, with no draft in the queue and no reply sent
        since the customer's latest message (rate-limited ones are ``rate_limited_cases``), most
        urgent first. ``owner``/``unassigned`` filter by the case's latest assignment."""
        rows = self._all(
            f"""
            SELECT c.id AS "case", c.level, c.score, c.archetypes,
                   substr(c.subject, 1, {LISTED_CHARS}) AS subject,
                   substr(cu.address, 1, {LISTED_CHARS}) AS customer,
                   substr(cu.name, 1, {LISTED_CHARS}) AS customer_name,
                   (SELECT MAX(m.received_at) FROM messages m WHERE m.case_id = c.id
                      AND m.status = '{MessageStatus.TRIAGED}') AS since,
                   (SELECT MIN(due) FROM deadlines dl WHERE dl.case_id = c.id AND dl.done_at IS NULL) AS due,
                   ld.id AS draft, {_LEVEL_RANK} AS level_rank
            FROM cases c
            JOIN customers cu ON cu.id = c.customer_id
            JOIN drafts ld ON ld.id = (SELECT MAX(d.id) FROM drafts d WHERE d.case_id = c.id)
            WHERE c.status = '{CaseStatus.OPEN}'
              AND ld.status = '{DraftStatus.REJECTED}'
              AND NOT EXISTS (SELECT 1 FROM drafts d WHERE d.case_id = c.id AND d.status IN {IN_QUEUE_SQL})
              AND NOT EXISTS (SELECT 1 FROM drafts d WHERE d.case_id = c.id AND d.status = '{DraftStatus.SENT}'
                              AND d.sent_at >= (SELECT MAX(m.received_at) FROM messages m WHERE m.case_id = c.id
                                                AND m.status = '{MessageStatus.TRIAGED}'))
              AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.case_id = c.id AND {_UNANSWERED_LIMITED})
            ORDER BY level_rank, due IS NULL, due, since, c.id
            """
        )
        owners = self.owners([int(r["case"]) for r in rows])
        found = [
            NeedsReplyCase(**{**{k: v for k, v in r.items() if k != "level_rank"},
                              "archetypes": json.loads(r["archetypes"]), "owner": owners.get(int(r["case"]))})
            for r in rows
        ]
        if unassigned:
            return [c for c in found if c.owner is None]
        return [c for c in found if owner is None or c.owner == owner]

    def queue_archetypes(self) -> list[str]:
        """Archetype names on cases that have a draft in the queue (for the filter)."""
        names: set[str] = set()
        for (value,) in self.conn.execute(
            "SELECT DISTINCT c.archetypes FROM drafts d JOIN cases c ON c.id = d.case_id "
            f"WHERE d.status IN {IN_QUEUE_SQL}"
        ):
            names.update(str(a) for a in json.loads(value or "[]"))
        return sorted(names)
