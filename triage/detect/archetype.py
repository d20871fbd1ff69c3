"""Archetype rules (archetypes.toml, customers.csv) and the archetype decision.

An archetype's score is the sum of

* its own text signals (``[[<name>.phrases]]``, ``[[<name>.patterns]]``, ``[[<name>.regex]]``),
* anger evidence of the kinds listed in ``<name>.evidence`` times their factor,
* ``<name>.history``: ``weight`` per earlier message within ``days`` that was a
  complaint (``counts = "complaint"``) or had an archetype (``counts = "barnacle"``),
* ``<name>.customers``: ``weight`` when the sender's address or domain is listed
  in the customers file with one of ``tiers``.

It fires when the score reaches ``min_score``, the text part reaches
``min_text_score``, the anger level is within ``min_level``..``max_level`` and,
with ``requires_complaint``, the message is a complaint. Fired archetypes named
in another fired archetype's ``excludes`` are dropped; the rest are ordered by
``precedence`` (first = primary).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from triage.detect import ARCHETYPES, LEVELS, ArchetypeHit, Context, Evidence
from triage.detect.rulefiles import (
    ANGER_KINDS,
    Signals,
    Where,
    load_signals,
)
from triage.errors import Problem
from triage.rulefile import TomlFile, did_you_mean


@dataclass(frozen=True)
class HistoryRule:
    counts: str  # "complaint" or an archetype name
    days: int
    weight: float
    count_current: bool  # the current message counts too when it is a complaint


@dataclass(frozen=True)
class CustomerList:
    file: str
    entries: dict[str, tuple[str, int]]  # address or domain -> (tier, line)

    def lookup(self, sender: str) -> tuple[str, str] | None:
        """(matched entry, tier) for an exact address, its domain or a parent domain."""
        sender = sender.strip().lower()
        if not sender:
            return None
        if sender in self.entries:
            return sender, self.entries[sender][0]
        domain = sender.rpartition("@")[2]
        parts = domain.split(".")
        for i in range(len(parts) - 1):
            candidate = ".".join(parts[i:])
            if candidate in self.entries:
                return candidate, self.entries[candidate][0]
        return None


@dataclass(frozen=True)
class CustomerRule:
    customers: CustomerList
    tiers: tuple[str, ...]
    weight: float


@dataclass(frozen=True)
class ArchetypeRule:
    name: str
    min_score: float = 1.0
    min_text_score: float = 0.0
    min_level: str = "calm"
    max_level: str = "furious"
    requires_complaint: bool = False
    excludes: tuple[str, ...] = ()
    evidence: dict[str, float] = field(default_factory=dict)
    signals: Signals = field(default_factory=Signals)
    history: HistoryRule | None = None
    customers: CustomerRule | None = None
    where: Where | None = None


@dataclass(frozen=True)
class ArchetypeRules:
    precedence: tuple[str, ...]
    rules: tuple[ArchetypeRule, ...]

    @property
    def signals(self) -> Signals:
        out = Signals()
        for rule in self.rules:
            out = out + rule.signals
        return out


_RULE_KEYS = {
    "min_score",
    "min_text_score",
    "min_level",
    "max_level",
    "requires_complaint",
    "excludes",
    "evidence",
    "history",
    "customers",
    "phrases",
    "patterns",
    "regex",
}


def load_customers(path_text: str, text: str, problems: list[Problem]) -> CustomerList:
    """Parse customers.csv: ``#`` comment lines, a ``match,tier`` header, one row per customer."""
    entries: dict[str, tuple[str, int]] = {}
    header_seen = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = next(csv.reader(io.StringIO(line)))
        row = [c.strip() for c in row]
        if not header_seen:
            header_seen = True
            if [c.lower() for c in row] != ["match", "tier"]:
                problems.append(
                    Problem(path_text, "header", f"expected the header 'match,tier', got {line.strip()!r}", lineno)
                )
            else:
                continue
        if len(row) != 2 or not row[0] or not row[1]:
            problems.append(
                Problem(path_text, f"row {lineno}", "expected two columns: address or domain, tier", lineno)
            )
            continue
        match = row[0].lower().lstrip("@")
        if " " in match or "." not in match:
            problems.append(
                Problem(path_text, f"row {lineno}", f"expected an address or a domain, got {row[0]!r}", lineno)
            )
            continue
        if match in entries:
            problems.append(
                Problem(
                    path_text, f"row {lineno}", f"{match!r} listed twice (first on line {entries[match][1]})", lineno
                )
            )
            continue
        entries[match] = (row[1].lower(), lineno)
    return CustomerList(path_text, entries)


