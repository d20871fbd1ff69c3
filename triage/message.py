"""Raw RFC 5322 bytes -> ``Message`` (via mail-parser).

The pure core of the parse stage: no I/O. ``parse`` raises ``ParseError``
for a message it cannot read; callers quarantine it and go on. The text
used for detection (``Message.text``) is the customer's own new words:
quoted history and signatures removed. ``Message.full_text`` keeps the
whole body for display.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import getaddresses, parseaddr
from functools import cache
from typing import TYPE_CHECKING, Any

from triage.drafting.outgoing import parse_our_id
from triage.errors import TriageError

if TYPE_CHECKING:
    import mailparser

    from triage.automatic import AutoRules


class ParseError(TriageError):
    """The message could not be parsed into a Message."""


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Message:
    """One parsed email, as every later stage sees it."""

    message_id: str
    sender_name: str
    sender_address: str
    subject: str
    date: datetime
    text: str
    full_text: str
    reply_to: str = ""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    auto: str = ""  # why this is automatic mail ("" for a person's mail)
    raw_hash: str = ""
    defects: tuple[str, ...] = field(default=())

    @property
    def reply_address(self) -> str:
        return self.reply_to or self.sender_address

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this message replies to, nearest first."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        ids += [r for r in reversed(self.references) if r not in ids]
        return tuple(ids)


_MSGID = re.compile(r"<[^<>\s]+>")
_ROBOT_LOCAL = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|"
    r"notifications?|auto-?reply|autoresponder)([+._-].*)?$",
    re.I,
)


def raw_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def synthetic_id(raw: bytes) -> str:
    """A stable Message-ID for a message that has none (or cannot be parsed)."""
    return f"<{raw_hash(raw)[:32]}@triage.invalid>"


def parse(raw: bytes, received_at: datetime | None = None, automatic: AutoRules | None = None) -> Message:
    """Parse ``raw`` into a Message. Any failure becomes ParseError.

    ``automatic``: the owner's signs of automatic mail (rules/automatic.toml);
    the shipped file's when None.
    """
    digest = raw_hash(raw)
    if not raw.strip():
        raise ParseError("empty message")
    import mailparser  # here, not at import: a poll that finds no mail never needs it

    try:
        mail = mailparser.parse_from_bytes(raw)
        return _build(mail, digest, received_at, automatic)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("message nested too deeply to parse") from None
    except Exception as exc:  # mail-parser raises ValueError/AttributeError/... on bad input
        raise ParseError(f"{type(exc).__name__}: {exc}") from None


def _header(mail: mailparser.MailParser, name: str) -> str:
    value = mail.message.get(name)
    if value is None:
        return ""
    return _clean_header(str(value))


def _clean_header(value: str) -> str:
    """One line, no control characters: header values never carry CR/LF/NUL."""
    value = re.sub(r"[\x00-\x1f\x7f]+", " ", value)
    return re.sub(r"\s+", " ", value).strip()


def _address(pairs: list[tuple[str, str]] | None) -> tuple[str, str]:
    for name, addr in pairs or []:
        if addr and "@" in addr:
            return _clean_header(name or ""), _clean_header(addr).lower()
    return "", ""


def _ids(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_MSGID.findall(value or "")))


def _build(
    mail: mailparser.MailParser, digest: str, received_at: datetime | None, automatic: AutoRules | None
) -> Message:
    if not mail.message.keys():
        raise ParseError("no headers: this is not an email message")
    name, address = _address(mail.from_)
    if not address:
        # mail-parser drops some odd forms; fall back to the raw header
        n, a = parseaddr(_header(mail, "From"))
        name, address = _clean_header(n), a.lower() if "@" in a else ""
    if not address:
        raise ParseError("no sender address: the From header is missing or unreadable")
    _, reply_to = _address(mail.reply_to)
    mid = (_ids(mail.message_id or _header(mail, "Message-ID")) or (f"<{digest[:32]}@triage.invalid>",))[0]

    date = mail.date if isinstance(mail.date, datetime) else None
    if date is None:
        date = received_at or datetime.now(timezone.utc)
    elif date.tzinfo is None:
        date = date.replace(tzinfo=timezone.utc)

    plain = "\n".join(p for p in mail.text_plain if p).strip()
    html = "\n".join(p for p in mail.text_html if p)
    full = plain or (html_to_text(html) if html else "")
    attachments = tuple(
        Attachment(
            name=_clean_header(a.get("filename") or ""),
            content_type=_clean_header(a.get("mail_content_type") or "application/octet-stream"),
            size=_payload_size(a),
        )
        for a in mail.attachments
    )
    defects = tuple(str(c) for c in sorted(mail.defects_categories or ()))
    to = tuple(a.lower() for _, a in getaddresses([_header(mail, "To")]) if a)
    cc = tuple(a.lower() for _, a in getaddresses([_header(mail, "Cc")]) if a)
    in_reply_to = (_ids(_header(mail, "In-Reply-To")) or ("",))[0]
    message = Message(
        message_id=mid,
        sender_name=name,
        sender_address=address,
        subject=_clean_header(mail.subject or ""),
        date=date,
        text=new_words(full),
        full_text=full,
        reply_to=reply_to,
        to=to,
        cc=cc,
        in_reply_to=in_reply_to,
        references=_ids(_header(mail, "References")),
        attachments=attachments,
        raw_hash=digest,
        defects=defects,
    )
    return _with_auto(message, mail, automatic)


def attachment_payload(raw: bytes, index: int) -> bytes | None:
    """The bytes of the message's ``index``-th attachment (in ``Message.attachments`` order), or None.

    The same parse as ``parse``, so the index is the one stored with the message.
    """
    import base64
    import binascii

    import mailparser

    try:
        found = mailparser.parse_from_bytes(raw).attachments
    except Exception:  # mail-parser raises anything on bad input; the message was parsed once already
        return None
    if not 0 <= index < len(found):
        return None
    payload = found[index].get("payload") or ""
    if not found[index].get("binary"):
        return payload.encode("utf-8", "replace") if isinstance(payload, str) else bytes(payload)
    try:
        return base64.b64decode(payload)
    except (binascii.Error, ValueError, TypeError):
        return None


def _payload_size(attachment: dict[str, object]) -> int:
    payload = attachment.get("payload") or ""
    size = len(payload) if isinstance(payload, (str, bytes)) else 0
    return size * 3 // 4 if attachment.get("binary") else size


def _with_auto(message: Message, mail: mailparser.MailParser, automatic: AutoRules | None) -> Message:
    reason = automatic_reason(
        {k: _header(mail, k) for k in _AUTO_HEADERS},
        message.sender_address,
        mail.message.get_content_type() if mail.message else "",
    )
    if not reason:
        from triage.automatic import shipped

        rules = automatic or shipped()
        reason = rules.reason(
            {k: _header(mail, k) for k in rules.header_names},
            message.subject,
            message.full_text,
            answers_us=any(parse_our_id(mid) for mid in message.thread_ids),
        )
    if not reason:
        return message
    return Message(**{**message.__dict__, "auto": reason})


_AUTO_HEADERS = (
    "Auto-Submitted",
    "Precedence",
    "List-Id",
    "List-Unsubscribe",
    "X-Autoreply",
    "X-Autorespond",
    "X-Auto-Response-Suppress",
    "Return-Path",
    "X-Triage-Sent",
    "Message-ID",
)


def automatic_reason(headers: dict[str, str], sender: str, content_type: str) -> str:
    """Why a message is automatic mail that must never be answered, or "".

    These signs hold whatever the owner's rules/automatic.toml says (see
    ``triage.automatic`` for the ones it adds: X-Loop, subjects, tickets).
    """
    auto_submitted = headers.get("Auto-Submitted", "").lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = headers.get("Precedence", "").lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    if headers.get("List-Id"):
        return "List-Id"
    if headers.get("List-Unsubscribe"):  # newsletters that carry no List-Id or Precedence
        return "List-Unsubscribe"
    for name in ("X-Autoreply", "X-Autorespond"):
        if headers.get(name):
            return name
    suppress = headers.get("X-Auto-Response-Suppress", "").lower()
    if suppress and any(w in suppress for w in ("all", "oof", "autoreply")):
        return f"X-Auto-Response-Suppress: {suppress}"
    if headers.get("Return-Path", "").replace(" ", "") == "<>":
        return "null return path"
    if content_type == "multipart/report":
        return "delivery or disposition report"
    # a copy of our own reply coming back (a Cc to support, a relay that strips X- headers) is ours
    if headers.get("X-Triage-Sent") or parse_our_id(headers.get("Message-ID", "")):
        return "our own reply"
    local = sender.split("@", 1)[0]
    if _ROBOT_LOCAL.match(local):
        return f"robot sender {local}@"
    return ""


@cache
def _html2text() -> Any:
    import html2text

    h = html2text.HTML2Text()
    h.ignore_links = True
    h.ignore_images = True
    h.ignore_emphasis = True
    h.body_width = 0
    return h


def html_to_text(html: str) -> str:
    """Readable text from an HTML body; never executes or keeps markup."""
    try:
        text = _html2text().handle(html)
    except Exception:  # html2text can trip on pathological markup
        text = re.sub(r"<[^>]*>", " ", html)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# Where quoted or forwarded mail begins, in the formats of the common clients (Outlook,
# Gmail, Apple Mail, Thunderbird, Lotus Notes) in English, German, French and Spanish.
# Everything from there on is context, not the customer's voice.
_ATTRIBUTION = re.compile(
    r"^\s*(?:"
    r"On\b.{0,300}\bwrote\s*:?"  # Gmail, Apple Mail, Thunderbird
    r"|Am\b.{0,300}\bschrieb\b.{0,200}:"
    r"|Le\b.{0,300}\ba\s+écrit\s*:"
    r"|El\b.{0,300}\bescribió\s*:"
    r"|.{0,200}<[^<>\s@]+@[^<>\s]+>.{0,80}\b(?:wrote|writes|schrieb|a\s+écrit|escribió)\s*:"
    r")\s*$",
    re.I,
)
_SEPARATOR = re.compile(
    r"^\s*(?:"
    r"-{2,}\s*(?:Original(?:\s+Message)?|Forwarded\s+message|Ursprüngliche\s+Nachricht|Originalnachricht|"
    r"Weitergeleitete\s+Nachricht|Message\s+d'origine|Message\s+d’origine|Message\s+original|Message\s+transféré|"
    r"Mensaje\s+original|Mensaje\s+reenviado)\s*-{2,}"  # Outlook, Gmail, Thunderbird
    r"|(?:Begin\s+forwarded\s+message|Anfang\s+der\s+weitergeleiteten\s+Nachricht|"
    r"Début\s+du\s+message\s+(?:réexpédié|transféré)|Inicio\s+del\s+mensaje\s+reenviado|"
    r"Comienzo\s+del\s+mensaje\s+reenviado)\s*:"  # Apple Mail
    r"|-{3,}\s*(?:Forwarded\s+by|Weitergeleitet\s+von|Transféré\s+par|Reenviado\s+por)\b"  # Lotus Notes
    r"|_{10,}\s*$"  # Outlook's rule above a quoted header in HTML mail
    r")",
    re.I,
)
# Header lines of a quoted or forwarded message ("From: ...", "Von: ...", "De :", "Asunto:")
_HEADER_NAMES = (
    "from|sent|date|to|cc|bcc|subject|reply-to"
    "|von|gesendet|datum|an|betreff|antwort an"
    "|de|envoyé|envoyé le|date d'envoi|à|objet|sujet|répondre à"
    "|enviado|enviado el|fecha|para|asunto|responder a"
)
_HEADER_LINE = re.compile(rf"^\s*\*?(?P<name>{_HEADER_NAMES})\*?\s?:", re.I)
_HEADER_WINDOW = 6  # lines in which a second header line makes a header block
# "From: Ann Sent: Monday ... To: ..." on one line (Outlook's HTML quote flattened to text)
_ONE_LINE_HEADER = re.compile(
    r"^\s*(?:from|von|de)\s?:.{1,200}\b(?:sent|date|gesendet|datum|envoyé|enviado|fecha)\s?:", re.I
)
# Lotus Notes puts the sender's name and "03/05/2001 04:23 PM" on the lines above "To:"
_NOTES_DATE = re.compile(r"^\s*\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\s+\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AP]M)?\s*$", re.I)
_WROTE_TAIL = re.compile(r"^\s*.{0,300}\b(?:wrote|schrieb|a\s+écrit|escribió)\s*:\s*$", re.I)


def _header_block(lines: list[str], i: int) -> bool:
    """Whether a quoted message's header block starts at line ``i`` (two header names within a few lines)."""
    first = _HEADER_LINE.match(lines[i])
    if first is None:
        return _ONE_LINE_HEADER.match(lines[i]) is not None
    names = {first.group("name").lower()}
    for line in lines[i + 1 : i + _HEADER_WINDOW]:
        found = _HEADER_LINE.match(line)
        if found is not None:
            names.add(found.group("name").lower())
            if len(names) >= 2:
                return True
    return False


