"""The review page's guards: the session secret, the Host allow-list, CSRF, login, headers.

Each guard is a plain function over Flask's request/session so that
``create_app`` wires them in order (host, then CSRF, then login) and tests
can reason about one at a time.

Logins are server-side records (``sessions``, triage.store.sessions): the
signed cookie carries only a random token (and the CSRF token and flash
messages), the store keeps its SHA-256 with the agent, when it was made
and when it was last used. ``current_agent`` looks the token up on every
request: logging out deletes the record, so a cookie copied before then
no longer logs anyone in; so does ``[web] session_idle_minutes`` without a
request, ``session_max_hours`` after the login, a password change or a
disabled agent.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import Response, abort, current_app, g, redirect, request, session, url_for

from triage.config import WebSettings
from triage.errors import ConfigError
from triage.store import Store, utcnow

SECRET_ENV = "TRIAGE_WEB_SECRET"
MIN_SECRET = 32
CSRF_FIELD = "csrf_token"
PUBLIC_ENDPOINTS = frozenset({"web.login", "static"})
SESSION_FIELD = "sid"
# A session's last use is written at most this often (not on every request).
TOUCH_EVERY = timedelta(seconds=60)

# Only the app's own script file runs (keyboard shortcuts, static/keys.js): no inline script,
# no other origin, no eval; customer text is never markup.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def secret_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".secret")


def load_secret(store_path: Path, environ: dict[str, str] | None = None) -> str:
    """The session-signing secret: ``$TRIAGE_WEB_SECRET``, else ``<store>.secret``.

    The file is created on first use (mode 0600, exclusive create, so two
    starting servers cannot write different secrets). An existing file that
    group or others may read, or a secret shorter than ``MIN_SECRET``
    characters, raises ``ConfigError``.
    """
    env = os.environ if environ is None else environ
    value = env.get(SECRET_ENV, "")
    if value:
        if len(value) < MIN_SECRET:
            raise ConfigError(f"{SECRET_ENV} must hold at least {MIN_SECRET} characters")
        return value
    path = secret_path(store_path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"{path}: the session secret is readable by others (mode {mode:o}); run chmod 600 {path}"
            ) from None
        value = path.read_text(encoding="ascii").strip()
        if len(value) < MIN_SECRET:
            raise ConfigError(f"{path}: the session secret is too short; delete the file to make a new one") from None
        return value
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    return value


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """Host header values accepted: loopback names and ``host``, with ``port``.

    Checking Host stops DNS rebinding: a page on evil.example re-pointed at
    127.0.0.1 still sends ``Host: evil.example``. Port 80 also allows the bare name.
    """
    names = {"localhost", "127.0.0.1", "[::1]"}
    try:
        names.add(f"[{host}]" if ipaddress.ip_address(host).version == 6 else host)
    except ValueError:
        names.add(host)
    values = {f"{n.lower()}:{port}" for n in names}
    if port == 80:
        values |= {n.lower() for n in names}
    return frozenset(values)


def check_host(allowed: frozenset[str]) -> None:
    """Abort 400 unless the request's Host header is in ``allowed``."""
    host = request.headers.get("Host", "").strip().lower()
    if host not in allowed:
        abort(400, description="unexpected Host header")


def csrf_token() -> str:
    """This session's CSRF token (made on first use); put it in every form."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf(allowed: frozenset[str]) -> None:
    """Abort 403 on a state-changing request without this session's token or from another origin."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc.lower() not in allowed:
        abort(403, description="cross-origin request refused")
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(403, description="missing or wrong CSRF token: reload the page and try again")


def login_redirect() -> Response | None:
    """Redirect to /login (remembering a local ``next``) unless logged in or the endpoint is public."""
    if request.endpoint in PUBLIC_ENDPOINTS or g.get("agent"):
        return None
    if request.method != "GET":
        abort(403, description="log in first")
    return redirect(url_for("web.login", next=request.full_path.rstrip("?")))  # type: ignore[return-value]


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the queue (no open redirects).

    Browsers drop tabs and newlines from a URL and read a backslash as a
    slash, so ``/%09/evil.example`` (a tab) or ``/%5Cevil.example`` would
    leave the site: any control, format or white-space character, or a
    backslash, is refused, and what remains must parse with no scheme and
    no host.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(ch.isprintable() and not ch.isspace() for ch in target)
    ):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("web.queue")


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clock_now() -> datetime:
    clock: Callable[[], datetime] = current_app.extensions.get("triage.clock", utcnow)
    return clock()


def start_session(store: Store, agent: str, limits: WebSettings) -> None:
    """Log ``agent`` in: drop everything the session held (fixation), record a new session, a fresh CSRF token."""
    now = clock_now()
    token = secrets.token_urlsafe(32)
    with store.write():
        store.prune_sessions(now - timedelta(minutes=limits.session_idle_minutes),
                             now - timedelta(hours=limits.session_max_hours))
        store.add_session(_key(token), agent, request.remote_addr or "", now)
    session.clear()
    session.permanent = True
    session[SESSION_FIELD] = token
    session["csrf"] = secrets.token_urlsafe(32)
    g.agent = agent


def current_agent(store: Store, limits: WebSettings, active: Callable[[str], bool]) -> str | None:
    """The agent this request's session belongs to, or None (and the session is ended).

    A session ends when its record is gone (logged out, password changed), it
    went unused ``session_idle_minutes``, it is older than ``session_max_hours``,
    or its agent may no longer act (``active``).
    """
    token = session.get(SESSION_FIELD)
    if not isinstance(token, str) or not token:
        return None
    key = _key(token)
    record = store.session_record(key)
    now = clock_now()
    if record is not None:
        seen = datetime.fromisoformat(record["seen_at"])
        created = datetime.fromisoformat(record["created_at"])
        live = (
            now - seen <= timedelta(minutes=limits.session_idle_minutes)
            and now - created <= timedelta(hours=limits.session_max_hours)
            and active(record["agent"])
        )
        if live:
            if now - seen >= TOUCH_EVERY:
                with store.write():
                    store.touch_session(key, now)
            return str(record["agent"])
        with store.write():
            store.end_session(key)
    session.clear()
    return None


def end_session(store: Store) -> None:
    """Log out: delete the session's record (a copy of the cookie stops working) and clear the cookie."""
    token = session.get(SESSION_FIELD)
    if isinstance(token, str) and token:
        with store.write():
            store.end_session(_key(token))
    session.clear()
    g.pop("agent", None)


def add_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response