def load_archetypes(tf: TomlFile, customer_files: dict[str, tuple[str, str]]) -> ArchetypeRules:
    """archetypes.toml -> ArchetypeRules. ``customer_files`` maps a file name to (path, text)."""
    data = tf.data
    rules: list[ArchetypeRule] = []
    for name, table in data.items():
        if name == "precedence":
            continue
        if name not in ARCHETYPES:
            tf.unknown(name, name, ARCHETYPES, "archetype")
            continue
        if not isinstance(table, dict):
            tf.problem(name, "expected a table")
            continue
        rule = _load_rule(tf, name, table, customer_files)
        if rule is not None:
            rules.append(rule)
    names = {r.name for r in rules}
    precedence = tf.str_list(data, "precedence", "", required=True)
    for n, item in enumerate(precedence):
        if item not in ARCHETYPES:
            tf.problem(f"precedence[{n}]", f"unknown archetype {item!r}{did_you_mean(item, ARCHETYPES)} "
                       f"(expected one of: {', '.join(ARCHETYPES)})")
    if len(set(precedence)) != len(precedence):
        tf.problem("precedence", "an archetype is listed twice")
    for missing in sorted(names - set(precedence)):
        tf.problem("precedence", f"archetype {missing!r} has rules but is not in precedence")
    for rule in rules:
        for other in rule.excludes:
            if other not in ARCHETYPES:
                tf.problem(f"{rule.name}.excludes", f"unknown archetype {other!r}{did_you_mean(other, ARCHETYPES)}")
        if rule.history and rule.history.counts not in ("complaint", *ARCHETYPES):
            tf.problem(f"{rule.name}.history.counts",
                       f"expected 'complaint' or an archetype name, got {rule.history.counts!r}")
    order = {n: i for i, n in enumerate(precedence)}
    rules.sort(key=lambda r: order.get(r.name, len(order)))
    return ArchetypeRules(tuple(p for p in precedence if p in ARCHETYPES), tuple(rules))


def _load_rule(
    tf: TomlFile, name: str, table: dict[str, Any], customer_files: dict[str, tuple[str, str]]
) -> ArchetypeRule | None:
    tf.unknown_keys(table, _RULE_KEYS, name)
    min_score = tf.number(table, "min_score", name, 1.0, lo=0.0, hi=100.0)
    min_text = tf.number(table, "min_text_score", name, 0.0, lo=0.0, hi=100.0)
    levels = []
    for key, default in (("min_level", "calm"), ("max_level", "furious")):
        levels.append(tf.choice(table, key, name, LEVELS, default))
    if LEVELS.index(levels[0]) > LEVELS.index(levels[1]):
        tf.problem(f"{name}.min_level", f"min_level {levels[0]!r} is above max_level {levels[1]!r}")
    requires = tf.boolean(table, "requires_complaint", name, False)
    excludes = tf.str_list(table, "excludes", name)
    evidence: dict[str, float] = {}
    raw_ev = tf.table(table, "evidence", name, allowed=ANGER_KINDS, expected="a table of evidence kind = factor")
    for kind in raw_ev:
        if kind in ANGER_KINDS:
            factor = tf.number(raw_ev, kind, f"{name}.evidence", lo=0.0, hi=10.0, required=True)
            if factor is not None:
                evidence[kind] = factor
    history = _history(tf, name, table.get("history"))
    customers = _customers(tf, name, table.get("customers"), customer_files)
    signals = load_signals(tf, table, name, name, ("archetype",), "archetype")
    return ArchetypeRule(
        name,
        min_score or 0.0,
        min_text or 0.0,
        levels[0],
        levels[1],
        requires,
        excludes,
        evidence,
        signals,
        history,
        customers,
        Where(str(tf.path), name, tf.line_of(name)),
    )


