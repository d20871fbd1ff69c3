"""Pure helpers for the review page's templates: evidence highlighting, times, links.

Customer text is never markup: ``highlight`` escapes every piece of the text
itself and adds nothing but ``<mark>`` tags around evidence spans.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

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


def overdue(stamp: str | None, now: datetime | None = None) -> bool:
    return bool(stamp) and _parse(str(stamp)) < (now or datetime.now(UTC))


def _parse(stamp: str) -> datetime:
    when = datetime.fromisoformat(stamp)
    return when if when.tzinfo else when.replace(tzinfo=UTC)
