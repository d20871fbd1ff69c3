"""Detection: anger, complaint, archetypes and asks, with the evidence for each decision.

``Detector.load(rules_dir)`` compiles the rules once per run;
``Detector.detect(items)`` classifies a batch. The values here are what the
rest of triage sees; spaCy objects never leave this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

LEVELS = ("calm", "annoyed", "angry", "furious")
ARCHETYPES = ("meek", "aggressive", "high_roller", "chronic", "barnacle", "cancelling")


@dataclass(frozen=True)
class Evidence:
    """One matched span of the customer's text and the rule that matched it."""

    start: int
    end: int
    text: str
    rule: str
    weight: float
    kind: str  # anger | complaint | archetype | threat | shout | negation | ...
    where: str = "text"  # "subject": the span is in the subject line (offsets index the subject)


def _evidence_dict(e: Evidence) -> dict[str, Any]:
    return {"start": e.start, "end": e.end, "text": e.text, "rule": e.rule, "weight": e.weight, "kind": e.kind,
            "where": e.where}


@dataclass(frozen=True)
class ArchetypeHit:
    name: str
    rule: str  # the rule id that fired, e.g. "meek.hedges" or "customers.csv:bigcorp.test"


@dataclass(frozen=True)
class Facts:
    """Concrete details a draft can restate."""

    orders: tuple[str, ...] = ()
    amounts: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    problem: str = ""  # the sentence that best states the problem
    invoices: tuple[str, ...] = ()  # invoice numbers ("INV-7781"), kept apart from orders
    deadline: str = ""  # the customer's own deadline, as they wrote it ("by Friday", "tonight"); see asks.py


@dataclass(frozen=True)
class Ask:
    """One thing the customer asks for (see ``detect/asks.py``), with its evidence.

    ``kind`` is one of ``asks.ASK_KINDS``; ``text`` the words that ask it (for
    ``information``, the question); ``rule`` the asks.toml rule; ``when`` a time
    said with it (cancel from when, call back when, the customer's deadline);
    ``detail`` what (the thing to cancel, the number to call); ``flag`` what the
    agent must know (a data-erasure request is a legal obligation).
    """

    kind: str
    text: str
    start: int
    end: int
    rule: str
    when: str = ""
    detail: str = ""
    flag: str = ""
    where: str = "text"  # "subject": offsets index the subject line


@dataclass(frozen=True)
class HistoryItem:
    """One earlier message of the same customer, as detection needs it."""

    received_at: datetime
    complaint: bool
    archetypes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Context:
    """What detection may know beyond the text: who wrote and their history."""

    sender_address: str = ""
    history: tuple[HistoryItem, ...] = ()
    now: datetime | None = None
    subject: str = ""  # read as one more line of the message, before the text


@dataclass(frozen=True)
class Detection:
    score: float
    level: str
    complaint: bool
    archetypes: tuple[ArchetypeHit, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    facts: Facts = field(default_factory=Facts)
    rules_version: str = ""
    topic: str = ""
    asks: tuple[Ask, ...] = ()

    @property
    def ask_kinds(self) -> tuple[str, ...]:
        """The kinds asked for, each once, in text order."""
        return tuple(dict.fromkeys(a.kind for a in self.asks))

    @property
    def threats(self) -> tuple[Evidence, ...]:
        return tuple(e for e in self.evidence if e.kind == "threat")

    @property
    def angry(self) -> bool:
        """Any anger at all: annoyed, angry or furious."""
        return self.level != "calm"

    @property
    def archetype_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.archetypes)

    def to_dict(self) -> dict[str, Any]:
        """``dataclasses.asdict`` of the detection, with ``angry`` and ``threats``; written out by
        hand because asdict's generic walk was a noticeable part of a poll's CPU per message
        (tests/test_detect.py checks the two agree)."""
        f = self.facts
        return {
            "score": self.score,
            "level": self.level,
            "complaint": self.complaint,
            "archetypes": tuple({"name": a.name, "rule": a.rule} for a in self.archetypes),
            "evidence": tuple(_evidence_dict(e) for e in self.evidence),
            "facts": {"orders": f.orders, "amounts": f.amounts, "dates": f.dates, "products": f.products,
                      "problem": f.problem, "invoices": f.invoices, "deadline": f.deadline},
            "rules_version": self.rules_version,
            "topic": self.topic,
            "asks": tuple({"kind": a.kind, "text": a.text, "start": a.start, "end": a.end, "rule": a.rule,
                           "when": a.when, "detail": a.detail, "flag": a.flag, "where": a.where}
                          for a in self.asks),
            "angry": self.angry,
            "threats": [_evidence_dict(e) for e in self.threats],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Detection:
        """The inverse of ``to_dict`` (as stored): unknown keys are ignored, missing ones default."""

        def known(kind: type, row: dict[str, Any]) -> dict[str, Any]:
            fields = kind.__dataclass_fields__  # type: ignore[attr-defined]
            return {k: tuple(v) if isinstance(v, list) else v for k, v in row.items() if k in fields}

        return cls(
            score=float(data.get("score", 0.0)),
            level=data.get("level", "calm"),
            complaint=bool(data.get("complaint")),
            archetypes=tuple(ArchetypeHit(a["name"], a.get("rule", "")) for a in data.get("archetypes", [])
                             if isinstance(a, dict)),
            evidence=tuple(Evidence(**known(Evidence, e)) for e in data.get("evidence", [])),
            facts=Facts(**known(Facts, data.get("facts") or {})),
            rules_version=data.get("rules_version") or "",
            topic=data.get("topic") or "",
            asks=tuple(Ask(**known(Ask, a)) for a in data.get("asks", [])),
        )
