"""rules/replies.toml, loaded and validated into frozen dataclasses.

``load_reply_rules(rules_dir, templates)`` reads the file once and returns
``(ReplyRules, [])``, or ``(None, problems)`` listing every problem found, each
naming the file, the key and (where TOML gives one) the line. Template names are
checked against ``templates``, archetypes and levels against the detector's.
``ReplyRules.choose_for`` is the pure decision: the first matching
``[[choose]]`` rule gives the template and the working days to the next step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from triage.detect import ARCHETYPES, LEVELS, Detection
from triage.drafting.outgoing import clean_line
from triage.drafting.tone import compile_patterns
from triage.errors import Problem
from triage.rules import TomlFile

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
    complaint: bool | None = None
    has_specialist: bool | None = None
    working_days: int | None = None
    line: int | None = None

    def matches(self, detection: Detection, has_specialist: bool) -> bool:
        names = set(detection.archetype_names)
        return ((not self.archetypes or bool(names & set(self.archetypes)))
                and (not self.levels or detection.level in self.levels)
                and (not self.topics or detection.topic in self.topics)
                and (self.complaint is None or detection.complaint == self.complaint)
                and (self.has_specialist is None or has_specialist == self.has_specialist))


@dataclass(frozen=True)
class NoReply:
    """When a customer's message is a closing "thanks, all good" that needs no reply."""

    max_words: int
    closing: tuple[re.Pattern[str], ...]
    still_open: tuple[re.Pattern[str], ...]


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

    def choose_for(self, detection: Detection) -> tuple[str, int]:
        """(template name, working days to the next step): the first matching rule wins."""
        has = detection.topic in self.specialists
        for rule in self.choose:
            if rule.matches(detection, has):
                days = rule.working_days if rule.working_days is not None else self.working_days
                return rule.template, days
        return self.default_template, self.working_days


_TOP_KEYS = {"defaults", "purposes", "specialists", "choose", "no_reply"}
_CHOOSE_KEYS = {"id", "template", "archetypes", "levels", "topics", "complaint",
                "has_specialist", "next_step_working_days"}


def _strings(f: TomlFile, key: str, value: Any, allowed: tuple[str, ...] = ()) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        f.problem(key, "expected a list of strings")
        return ()
    for v in value:
        if allowed and v not in allowed:
            f.problem(key, f"unknown value {v!r} (expected one of: {', '.join(allowed)})")
    return tuple(value)


def _days(f: TomlFile, key: str, value: Any, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 30:
        f.problem(key, f"expected a whole number of working days from 0 to 30, got {value!r}")
        return default
    return value


def load_reply_rules(rules_dir: Path, templates: set[str]) -> tuple[ReplyRules | None, list[Problem]]:
    """Read replies.toml; return the rules (None if unusable) and every problem found."""
    f = TomlFile(rules_dir / REPLIES_FILE)
    if f.problems:
        return None, f.problems
    d = f.data
    f.unknown_keys(d, _TOP_KEYS, "")

    def table(name: str) -> dict[str, Any]:
        value = d.get(name, {})
        if not isinstance(value, dict):
            f.problem(name, f"expected a table [{name}]")
            return {}
        return value

    def template_ref(key: str, name: Any) -> str:
        if not isinstance(name, str) or not name:
            f.problem(key, "expected a template name")
            return ""
        if name not in templates:
            f.problem(key, f"unknown template {name!r} (templates: {', '.join(sorted(templates))})")
        return name

    defaults = table("defaults")
    f.unknown_keys(defaults, {"template", "next_step_working_days", "holidays"}, "defaults")
    default_template = template_ref("defaults.template", defaults.get("template"))
    working_days = _days(f, "defaults.next_step_working_days",
                         defaults.get("next_step_working_days"), 1) or 0
    holidays = defaults.get("holidays", [])
    if not isinstance(holidays, list) or not all(isinstance(h, date) for h in holidays):
        f.problem("defaults.holidays", "expected a list of dates like 2026-12-25")
        holidays = []

    purposes = table("purposes")
    f.unknown_keys(purposes, set(PURPOSES) - {"reply"}, "purposes")
    purpose_map = {k: template_ref(f"purposes.{k}", v) for k, v in purposes.items()
                   if k in PURPOSES}
    for k in PURPOSES[1:]:
        if k not in purposes:
            f.problem(f"purposes.{k}", "required: the template for this kind of message")

    specialists: dict[str, Specialist] = {}
    for topic, spec in table("specialists").items():
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
    entries = d.get("choose", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        f.problem("choose", "expected [[choose]] tables")
        entries = []
    seen: set[str] = set()
    for n, e in enumerate(entries):
        rid = e.get("id") if isinstance(e.get("id"), str) and e.get("id") else f"choose[{n}]"
        key = f"choose.{rid}" if rid != f"choose[{n}]" else rid
        if rid in seen:
            f.problem(key, "duplicate id")
        seen.add(rid)
        f.unknown_keys(e, _CHOOSE_KEYS, key)
        flags: dict[str, bool | None] = {}
        for flag in ("complaint", "has_specialist"):
            if flag in e and not isinstance(e[flag], bool):
                f.problem(f"{key}.{flag}", "expected true or false")
            flags[flag] = e[flag] if isinstance(e.get(flag), bool) else None
        rules.append(ChoiceRule(
            id=rid, template=template_ref(f"{key}.template", e.get("template")),
            archetypes=_strings(f, f"{key}.archetypes", e.get("archetypes"), ARCHETYPES),
            levels=_strings(f, f"{key}.levels", e.get("levels"), LEVELS),
            topics=_strings(f, f"{key}.topics", e.get("topics")),
            complaint=flags["complaint"], has_specialist=flags["has_specialist"],
            working_days=_days(f, f"{key}.next_step_working_days",
                               e.get("next_step_working_days"), None),
            line=f.line_of(rid)))

    nr = table("no_reply")
    f.unknown_keys(nr, {"max_words", "closing", "still_open"}, "no_reply")
    max_words = nr.get("max_words", 40)
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        f.problem("no_reply.max_words", "expected a positive whole number")
        max_words = 40
    no_reply = NoReply(max_words,
                       tuple(compile_patterns(f, "no_reply.closing", nr.get("closing"), regex=False)),
                       tuple(compile_patterns(f, "no_reply.still_open", nr.get("still_open"),
                                              regex=False)))
    if f.problems:
        return None, f.problems
    return ReplyRules(tuple(rules), default_template, purpose_map, working_days,
                      frozenset(holidays), specialists, no_reply), []
