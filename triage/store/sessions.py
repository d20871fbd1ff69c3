"""The review page's logins: the ``sessions`` table and the ``login_failures`` counters.

A session row is keyed by the SHA-256 of the random token the browser's
cookie carries (a copy of the database gives no live cookie). A
``login_failures`` row counts consecutive failed logins for one ``scope``
(``agent``: the name typed, known or not; ``client``: the remote address)
since the last success or unlock.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from triage.store.base import StoreBase, iso


class LoginScope(StrEnum):
    """``login_failures.scope``: what a row counts failed logins of."""

    AGENT = "agent"  # the name typed, known or not
    CLIENT = "client"  # the remote address (an IPv6 one by its /64)


class SessionTable(StoreBase):
    """Server-side sessions and failed-login counters."""

    # -- sessions ---------------------------------------------------------------

    def add_session(self, key: str, agent: str, client: str, when: datetime) -> None:
        self.conn.execute(
            "INSERT INTO sessions (id, agent, client, created_at, seen_at) VALUES (?, ?, ?, ?, ?)",
            (key, agent, client, iso(when), iso(when)),
        )

    def session_record(self, key: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM sessions WHERE id = ?", (key,))

    def touch_session(self, key: str, when: datetime) -> None:
        self.conn.execute("UPDATE sessions SET seen_at = ? WHERE id = ?", (iso(when), key))

    def end_session(self, key: str) -> None:
        self.conn.execute("DELETE FROM sessions WHERE id = ?", (key,))

    def end_sessions_of(self, agent: str) -> int:
        """Revoke every session of ``agent``; how many there were."""
        return int(self.conn.execute("DELETE FROM sessions WHERE agent = ?", (agent,)).rowcount)

    def prune_sessions(self, idle_before: datetime, created_before: datetime) -> int:
        """Delete sessions idle since before ``idle_before`` or made before ``created_before``."""
        return int(
            self.conn.execute(
                "DELETE FROM sessions WHERE seen_at < ? OR created_at < ?", (iso(idle_before), iso(created_before))
            ).rowcount
        )

    def sessions_of(self, agent: str) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM sessions WHERE agent = ?", (agent,)).fetchone()[0])

    # -- failed logins ----------------------------------------------------------

    def login_failures(self, scope: LoginScope, key: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM login_failures WHERE scope = ? AND key = ?", (scope, key))

    def count_login_failure(self, scope: LoginScope, key: str, when: datetime) -> int:
        """One more failed (or about to be checked) login for ``scope``/``key``; the new count."""
        row = self.conn.execute(
            "INSERT INTO login_failures (scope, key, failures, last_at) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (scope, key) DO UPDATE SET failures = failures + 1, last_at = excluded.last_at "
            "RETURNING failures",
            (scope, key, iso(when)),
        ).fetchone()
        return int(row[0])

    def lock_login(self, scope: LoginScope, key: str, when: datetime) -> None:
        self.conn.execute(
            "UPDATE login_failures SET locked_at = ? WHERE scope = ? AND key = ? AND locked_at IS NULL",
            (iso(when), scope, key),
        )

    def clear_login_failures(self, scope: LoginScope, key: str) -> bool:
        """Forget ``scope``/``key``'s failures and lock; True if there were any."""
        cur = self.conn.execute("DELETE FROM login_failures WHERE scope = ? AND key = ?", (scope, key))
        return bool(cur.rowcount)

    def prune_login_failures(self, before: datetime) -> int:
        """Forget unlocked counters whose last failure is older than ``before``."""
        return int(
            self.conn.execute(
                "DELETE FROM login_failures WHERE locked_at IS NULL AND last_at < ?", (iso(before),)
            ).rowcount
        )
