"""The IMAP source (imapclient): read-only, batched, checkpointed by UID.

Folders are opened with EXAMINE (read-only) and bodies fetched with
``BODY.PEEK[]`` (sizes first, ``RFC822.SIZE``, so batches stay under a byte
budget; see triage.mailbox), so polling never sets ``\\Seen``, moves or deletes. UIDs
come from SEARCH and are fetched as explicit lists (imapclient 4.1 raises on
``fetch('1:*')``). Every failure to reach, secure or log in to the server,
and every connection lost mid-run, becomes one ``ServerError`` line.
"""

from __future__ import annotations

import imaplib
import logging
import socket
import ssl
from collections.abc import Iterator
from datetime import date, datetime, timezone
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from triage.config import MailboxSettings
from triage.errors import ConfigError, ServerError
from triage.mailbox.base import BATCH_BYTES, HEADER_BYTES, Batch, Fetched, Known, Pending, byte_batches
from triage.mailbox.oauth import fetch_token, redact

log = logging.getLogger(__name__)

# What a lost or refused connection can raise from inside imaplib/imapclient.
NETWORK_ERRORS = (OSError, imaplib.IMAP4.abort, EOFError)
# UIDs whose sizes are asked for in one FETCH RFC822.SIZE.
SIZE_CHUNK = 1000


def tls_context(ca_file: object, system: bool = True) -> ssl.SSLContext:
    """A verifying TLS context; ``ca_file`` adds a trusted CA (e.g. self-signed).

    ``system=False``: without the system's CAs, only to check ``ca_file`` (reading the
    system's bundle is most of the cost of a poll's IMAP login)."""
    ctx = ssl.create_default_context() if system else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"ca_file: cannot load {ca_file}: {exc}") from None
    return ctx


