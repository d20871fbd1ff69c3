"""rules/replies.toml, loaded and validated into frozen dataclasses.

``load_reply_rules(rules_dir, templates)`` reads the file once and returns
``(ReplyRules, [])``, or ``(None, problems)`` listing every problem found, each
naming the file, the key and (where TOML gives one) the line. Template names are
checked against ``templates``, archetypes and levels against the detector's.
``ReplyRules.choose_for`` is the pure decision: the first matching
``[[choose]]`` rule gives the template and the working days to the next step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from triage.detect import ARCHETYPES, LEVELS, Detection
from triage.drafting.outgoing import clean_line
from triage.drafting.situation import SITUATIONS
from triage.drafting.tone import Pattern, compile_patterns
from triage.errors import Problem
from triage.rulefile import TomlFile, did_you_mean

REPLIES_FILE = "replies.toml"
PURPOSES = ("reply", "promise_update", "follow_up")

@dataclass(frozen=True)
class Specialist:
    """Who handles a topic and why they can help."""

    name: str
    role: str
    why: str

    @property
    def full(self) -> str:
        """"Dana, our billing specialist"."""
        return f"{self.name}, {self.role}" if self.role else self.name


@dataclass(frozen=True)
class ChoiceRule:
    """One ``[[choose]]`` entry: conditions (all must hold; lists mean any of) and a template."""

    id: str
    template: str
    archetypes: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    situations: tuple[str, ...] = ()
    complaint: bool | None = None
    has_specialist: bool | None = None
    working_days: int | None = None
    line: int | None = None

    def matches(self, detection: Detection, has_specialist: bool, situation: str = "") -> bool:
        names = set(detection.archetype_names)
        return ((not self.archetypes or bool(names & set(self.archetypes)))
                and (not self.situations or situation in self.situations)
                and (not self.levels or detection.level in self.levels)
                and (not self.topics or detection.topic in self.topics)
                and (self.complaint is None or detection.complaint == self.complaint)
                and (self.has_specialist is None or has_specialist == self.has_specialist))


@dataclass(frozen=True)
class NoReply:
    """When a customer's message is a closing "thanks, all good" that needs no reply."""

    max_words: int
    closing: tuple[Pattern, ...]
    still_open: tuple[Pattern, ...]


@dataclass(frozen=True)
class ReplyRules:
    """rules/replies.toml, validated."""

    choose: tuple[ChoiceRule, ...]
    default_template: str
    purposes: Mapping[str, str]
    working_days: int
    holidays: frozenset[date]
    specialists: Mapping[str, Specialist]
    no_reply: NoReply

    def choose_for(self, detection: Detection, situation: str = "") -> tuple[str, int]:
        """(template name, working days to the next step): the first matching rule wins."""
        has = detection.topic in self.specialists
        for rule in self.choose:
            if rule.matches(detection, has, situation):
                days = rule.working_days if rule.working_days is not None else self.working_days
                return rule.template, days
        return self.default_template, self.working_days


_TOP_KEYS = {"defaults", "purposes", "specialists", "choose", "no_reply"}
_CHOOSE_KEYS = {"id", "template", "archetypes", "levels", "topics", "situations", "complaint",
                "has_specialist", "next_step_working_days"}


def _days(f: TomlFile, table: dict[str, Any], prefix: str, default: int | None) -> int | None:
    days: int | None = f.integer(table, "next_step_working_days", prefix, default, lo=0, hi=30,
                                 expected="a whole number of working days from 0 to 30")
    return days


def load_reply_rules(rules_dir: Path, templates: set[str]) -> tuple[ReplyRules | None, list[Problem]]:
    """Read replies.toml; return the rules (None if unusable) and every problem found."""
    f = TomlFile(rules_dir / REPLIES_FILE)
    if f.problems:
        return None, f.problems
    d = f.data
    f.unknown_keys(d, _TOP_KEYS, "")

    def template_ref(key: str, name: Any) -> str:
        if not isinstance(name, str) or not name:
            f.problem(key, "expected a template name")
            return ""
        if name not in templates:
            f.problem(key, f"unknown template {name!r}{did_you_mean(name, templates)} "
                      f"(templates: {', '.join(sorted(templates))})")
        return name

    defaults = f.table(d, "defaults", allowed={"template", "next_step_working_days", "holidays"})
    default_template = template_ref("defaults.template", defaults.get("template"))
    working_days = _days(f, defaults, "defaults", 1) or 0
    holidays = defaults.get("holidays", [])
    if not isinstance(holidays, list) or not all(isinstance(h, date) for h in holidays):
        f.problem("defaults.holidays", "expected a list of dates like 2026-12-25")
        holidays = []

    purposes = f.table(d, "purposes", allowed=PURPOSES[1:])
    purpose_map = {k: template_ref(f"purposes.{k}", v) for k, v in purposes.items()
                   if k in PURPOSES}
    for k in PURPOSES[1:]:
        if k not in purposes:
            f.problem(f"purposes.{k}", "required: the template for this kind of message")

    specialists: dict[str, Specialist] = {}
    for topic, spec in f.table(d, "specialists").items():
        key = f"specialists.{topic}"
        if not isinstance(spec, dict):
            f.problem(key, "expected a table with name, role and why")
            continue
        f.unknown_keys(spec, {"name", "role", "why"}, key)
        values = {k: spec.get(k) for k in ("name", "role", "why")}
        for k, v in values.items():
            if not isinstance(v, str) or not clean_line(v):
                f.problem(f"{key}.{k}", "expected a non-empty string")
        specialists[topic] = Specialist(*(clean_line(str(v or "")) for v in values.values()))

    rules: list[ChoiceRule] = []
    entries = f.tables(d, "choose")
    seen: set[str] = set()
    for n, e in enumerate(entries):
        rid: str = e["id"] if isinstance(e.get("id"), str) and e["id"] else f"choose[{n}]"
        key = f"choose.{rid}" if rid != f"choose[{n}]" else rid
        if rid in seen:
            f.problem(key, "duplicate id")
        seen.add(rid)
        f.unknown_keys(e, _CHOOSE_KEYS, key)
        flags: dict[str, bool | None] = {flag: f.boolean(e, flag, key) for flag in ("complaint", "has_specialist")}
        rules.append(ChoiceRule(
            id=rid, template=template_ref(f"{key}.template", e.get("template")),
            archetypes=f.str_list(e, "archetypes", key, empty=True, allowed=ARCHETYPES),
            levels=f.str_list(e, "levels", key, empty=True, allowed=LEVELS),
            topics=f.str_list(e, "topics", key, empty=True),
            situations=f.str_list(e, "situations", key, empty=True, allowed=SITUATIONS, what="situation"),
            complaint=flags["complaint"], has_specialist=flags["has_specialist"],
            working_days=_days(f, e, key, None),
            line=f.line_of(rid)))

    nr = f.table(d, "no_reply", allowed={"max_words", "closing", "still_open"})
    max_words: int = f.integer(nr, "max_words", "no_reply", 40, lo=1, expected="a positive whole number")
    no_reply = NoReply(max_words,
                       tuple(compile_patterns(f, "no_reply.closing", nr.get("closing"), regex=False)),
                       tuple(compile_patterns(f, "no_reply.still_open", nr.get("still_open"),
                                              regex=False)))
    if f.problems:
        return None, f.problems
    return ReplyRules(tuple(rules), default_template, purpose_map, working_days,
                      frozenset(holidays), specialists, no_reply), []