def _history(tf: TomlFile, name: str, table: Any) -> HistoryRule | None:
    if table is None:
        return None
    prefix = f"{name}.history"
    if not isinstance(table, dict):
        tf.problem(prefix, "expected a table: counts, days, weight, count_current")
        return None
    tf.unknown_keys(table, {"counts", "days", "weight", "count_current"}, prefix)
    counts = tf.string(table, "counts", prefix, required=True)
    days = tf.number(table, "days", prefix, lo=1, hi=3650, required=True)
    weight = tf.number(table, "weight", prefix, 1.0, lo=0.0, hi=100.0)
    current = tf.boolean(table, "count_current", prefix, False)
    if counts is None or days is None or weight is None:
        return None
    return HistoryRule(counts, int(days), weight, current)


def _customers(tf: TomlFile, name: str, table: Any, files: dict[str, tuple[str, str]]) -> CustomerRule | None:
    if table is None:
        return None
    prefix = f"{name}.customers"
    if not isinstance(table, dict):
        tf.problem(prefix, "expected a table: file, tiers, weight")
        return None
    tf.unknown_keys(table, {"file", "tiers", "weight"}, prefix)
    file = tf.string(table, "file", prefix, required=True)
    tiers = tf.str_list(table, "tiers", prefix, required=True)
    weight = tf.number(table, "weight", prefix, 1.0, lo=0.0, hi=100.0)
    if file is None or weight is None:
        return None
    if file not in files:
        tf.problem(f"{prefix}.file", f"customer file {file!r} not found next to {tf.path.name}")
        return None
    path_text, text = files[file]
    problems: list[Problem] = []
    customers = load_customers(path_text, text, problems)
    tf.problems.extend(problems)
    return CustomerRule(customers, tuple(t.lower() for t in tiers), weight)


# ---------------------------------------------------------------- the decision


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def decide(
    rules: ArchetypeRules, evidence: list[Evidence], level: str, complaint: bool, context: Context
) -> tuple[ArchetypeHit, ...]:
    """The archetypes that fire for one message, in precedence order, each with its rule."""
    now = _aware(context.now) if context.now else datetime.now(timezone.utc)
    level_index = LEVELS.index(level)
    fired: list[ArchetypeHit] = []
    for rule in rules.rules:
        if rule.requires_complaint and not complaint:
            continue
        if not LEVELS.index(rule.min_level) <= level_index <= LEVELS.index(rule.max_level):
            continue
        text_score, best, best_weight = 0.0, "", 0.0
        prefix = rule.name + "."
        for ev in evidence:
            if ev.kind == "archetype" and ev.rule.startswith(prefix):
                part = ev.weight
            elif ev.kind in rule.evidence and ev.weight > 0:
                part = ev.weight * rule.evidence[ev.kind]
            else:
                continue
            text_score += part
            if part > best_weight:
                best, best_weight = ev.rule, part
        score = text_score
        if rule.history:
            count = _history_count(rule.history, context, complaint, now)
            if count:
                score += count * rule.history.weight
                if count * rule.history.weight >= best_weight:
                    best = f"{rule.name}.history: {count} {rule.history.counts} in {rule.history.days} days"
                    best_weight = count * rule.history.weight
        if rule.customers:
            found = rule.customers.customers.lookup(context.sender_address)
            if found and found[1] in rule.customers.tiers:
                score += rule.customers.weight
                if rule.customers.weight >= best_weight:
                    best = f"{rule.customers.customers.file.rpartition('/')[2]}:{found[0]}"
                    best_weight = rule.customers.weight
        if score >= rule.min_score and text_score >= rule.min_text_score and score > 0:
            fired.append(ArchetypeHit(rule.name, best or f"{rule.name}.min_score"))
    excluded = {x for hit in fired for r in rules.rules if r.name == hit.name for x in r.excludes}
    return tuple(hit for hit in fired if hit.name not in excluded)


def _history_count(rule: HistoryRule, context: Context, complaint: bool, now: datetime) -> int:
    since = now - timedelta(days=rule.days)
    count = 0
    for item in context.history:
        if _aware(item.received_at) < since:
            continue
        if (rule.counts == "complaint" and item.complaint) or rule.counts in item.archetypes:
            count += 1
    if rule.count_current and rule.counts == "complaint" and complaint:
        count += 1
    return count