def describe(exc: BaseException) -> str:
    """A one-line reason for a network or TLS failure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}); set ca_file for a self-signed server"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"host name not found ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def connect(settings: MailboxSettings) -> imapclient.IMAPClient:
    """Connect and log in as configured; the seam tests may replace."""
    return login(settings)[0]


def login(settings: MailboxSettings) -> tuple[imapclient.IMAPClient, str]:
    """Connect and log in as configured: the client and how it logged in (OAUTHBEARER, XOAUTH2, LOGIN)."""
    where = f"{settings.host}:{settings.port}"
    # a plaintext connection uses no context: its ca_file is only checked, as for TLS
    ctx = tls_context(settings.ca_file, system=settings.security != "none")
    try:
        client = imapclient.IMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.security == "tls",
            ssl_context=ctx,
            timeout=settings.timeout,
        )
    except (*NETWORK_ERRORS, IMAPClientError) as exc:
        raise ServerError(f"cannot reach IMAP server {where}: {describe(exc)}") from None
    try:
        if settings.security == "starttls":
            client.starttls(ssl_context=ctx)
    except (*NETWORK_ERRORS, IMAPClientError) as exc:
        _quietly_close(client)
        # never fall back to plaintext
        raise ServerError(f"STARTTLS failed on IMAP server {where}: {describe(exc)}") from None
    creds = settings.credentials
    try:
        if creds.oauth2:
            method = _oauth2_login(client, creds.username, creds, where)
        else:
            _password_login(client, creds.username, creds.secret(), where)
            method = "LOGIN"
    except BaseException:
        _quietly_close(client)
        raise
    return client, method


def _password_login(client: imapclient.IMAPClient, user: str, secret: str, where: str) -> None:
    try:
        client.login(user, secret)
    except LoginError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "rejected"
        raise ServerError(f"IMAP login failed for {user} at {where}: {detail}") from None
    except (*NETWORK_ERRORS, IMAPClientError) as exc:
        raise ServerError(f"IMAP login to {where} failed: {describe(exc)}") from None


def oauth2_mechanism(client: imapclient.IMAPClient) -> str:
    """OAUTHBEARER where the server offers it (the standard), else XOAUTH2; "" for neither."""
    for mechanism in ("OAUTHBEARER", "XOAUTH2"):
        if client.has_capability(f"AUTH={mechanism}"):
            return mechanism
    return ""


def _oauth2_login(client: imapclient.IMAPClient, user: str, creds: Any, where: str) -> str:
    try:
        mechanism = oauth2_mechanism(client)
    except (*NETWORK_ERRORS, IMAPClientError) as exc:
        raise ServerError(f"IMAP login to {where} failed: {describe(exc)}") from None
    if not mechanism:
        raise ServerError(
            f"IMAP server {where} offers no OAuth2 login (neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2): "
            "token_cmd cannot be used there; use password_env or password_cmd"
        )
    token = fetch_token(creds)  # once per connection, only when it can be used
    try:
        if mechanism == "OAUTHBEARER":
            client.oauthbearer_login(user, token)
        else:
            client.oauth2_login(user, token)
    except LoginError as exc:
        detail = redact(" ".join(str(exc).split()), token) or "rejected"
        raise ServerError(
            f"IMAP server refused the OAuth2 token for {user} at {where} ({mechanism}: {detail}): "
            "expired, revoked, or issued for another account? Check token_cmd"
        ) from None
    except (*NETWORK_ERRORS, IMAPClientError) as exc:
        raise ServerError(f"IMAP login to {where} failed: {redact(describe(exc), token)}") from None
    log.debug("logged in to IMAP %s as %s with %s", where, user, mechanism)
    return mechanism


def _fetched(item: dict[bytes, Any], uidvalidity: int, uid: int, size: int, limit: int) -> Fetched | None:
    """One FETCH response item as a Fetched; None when the message was expunged meanwhile."""
    too_large = size > limit
    raw = item.get(b"BODY[HEADER]<0>" if too_large else b"BODY[]")
    if raw is None:
        return None
    received = item.get(b"INTERNALDATE")
    if isinstance(received, datetime) and received.tzinfo is None:
        received = received.astimezone(timezone.utc)
    return Fetched(
        source_key=f"{uidvalidity}:{uid}",
        raw=bytes(raw),
        received_at=received if isinstance(received, datetime) else None,
        uid=uid,
        size=size,
        too_large=too_large,
    )


def _quietly_close(client: imapclient.IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # the socket may already be gone
        pass


class ImapSource:
    def __init__(self, settings: MailboxSettings, client: Any, since: date | None = None):
        self.settings = settings
        self.client = client
        self.name = settings.name
        self.folders = settings.folders
        self.since = since or settings.since

    @classmethod
    def connect(cls, settings: MailboxSettings, since: Any = None) -> ImapSource:
        return cls(settings, connect(settings), since=since)

    def pending(self, folder: str, checkpoint: tuple[int, int] | None, known: Known) -> Pending:
        try:
            info = self.client.select_folder(folder, readonly=True)
            uidvalidity = int(info[b"UIDVALIDITY"])
            rescan = checkpoint is not None and checkpoint[0] != uidvalidity
            last = checkpoint[1] if checkpoint and not rescan else 0
            criteria: list[Any] = []
            if last:
                criteria += ["UID", f"{last + 1}:*"]
            if self.since:
                criteria += ["SINCE", self.since]
            uids = sorted(u for u in self.client.search(criteria or ["ALL"]) if u > last)
        except (*NETWORK_ERRORS, IMAPClientError) as exc:
            raise ServerError(f"IMAP folder {folder!r}: {describe(exc)}") from None
        if rescan:
            log.warning(
                "%s: UIDVALIDITY changed (%s -> %s); rescanning and deduplicating by Message-ID",
                folder,
                checkpoint[0] if checkpoint else None,
                uidvalidity,
            )
        return Pending(folder, len(uids), self._batches(folder, uidvalidity, uids), rescan=rescan)

    def _batches(self, folder: str, uidvalidity: int, uids: list[int]) -> Iterator[Batch]:
        """Batches of at most ``batch_size`` messages whose bodies stay under BATCH_BYTES.

        Sizes come first (``RFC822.SIZE``, cheap), so no fetch ever asks for
        more bodies than the budget; a message over ``max_message_mb`` is
        fetched by its headers only. The checkpoint is the batch's last UID,
        whether or not that message still existed.
        """
        limit = self.settings.max_message_bytes
        for i in range(0, len(uids), SIZE_CHUNK):
            chunk = uids[i : i + SIZE_CHUNK]
            sizes = self._sizes(folder, chunk)
            for group in byte_batches(((u, sizes.get(u, 0)) for u in chunk), self.settings.batch_size, BATCH_BYTES, limit):
                fetched = self._fetch(folder, uidvalidity, [(u, sizes[u]) for u in group if u in sizes])
                yield Batch(folder, fetched, uidvalidity=uidvalidity, checkpoint=(uidvalidity, group[-1]))

    def _sizes(self, folder: str, uids: list[int]) -> dict[int, int]:
        try:
            data = self.client.fetch(uids, ["RFC822.SIZE"])
        except (*NETWORK_ERRORS, IMAPClientError) as exc:
            raise ServerError(f"IMAP fetch from {folder!r} failed: {describe(exc)}") from None
        return {uid: int(item[b"RFC822.SIZE"]) for uid, item in data.items() if b"RFC822.SIZE" in item}

    def _fetch(self, folder: str, uidvalidity: int, group: list[tuple[int, int]]) -> list[Fetched]:
        """Bodies of the messages under the limit, headers of those over it, in UID order."""
        limit = self.settings.max_message_bytes
        whole = [u for u, size in group if size <= limit]
        heads = [u for u, size in group if size > limit]
        try:
            data = self.client.fetch(whole, ["BODY.PEEK[]", "INTERNALDATE"]) if whole else {}
            if heads:
                # a partial fetch: even a header block is never taken whole past HEADER_BYTES
                data.update(self.client.fetch(heads, [f"BODY.PEEK[HEADER]<0.{HEADER_BYTES}>", "INTERNALDATE"]))
        except (*NETWORK_ERRORS, IMAPClientError) as exc:
            raise ServerError(f"IMAP fetch from {folder!r} failed: {describe(exc)}") from None
        fetched = []
        for uid, size in group:
            item = data.pop(uid, None)
            if item is not None and (message := _fetched(item, uidvalidity, uid, size, limit)) is not None:
                fetched.append(message)
        return fetched

    def refetch(self, folder: str, source_key: str, uidvalidity: int | None, uid: int | None) -> Fetched | None:
        if uid is None:
            return None
        try:
            info = self.client.select_folder(folder, readonly=True)
            if uidvalidity is not None and int(info[b"UIDVALIDITY"]) != uidvalidity:
                return None
            sizes = self._sizes(folder, [uid])
        except (*NETWORK_ERRORS, IMAPClientError) as exc:
            raise ServerError(f"IMAP folder {folder!r}: {describe(exc)}") from None
        if uid not in sizes:
            return None
        found = self._fetch(folder, int(info[b"UIDVALIDITY"]), [(uid, sizes[uid])])
        return found[0] if found else None

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # closing a dead connection is not an error worth reporting
            _quietly_close(self.client)


class ImapMailbox:
    """The write side used after sending: the Sent copy and ``\\Answered``. Never used by poll."""

    def __init__(self, client: Any, sent_folder: str = ""):
        self.client = client
        self._sent = sent_folder

    @classmethod
    def connect(cls, settings: MailboxSettings, sent_folder: str = "") -> ImapMailbox:
        return cls(connect(settings), sent_folder)

    @property
    def sent_folder(self) -> str:
        """The configured Sent folder, else the one with the ``\\Sent`` special-use flag."""
        if not self._sent:
            try:
                self._sent = self.client.find_special_folder(imapclient.imapclient.SENT) or "Sent"
            except (*NETWORK_ERRORS, IMAPClientError) as exc:
                raise ServerError(f"IMAP: cannot list folders: {describe(exc)}") from None
        return self._sent

    def in_sent(self, message_id: str) -> bool:
        """Whether a message with this Message-ID is already in Sent."""
        try:
            self.client.select_folder(self.sent_folder, readonly=True)
            return bool(self.client.search(["HEADER", "Message-ID", message_id]))
        except (*NETWORK_ERRORS, IMAPClientError) as exc:
            raise ServerError(f"IMAP: cannot search {self.sent_folder!r}: {describe(exc)}") from None

    def append_sent(self, raw: bytes) -> None:
        try:
            self.client.append(self.sent_folder, raw, flags=[imapclient.SEEN])
        except (*NETWORK_ERRORS, IMAPClientError) as exc:
            raise ServerError(f"IMAP: cannot append to {self.sent_folder!r}: {describe(exc)}") from None

    def mark_answered(self, folder: str, uidvalidity: int | None, uid: int | None) -> bool:
        """Set ``\\Answered`` on the original, if it is still where it was; False if it moved."""
        if uid is None:
            return False
        try:
            info = self.client.select_folder(folder)
            if uidvalidity is not None and int(info[b"UIDVALIDITY"]) != uidvalidity:
                return False
            self.client.add_flags([uid], [imapclient.ANSWERED], silent=True)
            return True
        except (*NETWORK_ERRORS, IMAPClientError) as exc:
            raise ServerError(f"IMAP: cannot flag the original in {folder!r}: {describe(exc)}") from None

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # closing a dead connection is not worth reporting
            _quietly_close(self.client)
