"""Outgoing mail: one-line text, safe header values, subjects, our Message-IDs, replies, notices.

Pure functions, values in and values out; nothing here knows about templates
or rules. The contract every caller relies on:

- ``clean_line`` turns any text into one line without control or bidi characters;
- ``header_text`` and ``display_name`` give values that cannot start a new header
  however the email package re-reads them (CVE-2024-6923 included);
- ``reply_subject`` makes one "Re: " without stacking prefixes;
- ``new_message_id`` writes our Message-ID format, with an unguessable random
  part, and ``parse_our_id`` is the one place that reads it back (recognising
  our own mail coming back); ``references_for`` gives valid, bounded References;
- ``reply_cc`` keeps the original's other recipients as a reply-all's Cc, never ours, and
  ``parse_cc`` reads the addresses an agent typed;
- ``build_reply`` builds the text/plain reply with policy.SMTP, checks that its
  headers survive serialisation, and raises ``ReplyError`` rather than send a
  malformed message; ``reply_message`` is that reply for a draft answering a message;
- ``build_notice`` builds the internal notices ``triage remind`` sends.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import NamedTuple, Protocol

from triage.errors import TriageError

NAME_LIMIT = 64  # display names in headers
SUBJECT_LIMIT = 200
MAX_REFERENCES = 20
RANDOM_BYTES = 16  # the unguessable part of our Message-IDs


class ReplyError(TriageError):
    """An outgoing reply could not be built safely (bad address or header)."""


class Original(Protocol):
    """What a reply needs of the message it answers (``triage.message.Message`` has it all).

    A protocol rather than an import: ``triage.message`` reads our Message-IDs
    through this module, so this module must not import it.
    """

    @property
    def message_id(self) -> str: ...
    @property
    def references(self) -> tuple[str, ...]: ...
    @property
    def reply_to(self) -> str: ...
    @property
    def sender_name(self) -> str: ...
    @property
    def reply_address(self) -> str: ...


class Text(Protocol):
    """What a reply needs of a rendered draft (``triage.drafting.drafter.DraftText``)."""

    @property
    def subject(self) -> str: ...
    @property
    def body(self) -> str: ...


class Sender(Protocol):
    """Who we send as (``triage.config.SupportSettings``)."""

    @property
    def address(self) -> str: ...
    @property
    def name(self) -> str: ...


# --------------------------------------------------------------------------- text helpers

_CTRL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]+")


def clean_line(value: str, limit: int | None = None) -> str:
    """One line of text: control and bidi characters become spaces, whitespace collapsed.

    With ``limit``, cut at the last space before it (or hard, for one long word).
    """
    text = re.sub(r"\s+", " ", _CTRL.sub(" ", value or "")).strip()
    if limit is not None and len(text) > limit:
        cut = text[:limit]
        space = cut.rfind(" ")
        text = (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-")
    return text


def header_text(value: str, limit: int = SUBJECT_LIMIT) -> str:
    """A header value that cannot create a new header, however it is re-read.

    RFC 2047 encoded-words are decoded the way the email package will decode
    them when the header is set, control characters removed, until nothing
    changes; one that still will not settle is defused ("=?" -> "= ?").
    """
    text = clean_line(value, limit)
    for _ in range(5):
        try:
            decoded = clean_line(str(policy.SMTP.header_factory("subject", text)), limit)
        except Exception:  # the header parser can trip on hostile input
            decoded = text.replace("=?", "= ?")
        if decoded == text:
            return text
        text = decoded
    return text.replace("=?", "= ?")


def display_name(value: str) -> str:
    """A display name safe for From/To: one line, at most NAME_LIMIT characters, no encoded-words."""
    return header_text(value, NAME_LIMIT).replace("=?", "= ?")


_REPLY_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|vs|antw|antwort|odp|res|rif|ynt|vá|回复|回覆|答复)\s*"
    r"(?:\[\d+\]|\(\d+\))?\s*[:：]\s*", re.I)


def reply_subject(original: str) -> str:
    """``Re: <original>`` without stacking: any run of Re:/RE:/Re[2]:/AW:/SV:... becomes one "Re: ".

    Fwd:/Fw: are kept (a forwarded thread is still a forward). An empty subject
    gives "Re: your message".
    """
    text = header_text(original, SUBJECT_LIMIT)
    while True:
        stripped = _REPLY_PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return f"Re: {text.strip() or 'your message'}"


# --------------------------------------------------------------------------- threading

_MSGID = re.compile(r"<[^<>\s@\x00-\x1f\x7f]{1,200}@[^<>\s@\x00-\x1f\x7f]{1,200}>")


class OurId(NamedTuple):
    """What one of our Message-IDs carries: the case it answers and the domain it was made for."""

    case_id: int
    domain: str


_OUR_ID = re.compile(r"^<triage\.c(\d+)\.[^@<>]*@([^<>]+)>$")


def new_message_id(case_id: int, domain: str, token: str) -> str:
    """The outgoing Message-ID of a draft, ``<triage.c{case_id}.{token}.{random}@{domain}>``.

    ``random`` is ``secrets.token_urlsafe`` (128 bits): nobody can name one of
    our replies without having seen it, so a stranger cannot thread mail into
    a case by guessing (threading looks the id up among the drafts we made;
    the case id is only a hint for people reading headers). The token and
    domain are reduced to characters that are safe in a msg-id.
    ``parse_our_id`` reads it back.
    """
    token = re.sub(r"[^A-Za-z0-9-]", "", token)[:64] or "0"
    domain = re.sub(r"[^A-Za-z0-9.-]", "", domain.lower())[:200] or "triage.invalid"
    return f"<triage.c{int(case_id)}.{token}.{secrets.token_urlsafe(RANDOM_BYTES)}@{domain}>"


def parse_our_id(value: str) -> OurId | None:
    """The case and domain in a Message-ID made by ``new_message_id``; None for anyone else's.

    It reads the shape only (older ids without the random part too): use it to
    recognise our own mail coming back, never to decide which case a message
    joins, since anyone can write an id of this shape. The domain is returned as written; whether it is *our* domain is the
    caller's question (a copy of our own reply is ours whatever it says).
    """
    match = _OUR_ID.match(value or "")
    return OurId(int(match.group(1)), match.group(2)) if match else None


def sender_domain(address: str) -> str:
    """The domain our Message-IDs are made for: the part of the support address after "@"."""
    return address.rsplit("@", 1)[-1]


def references_for(message: Original) -> tuple[str, ...]:
    """The original's References plus its Message-ID: valid ids only, de-duplicated, bounded.

    When there are more than MAX_REFERENCES, the first (the thread's root) and the
    most recent ones are kept, as RFC 5322 suggests.
    """
    return _bounded_references((*message.references, message.message_id))


def _bounded_references(ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    valid = list(dict.fromkeys(i for i in ids if _MSGID.fullmatch(i)))
    if len(valid) > MAX_REFERENCES:
        valid = valid[:1] + valid[-(MAX_REFERENCES - 1):]
    return tuple(valid)


MAX_CC = 20  # a reply keeps at most this many of the original's other recipients


def reply_cc(to: str, recipients: tuple[str, ...] | list[str], ours: frozenset[str] | set[str]) -> tuple[str, ...]:
    """The Cc of a reply-all: the original's To and Cc (``recipients``) without our own addresses
    (``ours``, lower-case) and the reply's To; plain addresses only, lower-cased, de-duplicated,
    at most MAX_CC (a message addressed to hundreds is not answered to hundreds)."""
    skip = {a.lower() for a in ours} | {to.strip().lower()}
    kept: list[str] = []
    for address in recipients:
        value = address.strip().lower()
        if value in skip or value in kept or not is_address(value):
            continue
        kept.append(value)
    return tuple(kept[:MAX_CC])


def parse_cc(text: str) -> tuple[str, ...]:
    """Addresses an agent typed ("a@x, b@y" or "Name <a@x>; b@y"), lower-cased and
    de-duplicated; ReplyError naming the first that is not a plain address."""
    kept: list[str] = []
    for part in re.split(r"[,;\n]+", text or ""):
        named = re.fullmatch(r"[^<>]*<([^<>]*)>\s*", part)
        value = (named.group(1) if named else part).strip().lower()
        if not value:
            continue
        if not is_address(value):
            raise ReplyError(f"not an email address: {part.strip()!r}")
        if value not in kept:
            kept.append(value)
    if len(kept) > MAX_CC:
        raise ReplyError(f"at most {MAX_CC} Cc addresses")
    return tuple(kept)


def is_address(value: str) -> bool:
    """A plain addr-spec we are willing to put in a header (``local@domain``, nothing else)."""
    try:
        _address(value)
    except ValueError:
        return False
    return True


def build_reply(*, to: str, subject: str, body: str, message_id: str, in_reply_to: str,
                references: tuple[str, ...] | list[str], from_address: str, from_name: str,
                date: datetime | None = None, to_name: str = "",
                cc: tuple[str, ...] | list[str] = ()) -> EmailMessage:
    """The outgoing text/plain reply, built with EmailMessage and policy.SMTP.

    Names and the subject pass through ``display_name``/``header_text``, so no
    value can start a header; invalid msg-ids in In-Reply-To/References are
    dropped, and References is de-duplicated and bounded like
    ``references_for``. The message is serialised and re-parsed as a final
    check. Raises ReplyError for a bad address or Message-ID, or if the check
    fails.
    """
    msg = EmailMessage(policy=policy.SMTP)
    try:
        msg["From"] = Address(display_name=display_name(from_name), addr_spec=_address(from_address))
        msg["To"] = Address(display_name=display_name(to_name), addr_spec=_address(to))
        if cc:
            msg["Cc"] = [Address(addr_spec=_address(a)) for a in cc]
    except (ValueError, IndexError) as exc:
        raise ReplyError(f"cannot address the reply: {exc}") from None
    msg["Subject"] = header_text(subject) or "Re: your message"
    when = date or datetime.now(timezone.utc)
    msg["Date"] = format_datetime(when if when.tzinfo else when.replace(tzinfo=timezone.utc))
    if not _MSGID.fullmatch(message_id):
        raise ReplyError(f"not a valid Message-ID: {message_id[:80]!r}")
    msg["Message-ID"] = message_id
    if _MSGID.fullmatch(in_reply_to or ""):
        msg["In-Reply-To"] = in_reply_to
    refs = _bounded_references(references)
    if refs:
        msg["References"] = " ".join(refs)
    msg["X-Triage-Sent"] = "1"
    msg.set_content(body.replace("\r\n", "\n").replace("\r", "\n"), charset="utf-8")
    expected = [k.lower() for k in msg.keys()]
    reparsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    if [k.lower() for k in reparsed.keys()] != expected:
        raise ReplyError("the reply's headers did not survive serialisation unchanged")
    return msg


def reply_message(message: Original, draft: Text, support: Sender, message_id: str,
                  date: datetime | None = None) -> EmailMessage:
    """``build_reply`` for a draft answering ``message``: To is Reply-To, else From."""
    to_name = "" if message.reply_to else message.sender_name
    return build_reply(to=message.reply_address, subject=draft.subject, body=draft.body,
                       message_id=message_id, in_reply_to=message.message_id,
                       references=references_for(message), from_address=support.address,
                       from_name=support.name, date=date, to_name=to_name)


# --------------------------------------------------------------------------- notices

def build_notice(*, to: str, subject: str, body: str, from_address: str, from_name: str,
                 date: datetime) -> EmailMessage:
    """An internal notice (digest, escalation, alert) for agents and the owner.

    Auto-Submitted so no responder answers it, X-Triage-Sent so poll ignores
    it. From is built as an address, its name passed through ``display_name``
    like a reply's, so no name (a comma, quotes, "<") can add a recipient or a header.
    """
    msg = EmailMessage()
    msg["From"] = Address(display_name=display_name(f"{from_name} (triage)"), addr_spec=from_address)
    msg["To"] = to
    msg["Subject"] = header_text(subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = make_msgid(domain=sender_domain(from_address))
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Triage-Sent"] = "1"
    msg.set_content(body)
    return msg


def _address(value: str) -> str:
    text = (value or "").strip()
    if not re.fullmatch(r"[^\s<>(),;:\"@\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,190}", text):
        raise ValueError(f"not a plain email address: {text[:80]!r}")
    return text
