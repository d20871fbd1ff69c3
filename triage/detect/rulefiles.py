"""Detection rule files -> frozen dataclasses that remember where they came from.

Pure validation: no spaCy here (token patterns are checked against spaCy in
``nlp.py``), and no matching machinery (``RegexRule.finditer`` runs through
``fastregex.py``). Every loader takes a ``TomlFile``, appends a ``Problem`` for each
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
from triage.detect.fastregex import FastRegex
from triage.rules import TomlFile

__all__ = ["add_problem", "get_bool", "get_number", "get_str", "get_str_list"]

# Kinds of evidence each file may produce; anger.toml kinds all count to the anger score.
ANGER_KINDS = ("anger", "shout", "insult", "profanity", "threat", "blame", "demand", "calm")
COMPLAINT_KINDS = ("complaint", "not_complaint")
WEIGHT_RANGE = (-3.0, 3.0)
COMPLAINT_NEGATION = "complaint_negation"  # the Modifier name of complaint.toml [negation]


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
    fast: FastRegex = field(init=False, repr=False, compare=False)  # how finditer runs it

    def __post_init__(self) -> None:
        object.__setattr__(self, "fast", FastRegex.of(self.regex))

    def finditer(self, text: str, lowered: str | None) -> Iterator[re.Match[str]]:
        """Matches of ``regex`` in ``text``, found faster (see fastregex.py); ``lowered`` is
        ``text.lower()`` when of equal length. Read values by offset, not group()."""
        return self.fast.finditer(text, lowered)


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
    negation: Modifier | None = None  # "nothing wrong", "no problem with": the problem word counts 0


# Entity labels the EntityRuler sets (see nlp.py); facts.py reads them from ``doc.ents``.
PRODUCT = "PRODUCT"
NOT_PRODUCT = "NOT_PRODUCT"  # [products] exclude: a longer name that contains a product word
FACT_LABELS = {"invoices": "INVOICE", "orders": "ORDER"}


@dataclass(frozen=True)
class EntityRule:
    """One EntityRuler pattern: a phrase (matched case-insensitively, on LOWER) or a spaCy
    token pattern; ``id`` is a product's canonical name or a facts rule id."""

    label: str  # PRODUCT | NOT_PRODUCT | INVOICE | ORDER
    id: str
    pattern: str | tuple[dict[str, Any], ...]
    where: Where | None = None


@dataclass(frozen=True)
class FactRules:
    orders: tuple[RegexRule | EntityRule, ...]
    amounts: tuple[RegexRule, ...]
    dates: tuple[RegexRule, ...]
    products: dict[str, tuple[str, ...]] = field(default_factory=dict)  # canonical -> phrasings
    topics: dict[str, tuple[str, ...]] = field(default_factory=dict)  # topic -> terms
    invoices: tuple[RegexRule | EntityRule, ...] = ()  # read before orders: an invoice number is not an order
    # everything the EntityRuler finds: product phrases and patterns, exclusions, and the
    # [[invoices]] / [[orders]] entries written as token patterns
    entities: tuple[EntityRule, ...] = ()


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
    tf.unknown_keys(data, {"threshold", "anger_factor", "negation", "phrases", "patterns", "regex"}, "")
    threshold = get_number(tf, data, "threshold", "", 0.5, 0.01, 10.0) or 0.5
    anger_factor = get_number(tf, data, "anger_factor", "", 0.5, 0.0, 5.0)
    signals = load_signals(tf, data, "", "complaint", COMPLAINT_KINDS, "complaint")
    negation = None
    table = data.get("negation")
    if table is not None:
        if not isinstance(table, dict):
            add_problem(tf, "negation", "expected a table with terms and window")
        else:
            tf.unknown_keys(table, {"terms", "window"}, "negation")
            terms = get_str_list(tf, table, "terms", "negation", required=True)
            window = get_number(tf, table, "window", "negation", 2, 1, 8)
            if terms and window is not None:
                negation = Modifier(
                    COMPLAINT_NEGATION, terms, 0.0, int(window), Where(str(tf.path), "negation", tf.line_of("negation"))
                )
    return ComplaintRules(threshold, anger_factor or 0.0, signals, negation)


# ---------------------------------------------------------------- facts.toml

_FACT_LISTS = ("invoices", "orders", "amounts", "dates")


_TOKEN_PATTERN_HINT = 'a spaCy token pattern, e.g. [{LOWER = "powerblend"}, {IS_DIGIT = true}]'


