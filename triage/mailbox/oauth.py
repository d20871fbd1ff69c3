"""OAuth2 access tokens for IMAP and SMTP: ``token_cmd``, and the SASL strings that carry them.

``token_cmd`` is an existing token helper (oama, mutt_oauth2.py, ...) that keeps
the refresh token and prints a fresh access token. It runs once per connection,
with the section's ``timeout``, its stdin closed and its stdout stripped. Every
way it can fail is one ``TokenError`` line (exit 3, a failed run) that says
which section and what happened. The token itself is never put in a message,
a log record or an exception; the helper's stderr is logged in full only at
DEBUG, and the error line carries at most a short first line of it with
anything that looks like a secret cut out (see ``stderr_hint``).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import subprocess

from triage.config import Credentials
from triage.errors import ServerError

log = logging.getLogger(__name__)

HINT_LIMIT = 80
# A run of 16+ token-like characters (access and refresh tokens, client secrets,
# authorization codes, JWTs) is never shown, even from a helper's stderr.
_SECRETISH = re.compile(r"[A-Za-z0-9._~+/=\-]{16,}")
# URLs go whole: an authorisation URL can carry client_id and client_secret (pizauth prints one).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S*")
# RFC 6750 b64token: what an access token may contain.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/\-]+=*")


class TokenError(ServerError):
    """token_cmd could not give an access token (missing, failed, timed out, printed nothing)."""


def stderr_hint(stderr: str) -> str:
    """The first non-empty line of a helper's stderr, cut short, secret-looking runs removed.

    Helpers say why they failed there ("no refresh token: run oama authorize"), and
    an owner needs that from cron mail; but stderr may also echo a refresh token
    or a client secret, so URLs become ``[URL]``, long token-like runs ``[…]``, and the line is cut
    to ``HINT_LIMIT`` characters. The whole stderr is logged at DEBUG only.
    """
    for line in stderr.splitlines():
        line = " ".join(line.split())
        if line:
            line = _SECRETISH.sub("[…]", _URL.sub("[URL]", line))
            return line if len(line) <= HINT_LIMIT else line[: HINT_LIMIT - 1] + "…"
    return ""


def fetch_token(creds: Credentials) -> str:
    """Run ``creds.token_cmd`` once and return the access token it printed; TokenError otherwise."""
    what = f"[{creds.section}] token_cmd"
    try:
        argv = shlex.split(creds.token_cmd)
    except ValueError as exc:  # also refused when the file is loaded
        raise TokenError(f"{what}: cannot parse the command: {exc}") from None
    if not argv:
        raise TokenError(f"{what}: empty command")
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # on a timeout the whole group is killed, helpers' children too
        )
    except FileNotFoundError:
        raise TokenError(f"{what}: command not found: {argv[0]}") from None
    except OSError as exc:
        raise TokenError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate(timeout=creds.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise TokenError(f"{what} timed out after {creds.timeout:g}s") from None
    if err.strip():
        log.debug("%s (%s) stderr: %s", what, argv[0], err.strip())
    if proc.returncode < 0:
        raise TokenError(f"{what} was killed by signal {-proc.returncode}")
    if proc.returncode != 0:
        hint = stderr_hint(err)
        raise TokenError(f"{what} exited {proc.returncode}" + (f": {hint}" if hint else ""))
    token = out.strip()
    if not token:
        raise TokenError(f"{what} printed nothing: expected an access token on stdout")
    if not _TOKEN.fullmatch(token):
        # never echo it: it may be a token with a stray message around it
        raise TokenError(f"{what} printed something that is not one access token (spaces, several lines or odd characters)")
    return token


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def xoauth2(user: str, token: str) -> str:
    """The XOAUTH2 initial client response (Google's and Microsoft's format)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def oauthbearer(user: str, token: str) -> str:
    """The OAUTHBEARER (RFC 7628) initial client response."""
    authzid = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={authzid},\x01auth=Bearer {token}\x01\x01"


def redact(text: str, token: str) -> str:
    """``text`` with the token removed, for server replies that might echo it."""
    return text.replace(token, "[token]") if token else text
