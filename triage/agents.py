"""Agent accounts for the review page: create and verify, passwords hashed.

Passwords are hashed with werkzeug's ``generate_password_hash`` (scrypt,
salted) and never stored or logged in clear. ``verify`` costs one hash check
whether or not the name exists, so timing does not reveal which names do.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime

from werkzeug.security import check_password_hash, generate_password_hash

from triage.errors import TriageError
from triage.store import Store, utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8
# Checked against when the name is unknown, so a miss costs as much as a hit.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AgentError(TriageError):
    """An agent name or password is not acceptable (usage error, exit 2)."""

    exit_code = 2


def create(store: Store, name: str, password: str, now: datetime | None = None) -> int:
    """Add agent ``name`` with ``password`` (hashed); return its id.

    Raises ``AgentError`` for a malformed or taken name or a password shorter
    than ``MIN_PASSWORD`` characters. The creation is recorded in ``events``.
    """
    now = now or utcnow()
    if not NAME.match(name):
        raise AgentError(
            f"agent name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    if len(password) < MIN_PASSWORD:
        raise AgentError(f"the password must have at least {MIN_PASSWORD} characters")
    hashed = generate_password_hash(password)
    try:
        with store.write():
            agent_id = store.add_agent(name, hashed, now)
            store.event("agent-added", "cli", now, agent=name)
    except sqlite3.IntegrityError:
        raise AgentError(f"there is already an agent named {name!r}") from None
    return agent_id


def verify(store: Store, name: str, password: str) -> bool:
    """True if ``name`` is an enabled agent and ``password`` is theirs."""
    row = store.agent(name) if NAME.match(name) else None
    if row is None or row["disabled"]:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(row["password_hash"], password)


def active(store: Store, name: str) -> bool:
    """True if ``name`` may still act (exists and is not disabled): checked on every request."""
    row = store.agent(name)
    return row is not None and not row["disabled"]


def assign(store: Store, case_id: int, to: str, by: str, now: datetime | None = None) -> None:
    """Record ``to`` as the owner of case ``case_id`` (a ``case-assigned`` event; the latest wins).

    Raises ``AgentError`` if ``to`` is not an enabled agent or the case does not exist.
    """
    now = now or utcnow()
    if not active(store, to):
        raise AgentError(f"no agent named {to!r}")
    with store.write():
        if not store.case_exists(case_id):
            raise AgentError(f"no case {case_id}")
        store.event("case-assigned", by, now, case_id=case_id, to=to)