def _token_pattern(value: Any) -> tuple[dict[str, Any], ...] | None:
    """``value`` as a token pattern (a non-empty list of token tables), or None."""
    if isinstance(value, list) and value and all(isinstance(t, dict) and t for t in value):
        return tuple(value)
    return None


def _fact_regexes(tf: TomlFile, name: str) -> tuple[RegexRule | EntityRule, ...]:
    """``[[name]]`` entries: each a ``regex`` or (invoices, orders) a token ``pattern``."""
    out: list[RegexRule | EntityRule] = []
    label = FACT_LABELS.get(name)
    allowed = {"id", "regex", "ignore_case"} | ({"pattern"} if label else set())
    for rule_id, entry, key in _entries(tf, tf.data, name, ""):
        tf.unknown_keys(entry, allowed, key)
        if label and "pattern" in entry:
            line = entry_line(tf, name, rule_id, "pattern")
            pattern = _token_pattern(entry["pattern"])
            if "regex" in entry:
                add_problem(tf, key, "expected either regex or pattern, not both", line)
            elif pattern is None:
                add_problem(tf, f"{key}.pattern", f"expected {_TOKEN_PATTERN_HINT}", line)
            else:
                out.append(EntityRule(label, f"facts.{name}.{rule_id}", pattern, Where(str(tf.path), f"{key}.pattern", line)))
            continue
        ignore_case = get_bool(tf, entry, "ignore_case", key, True)
        line = entry_line(tf, name, rule_id, "regex")
        compiled = compile_regex(tf, entry.get("regex"), f"{key}.regex", ignore_case, line)
        if compiled is not None:
            out.append(RegexRule(f"facts.{name}.{rule_id}", name, 0.0, compiled, where=Where(str(tf.path), key, line)))
    return tuple(out)


def _table_key_line(tf: TomlFile, table: str, key: str) -> int | None:
    """Line of ``key = ...`` inside ``[table]`` (falls back to TomlFile's guess)."""
    lines = tf.text.splitlines()
    header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
    key_re = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    inside = False
    for i, text in enumerate(lines):
        if header.match(text):
            inside = True
        elif inside and text.lstrip().startswith("["):
            break
        elif inside and key_re.match(text):
            return i + 1
    return tf.line_of(f"{table}.{key}")


def _products(tf: TomlFile) -> tuple[dict[str, tuple[str, ...]], tuple[EntityRule, ...]]:
    """``[products]``: name = [phrases and token patterns]; ``exclude`` = the same, never products."""
    table = tf.data.get("products", {})
    if not isinstance(table, dict):
        add_problem(tf, "products", "expected a table of name = [phrases or token patterns]")
        return {}, ()
    names: dict[str, tuple[str, ...]] = {}
    entities: list[EntityRule] = []
    for name, value in table.items():
        key = f"products.{name}"
        line = _table_key_line(tf, "products", name)
        where = Where(str(tf.path), key, line)
        excluded = name == "exclude"
        label = NOT_PRODUCT if excluded else PRODUCT
        if not isinstance(value, list) or (excluded and not value):
            add_problem(
                tf, key, f"expected a {'non-empty ' if excluded else ''}list of non-empty strings (phrases) "
                f"and token patterns ({_TOKEN_PATTERN_HINT})", line
            )
            continue
        phrases: list[str] = [] if excluded else [name]
        for i, item in enumerate(value):
            pattern = _token_pattern(item)
            if isinstance(item, str) and item.strip():
                phrases.append(item.strip())
            elif pattern is not None:
                entities.append(EntityRule(label, name, pattern, Where(str(tf.path), f"{key}[{i}]", line)))
            else:
                add_problem(
                    tf, f"{key}[{i}]", f"expected a non-empty string (a phrase) or {_TOKEN_PATTERN_HINT}, got {item!r}", line
                )
        phrases = list(dict.fromkeys(phrases))
        entities.extend(EntityRule(label, name, phrase, where) for phrase in phrases)
        if not excluded:
            names[name] = tuple(phrases)
    return names, tuple(entities)


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
    invoices, orders, amounts, dates = (_fact_regexes(tf, name) for name in _FACT_LISTS)
    products, product_entities = _products(tf)
    fact_entities = tuple(r for r in invoices + orders if isinstance(r, EntityRule))
    return FactRules(
        orders,
        amounts,  # type: ignore[arg-type]  # only invoices and orders take token patterns
        dates,  # type: ignore[arg-type]
        products,
        _phrase_table(tf, "topics", False),
        invoices,
        product_entities + fact_entities,
    )
