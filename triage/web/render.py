"""Pure helpers for the review page's templates: evidence highlighting, times, links.

Customer text is never markup: ``highlight`` escapes every piece of the text
itself and adds nothing but ``<mark>`` tags around evidence spans.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from triage.store.search import SNIPPET_CLOSE, SNIPPET_OPEN
from triage.timetext import span


def highlight(text: str, evidence: list[dict[str, Any]]) -> Markup:
    """``text`` as safe HTML with each evidence span wrapped in ``<mark>``.

    Spans that overlap an earlier one, fall outside the text, or no longer
    match their recorded ``text`` are left unmarked rather than misplaced.
    """
    out: list[str] = []
    pos = 0
    for ev in sorted(evidence, key=lambda e: (int(e.get("start", 0)), -int(e.get("end", 0)))):
        start, end = int(ev.get("start", -1)), int(ev.get("end", -1))
        if ev.get("where", "text") != "text":  # a span of the subject line, not of this text
            continue
        if start < pos or end <= start or end > len(text):
            continue
        if ev.get("text") is not None and text[start:end] != ev["text"]:
            continue
        title = f"{ev.get('rule', '')} ({float(ev.get('weight', 0)):+.2f})"
        out.append(str(escape(text[pos:start])))
        out.append(f'<mark title="{escape(title)}">{escape(text[start:end])}</mark>')
        pos = end
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


def snippet(text: str) -> Markup:
    """A search snippet as safe HTML: every piece of the text escaped, the matched words in ``<mark>``."""
    out: list[str] = []
    for i, piece in enumerate(text.split(SNIPPET_OPEN)):
        matched, _, rest = piece.partition(SNIPPET_CLOSE) if i else ("", "", piece)
        if matched:
            out.append(f"<mark>{escape(matched.replace(SNIPPET_CLOSE, ''))}</mark>")
        out.append(str(escape(rest.replace(SNIPPET_CLOSE, ""))))
    return Markup("".join(out))


def cut(text: str | None, limit: int = 120) -> str:
    """``text`` on one line, at most ``limit`` characters (the last one "…" when cut): for lists."""
    if not text:
        return ""
    head = " ".join(str(text)[: limit * 2].split())
    return head if len(head) <= limit and len(text) <= limit * 2 else head[: limit - 1] + "…"


def age(stamp: str | None, now: datetime | None = None) -> str:
    """How long ago an ISO timestamp was ("-" if unknown)."""
    if not stamp:
        return "-"
    now = now or datetime.now(UTC)
    return span((now - _parse(stamp)).total_seconds())


def until(stamp: str | None, now: datetime | None = None) -> str:
    """Time left until an ISO timestamp, negative when overdue ("-" if none)."""
    if not stamp:
        return "-"
    now = now or datetime.now(UTC)
    return span((_parse(stamp) - now).total_seconds())


def local(stamp: str | None, tz: tzinfo) -> str:
    """An ISO timestamp as a wall-clock time in ``tz`` ("2026-11-20 09:00 GMT"; "" if none)."""
    if not stamp:
        return ""
    return _parse(stamp).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _ago(seconds: float) -> str:
    return f"in {span(seconds)}" if seconds > 0 else f"{span(-seconds)} ago"


def relative(stamp: str | None, now: datetime | None = None) -> str:
    """How far an ISO timestamp is from ``now``: "3h ago", "in 5h" ("-" if none)."""
    if not stamp:
        return "-"
    return _ago((_parse(stamp) - (now or datetime.now(UTC))).total_seconds())


def _time(when: datetime, tz: tzinfo, shown: str) -> Markup:
    title = when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    return Markup(f'<time datetime="{when.isoformat()}" title="{escape(title)}">{escape(shown)}</time>')


def when(stamp: str | None, tz: tzinfo, now: datetime | None = None, text: str | None = None) -> Markup:
    """A ``<time>`` element: ``text`` (default: the relative time), the absolute time in ``tz`` on hover."""
    if not stamp:
        return Markup("-")
    at = _parse(stamp)
    return _time(at, tz, _ago((at - (now or datetime.now(UTC))).total_seconds()) if text is None else text)


def due(stamp: str | None, tz: tzinfo, now: datetime | None = None) -> Markup:
    """A deadline as a ``<time>``: "in 5h", or "3h overdue" once past (the absolute time on hover)."""
    if not stamp:
        return Markup("-")
    at = _parse(stamp)
    left = (at - (now or datetime.now(UTC))).total_seconds()
    return _time(at, tz, f"in {span(left)}" if left >= 0 else f"{span(-left)} overdue")


def overdue(stamp: str | None, now: datetime | None = None) -> bool:
    return bool(stamp) and _parse(str(stamp)) < (now or datetime.now(UTC))


def _parse(stamp: str) -> datetime:
    when = datetime.fromisoformat(stamp)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def safe_filename(name: str, index: int) -> str:
    """An attachment's name fit for a download: no path, no control or quote characters, at most
    120 characters; ``attachment-N`` when nothing is left."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in '"<>:|?*;')
    name = " ".join(name.split()).strip(" .")
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 119 - len(ext)] + "." + ext) if dot and len(ext) <= 10 else name[:120]
    return name or f"attachment-{index + 1}"


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact name as RFC 5987 ``filename*``."""
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode())
    ascii_name = ascii_name.strip(" .") or "attachment"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
