"""Full-text search over messages: the sender, the subject and the customer's own words (SQLite FTS5).

The index (``message_search``, migration 11) is kept in step with
``messages`` by triggers, so every insert, retry, ``forget`` and retention
purge updates it in the same transaction. What an agent types is never FTS5
syntax: each word becomes a quoted prefix term (``"word"*``), so quotes,
``*``, ``NEAR``, ``AND``/``OR``/``NOT``, parentheses and column filters are
searched for as text, never parsed, and a query cannot fail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from triage.store.base import LISTED_CHARS, StoreBase
from triage.store.drafts import IN_QUEUE_SQL

#: The most words of a query used, and the most matching messages looked at.
MAX_TERMS = 12
MAX_MESSAGES = 500
#: Around the matched words of a snippet (control characters: never in stored text shown as such).
SNIPPET_OPEN, SNIPPET_CLOSE = "\x02", "\x03"


def fts_query(text: str) -> str:
    """``text`` as an FTS5 query of quoted prefix terms, all of which must match ("" for no words)."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)  # a NUL would end FTS5's string early
    terms = [word.replace('"', '""') for word in text.split()[:MAX_TERMS]]
    return " ".join(f'"{term}"*' for term in terms)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A case with messages matching the query: the best match's snippet, the case's latest draft."""

    case: int
    subject: str  # the case's
    customer: str
    customer_name: str
    level: str
    archetypes: list[str]
    status: str  # the case's
    message: int  # the best-matching message
    received_at: str
    snippet: str  # the message text around the match, matched words between SNIPPET_OPEN and SNIPPET_CLOSE
    matches: int  # the case's matching messages
    draft: int | None  # the case's draft in the queue, else its latest draft; None when it has none
    in_queue: bool


class SearchTable(StoreBase):
    """``search``: cases whose messages match what an agent typed."""

    def case_draft(self, case_id: int) -> int | None:
        """The case's draft in the queue (the newest), else its latest draft; None when it has none."""
        row = self.conn.execute(
            f"SELECT COALESCE((SELECT MAX(id) FROM drafts WHERE case_id = ? AND status IN {IN_QUEUE_SQL}), "
            "(SELECT MAX(id) FROM drafts WHERE case_id = ?))",
            (case_id, case_id),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Cases with a message matching every word of ``text``, best match first (at most ``limit``)."""
        query = fts_query(text)
        if not query:
            return []
        rows = self.conn.execute(
            f"""
            SELECT m.id, m.case_id, m.received_at,
                   snippet(message_search, -1, '{SNIPPET_OPEN}', '{SNIPPET_CLOSE}', '…', 24) AS snip
            FROM message_search
            JOIN messages m ON m.id = message_search.rowid
            WHERE message_search MATCH ? AND m.case_id IS NOT NULL
            ORDER BY rank
            LIMIT {MAX_MESSAGES}
            """,
            (query,),
        ).fetchall()
        best: dict[int, tuple[int, str, str]] = {}
        counts: dict[int, int] = {}
        for message_id, case_id, received_at, snip in rows:
            counts[case_id] = counts.get(case_id, 0) + 1
            best.setdefault(case_id, (message_id, received_at, snip))
        cases = list(best)[:limit]
        if not cases:
            return []
        marks = ", ".join("?" for _ in cases)
        found = {
            r["id"]: r
            for r in self._all(
                f"""
                SELECT c.id, substr(c.subject, 1, {LISTED_CHARS}) AS subject, c.level, c.archetypes, c.status,
                       substr(cu.address, 1, {LISTED_CHARS}) AS customer,
                       substr(cu.name, 1, {LISTED_CHARS}) AS customer_name,
                       (SELECT d.id FROM drafts d WHERE d.case_id = c.id AND d.status IN {IN_QUEUE_SQL}
                        ORDER BY d.id DESC LIMIT 1) AS queued,
                       (SELECT MAX(d.id) FROM drafts d WHERE d.case_id = c.id) AS latest
                FROM cases c JOIN customers cu ON cu.id = c.customer_id
                WHERE c.id IN ({marks})
                """,
                cases,
            )
        }
        hits = []
        for case_id in cases:
            row = found.get(case_id)
            if row is None:
                continue
            message_id, received_at, snip = best[case_id]
            hits.append(SearchHit(
                case=case_id, subject=row["subject"], customer=row["customer"], customer_name=row["customer_name"],
                level=row["level"], archetypes=json.loads(row["archetypes"]), status=row["status"],
                message=message_id, received_at=received_at, snippet=snip or "", matches=counts[case_id],
                draft=row["queued"] or row["latest"], in_queue=row["queued"] is not None,
            ))
        return hits
