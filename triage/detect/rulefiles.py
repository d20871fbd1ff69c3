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

from triage.detect.fastregex import FastRegex
from triage.rulefile import TomlFile

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
        ``fastregex.lowered(text)``. Read values by offset, not group()."""
        return self.fast.finditer(text, lowered)


def compile_regex(tf: TomlFile, text: Any, key: str, ignore_case: bool, line: int | None) -> re.Pattern[str] | None:
    """``text`` compiled, or None with a problem: not a string, not a valid regex, or matching ""."""
    if not isinstance(text, str) or not text:
        tf.problem(key, f"expected a regular expression string, got {text!r}", line)
        return None
    try:
        compiled = re.compile(text, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        tf.problem(key, f"not a valid regular expression: {exc}", line)
        return None
    if compiled.fullmatch(""):
        tf.problem(key, "regular expression matches the empty string", line)
        return None
    return compiled


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
class Shouting:
    """anger.toml [shouting]: capitalised ordinary words, judged over the message."""

    weight: float = 0.15  # per capitalised ordinary word
    run_weight: float = 0.45  # at most this for one run of them (a run counts once)
    max_weight: float = 0.9  # at most this for the whole message
    min_words: int = 2  # fewer capitalised ordinary words in a message is emphasis, not shouting
    ignore: frozenset[str] = frozenset()  # owner's words that are never shouting (brands, codes)


@dataclass(frozen=True)
class Valence:
    """[valence] of anger.toml or complaint.toml: weight per point of the lexicon's valence."""

    negative: float = 0.0  # weight per point below zero (a word of valence -2 adds 2 x negative)
    positive: float = 0.0  # weight taken off per point above zero
    below: float = 0.0  # only words at or below this valence count as negative


