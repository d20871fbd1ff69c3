"""Which of a customer's cases a new, unthreaded message joins (``[cases] join_days``).

A customer who writes again without replying to our mail (a forward, a fresh
mail, a "refund received, thank you") usually writes about the same problem.
The message joins one of *that customer's* cases when, within ``join_days``
of the case's last activity (its resolution, for a finished case):

* it names an order or an invoice number the case's messages named (the
  ``[[orders]]`` and ``[[invoices]]`` patterns of rules/facts.toml, which the
  owner edits), or, naming no order or invoice at all, an amount the case
  named (the "$64.50 charge has been refunded" of a thank-you);
* or its subject is a ``Re:``/``Fwd:`` of the case's subject.

Whose case it is is decided before this is asked: only the cases of the
sender's own customer row are looked at, so the same order number from
another address never joins (it opens a case of its own). Open cases are
preferred over finished ones, then the most recent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from triage.store import Case, Store

if TYPE_CHECKING:
    from triage.detect import Facts

# Reply and forward prefixes as mail clients write them (English, German, Nordic, Dutch, French, Spanish).
_PREFIX = re.compile(r"^\s*(?:re|fwd?|aw|wg|sv|vs|antw|tr|rv|enc)\s*(?:\[\d+\])?\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Join:
    """The case a message joins and why (for the audit event)."""

    case_id: int
    reason: str  # "reference" | "subject"
    matched: str  # the reference or the subject that matched


def strip_prefixes(subject: str) -> tuple[str, bool]:
    """The subject without its Re:/Fwd: prefixes (whitespace folded, case folded), and whether it had any."""
    text, had = " ".join(subject.split()), False
    while (m := _PREFIX.match(text)) is not None:
        text, had = text[m.end():], True
    return text.casefold(), had


def _norm(value: str) -> str:
    return re.sub(r"[\s#]", "", value).casefold()


def references(facts: Mapping[str, object]) -> tuple[set[str], set[str]]:
    """(order and invoice numbers, amounts) of a detection's facts, normalised for comparing."""
    ids = {_norm(str(v)) for key in ("orders", "invoices") for v in _seq(facts.get(key))}
    amounts = {_norm(str(v)) for v in _seq(facts.get("amounts"))}
    return ids - {""}, amounts - {""}


def _seq(value: object) -> Iterable[object]:
    return value if isinstance(value, (list, tuple)) else ()


def _recent(case: Case, since: datetime) -> bool:
    last = case.resolved_at if case.status.finished and case.resolved_at else case.updated_at
    return datetime.fromisoformat(last) >= since


def joined_case(store: Store, customer_id: int, subject: str, facts: Facts, received_at: datetime,
                join_days: int) -> Join | None:
    """The case of ``customer_id`` this message joins, or None (it opens a case of its own)."""
    since = received_at - timedelta(days=join_days)
    cases = [c for c in store.customer_cases(customer_id) if _recent(c, since)]
    if not cases:
        return None
    cases.sort(key=lambda c: (not c.status.finished, c.updated_at), reverse=True)  # open first, then newest
    ids, amounts = references(asdict(facts))
    stripped, prefixed = strip_prefixes(subject)
    for case in cases:
        case_ids: set[str] = set()
        case_amounts: set[str] = set()
        for found in store.customer_facts(case.id):
            more_ids, more_amounts = references(found or {})
            case_ids |= more_ids
            case_amounts |= more_amounts
        if ids & case_ids:
            return Join(case.id, "reference", sorted(ids & case_ids)[0])
        if not ids and amounts & case_amounts:
            return Join(case.id, "reference", sorted(amounts & case_amounts)[0])
        if prefixed and stripped and stripped == strip_prefixes(case.subject)[0]:
            return Join(case.id, "subject", case.subject)
    return None
