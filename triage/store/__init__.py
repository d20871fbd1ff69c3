"""The SQLite store: schema, migrations and queries. The only package that writes SQL.

WAL mode and a busy timeout let the worker and the web page share the file.
Transactions that read then write use ``BEGIN IMMEDIATE`` (``Store.write``):
a deferred transaction that upgrades to a write fails at once under
contention, whatever the busy timeout. ``Store`` gathers the queries of
each part of triage: ``mail`` (poll and review), ``web`` (the review page)
and ``followups`` (deadlines, reminders, status, report).
"""

from __future__ import annotations

from triage.store.base import NewMessage, StoreBase, iso, utcnow
from triage.store.followups import FollowupStore
from triage.store.schema import MIGRATIONS, SCHEMA_VERSION
from triage.store.sessions import SessionTable
from triage.store.web import ReviewStore

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "NewMessage", "Store", "StoreBase", "iso", "utcnow"]


class Store(FollowupStore, ReviewStore, SessionTable):
    """A triage database file. Open with ``Store(path)``; it migrates itself."""
