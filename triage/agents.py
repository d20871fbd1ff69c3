"""Agent accounts for the review page: create, verify, log in with backoff, reset, unlock.

Passwords are hashed with werkzeug's ``generate_password_hash`` (scrypt,
salted) and never stored or logged in clear. ``verify`` costs one hash check
whether or not the name exists, so timing does not reveal which names do.

``login`` throttles password guessing twice over, by the name typed (known
or not, so a refusal says nothing about which names exist) and by the
client's address: after ``Backoff.free`` consecutive failures each further
attempt must wait twice as long as the one before (1 s, 2 s, 4 s ... up to
``Backoff.max_delay``), and an account that reaches ``ACCOUNT.lock_after``
failures is locked until ``unlock`` (``triage agent unlock NAME``). An
attempt is counted *before* its password is checked, in one ``BEGIN
IMMEDIATE`` transaction with the check of the wait, so parallel guesses
cannot slip in together. A success clears both counters. Failures,
refusals, lockouts and unlocks are logged (logger ``triage.agents``) and
failures, lockouts and unlocks also go to ``events``; the password never.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from werkzeug.security import check_password_hash, generate_password_hash

from triage.config import WebSettings
from triage.errors import NotFound, TriageError
from triage.store import LoginScope, Store, utcnow

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8
# Checked against when the name is unknown, so a miss costs as much as a hit.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AgentError(TriageError):
    """An agent name or password is not acceptable (usage error, exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Backoff:
    """How failed logins for one account or one client slow down the next attempt."""

    scope: LoginScope
    free: int  # failures allowed before any wait
    max_delay: float  # seconds; the wait doubles per failure up to this
    lock_after: int | None = None  # failures that lock the account until unlocked

    def wait(self, failures: int) -> float:
        """Seconds the next attempt must wait after ``failures`` consecutive failures."""
        if failures < self.free:
            return 0.0
        return float(min(self.max_delay, 2.0 ** (failures - self.free)))


ACCOUNT = Backoff(LoginScope.AGENT, free=3, max_delay=300.0, lock_after=10)
# A client is never locked for good (agents behind one proxy share its address): its wait tops out.
CLIENT = Backoff(LoginScope.CLIENT, free=5, max_delay=300.0)
# Counters of clients and unknown names with no failure for this long are forgotten.
FORGET_AFTER = timedelta(days=7)


class UnknownAgent(TriageError):
    """``--agent`` (or its default) names nobody who may act (exit 1, as a refused agent action)."""

    exit_code = 1


_ADDRESS = re.compile(r"^[^\s<>(),;:\"@\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z0-9-]{1,63}$")


def check_email(value: str) -> str:
    """``value`` as a plain address (stripped), or AgentError naming it."""
    text = value.strip()
    if text and not _ADDRESS.match(text):
        raise AgentError(f"not an email address: {text!r}")
    return text


def check_display_name(value: str) -> str:
    """A display name: one line of at most 64 characters (it goes into the sign-off)."""
    text = " ".join(value.split())
    if len(text) > 64 or any(ord(c) < 32 or ord(c) == 127 for c in value if c not in " \t"):
        raise AgentError("a display name is one line of at most 64 characters")
    return text


def acting(store: Store, given: str | None, os_agents: dict[str, str], environ: dict[str, str],
           login: str) -> str:
    """Who is acting: ``given`` (``--agent``), else ``$TRIAGE_AGENT``, else the ``[agents]`` entry
    for the OS ``login``, else the login itself. It must be an enabled agent: UnknownAgent otherwise,
    one line saying how to add one."""
    if given:
        name, how = given, "--agent"
    elif environ.get("TRIAGE_AGENT"):
        name, how = environ["TRIAGE_AGENT"], "$TRIAGE_AGENT"
    elif login in os_agents:
        name, how = os_agents[login], f"[agents] {login}"
    else:
        name, how = login, "your login name"
    row = store.agent(name)
    if row is None:
        raise UnknownAgent(
            f"no agent named {name!r} ({how}): add one with `triage agent add {name} --display-name \"...\" "
            f"--email ...`, or name a known one with --agent NAME, $TRIAGE_AGENT or [agents] in triage.toml")
    if row["disabled"]:
        raise UnknownAgent(f"agent {name!r} ({how}) is disabled")
    return name


def set_profile(store: Store, name: str, display_name: str | None = None, email: str | None = None,
                by: str = "cli", now: datetime | None = None) -> None:
    """Change agent ``name``'s display name and/or address; NotFound for no such agent."""
    now = now or utcnow()
    fields: dict[str, str] = {}
    if display_name is not None:
        fields["display_name"] = check_display_name(display_name)
    if email is not None:
        fields["email"] = check_email(email)
    with store.write():
        if not store.set_agent_profile(name, **fields):
            raise NotFound(f"no agent named {name!r}")
        store.event("agent-changed", by, now, agent=name, changed=sorted(fields))


class LoginRefused(TriageError):
    """A login attempt refused without checking the password: wait ``retry_after`` seconds, or locked."""

    exit_code = 1

    def __init__(self, message: str, retry_after: int, locked: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.locked = locked


def login(store: Store, name: str, password: str, client: str, now: datetime | None = None) -> bool:
    """Check ``name``/``password`` from ``client`` under the backoff; True if they are right.

    Raises ``LoginRefused`` (the password is not checked) while the account
    is locked or either counter's wait has not passed.
    """
    now = now or utcnow()
    key = name[:64]
    shown = ascii(key)  # names come from the form: never let one forge a log line
    client = client_key(client)
    with store.write():
        account = store.login_failures(ACCOUNT.scope, key)
        if account and account["locked_at"]:
            log.info("login refused: account %s is locked (from %s)", shown, client)
            raise LoginRefused(
                "This account is locked after too many failed logins. An agent can unlock it with "
                "`triage agent unlock NAME`.", retry_after=3600, locked=True,
            )
        waits = [0.0]
        for policy, row in ((ACCOUNT, account), (CLIENT, store.login_failures(CLIENT.scope, client))):
            if row:
                since = (now - datetime.fromisoformat(row["last_at"])).total_seconds()
                waits.append(policy.wait(int(row["failures"])) - since)
        wait = max(waits)
        if wait > 0:
            seconds = math.ceil(wait)
            log.info("login refused: %s from %s must wait %d s", shown, client, seconds)
            raise LoginRefused(f"Too many failed logins: try again in {seconds} seconds.", retry_after=seconds)
        failures = store.count_login_failure(ACCOUNT.scope, key, now)
        store.count_login_failure(CLIENT.scope, client, now)
        store.prune_login_failures(now - FORGET_AFTER)
    if verify(store, name, password):
        with store.write():
            store.clear_login_failures(ACCOUNT.scope, key)
            store.clear_login_failures(CLIENT.scope, client)
            store.record_login(name, now)
        log.info("login: %s from %s", shown, client)
        return True
    with store.write():
        store.event("login-failed", "web", now, agent=key, client=client, failures=failures)
        if ACCOUNT.lock_after is not None and failures >= ACCOUNT.lock_after:
            store.lock_login(ACCOUNT.scope, key, now)
            store.event("agent-locked", "web", now, agent=key, client=client, failures=failures)
            log.warning("account %s locked after %d failed logins (the last from %s)", shown, failures, client)
    log.warning("failed login for %s from %s (%d in a row)", shown, client, failures)
    return False


def client_key(address: str) -> str:
    """The address a client's failures are counted under: IPv6 by its /64 (one host holds a
    whole /64, so counting each address alone would let it dodge the backoff), IPv4 as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def unlock(store: Store, name: str | None = None, client: str | None = None,
           by: str = "cli", now: datetime | None = None) -> bool:
    """Clear agent ``name``'s lock and failures and/or ``client``'s; True if there was anything to clear.

    Raises ``NotFound`` for a name that is no agent.
    """
    now = now or utcnow()
    with store.write():
        if name is not None and store.agent(name) is None:
            raise NotFound(f"no agent named {name!r}")
        cleared = False
        if name is not None:
            cleared |= store.clear_login_failures(ACCOUNT.scope, name)
        if client is not None:
            client = client_key(client)
            cleared |= store.clear_login_failures(CLIENT.scope, client)
        store.event("agent-unlocked", by, now, agent=name, client=client, cleared=cleared)
    log.info("unlocked %s", ", ".join(x for x in (name and f"agent {name}", client and f"client {client}") if x))
    return cleared


def set_password(store: Store, name: str, password: str, by: str = "cli", now: datetime | None = None) -> int:
    """Give agent ``name`` a new ``password``, end all its sessions and clear its lock; the sessions ended.

    Raises ``NotFound`` for a name that is no agent, ``AgentError`` for a short password.
    """
    now = now or utcnow()
    if len(password) < MIN_PASSWORD:
        raise AgentError(f"the password must have at least {MIN_PASSWORD} characters")
    hashed = generate_password_hash(password)
    with store.write():
        if not store.set_agent_password(name, hashed, now):
            raise NotFound(f"no agent named {name!r}")
        ended = store.end_sessions_of(name)
        store.clear_login_failures(ACCOUNT.scope, name)
        store.event("agent-password-changed", by, now, agent=name, sessions_ended=ended)
    return ended


def listing(store: Store, limits: WebSettings, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every agent: ``name``, ``display_name``, ``email``, ``created_at``, ``last_login_at``, ``password_changed_at``,
    ``disabled``, ``locked``, ``locked_at``, ``failed_logins``, ``sessions`` (still live under ``limits``)."""
    now = now or utcnow()
    with store.write():
        store.prune_sessions(now - timedelta(minutes=limits.session_idle_minutes),
                             now - timedelta(hours=limits.session_max_hours))
    return [
        {**row, "disabled": bool(row["disabled"]), "locked": row["locked_at"] is not None}
        for row in store.agent_list()
    ]


def create(store: Store, name: str, password: str, now: datetime | None = None,
           display_name: str = "", email: str = "") -> int:
    """Add agent ``name`` with ``password`` (hashed), the ``display_name`` replies are signed with
    and their ``email``; return its id.

    Raises ``AgentError`` for a malformed or taken name, a password shorter
    than ``MIN_PASSWORD`` characters, or a bad address. The creation is recorded in ``events``.
    """
    now = now or utcnow()
    display_name, email = check_display_name(display_name), check_email(email)
    if not NAME.match(name):
        raise AgentError(
            f"agent name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    if len(password) < MIN_PASSWORD:
        raise AgentError(f"the password must have at least {MIN_PASSWORD} characters")
    hashed = generate_password_hash(password)
    try:
        with store.write():
            agent_id = store.add_agent(name, hashed, now, display_name=display_name, email=email)
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
