"""rules/automatic.toml: the owner's signs of automatic mail, and the auto-responder loop policy.

``AutoRules.load(rules_dir)`` reads and validates the file (``RulesError``
naming file, key and line); ``AutoRules.reason(...)`` says why a message is
automatic by these signs, or "". The signs that are always recognised,
whatever the file says (RFC 3834, bounces, our own reply), stay in
``triage.message.automatic_reason``; this module adds what an owner may
tune: extra headers, out-of-office subjects per language and ticket-system
acknowledgements. ``is_loop`` is the loop breaker's test: a counterpart that
answered each of our last replies within minutes with near-identical text
(``similar``); ``loop_address`` is who that counterpart is when a responder
writes from a new address each time (a +tag, a token of its own).

Pure: no store, no network. Imports nothing of triage but ``rulefile``,
``errors`` and ``config`` (for where the shipped file is).
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from triage.rulefile import TomlFile

FILE = "automatic.toml"
BODY_CHARS = 2000  # how much of a body the `body` phrases are looked for in
_TOP = {"loop", "headers", "subjects", "tickets"}
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII but ':'
_TAGS = re.compile(r"^(\[[^\]]{0,80}\]\s*)+")


@dataclass(frozen=True)
class LoopPolicy:
    """When a case is an auto-responder loop: see rules/automatic.toml [loop]."""

    replies: int = 3
    within_minutes: int = 10
    similarity: float = 0.9


@dataclass(frozen=True)
class HeaderSign:
    id: str
    header: str
    values: tuple[str, ...] = ()  # lower-cased; empty: the header's presence is enough

    def matches(self, value: str) -> bool:
        value = value.strip().lower()
        if not value:
            return False
        return not self.values or any(value.startswith(v) for v in self.values)


@dataclass(frozen=True)
class Language:
    code: str
    prefixes: tuple[str, ...] = ()  # normalised (see ``normalise``)
    openings: tuple[str, ...] = ()
    body: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ticket:
    id: str
    subject: re.Pattern[str]
    body: re.Pattern[str] | None = None  # must match too, in the body's first BODY_CHARS, when set


@dataclass(frozen=True)
class AutoRules:
    source: str = ""
    loop: LoopPolicy = LoopPolicy()
    headers: tuple[HeaderSign, ...] = ()
    languages: tuple[Language, ...] = ()
    tickets: tuple[Ticket, ...] = ()

    @property
    def header_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.header for h in self.headers))

    @classmethod
    def load(cls, rules_dir: Path) -> AutoRules:
        """Read and validate ``rules_dir/automatic.toml``; the shipped file's rules when it is absent."""
        path = Path(rules_dir) / FILE
        if not path.exists():
            return shipped()
        return _load(path)

    def reason(self, headers: dict[str, str], subject: str, body: str, answers_us: bool) -> str:
        """Why a message is automatic by these signs, or "".

        ``headers`` holds at least ``header_names`` (missing ones are absent);
        ``answers_us``: the message replies to one of our own Message-IDs.
        """
        for sign in self.headers:
            if sign.matches(headers.get(sign.header, "")):
                return f"{sign.header} header ({sign.id})"
        text = strip_tags(normalise(subject))
        if not text:
            return ""
        words = _words(text)
        for lang in self.languages:
            for prefix in lang.prefixes:
                if _starts(words, prefix, separated=True):
                    return f"auto-reply subject {prefix!r} ({lang.code})"
        start = None  # the body's first BODY_CHARS normalised: only read when a sign asks
        for ticket in self.tickets:
            if not ticket.subject.search(text):
                continue
            if ticket.body is None:
                return f"ticket acknowledgement ({ticket.id})"
            if start is None:
                start = normalise(body[:BODY_CHARS])
            if ticket.body.search(start):
                return f"ticket acknowledgement ({ticket.id})"
        # Without a colon, a person could have written it: only with a second sign.
        opening = next(((lang.code, o) for lang in self.languages for o in lang.openings
                        if _starts(words, o, separated=False)), None)
        if opening and answers_us:
            return f"auto-reply subject {opening[1]!r} ({opening[0]}) answering our reply"
        opening = opening or next(((lang.code, p) for lang in self.languages for p in lang.prefixes
                                   if _starts(words, p, separated=False)), None)
        if opening is None:
            return ""
        if start is None:
            start = normalise(body[:BODY_CHARS])
        for lang in self.languages:
            for phrase in lang.body:
                if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", start):
                    return f"auto-reply subject {opening[1]!r} ({opening[0]}) and text {phrase!r} ({lang.code})"
        return ""


def _words(text: str) -> str:
    """``normalise``d text with hyphens as spaces: "Out-of-Office" is "out of office"."""
    return re.sub(r"\s+", " ", re.sub(r"[-\u2010-\u2014_]", " ", text)).strip()


def normalise(text: str) -> str:
    """Lower case, accents removed, curly apostrophes straight, white space runs as one space."""
    return re.sub(r"\s+", " ", _plain(text)).strip().casefold()


