"""Facts a draft can restate (orders, amounts, dates, products, the problem sentence) and the topic.

Contract:

* invoices/orders/amounts/dates: every match of the facts.toml regexes, in text order,
  without duplicates; the value is the named group ``value`` when the regex has
  one, else group 1 when it has groups, else the whole match; an invoices/orders
  entry written as a token pattern reads the entities the EntityRuler labelled
  INVOICE/ORDER with its rule id (the value: the entity's text); entries are read
  in file order, invoices first, and a part of the text read by an earlier entry
  (an invoice, say) is not read again (as an order);
* products: canonical names (the entity id) of the PRODUCT entities in ``doc.ents``
  (the EntityRuler keeps the longest where matches overlap, so an excluded
  NOT_PRODUCT name hides the product words inside it), in order of first mention;
* problem: the sentence holding the most complaint evidence weight (else anger or blame;
  never one holding an insult, profanity or a threat)
  (ties: the earlier sentence); "" when there is none; a line break after a line of
  40 characters or more is a hard wrap, not a sentence end;
* topic: the ``[topics]`` topic with most matches (ties: the first in the file),
  else the first product named, else "".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from triage.detect import Evidence, Facts
from triage.detect.rulefiles import PRODUCT, EntityRule, FactRules, RegexRule

# Which evidence points at the sentence that states the problem, best first: what went
# wrong (complaint evidence), else plain anger or blame. Insults, profanity, threats,
# demands and shouting never pick it: a reply must not quote "You are INCOMPETENT" or a
# chargeback threat back to the customer as "your problem".
PROBLEM_KINDS = (frozenset({"complaint"}), frozenset({"anger", "blame"}))
NEVER_QUOTED = frozenset({"insult", "profanity", "threat"})  # a sentence holding one is never restated
# a sentence ends at . ! ? followed by a space or a line end ("$89.99" and "e.g." don't end one);
# SENTENCE_PLAIN with the ordinary characters taken a run at a time, in C, rather than one
# per turn of the loop (tests/test_sentence_patterns.py pins that they match alike)
SENTENCE_PLAIN = r"(?:[^.!?\n]|[.!?]+(?=[^\s.!?]))+[.!?]*"
_SENTENCE = re.compile(r"(?:[^.!?\n]+|[.!?]+(?=[^\s.!?]))+[.!?]*")
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
    text: str,
    lowered: str | None,
    rules: tuple[RegexRule | EntityRule, ...],
    taken: list[tuple[int, int]] | None = None,
    entities: dict[str, list[tuple[int, int]]] | None = None,
) -> tuple[str, ...]:
    """Values of ``rules`` in text order; ``taken`` (spans read before) is extended with what they read.
    ``entities``: the character spans of the EntityRuler's entities, by entity id (rule id)."""
    found: list[tuple[int, str]] = []
    taken = [] if taken is None else taken
    for rule in rules:
        if isinstance(rule, EntityRule):
            for start, end in (entities or {}).get(rule.id, ()):
                if not any(a < end and start < b for a, b in taken):
                    taken.append((start, end))
                    found.append((start, text[start:end].strip()))
            continue
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
    """The sentence with the most complaint evidence weight (else anger or blame), or ""."""
    evidence = list(evidence)
    taboo = sorted(e.start for e in evidence if e.kind in NEVER_QUOTED)
    for kinds in PROBLEM_KINDS:
        weighted = sorted((e.start, e.weight) for e in evidence if e.kind in kinds and e.weight > 0)
        if weighted:
            break
    else:
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
        clean = not any(match.start() <= t < match.end() for t in taboo)
        if weight > best_weight and clean:
            best, best_weight = match.group(0), weight
        if i == len(weighted):
            break
    best = " ".join(best.split())
    return best if len(best) <= MAX_PROBLEM_CHARS else best[: MAX_PROBLEM_CHARS - 1].rstrip() + "…"


def extract(rules: FactRules, text: str, lowered: str | None, ents: Iterable[Any], evidence: list[Evidence]) -> Facts:
    """Facts of one text; ``lowered`` is ``fastregex.lowered(text)``;
    ``ents`` is ``doc.ents`` of the text (character offsets index ``text``)."""
    products: list[str] = []
    spans: dict[str, list[tuple[int, int]]] = {}
    for ent in ents:
        if ent.label_ == PRODUCT:
            products.append(ent.ent_id_)
        else:  # INVOICE / ORDER (NOT_PRODUCT is only there to hide product words)
            spans.setdefault(ent.ent_id_, []).append((ent.start_char, ent.end_char))
    invoice_spans: list[tuple[int, int]] = []
    invoices = _values(text, lowered, rules.invoices, invoice_spans, spans)
    return Facts(
        orders=_values(text, lowered, rules.orders, invoice_spans, spans),  # an invoice number is not an order
        amounts=_values(text, lowered, rules.amounts),
        dates=_values(text, lowered, rules.dates),
        products=tuple(dict.fromkeys(products)),
        problem=problem_sentence(text, evidence),
        invoices=invoices,
    )


def choose_topic(rules: FactRules, topic_counts: dict[str, int], products: tuple[str, ...]) -> str:
    if topic_counts:
        order = {name: i for i, name in enumerate(rules.topics)}
        return max(topic_counts, key=lambda t: (topic_counts[t], -order.get(t, 0)))
    return products[0] if products else ""