def quote_start(lines: list[str]) -> int:
    """Index of the first line of quoted or forwarded mail (``len(lines)`` when there is none)."""
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        joined = line if i + 1 >= len(lines) else f"{line} {lines[i + 1].strip()}"
        if _SEPARATOR.match(line) or _ATTRIBUTION.match(line):
            return i
        if _ATTRIBUTION.match(joined) and not _ATTRIBUTION.match(lines[i + 1]):
            return i  # an attribution wrapped over two lines
        if _header_block(lines, i):
            start = i
            # Lotus Notes: "Drew Fossum" / "03/05/2001 04:23 PM" above the header lines
            if start > 0 and _NOTES_DATE.match(lines[start - 1]):
                start -= 1
                if start > 0 and 0 < len(lines[start - 1].strip()) <= 60:
                    start -= 1
            return start
    return len(lines)


_SIGNATURE = re.compile(
    r"^(-- ?|--|__+|Sent from my \w+.*|Get Outlook for .*|Best regards,?|Kind regards,?|"
    r"Regards,?|Thanks,?|Thank you,?|Cheers,?|Best,?|Sincerely,?|Many thanks,?)\s*$",
    re.I,
)


def new_words(text: str) -> str:
    """The customer's own new words: quoted and forwarded mail and the signature removed.

    Cuts at the first reply attribution ("On ... wrote:", "Am ... schrieb ...:",
    "Le ... a écrit :", "El ... escribió:"), separator ("-----Original
    Message-----", "Begin forwarded message:", "----- Forwarded by ...", their
    German, French and Spanish forms) or quoted header block ("From:/Sent:/To:",
    "Von:/Gesendet:", "De :/Envoyé :", "De:/Enviado el:", a Lotus Notes
    name/date/To:/cc: block); drops ``>`` lines; and cuts at a signature
    delimiter ("-- ") or a closing sign-off that is followed only by a few short
    lines. A message that is all forwarded mail has no new words ("").
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    lines = lines[: quote_start(lines)]
    lines = [ln for ln in lines if not ln.lstrip().startswith(">")]
    # "On Tue, 3 Mar 2026 at 10:00, Ann <a@b>" may wrap before "wrote:"
    while lines and _WROTE_TAIL.match(lines[-1] if lines[-1].strip() else ""):
        lines.pop()
    cut = _signature_start(lines)
    kept = "\n".join(lines[:cut]).strip()
    return kept or "\n".join(lines).strip()


def _signature_start(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped in ("--", "-- ") or line.rstrip("\n") == "-- ":
            return i
        if _SIGNATURE.match(stripped):
            tail = [t for t in lines[i + 1 :] if t.strip()]
            if len(tail) <= 4 and all(len(t.strip()) <= 60 for t in tail):
                return i
    return len(lines)
