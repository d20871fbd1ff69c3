"""Detection rule files -> frozen dataclasses that remember where they came from.

Pure validation: no spaCy here (token patterns are checked against spaCy in
``nlp.py``). Every loader takes a ``TomlFile``, appends a ``Problem`` for each
thing wrong (file, key, line) and returns what it could read, so that one run
reports every problem at once.

Shared building blocks, used by anger.toml, complaint.toml and archetypes.toml:

* ``[[phrases]]``  id, weight, terms = [...], kind, negatable, requires_negation
* ``[[patterns]]`` id, weight, pattern = [spaCy token pattern], kind, negatable
* ``[[regex]]``    id, weight, regex, kind, ignore = [...], ignore_case, max_weight

A rule's full id is ``<section>.<id>`` (``anger.strong``, ``meek.hedges``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from triage.detect.checks import (
    add_problem,
    compile_regex,
    entry_line,
    get_bool,
    get_number,
    get_str,
    get_str_list,
)
from triage.rules import TomlFile

__all__ = ["add_problem", "get_bool", "get_number", "get_str", "get_str_list"]

# Kinds of evidence each file may produce; anger.toml kinds all count to the anger score.
ANGER_KINDS = ("anger", "shout", "insult", "profanity", "threat", "blame", "demand", "calm")
COMPLAINT_KINDS = ("complaint", "not_complaint")
WEIGHT_RANGE = (-3.0, 3.0)


@dataclass(frozen=True)
class Where:
    """The file, key and line a rule came from (for problems and explanations)."""

    file: str
    key: str
    line: int | None = None


@dataclass(frozen=True)
class PhraseRule:
    """Literal phrases, matched case-insensitively on whole tokens."""

    rule: str
    kind: str
    weight: float
    terms: tuple[str, ...]
    negatable: bool = True
    requires_negation: bool = False
    where: Where | None = None


@dataclass(frozen=True)
class PatternRule:
    """A spaCy token pattern (list of token dicts) for what a word list can't say."""

    rule: str
    kind: str
    weight: float
    pattern: tuple[dict[str, Any], ...]
    negatable: bool = False
    where: Where | None = None


@dataclass(frozen=True)
class RegexRule:
    """A regular expression over the raw text (shouting, punctuation, formats)."""

    rule: str
    kind: str
    weight: float
    regex: re.Pattern[str]
    ignore: frozenset[str] = frozenset()
    max_weight: float | None = None
    where: Where | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fast", _fast_form(self.regex))

    def finditer(self, text: str, lowered: str | None) -> Iterator[re.Match[str]]:
        """Matches of ``regex`` in ``text``; ``lowered`` is ``text.lower()`` when of equal length.

        Same matches as ``regex.finditer(text)``, faster: Python's re scans
        quickly only for a pattern that starts with a literal or a class and
        has no IGNORECASE, so a leading ``\\b`` is checked here instead, and an
        ignore_case pattern written in lower case runs on the lowered text.
        Offsets index ``text`` either way; read values by offset, not group().
        """
        fast, on_lower, boundary = self._fast  # type: ignore[attr-defined]
        haystack = text
        if on_lower:
            if lowered is None:
                fast, boundary = self.regex, False
            else:
                haystack = lowered
        for match in fast.finditer(haystack):
            if boundary and not _at_boundary(text, match.start()):
                continue
            yield match


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _at_boundary(text: str, i: int) -> bool:
    before = i > 0 and _word(text[i - 1])
    after = i < len(text) and _word(text[i])
    return before != after


def _top_level_bar(source: str) -> bool:
    depth, i, in_class = 0, 0, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if source[i + 1 : i + 2] == "]":
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
        i += 1
    return False


def _fast_form(regex: re.Pattern[str]) -> tuple[re.Pattern[str], bool, bool]:
    """(pattern to run, runs on lowered text, leading \\b checked by hand) -- see RegexRule.finditer."""
    source, flags = regex.pattern, regex.flags
    boundary = source.startswith("\\b") and not _top_level_bar(source[2:])
    if boundary:
        source = source[2:]
    on_lower = bool(flags & re.IGNORECASE) and not re.search(r"[A-Z]", re.sub(r"\\.", "", source))
    if on_lower:
        flags &= ~re.IGNORECASE
    try:
        return re.compile(source, flags), on_lower, boundary
    except re.error:
        return regex, False, False


