"""The SQLite store: schema, migrations and queries. The only package that writes SQL.

WAL mode and a busy timeout let the worker and the web page share the file.
Transactions that read then write use ``BEGIN IMMEDIATE`` (``Store.write``):
a deferred transaction that upgrades to a write fails at once under
contention, whatever the busy timeout. The queries are organised by table,
one module each (``messages``, ``cases``, ``drafts``, ``deadlines``,
``events``, ``agents``, with ``sessions`` for the review page's logins),
plus ``queue``, the one query behind the CLI's and the review page's
queue, and ``search``, full-text search over messages (FTS5); ``Store`` is
all of them over one connection.
"""

from __future__ import annotations

from triage.store.agents import AgentTable
from triage.store.base import StoreBase, iso, utcnow
from triage.store.cases import Case, CaseStatus, CaseTable
from triage.store.deadlines import CaseDeadline, Deadline, DeadlineClosed, DeadlineKind, DeadlineTable
from triage.store.drafts import IN_QUEUE, Draft, DraftKind, DraftStatus, DraftTable, NewDraft
from triage.store.events import EventTable
from triage.store.forget import Erased, ForgetTable
from triage.store.messages import MessageStatus, MessageTable, NewMessage, StoredMessage
from triage.store.queue import NeedsReplyCase, QueueRow, QueueTable, RateLimitedCase
from triage.store.schema import MIGRATIONS, SCHEMA_VERSION
from triage.store.search import SearchHit, SearchTable
from triage.store.sessions import LoginScope, SessionTable

__all__ = [
    "IN_QUEUE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Case",
    "CaseDeadline",
    "CaseStatus",
    "Deadline",
    "DeadlineClosed",
    "DeadlineKind",
    "Draft",
    "Erased",
    "DraftKind",
    "DraftStatus",
    "LoginScope",
    "MessageStatus",
    "NewDraft",
    "NewMessage",
    "QueueRow",
    "NeedsReplyCase",
    "RateLimitedCase",
    "SearchHit",
    "Store",
    "StoreBase",
    "StoredMessage",
    "iso",
    "utcnow",
]


class Store(MessageTable, CaseTable, DraftTable, DeadlineTable, QueueTable, ForgetTable, EventTable, AgentTable,
            SessionTable, SearchTable):
    """A triage database file. Open with ``Store(path)``; it migrates itself."""

    def status_counts(self) -> dict[str, int]:
        """Quarantined messages, drafts waiting for an agent, cases waiting on the customer."""
        row = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM messages WHERE status = ?), "
            f"(SELECT COUNT(*) FROM drafts WHERE status IN ({', '.join('?' for _ in IN_QUEUE)})), "
            "(SELECT COUNT(*) FROM cases WHERE status = ?)",
            [MessageStatus.QUARANTINED, *IN_QUEUE, CaseStatus.WAITING],
        ).fetchone()
        return {"quarantined": int(row[0]), "pending_drafts": int(row[1]), "waiting_cases": int(row[2])}
