"""The ``agents`` who log in to the review page (passwords, last login) and the ``labels`` they put on detections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from triage.store.base import StoreBase, iso
from triage.store.sessions import LoginScope


class AgentTable(StoreBase):
    """Agents and their labels."""

    def add_agent(self, name: str, password_hash: str, when: datetime, display_name: str = "", email: str = "") -> int:
        """A new agent; ``sqlite3.IntegrityError`` if the name is taken."""
        return self._insert("agents", {"name": name, "password_hash": password_hash, "created_at": iso(when),
                                       "display_name": display_name, "email": email})

    def set_agent_profile(self, name: str, **fields: str) -> bool:
        """Change an agent's ``display_name`` and/or ``email``; False if there is no such agent."""
        sets = ", ".join(f"{k} = ?" for k in fields if k in ("display_name", "email"))
        if not sets:
            return self.agent(name) is not None
        cur = self.conn.execute(f"UPDATE agents SET {sets} WHERE name = ?", [*fields.values(), name])
        return bool(cur.rowcount)

    def agent(self, name: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM agents WHERE name = ?", (name,))

    def agent_names(self) -> list[str]:
        """Names of agents who may log in, alphabetically."""
        return [str(r[0]) for r in self.conn.execute("SELECT name FROM agents WHERE disabled = 0 ORDER BY name")]

    def set_agent_password(self, name: str, password_hash: str, when: datetime) -> bool:
        cur = self.conn.execute(
            "UPDATE agents SET password_hash = ?, password_changed_at = ? WHERE name = ?",
            (password_hash, iso(when), name),
        )
        return bool(cur.rowcount)

    def record_login(self, name: str, when: datetime) -> None:
        self.conn.execute("UPDATE agents SET last_login_at = ? WHERE name = ?", (iso(when), name))

    def agent_list(self) -> list[dict[str, Any]]:
        """Every agent, alphabetically, with its failed-login count and lock (for `triage agent list`)."""
        return self._all(
            "SELECT a.name, a.display_name, a.email, a.created_at, a.last_login_at, a.password_changed_at, a.disabled, "
            "COALESCE(f.failures, 0) AS failed_logins, f.locked_at, "
            "(SELECT COUNT(*) FROM sessions s WHERE s.agent = a.name) AS sessions "
            "FROM agents a LEFT JOIN login_failures f ON f.scope = ? AND f.key = a.name ORDER BY a.name",
            (LoginScope.AGENT,),
        )

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