@dataclass(frozen=True)
class Signals:
    phrases: tuple[PhraseRule, ...] = ()
    patterns: tuple[PatternRule, ...] = ()
    regexes: tuple[RegexRule, ...] = ()

    def __add__(self, other: Signals) -> Signals:
        return Signals(self.phrases + other.phrases, self.patterns + other.patterns, self.regexes + other.regexes)


@dataclass(frozen=True)
class Modifier:
    """Words that change the weight of an anger match that follows within ``window`` tokens."""

    name: str  # negation | intensifiers | downtoners
    terms: tuple[str, ...]
    factor: float
    window: int
    where: Where | None = None


@dataclass(frozen=True)
class AngerRules:
    levels: tuple[tuple[str, float], ...]  # ((annoyed, t1), (angry, t2), (furious, t3)) ascending
    scale: float
    modifiers: tuple[Modifier, ...]
    signals: Signals

    def level_of(self, score: float) -> str:
        level = "calm"
        for name, threshold in self.levels:
            if score >= threshold:
                level = name
        return level


@dataclass(frozen=True)
class ComplaintRules:
    threshold: float
    anger_factor: float
    signals: Signals


@dataclass(frozen=True)
class FactRules:
    orders: tuple[RegexRule, ...]
    amounts: tuple[RegexRule, ...]
    dates: tuple[RegexRule, ...]
    products: dict[str, tuple[str, ...]] = field(default_factory=dict)  # canonical -> phrasings
    topics: dict[str, tuple[str, ...]] = field(default_factory=dict)  # topic -> terms


# ---------------------------------------------------------------- shared signal lists

_PHRASE_KEYS = {"id", "weight", "terms", "kind", "negatable", "requires_negation"}
_PATTERN_KEYS = {"id", "weight", "pattern", "kind", "negatable"}
_REGEX_KEYS = {"id", "weight", "regex", "kind", "ignore", "ignore_case", "max_weight"}


