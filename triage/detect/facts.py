"""Facts a draft can restate (orders, amounts, dates, products, the problem sentence) and the topic.

Contract:

* orders/amounts/dates: every match of the facts.toml regexes, in text order,
  without duplicates; the value is the named group ``value`` when the regex has
  one, else group 1 when it has groups, else the whole match;
* products: canonical names (the key in ``[products]``) of the entity_ruler's
  PRODUCT entities, in order of first mention;
* problem: the sentence holding the most complaint and anger evidence weight
  (ties: the earlier sentence); "" when there is none;
* topic: the ``[topics]`` topic with most matches (ties: the first in the file),
  else the first product named, else "".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from triage.detect import Evidence, Facts
from triage.detect.rulefiles import FactRules, RegexRule

PROBLEM_KINDS = frozenset({"complaint", "anger", "shout", "insult", "profanity", "threat", "blame", "demand"})
# a sentence ends at . ! ? followed by a space or a line end ("$89.99" and "e.g." don't end one)
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?]+(?=[^\s.!?]))+[.!?]*")
MAX_PROBLEM_CHARS = 300


def _values(text: str, lowered: str | None, rules: tuple[RegexRule, ...]) -> tuple[str, ...]:
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
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


def extract(rules: FactRules, text: str, lowered: str | None, doc: Any, evidence: list[Evidence]) -> Facts:
    """Facts of one text; ``lowered`` is ``text.lower()`` when it has the same length, else None."""
    products = tuple(dict.fromkeys(ent.ent_id_ or ent.text.lower() for ent in doc.ents if ent.label_ == "PRODUCT"))
    return Facts(
        orders=_values(text, lowered, rules.orders),
        amounts=_values(text, lowered, rules.amounts),
        dates=_values(text, lowered, rules.dates),
        products=products,
        problem=problem_sentence(text, evidence),
    )


def choose_topic(rules: FactRules, topic_counts: dict[str, int], products: tuple[str, ...]) -> str:
    if topic_counts:
        order = {name: i for i, name in enumerate(rules.topics)}
        return max(topic_counts, key=lambda t: (topic_counts[t], -order.get(t, 0)))
    return products[0] if products else ""