def _plain(text: str) -> str:
    """Accents removed ("automática" -> "automatica", "ß" -> "ss"), curly apostrophes straight."""
    if text.isascii():  # nothing to decompose, no curly apostrophe, no ß
        return text
    decomposed = unicodedata.normalize("NFKD", text.replace("\u2019", "'").replace("\u00df", "ss"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def strip_tags(subject: str) -> str:
    """The subject without leading ``[EXTERNAL]``/``[#12345]`` tags."""
    return _TAGS.sub("", subject).strip()


def _starts(text: str, phrase: str, separated: bool) -> bool:
    """``text`` starts with ``phrase`` as whole words: then ":" or the end (``separated``), or anything."""
    if not text.startswith(phrase):
        return False
    rest = text[len(phrase):]
    if separated:
        return rest.strip() == "" or bool(re.match(r"\s?[:\uff1a]", rest))
    return rest == "" or not (rest[0].isalnum() or rest[0] == "_")


# -- loops ---------------------------------------------------------------------


def is_loop(policy: LoopPolicy, sent: Sequence[datetime], answers: Sequence[tuple[datetime, str]],
            current: str, ours: Sequence[str] = ()) -> bool:
    """Each of our last ``policy.replies`` replies (``sent``: when they went out) was answered
    within ``policy.within_minutes`` (``answers``: (received, text) from the counterpart), before
    our next reply, and every one of those answers, and ``current`` (the text of the message
    just received), is near-identical to the latest: a person who breaks in gets an answer.
    ``ours``: the texts of our replies, whose lines are left out of the answers (a responder
    that pastes our message under "Your message:" still says the same thing each time)."""
    times = sorted(sent)[-policy.replies:]
    if len(times) < policy.replies:
        return False
    window = timedelta(minutes=policy.within_minutes)
    ordered = sorted(answers, key=lambda a: a[0])
    found: list[str] = []
    used = -1  # each answer answers one reply
    for start in times:
        index = next((i for i, (when, _) in enumerate(ordered)
                      if i > used and start <= when <= start + window), None)
        if index is None:
            return False
        used = index
        found.append(ordered[index][1])
    own = _lines(ours)
    found = [_without(text, own) for text in found]
    return all(similar(found[-1], text, policy.similarity) for text in (*found[:-1], _without(current, own)))


_BATV = re.compile(r"^(?:prvs|msprvs\d?|btv1)=[^=]+=")  # prvs=0123456789=noreply: a signed bounce address
# a VERP tail that spells out the recipient: bounce-support=example.com
_VERP = re.compile(r"[-.=_][a-z0-9._%-]+=[a-z0-9-]+(?:\.[a-z0-9-]+)+$")
# a machine token at the end: six digits or more, or eight hex digits or more with two digits among them
_TOKEN = re.compile(r"[-.=_](?:\d{6,}|(?=[a-f]*\d[a-f]*\d)[0-9a-f]{8,})$")


# what a machine, not a person, answers from: only such a local part drops a VERP tail or token
_ROLES = frozenset({
    "noreply", "donotreply", "dontreply", "noreplies", "reply", "replies", "bounce", "bounces",
    "mailerdaemon", "postmaster", "mailer", "notification", "notifications", "notify", "notifier", "alert",
    "alerts", "auto", "autoreply", "autoresponder", "autoresponse", "support", "helpdesk", "help", "service",
    "customerservice", "info", "contact", "feedback", "orders", "order", "sales", "billing", "invoice",
    "invoices", "ticket", "tickets", "system", "news", "newsletter",
})


def loop_address(address: str) -> str:
    """``address`` as a responder that changes it each time keeps it, lower-cased: without a
    +tag (RFC 5233 subaddress: the same mailbox) or a BATV prefix, and, when what is left is a
    role (``noreply``, ``bounce``, ``support``, ``orders``…, see ``_ROLES``), without a VERP tail
    or trailing machine tokens: ``noreply+7f3a@vendor``, ``noreply-5f3a9c2e81@vendor`` and
    ``noreply@vendor`` are one. A person's address keeps its digits (``maria-0612345678``,
    ``john.smith.19850412``, ``anna.bead2012``), so two people never become one."""
    whole = address.strip().lower()
    local, at, domain = whole.rpartition("@")
    if not at or not local:
        return whole
    local = _BATV.sub("", local).split("+", 1)[0] or local
    stem = local
    while stem:
        shorter = _TOKEN.sub("", _VERP.sub("", stem))
        if shorter == stem or not shorter:
            break
        stem = shorter
    if re.sub(r"[-._]", "", stem) in _ROLES:
        local = stem
    return f"{local}@{domain}"


def _lines(texts: Sequence[str]) -> set[str]:
    return {line for text in texts for line in map(_quoted_line, text.splitlines()) if len(line) >= 12}


def _quoted_line(line: str) -> str:
    return normalise(line.lstrip(" >"))


def _without(text: str, lines: set[str]) -> str:
    """``text`` without the lines that are in ``lines`` (quoted or not)."""
    if not lines:
        return text
    return "\n".join(line for line in text.splitlines() if _quoted_line(line) not in lines)


def fingerprint(text: str) -> str:
    """A hash of ``text`` with digits, dates and white space removed: equal for "the same" reply."""
    flat = re.sub(r"[\d\W_]+", "", normalise(text))
    return hashlib.sha256(flat.encode()).hexdigest()


def similar(a: str, b: str, threshold: float) -> bool:
    """Near-identical texts: equal fingerprints, or a difflib ratio of at least ``threshold``."""
    if fingerprint(a) == fingerprint(b):
        return True
    x, y = normalise(a)[:BODY_CHARS], normalise(b)[:BODY_CHARS]
    if not x or not y:
        return False
    matcher = difflib.SequenceMatcher(None, x, y, autojunk=False)
    return matcher.real_quick_ratio() >= threshold and matcher.quick_ratio() >= threshold and (
        matcher.ratio() >= threshold)


# -- loading ---------------------------------------------------------------------


@cache
def shipped() -> AutoRules:
    """The shipped rules/automatic.toml (the default for a rules folder without one)."""
    from triage.config import shipped_dir

    path = shipped_dir("rules") / FILE
    return _load(path) if path.exists() else AutoRules()


def _load(path: Path) -> AutoRules:
    f = TomlFile(path)
    f.raise_if_problems()
    d = f.data
    f.unknown_keys(d, _TOP, "")

    lp = f.table(d, "loop", allowed={"replies", "within_minutes", "similarity"})
    default = LoopPolicy()
    loop = LoopPolicy(
        replies=f.integer(lp, "replies", "loop", default.replies, lo=1, hi=100),
        within_minutes=f.integer(lp, "within_minutes", "loop", default.within_minutes, lo=1, hi=24 * 60),
        similarity=f.number(lp, "similarity", "loop", default.similarity, lo=0.5, hi=1.0),
    )

    headers: list[HeaderSign] = []
    seen: set[str] = set()
    for i, entry in enumerate(f.tables(d, "headers")):
        key = f"headers[{entry.get('id', i)}]"
        f.unknown_keys(entry, {"id", "header", "values"}, key)
        rid = _id(f, entry, key, seen)
        name = f.string(entry, "header", key, "", required=True)
        if name and not _HEADER_NAME.fullmatch(name):
            f.problem(f"{key}.header", f"expected a header name such as 'X-Loop', got {name!r}")
            name = ""
        values = f.str_list(entry, "values", key)
        if rid and name:
            headers.append(HeaderSign(rid, name, tuple(v.lower() for v in values)))

    languages: list[Language] = []
    subjects = f.table(d, "subjects")
    for code, table in subjects.items():
        key = f"subjects.{code}"
        if not isinstance(table, dict):
            f.problem(key, f"expected a table [{key}] with prefixes, openings and body")
            continue
        f.unknown_keys(table, ("prefixes", "openings", "body"), key)
        lists = {k: tuple(dict.fromkeys((_words if k != "body" else str)(normalise(v))
                                        for v in f.str_list(table, k, key)))
                 for k in ("prefixes", "openings", "body")}
        languages.append(Language(code, lists["prefixes"], lists["openings"], lists["body"]))

    tickets: list[Ticket] = []
    seen = set()
    for i, entry in enumerate(f.tables(d, "tickets")):
        key = f"tickets[{entry.get('id', i)}]"
        f.unknown_keys(entry, {"id", "subject", "body"}, key)
        rid = _id(f, entry, key, seen)
        subject = _regex(f, entry, "subject", key, required=True)
        body = _regex(f, entry, "body", key) if "body" in entry else None
        if rid and subject and (body or "body" not in entry):
            tickets.append(Ticket(rid, subject, body))
    f.raise_if_problems()
    return AutoRules(str(path), loop, tuple(headers), tuple(languages), tuple(tickets))


def _regex(f: TomlFile, entry: dict[str, Any], name: str, key: str, required: bool = False) -> re.Pattern[str] | None:
    pattern = f.string(entry, name, key, "", required=required)
    if not pattern:
        return None
    try:
        compiled = re.compile(_plain(pattern), re.IGNORECASE)  # not casefolded: \D stays \D
    except re.error as exc:
        f.problem(f"{key}.{name}", f"not a valid regular expression: {exc}")
        return None
    if compiled.search(""):
        f.problem(f"{key}.{name}", f"matches an empty {name}: it would mark every message automatic")
        return None
    return compiled


def _id(f: TomlFile, entry: dict[str, Any], key: str, seen: set[str]) -> str:
    rid: str = f.string(entry, "id", key, "", required=True)
    if rid in seen:
        f.problem(f"{key}.id", f"duplicate id {rid!r}")
        return ""
    seen.add(rid)
    return rid