@dataclass(frozen=True)
class AngerRules:
    levels: tuple[tuple[str, float], ...]  # ((annoyed, t1), (angry, t2), (furious, t3)) ascending
    scale: float
    modifiers: tuple[Modifier, ...]
    signals: Signals
    shouting: Shouting | None = None
    valence: Valence = Valence()
    window: int = 0  # characters: the score is the strongest stretch this long (0: the whole text)
    long_text: int = 0  # characters: a longer text's score is damped by sqrt(long_text / length)
    # Emphasis (kind "shout": capitals, "!!", "?!") adds ``emphasis_alone`` of its weight and
    # raises the other anger evidence by ``emphasis_amplifies`` x its weight (at most
    # ``emphasis_cap``): shouting makes anger louder more than it makes anger.
    emphasis_alone: float = 1.0
    emphasis_amplifies: float = 0.0
    emphasis_cap: float = 1.0

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
    valence: Valence = Valence()
    valence_file: str = ""  # the lexicon (a file in the rules folder), "" for none


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
    raw = tf.tables(table, name, prefix)
    out: list[tuple[str, dict[str, Any], str]] = []
    seen: set[str] = set()
    for n, entry in enumerate(raw):
        rule_id = entry.get("id")
        if not isinstance(rule_id, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", rule_id):
            tf.problem(f"{dotted}[{n}].id", f"expected an id of letters, digits, _ or -, got {rule_id!r}")
            continue
        if rule_id in seen:
            tf.problem(f"{dotted}[{rule_id}].id", "duplicate id", tf.entry_line(dotted, rule_id))
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
        tf.unknown_keys(entry, allowed, key, line=lambda extra: tf.entry_line(block, rule_id, extra))
        if entry.get("kind", default_kind) not in kinds:
            tf.choice(entry, "kind", key, kinds, default_kind, line=tf.entry_line(block, rule_id, "kind"))
            return None
        kind = default_kind if "kind" not in entry else str(entry["kind"])
        weight = tf.number(entry, "weight", key, lo=WEIGHT_RANGE[0], hi=WEIGHT_RANGE[1], required=True,
                           line=tf.entry_line(block, rule_id, "weight"))
        if weight is None:
            return None
        return kind, weight

    block = f"{prefix}.phrases" if prefix else "phrases"
    for rule_id, entry, key in _entries(tf, table, "phrases", prefix):
        got = common(entry, key, rule_id, _PHRASE_KEYS, block)
        terms = tf.str_list(entry, "terms", key, line=tf.entry_line(block, rule_id, "terms"), required=True)
        negatable = tf.boolean(entry, "negatable", key, True)
        requires = tf.boolean(entry, "requires_negation", key, False)
        if got and terms:
            phrases.append(
                PhraseRule(
                    f"{section}.{rule_id}",
                    got[0],
                    got[1],
                    terms,
                    negatable,
                    requires,
                    Where(str(tf.path), key, tf.entry_line(block, rule_id)),
                )
            )

    block = f"{prefix}.patterns" if prefix else "patterns"
    for rule_id, entry, key in _entries(tf, table, "patterns", prefix):
        got = common(entry, key, rule_id, _PATTERN_KEYS, block)
        pattern = entry.get("pattern")
        pline = tf.entry_line(block, rule_id, "pattern")
        if not isinstance(pattern, list) or not pattern or not all(isinstance(t, dict) for t in pattern):
            tf.problem(f"{key}.pattern",
                'expected a non-empty list of token tables, e.g. [{LOWER = "still"}, {LOWER = "not"}]',
                pline,
            )
            continue
        negatable = tf.boolean(entry, "negatable", key, False)
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
        ignore_case = tf.boolean(entry, "ignore_case", key, False)
        rline = tf.entry_line(block, rule_id, "regex")
        compiled = compile_regex(tf, entry.get("regex"), f"{key}.regex", ignore_case, rline)
        ignore = tf.str_list(entry, "ignore", key, line=tf.entry_line(block, rule_id, "ignore"))
        max_weight = tf.number(entry, "max_weight", key, 0.0, lo=0.0, hi=10.0,
                               line=tf.entry_line(block, rule_id, "max_weight"))
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
    tf.unknown_keys(data, {"levels", "scoring", "modifiers", "phrases", "patterns", "regex", "shouting", "valence"}, "")
    levels_raw = tf.table(data, "levels", allowed=_LEVEL_NAMES,
                          expected="a table: annoyed, angry, furious = score thresholds")
    levels: list[tuple[str, float]] = []
    for name in _LEVEL_NAMES:
        value = tf.number(levels_raw, name, "levels", lo=0.0, hi=1.0, required=True)
        if value is not None:
            levels.append((name, value))
    if len(levels) == 3 and not levels[0][1] < levels[1][1] < levels[2][1]:
        tf.problem("levels",
            "thresholds out of order: expected annoyed < angry < furious, got "
            + ", ".join(f"{n} = {v}" for n, v in levels),
        )
    emphasis_keys = ("emphasis_alone", "emphasis_amplifies", "emphasis_cap")
    scoring = tf.table(data, "scoring", allowed={"scale", "window", "long_text", *emphasis_keys},
                       expected="a table with scale, window, long_text, " + ", ".join(emphasis_keys))
    scale = tf.number(scoring, "scale", "scoring", 1.0, lo=0.05, hi=20.0) or 1.0
    stretch = tf.number(scoring, "window", "scoring", 0, lo=0, hi=100_000) or 0
    long_text = tf.number(scoring, "long_text", "scoring", 0, lo=0, hi=1_000_000) or 0
    emphasis = [tf.number(scoring, key, "scoring", default, lo=0.0, hi=5.0)
                for key, default in zip(emphasis_keys, (1.0, 0.0, 1.0), strict=True)]
    shouting = None
    if "shouting" in data:
        shout = tf.table(data, "shouting", allowed={"weight", "run_weight", "max_weight", "min_words", "ignore"},
                         expected="a table with weight, run_weight, max_weight, min_words, ignore")
        shouting = Shouting(
            weight=tf.number(shout, "weight", "shouting", 0.15, lo=0.0, hi=3.0),
            run_weight=tf.number(shout, "run_weight", "shouting", 0.45, lo=0.0, hi=3.0),
            max_weight=tf.number(shout, "max_weight", "shouting", 0.9, lo=0.0, hi=5.0),
            min_words=int(tf.number(shout, "min_words", "shouting", 2, lo=1, hi=100)),
            ignore=frozenset(w.lower() for w in tf.str_list(shout, "ignore", "shouting")),
        )
    valence = _valence(tf, data)

    modifiers: list[Modifier] = []
    mods = tf.table(data, "modifiers", allowed=("negation", "intensifiers", "downtoners"),
                    expected="a table of negation, intensifiers, downtoners")
    for name, factor_range in (("negation", (-2.0, 1.0)), ("intensifiers", (1.0, 5.0)), ("downtoners", (0.0, 1.0))):
        table = mods.get(name)
        if table is None:
            continue
        prefix = f"modifiers.{name}"
        if not isinstance(table, dict):
            tf.problem(prefix, "expected a table with terms, factor, window")
            continue
        tf.unknown_keys(table, {"terms", "factor", "window"}, prefix)
        terms = tf.str_list(table, "terms", prefix, required=True)
        factor = tf.number(table, "factor", prefix, lo=factor_range[0], hi=factor_range[1], required=True)
        window = tf.number(table, "window", prefix, 3, lo=1, hi=8)
        if terms and factor is not None and window is not None:
            modifiers.append(
                Modifier(name, terms, factor, int(window), Where(str(tf.path), prefix, tf.line_of(prefix)))
            )

    signals = load_signals(tf, data, "", "anger", ANGER_KINDS, "anger")
    if len(levels) != 3:
        levels = [("annoyed", 0.35), ("angry", 0.65), ("furious", 0.88)]
    alone, amplifies, cap = (1.0 if e is None else float(e) for e in emphasis)
    return AngerRules(tuple(levels), scale, tuple(modifiers), signals, shouting, valence, int(stretch), int(long_text),
                      alone, amplifies, cap)


def _valence(tf: TomlFile, data: dict[str, Any], file_key: bool = False) -> Valence:
    allowed = {"negative", "positive", "below"} | ({"file"} if file_key else set())
    table = tf.table(data, "valence", allowed=allowed, expected="a table with " + ", ".join(sorted(allowed)))
    return Valence(
        negative=tf.number(table, "negative", "valence", 0.0, lo=0.0, hi=3.0),
        positive=tf.number(table, "positive", "valence", 0.0, lo=0.0, hi=3.0),
        below=tf.number(table, "below", "valence", 0.0, lo=-4.0, hi=0.0),
    )


# ---------------------------------------------------------------- complaint.toml


def load_complaint(tf: TomlFile) -> ComplaintRules:
    data = tf.data
    tf.unknown_keys(data, {"threshold", "anger_factor", "negation", "phrases", "patterns", "regex", "valence"}, "")
    threshold = tf.number(data, "threshold", "", 0.5, lo=0.01, hi=10.0) or 0.5
    anger_factor = tf.number(data, "anger_factor", "", 0.5, lo=0.0, hi=5.0)
    signals = load_signals(tf, data, "", "complaint", COMPLAINT_KINDS, "complaint")
    negation = None
    table = data.get("negation")
    if table is not None:
        if not isinstance(table, dict):
            tf.problem("negation", "expected a table with terms and window")
        else:
            tf.unknown_keys(table, {"terms", "window"}, "negation")
            terms = tf.str_list(table, "terms", "negation", required=True)
            window = tf.number(table, "window", "negation", 2, lo=1, hi=8)
            if terms and window is not None:
                negation = Modifier(
                    COMPLAINT_NEGATION, terms, 0.0, int(window), Where(str(tf.path), "negation", tf.line_of("negation"))
                )
    valence = _valence(tf, data, file_key=True)
    valence_file = tf.string(tf.table(data, "valence"), "file", "valence", "") if "valence" in data else ""
    return ComplaintRules(threshold, anger_factor or 0.0, signals, negation, valence, valence_file or "")


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
            line = tf.entry_line(name, rule_id, "pattern")
            pattern = _token_pattern(entry["pattern"])
            if "regex" in entry:
                tf.problem(key, "expected either regex or pattern, not both", line)
            elif pattern is None:
                tf.problem(f"{key}.pattern", f"expected {_TOKEN_PATTERN_HINT}", line)
            else:
                out.append(EntityRule(label, f"facts.{name}.{rule_id}", pattern, Where(str(tf.path), f"{key}.pattern", line)))
            continue
        ignore_case = tf.boolean(entry, "ignore_case", key, True)
        line = tf.entry_line(name, rule_id, "regex")
        compiled = compile_regex(tf, entry.get("regex"), f"{key}.regex", ignore_case, line)
        if compiled is not None:
            out.append(RegexRule(f"facts.{name}.{rule_id}", name, 0.0, compiled, where=Where(str(tf.path), key, line)))
    return tuple(out)


def _products(tf: TomlFile) -> tuple[dict[str, tuple[str, ...]], tuple[EntityRule, ...]]:
    """``[products]``: name = [phrases and token patterns]; ``exclude`` = the same, never products."""
    table = tf.table(tf.data, "products", expected="a table of name = [phrases or token patterns]")
    names: dict[str, tuple[str, ...]] = {}
    entities: list[EntityRule] = []
    for name, value in table.items():
        key = f"products.{name}"
        line = tf.line_of(f"products.{name}")
        where = Where(str(tf.path), key, line)
        excluded = name == "exclude"
        label = NOT_PRODUCT if excluded else PRODUCT
        if not isinstance(value, list) or (excluded and not value):
            tf.problem(key, f"expected a {'non-empty ' if excluded else ''}list of non-empty strings (phrases) "
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
                tf.problem(f"{key}[{i}]", f"expected a non-empty string (a phrase) or {_TOKEN_PATTERN_HINT}, got {item!r}", line
                )
        phrases = list(dict.fromkeys(phrases))
        entities.extend(EntityRule(label, name, phrase, where) for phrase in phrases)
        if not excluded:
            names[name] = tuple(phrases)
    return names, tuple(entities)


def _phrase_table(tf: TomlFile, name: str, include_key: bool) -> dict[str, tuple[str, ...]]:
    table = tf.table(tf.data, name, expected="a table of name = [phrases]")
    out: dict[str, tuple[str, ...]] = {}
    for key, value in table.items():
        terms = tf.str_list(table, key, name, required=True) if value != [] else ()
        if value == [] and not include_key:
            tf.problem(f"{name}.{key}", "expected a non-empty list of words or phrases")
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
