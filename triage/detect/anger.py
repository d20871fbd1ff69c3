"""Anger scoring: matched spans -> weighted Evidence -> score (0-1) -> level.

Contract (documented for owners in rules/README.md):

* every phrase or pattern match of anger.toml is one Evidence with its weight;
* a negatable match preceded within ``window`` tokens by a negation term (with
  no punctuation or "but"/"just" between) is multiplied by the negation factor
  and recorded with kind ``negation`` ("not angry" -> 0); a
  ``requires_negation`` match counts only when negated ("not happy");
* otherwise an intensifier or downtoner in its window multiplies a positive weight;
* regex rules add ``weight`` per match, at most ``max_weight`` per rule;
* ``raw`` = sum of the weights (never below 0); ``score = 1 - exp(-raw / scale)``;
* the level is the highest of ``[levels]`` whose threshold the score reaches.
"""

from __future__ import annotations

import math
from typing import Any

from triage.detect import Evidence
from triage.detect.rulefiles import ANGER_KINDS, AngerRules, Modifier, PatternRule, PhraseRule, RegexRule

SCORED_KINDS = frozenset(ANGER_KINDS) | {"negation"}
_BREAKERS = frozenset({"but", "just", "though", "although", "yet", "however", "except"})

Hit = tuple[int, int, "PhraseRule | PatternRule"]


def _char_span(doc: Any, start: int, end: int) -> tuple[int, int]:
    last = doc[end - 1]
    return doc[start].idx, last.idx + len(last)


def _applies(doc: Any, mod_end: int, start: int, window: int) -> bool:
    if not 0 <= start - mod_end <= window:
        return False
    for k in range(mod_end, start):
        token = doc[k]
        if token.is_punct or token.lower_ in _BREAKERS:
            return False
    return True


def find_modifier(doc: Any, mods: dict[int, list[Modifier]], start: int, name: str) -> tuple[Modifier, int] | None:
    """The nearest modifier called ``name`` that reaches token ``start``, and its end token."""
    for end in range(start, max(0, start - 8) - 1, -1):
        for modifier in mods.get(end, ()):
            if modifier.name == name and _applies(doc, end, start, modifier.window):
                return modifier, end
    return None


def phrase_evidence(doc: Any, text: str, hits: list[Hit], mods: dict[int, list[Modifier]]) -> list[Evidence]:
    """Evidence for anger.toml phrase and pattern matches, with modifiers applied."""
    out: list[Evidence] = []
    for start, end, rule in hits:
        weight, kind = rule.weight, rule.kind
        requires = isinstance(rule, PhraseRule) and rule.requires_negation
        negation = find_modifier(doc, mods, start, "negation") if (rule.negatable or requires) and mods else None
        if requires:
            if negation is None:
                continue
            # the evidence covers the negation too: "not happy"
            a, b = doc[negation[1] - 1].idx, _char_span(doc, start, end)[1]
            out.append(Evidence(a, b, text[a:b], rule.rule, weight, kind))
            continue
        if negation is not None:
            weight, kind = weight * negation[0].factor, "negation"
        elif weight > 0 and mods:
            for name in ("intensifiers", "downtoners"):
                found = find_modifier(doc, mods, start, name)
                if found is not None:
                    weight *= found[0].factor
        a, b = _char_span(doc, start, end)
        out.append(Evidence(a, b, text[a:b], rule.rule, round(weight, 4), kind))
    return out


def regex_evidence(text: str, lowered: str | None, rules: tuple[RegexRule, ...]) -> list[Evidence]:
    """Evidence for regex rules over the raw text; ``max_weight`` caps each rule's total."""
    out: list[Evidence] = []
    for rule in rules:
        total = 0.0
        for match in rule.finditer(text, lowered):
            found = text[match.start() : match.end()]
            if found in rule.ignore:
                continue
            weight = rule.weight
            if rule.max_weight is not None and weight > 0:
                weight = min(weight, rule.max_weight - total)
                if weight <= 0:
                    break
            total += weight
            out.append(Evidence(match.start(), match.end(), found, rule.rule, round(weight, 4), rule.kind))
    return out


def raw_score(evidence: list[Evidence]) -> float:
    return max(0.0, sum(e.weight for e in evidence if e.kind in SCORED_KINDS))


def score_of(raw: float, rules: AngerRules) -> float:
    return round(1.0 - math.exp(-raw / rules.scale), 4)