def _entries(tf: TomlFile, table: dict[str, Any], name: str, prefix: str) -> list[tuple[str, dict[str, Any], str]]:
    """``[[name]]`` entries as (rule id, entry, key prefix); checks ids are present and unique."""
    dotted = f"{prefix}.{name}" if prefix else name
    raw = table.get(name, [])
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        add_problem(tf, dotted, f"expected [[{dotted}]] tables")
        return []
    out: list[tuple[str, dict[str, Any], str]] = []
    seen: set[str] = set()
    for n, entry in enumerate(raw):
        rule_id = entry.get("id")
        if not isinstance(rule_id, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", rule_id):
            add_problem(tf, f"{dotted}[{n}].id", f"expected an id of letters, digits, _ or -, got {rule_id!r}")
            continue
        if rule_id in seen:
            add_problem(tf, f"{dotted}[{rule_id}].id", "duplicate id", entry_line(tf, dotted, rule_id))
            continue
        seen.add(rule_id)
        out.append((rule_id, entry, f"{dotted}[{rule_id}]"))
    return out


def load_signals(
    tf: TomlFile, table: dict[str, Any], prefix: str, section: str, kinds: tuple[str, ...], default_kind: str
) -> Signals:
    """Read ``[[phrases]]``, ``[[patterns]]`` and ``[[regex]]`` under ``table``.

    ``prefix`` is the TOML path of ``table`` ("" at top level); ``section``
    prefixes rule ids (``anger`` -> ``anger.strong``).
    """
    phrases: list[PhraseRule] = []
    patterns: list[PatternRule] = []
    regexes: list[RegexRule] = []

    def common(
        entry: dict[str, Any], key: str, rule_id: str, allowed: set[str], block: str
    ) -> tuple[str, float] | None:
        for extra in entry:
            if extra not in allowed:
                add_problem(
                    tf,
                    f"{key}.{extra}",
                    f"unknown key (expected one of: {', '.join(sorted(allowed))})",
                    entry_line(tf, block, rule_id, extra),
                )
        kind = entry.get("kind", default_kind)
        if kind not in kinds:
            add_problem(
                tf,
                f"{key}.kind",
                f"expected one of {', '.join(kinds)}, got {kind!r}",
                entry_line(tf, block, rule_id, "kind"),
            )
            return None
        weight = get_number(
            tf, entry, "weight", key, None, *WEIGHT_RANGE, line=entry_line(tf, block, rule_id, "weight")
        )
        if weight is None:
            return None
        return kind, weight

    block = f"{prefix}.phrases" if prefix else "phrases"
    for rule_id, entry, key in _entries(tf, table, "phrases", prefix):
        got = common(entry, key, rule_id, _PHRASE_KEYS, block)
        terms = get_str_list(tf, entry, "terms", key, entry_line(tf, block, rule_id, "terms"), required=True)
        negatable = get_bool(tf, entry, "negatable", key, True)
        requires = get_bool(tf, entry, "requires_negation", key, False)
        if got and terms:
            phrases.append(
                PhraseRule(
                    f"{section}.{rule_id}",
                    got[0],
                    got[1],
                    terms,
                    negatable,
                    requires,
                    Where(str(tf.path), key, entry_line(tf, block, rule_id)),
                )
            )

    block = f"{prefix}.patterns" if prefix else "patterns"
    for rule_id, entry, key in _entries(tf, table, "patterns", prefix):
        got = common(entry, key, rule_id, _PATTERN_KEYS, block)
        pattern = entry.get("pattern")
        pline = entry_line(tf, block, rule_id, "pattern")
        if not isinstance(pattern, list) or not pattern or not all(isinstance(t, dict) for t in pattern):
            add_problem(
                tf,
                f"{key}.pattern",
                'expected a non-empty list of token tables, e.g. [{LOWER = "still"}, {LOWER = "not"}]',
                pline,
            )
            continue
        negatable = get_bool(tf, entry, "negatable", key, False)
        if got:
            patterns.append(
                PatternRule(
                    f"{section}.{rule_id}",
                    got[0],
                    got[1],
                    tuple(pattern),
                    negatable,
                    Where(str(tf.path), f"{key}.pattern", pline),
                )
            )

    block = f"{prefix}.regex" if prefix else "regex"
    for rule_id, entry, key in _entries(tf, table, "regex", prefix):
        got = common(entry, key, rule_id, _REGEX_KEYS, block)
        ignore_case = get_bool(tf, entry, "ignore_case", key, False)
        rline = entry_line(tf, block, rule_id, "regex")
        compiled = compile_regex(tf, entry.get("regex"), f"{key}.regex", ignore_case, rline)
        ignore = get_str_list(tf, entry, "ignore", key, entry_line(tf, block, rule_id, "ignore"))
        max_weight = get_number(
            tf, entry, "max_weight", key, 0.0, 0.0, 10.0, entry_line(tf, block, rule_id, "max_weight")
        )
        if got and compiled is not None:
            regexes.append(
                RegexRule(
                    f"{section}.{rule_id}",
                    got[0],
                    got[1],
                    compiled,
                    frozenset(ignore),
                    max_weight or None,
                    Where(str(tf.path), f"{key}.regex", rline),
                )
            )
    return Signals(tuple(phrases), tuple(patterns), tuple(regexes))


# ---------------------------------------------------------------- anger.toml

_LEVEL_NAMES = ("annoyed", "angry", "furious")


def load_anger(tf: TomlFile) -> AngerRules:
    data = tf.data
    tf.unknown_keys(data, {"levels", "scoring", "modifiers", "phrases", "patterns", "regex"}, "")
    levels_raw = data.get("levels", {})
    levels: list[tuple[str, float]] = []
    if not isinstance(levels_raw, dict):
        add_problem(tf, "levels", "expected a table: annoyed, angry, furious = score thresholds")
        levels_raw = {}
    tf.unknown_keys(levels_raw, set(_LEVEL_NAMES), "levels")
    for name in _LEVEL_NAMES:
        value = get_number(tf, levels_raw, name, "levels", None, 0.0, 1.0)
        if value is not None:
            levels.append((name, value))
    if len(levels) == 3 and not levels[0][1] < levels[1][1] < levels[2][1]:
        add_problem(
            tf,
            "levels",
            "thresholds out of order: expected annoyed < angry < furious, got "
            + ", ".join(f"{n} = {v}" for n, v in levels),
        )
    scoring = data.get("scoring", {})
    if not isinstance(scoring, dict):
        add_problem(tf, "scoring", "expected a table with scale")
        scoring = {}
    tf.unknown_keys(scoring, {"scale"}, "scoring")
    scale = get_number(tf, scoring, "scale", "scoring", 1.0, 0.05, 20.0) or 1.0

    modifiers: list[Modifier] = []
    mods = data.get("modifiers", {})
    if not isinstance(mods, dict):
        add_problem(tf, "modifiers", "expected a table of negation, intensifiers, downtoners")
        mods = {}
    tf.unknown_keys(mods, {"negation", "intensifiers", "downtoners"}, "modifiers")
    for name, factor_range in (("negation", (-2.0, 1.0)), ("intensifiers", (1.0, 5.0)), ("downtoners", (0.0, 1.0))):
        table = mods.get(name)
        if table is None:
            continue
        prefix = f"modifiers.{name}"
        if not isinstance(table, dict):
            add_problem(tf, prefix, "expected a table with terms, factor, window")
            continue
        tf.unknown_keys(table, {"terms", "factor", "window"}, prefix)
        terms = get_str_list(tf, table, "terms", prefix, required=True)
        factor = get_number(tf, table, "factor", prefix, None, *factor_range)
        window = get_number(tf, table, "window", prefix, 3, 1, 8)
        if terms and factor is not None and window is not None:
            modifiers.append(
                Modifier(name, terms, factor, int(window), Where(str(tf.path), prefix, tf.line_of(prefix)))
            )

    signals = load_signals(tf, data, "", "anger", ANGER_KINDS, "anger")
    if len(levels) != 3:
        levels = [("annoyed", 0.35), ("angry", 0.65), ("furious", 0.88)]
    return AngerRules(tuple(levels), scale, tuple(modifiers), signals)


# ---------------------------------------------------------------- complaint.toml


def load_complaint(tf: TomlFile) -> ComplaintRules:
    data = tf.data
    tf.unknown_keys(data, {"threshold", "anger_factor", "phrases", "patterns", "regex"}, "")
    threshold = get_number(tf, data, "threshold", "", 0.5, 0.01, 10.0) or 0.5
    anger_factor = get_number(tf, data, "anger_factor", "", 0.5, 0.0, 5.0)
    signals = load_signals(tf, data, "", "complaint", COMPLAINT_KINDS, "complaint")
    return ComplaintRules(threshold, anger_factor or 0.0, signals)


# ---------------------------------------------------------------- facts.toml

_FACT_LISTS = ("orders", "amounts", "dates")


def _fact_regexes(tf: TomlFile, name: str) -> tuple[RegexRule, ...]:
    out: list[RegexRule] = []
    for rule_id, entry, key in _entries(tf, tf.data, name, ""):
        tf.unknown_keys(entry, {"id", "regex", "ignore_case"}, key)
        ignore_case = get_bool(tf, entry, "ignore_case", key, True)
        line = entry_line(tf, name, rule_id, "regex")
        compiled = compile_regex(tf, entry.get("regex"), f"{key}.regex", ignore_case, line)
        if compiled is not None:
            out.append(RegexRule(f"facts.{name}.{rule_id}", name, 0.0, compiled, where=Where(str(tf.path), key, line)))
    return tuple(out)


def _phrase_table(tf: TomlFile, name: str, include_key: bool) -> dict[str, tuple[str, ...]]:
    table = tf.data.get(name, {})
    if not isinstance(table, dict):
        add_problem(tf, name, "expected a table of name = [phrases]")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for key, value in table.items():
        terms = get_str_list(tf, table, key, name, required=True) if value != [] else ()
        if value == [] and not include_key:
            add_problem(tf, f"{name}.{key}", "expected a non-empty list of words or phrases")
            continue
        out[key] = ((key,) if include_key else ()) + terms
    return out


def load_facts(tf: TomlFile) -> FactRules:
    tf.unknown_keys(tf.data, {*_FACT_LISTS, "products", "topics"}, "")
    orders, amounts, dates = (_fact_regexes(tf, name) for name in _FACT_LISTS)
    return FactRules(orders, amounts, dates, _phrase_table(tf, "products", True), _phrase_table(tf, "topics", False))
