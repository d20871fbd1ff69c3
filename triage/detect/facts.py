"""Facts a draft can restate (orders, amounts, dates, products, the problem sentence) and the topic.

Contract:

* invoices/orders/amounts/dates: every match of the facts.toml regexes, in text order,
  without duplicates; the value is the named group ``value`` when the regex has
  one, else group 1 when it has groups, else the whole match; invoices are read
  first, and a part of the text read as an invoice is not read as an order;
* products: canonical names (the key in ``[products]``) of the product names
  found (the longest wins where they overlap), in order of first mention;
* problem: the sentence holding the most complaint and anger evidence weight
  (ties: the earlier sentence); "" when there is none; a line break after a line of
  40 characters or more is a hard wrap, not a sentence end;
* topic: the ``[topics]`` topic with most matches (ties: the first in the file),
  else the first product named, else "".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from triage.detect import Evidence, Facts
from triage.detect.rulefiles import FactRules, RegexRule

PROBLEM_KINDS = frozenset({"complaint", "anger", "shout", "insult", "profanity", "threat", "blame", "demand"})
# a sentence ends at . ! ? followed by a space or a line end ("$89.99" and "e.g." don't end one)
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?]+(?=[^\s.!?]))+[.!?]*")
# A line break after a long line is a hard wrap inside a sentence, not its end; a short
# line (a greeting, a signature, a list item) and a blank line still end one.
_LINE_BREAK = re.compile(r"\n(?=[ \t]*\S)")
WRAP_MIN_LINE = 40


def _join_wrapped(text: str) -> str:
    """``text`` with each hard wrap (a line break after a line of WRAP_MIN_LINE or more
    characters, before more text) turned into a space: same length, same offsets."""
    def join(match: re.Match[str]) -> str:
        at = match.start()
        return " " if at - (text.rfind("\n", 0, at) + 1) >= WRAP_MIN_LINE else "\n"

    return _LINE_BREAK.sub(join, text)
MAX_PROBLEM_CHARS = 300


def _values(
    text: str, lowered: str | None, rules: tuple[RegexRule, ...], taken: list[tuple[int, int]] | None = None
) -> tuple[str, ...]:
    """Values of ``rules`` in text order; ``taken`` (spans read before) is extended with what they read."""
    found: list[tuple[int, str]] = []
    taken = [] if taken is None else taken
    for rule in rules:
        for match in rule.finditer(text, lowered):
            if any(a < match.end() and match.start() < b for a, b in taken):
                continue  # an earlier rule already read this part of the text
            taken.append((match.start(), match.end()))
            group: int | str = 0
            if "value" in match.re.groupindex and match.start("value") >= 0:
                group = "value"
            elif match.re.groups and match.start(1) >= 0:
                group = 1
            value = text[match.start(group) : match.end(group)]  # by offset: the match may be on lowered text
            found.append((match.start(), value.strip()))
    found.sort()
    return tuple(dict.fromkeys(v for _, v in found if v))


def problem_sentence(text: str, evidence: Iterable[Evidence]) -> str:
    """The sentence with the most complaint/anger evidence weight, or ""."""
    weighted = sorted((e.start, e.weight) for e in evidence if e.kind in PROBLEM_KINDS and e.weight > 0)
    if not weighted:
        return ""
    if "\n" in text:
        text = _join_wrapped(text)  # same length: evidence offsets still hold
    # only the sentences around evidence matter: look from the start of the line before the first one
    offset = text.rfind("\n", 0, weighted[0][0]) + 1
    best, best_weight, i = "", 0.0, 0
    for match in _SENTENCE.finditer(text, offset):
        weight = 0.0
        while i < len(weighted) and weighted[i][0] < match.end():
            if weighted[i][0] >= match.start():
                weight += weighted[i][1]
            i += 1
        if weight > best_weight:
            best, best_weight = match.group(0), weight
        if i == len(weighted):
            break
    best = " ".join(best.split())
    return best if len(best) <= MAX_PROBLEM_CHARS else best[: MAX_PROBLEM_CHARS - 1].rstrip() + "…"


def extract(
    rules: FactRules, text: str, lowered: str | None, products: tuple[str, ...], evidence: list[Evidence]
) -> Facts:
    """Facts of one text; ``lowered`` is ``text.lower()`` when it has the same length, else None;
    ``products`` are the canonical product names found, in order of first mention."""
    invoice_spans: list[tuple[int, int]] = []
    invoices = _values(text, lowered, rules.invoices, invoice_spans)
    return Facts(
        orders=_values(text, lowered, rules.orders, invoice_spans),  # an invoice number is not an order
        amounts=_values(text, lowered, rules.amounts),
        dates=_values(text, lowered, rules.dates),
        products=products,
        problem=problem_sentence(text, evidence),
        invoices=invoices,
    )


def choose_topic(rules: FactRules, topic_counts: dict[str, int], products: tuple[str, ...]) -> str:
    if topic_counts:
        order = {name: i for i, name in enumerate(rules.topics)}
        return max(topic_counts, key=lambda t: (topic_counts[t], -order.get(t, 0)))
    return products[0] if products else ""
