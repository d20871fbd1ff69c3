"""The detector: rule files in, one Detection per text out.

``Detector.load(rules_dir)`` reads and validates every detection rule file
(anger.toml, complaint.toml, archetypes.toml + its customers file, facts.toml),
compiles one spaCy pipeline (see ``nlp.py``) and raises ``RulesError`` with
every problem found. ``Detector.detect(texts, contexts)`` runs the pipeline
with ``nlp.pipe`` in batches and explains each decision with Evidence.
spaCy is imported lazily, inside ``load``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from triage.detect import Context, Detection, Evidence
from triage.detect.anger import SCORED_KINDS, find_modifier, phrase_evidence, regex_evidence, score_of
from triage.detect.archetype import ArchetypeRules, decide, load_archetypes
from triage.detect.asks import AskRules, compile_asks, find_asks, load_asks
from triage.detect.facts import choose_topic, extract
from triage.detect.fastregex import lowered
from triage.detect.judged import (
    ASKS_COLUMNS,
    sarcastic_praise,
    sarcastic_thanks,
    shouting,
    strongest_stretch,
    token_array,
    token_spans,
    valence,
    valence_keys,
)
from triage.detect.lexicon import read_valence
from triage.detect.nlp import Compiled, build
from triage.detect.rulefiles import (
    COMPLAINT_NEGATION,
    AngerRules,
    ComplaintRules,
    FactRules,
    Modifier,
    PatternRule,
    PhraseRule,
    load_anger,
    load_complaint,
    load_facts,
)
from triage.errors import Problem, RulesError
from triage.rulefile import TomlFile, is_file, listing, read_bytes, read_text

_COMPLAINT_KINDS = frozenset({"complaint", "not_complaint"})
RULE_FILES = ("anger.toml", "complaint.toml", "archetypes.toml", "facts.toml")
ASKS_FILE = "asks.toml"  # optional: a rules folder without one reads the shipped file
MAX_CHARS = 100_000  # longer texts are cut: detection reads the start of a message
# A single line break inside a paragraph (hard-wrapped mail) becomes a space of the
# same length, so phrases match across it and char offsets stay the same; a blank
# line still separates phrases.
_WRAP = re.compile(r"(?<=\S)\n(?=[ \t]*\S)")
# "Re: Fwd: AW: broken kettle" -> "broken kettle": reply and forward prefixes of many clients
_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|tr|rv|rif|sv|vs|antw|odp|r)\s*(?:\[\d+\])?\s*[:：]\s*)+", re.I)


def subject_line(subject: str) -> str:
    """The subject as detection reads it, on one line; "" for a reply or a forward.

    A reply's subject ("Re: Order #123 arrived broken") repeats the thread's first
    message, and a forward's names someone else's: neither is new words, and
    reading them again would make "Thanks, all sorted now!" a complaint.
    """
    line = " ".join((subject or "").split())
    return "" if _SUBJECT_PREFIX.match(line) else line[:500]


@dataclass(frozen=True)
class Rules:
    anger: AngerRules
    complaint: ComplaintRules
    archetypes: ArchetypeRules
    facts: FactRules
    asks: AskRules = AskRules()


def rules_version(blobs: list[tuple[str, bytes]]) -> str:
    """Short hash of the rule files' names and bytes: changes whenever a rule file does."""
    digest = hashlib.sha256()
    for name, data in sorted(blobs):
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()[:12]


class Detector:
    """Compiled detection rules; build once per run with ``load``, then call ``detect``."""

    def __init__(self, rules: Rules, compiled: Compiled, version: str, batch_size: int = 64,
                 lexicon: dict[str, float] | None = None):
        self.lexicon = lexicon or {}
        self._valence, self._modifiers = valence_keys(self.lexicon, compiled.nlp.vocab.strings.add)
        self.rules = rules
        self.compiled = compiled
        self.rules_version = version
        self.batch_size = batch_size
        self.asks = compile_asks(rules.asks, compiled.nlp)
        # texts read lately -> what reading them found; only the archetypes depend on the context
        self._read: dict[tuple[str, str], _Reading] = {}

    @classmethod
    def load(cls, rules_dir: Path, checked: bool = False) -> Detector:
        """Compile every detection rule file under rules_dir; RulesError lists all problems.

        ``checked``: these files passed every check before (``triage.rulecache``): the token
        patterns' probes are skipped (the files are still read and validated).
        """
        rules_dir = Path(rules_dir)
        problems: list[Problem] = []
        files: dict[str, TomlFile] = {}
        blobs: list[tuple[str, bytes]] = []
        for name in RULE_FILES:
            path = rules_dir / name
            if not is_file(path):
                problems.append(Problem(str(path), "", "missing detection rule file"))
            tf = TomlFile(path)
            files[name] = tf
            blobs.append((name, tf.text.encode("utf-8")))
        customer_files: dict[str, tuple[str, str]] = {}
        for path in listing(rules_dir, ".csv"):
            try:
                text = read_text(path)
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(Problem(str(path), "", f"cannot read: {exc}"))
                continue
            customer_files[path.name] = (str(path), text)
            blobs.append((path.name, text.encode("utf-8")))
        asks_path = rules_dir / ASKS_FILE
        if not is_file(asks_path):  # a folder written by an older `triage init`: the shipped asks
            from triage.config import shipped_dir

            asks_path = shipped_dir("rules") / ASKS_FILE
        files[ASKS_FILE] = TomlFile(asks_path)
        blobs.append((ASKS_FILE, files[ASKS_FILE].text.encode("utf-8")))
        unreadable = {name: len(tf.problems) for name, tf in files.items() if tf.problems}
        complaint_rules = load_complaint(files["complaint.toml"])
        lexicon: dict[str, float] = {}
        if complaint_rules.valence_file:
            path = rules_dir / complaint_rules.valence_file
            lexicon, bad = read_valence(path)
            problems.extend(Problem(str(path), "", message, line or None) for line, message in bad)
            if is_file(path):
                blobs.append((path.name, read_bytes(path)))
        rules = Rules(
            anger=load_anger(files["anger.toml"]),
            complaint=complaint_rules,
            archetypes=load_archetypes(files["archetypes.toml"], customer_files),
            facts=load_facts(files["facts.toml"]),
            asks=load_asks(files[ASKS_FILE]),
        )
        for name, tf in files.items():
            # a file that did not parse only reports that: its "missing key" problems are noise
            own = tf.problems[: unreadable[name]] if name in unreadable else tf.problems
            problems.extend(p for p in own if p not in problems)
        channels = {
            "anger": rules.anger.signals,
            "complaint": rules.complaint.signals,
            "archetype": rules.archetypes.signals,
        }
        modifiers = rules.anger.modifiers + ((rules.complaint.negation,) if rules.complaint.negation else ())
        compiled, pattern_problems = build(channels, modifiers, rules.facts, checked=checked)
        problems.extend(pattern_problems)
        if problems:
            raise RulesError(problems)
        return cls(rules, compiled, rules_version(blobs), lexicon=lexicon)

    def detect(self, texts: list[str], contexts: list[Context]) -> list[Detection]:
        """One Detection per text. ``contexts`` pairs up with ``texts`` (empty list: no context)."""
        if contexts and len(contexts) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(contexts)} contexts")
        ctxs = contexts or [Context()] * len(texts)
        # the subject is read as the first line of the message (a blank line apart)
        heads = [subject_line(c.subject) for c in ctxs]
        cut = [f"{h}\n\n{(t or '')[:MAX_CHARS]}" if h else (t or "")[:MAX_CHARS] for h, t in zip(heads, texts, strict=True)]
        unwrapped = [_WRAP.sub(" ", t) if "\n" in t else t for t in cut]
        keys = list(zip(cut, heads, strict=True))
        readings: list[_Reading | None] = [self._read.get(key) for key in keys]
        todo = [k for k, r in enumerate(readings) if r is None]
        docs = self.compiled.nlp.pipe([unwrapped[k] for k in todo], batch_size=self.batch_size)
        for k, doc in zip(todo, docs, strict=True):
            readings[k] = self._reading(doc, cut[k], len(heads[k]) + 2 if heads[k] else 0)
        for key, reading in zip(keys, readings, strict=True):
            self._remember(key, reading)  # type: ignore[arg-type]
        return [self._judge(r, ctx) for r, ctx in zip(readings, ctxs, strict=True)]  # type: ignore[arg-type]

    def forget(self) -> None:
        """Drop the readings kept (benchmarks: each run reads every text)."""
        self._read.clear()

    def _remember(self, key: tuple[str, str], reading: _Reading) -> None:
        """Keep the last READINGS_KEPT texts' readings: a batch's messages are often detected
        again at once with more history (pipeline), and that needs only the archetypes again."""
        read = self._read
        read.pop(key, None)
        read[key] = reading
        while len(read) > READINGS_KEPT:
            del read[next(iter(read))]

    def _judge(self, reading: _Reading, context: Context) -> Detection:
        archetypes = decide(self.rules.archetypes, reading.evidence, reading.detection.level,
                            reading.detection.complaint, context)
        return replace(reading.detection, archetypes=archetypes) if archetypes else reading.detection

    def _reading(self, doc: Any, text: str, body_at: int = 0) -> _Reading:
        """Everything one text says, whoever sent it: all but the archetypes."""
        compiled, rules = self.compiled, self.rules
        entries = compiled.entries
        rows = token_array(doc)  # the token attributes every part below reads, in one array
        starts, ends = token_spans(rows)  # (a Token made by doc[i] costs more than the whole list)
        matches = compiled.match(doc, rows)
        groups: dict[str, list[tuple[int, int, PhraseRule | PatternRule]]] = {}
        mods: dict[int, list[Modifier]] = {}
        topics: Counter[str] = Counter()
        for match_id, start, end in matches:
            entry = entries[match_id]
            if entry.channel == "modifier" and entry.modifier is not None:
                mods.setdefault(end, []).append(entry.modifier)
            elif entry.channel == "topic":
                topics[entry.topic] += 1
            elif entry.rule is not None:
                group = entry.channel
                if group == "archetype":
                    group = entry.rule.rule.partition(".")[0]
                groups.setdefault(group, []).append((start, end, entry.rule))

        anger_hits = [h for h in _longest(groups.pop("anger", [])) if not _name_not_profanity(doc, h)]
        # a weight-0 archetype pattern ("cancel the previous reservation" is one order, not
        # leaving) settles only the archetype: the words it spans still count as valence
        scored = [[h for h in hits if g == "complaint" or h[2].weight] for g, hits in groups.items()]
        covered = {t for hits in (anger_hits, *scored) for s, e, _ in hits for t in range(s, e)}
        covered_complaint = {t for hits in scored for s, e, _ in hits for t in range(s, e)}
        evidence = phrase_evidence(doc, text, anger_hits, mods)
        lowered_or_none = lowered(text)  # the regexes' fast path reads it, when it can stand for text
        evidence += regex_evidence(text, lowered_or_none, rules.anger.signals.regexes)
        ents = doc.ents  # spaCy makes its Spans again on every read
        if rules.anger.shouting is not None:
            entity_tokens = {t for ent in ents for t in range(ent.start, ent.end)}
            evidence += shouting(doc, text, rules.anger.shouting, entity_tokens, rows)
        anger_valence, complaint_valence = valence(
            doc, text, self._valence, covered, rules.anger.valence, rules.complaint.valence, self._modifiers, rows,
            covered_complaint,
        )
        other: list[Evidence] = []
        for group, hits in groups.items():
            for s, e, r in _longest(hits, zero_holds_only_its_own=group != "complaint"):
                weight, kind = r.weight, r.kind
                # negated problem words ("nothing wrong", "no problem with") and negatable
                # archetype patterns ("I don't want to cancel my subscription") count 0
                negator = COMPLAINT_NEGATION if group == "complaint" else "negation"
                negatable = r.negatable and (group == "complaint" or isinstance(r, PatternRule))
                if negatable and mods and find_modifier(doc, mods, s, negator) is not None:
                    weight, kind = 0.0, "negation"
                a, b = starts[s], ends[e - 1]
                other.append(Evidence(a, b, text[a:b], r.rule, weight, kind))
        other += regex_evidence(
            text, lowered_or_none, rules.complaint.signals.regexes + rules.archetypes.signals.regexes
        )
        other = sarcastic_praise(text, other + complaint_valence)
        other = sarcastic_thanks(text, other, rules.complaint.threshold, body_at)
        # swearing is how loud, not what went wrong: "holy shit, this is amazing" reports no problem
        swearing = {(e.start, e.end) for e in evidence if e.kind == "profanity"}
        calming = sarcastic_praise(
            text, anger_valence, [e for e in other if e.rule != "complaint.valence" or (e.start, e.end) not in swearing]
        )
        damp = _damping(len(text), rules.anger.long_text)
        # the complaint weighs praise itself (kind not_complaint): its anger part is the anger before praise calms it
        uncalmed = _emphasised(evidence + [e for e in calming if e.kind != "calm"], rules.anger) * damp
        evidence += calming
        raw = _emphasised(evidence, rules.anger) * damp
        score = score_of(raw, rules.anger)
        level = rules.anger.level_of(score)
        complaint_raw = strongest_stretch(other, _COMPLAINT_KINDS, rules.anger.window) * damp
        complaint = complaint_raw + rules.complaint.anger_factor * uncalmed >= rules.complaint.threshold
        evidence += other
        evidence.sort(key=lambda e: (e.start, e.end))

        judged = evidence  # (never changed after this) what the archetypes are decided on, with the context
        # products (and orders/invoices written as token patterns) come from the EntityRuler's doc.ents;
        # the problem sentence a draft restates is one of the customer's sentences, never the subject
        # and one a rule matched, when there is one: a graded word alone is weaker evidence of the problem
        said = [e for e in evidence if e.start >= body_at]
        facts = extract(rules.facts, text, lowered_or_none, ents, [e for e in said if "valence" not in e.rule] or said)
        asks, deadline = find_asks(self.asks, doc, text, evidence, rows[:, ASKS_COLUMNS], body_at)
        if deadline:
            facts = replace(facts, deadline=deadline)
        evidence = [e for e in evidence if e.weight]  # negated and zero-weight matches explain nothing
        if body_at:
            evidence = [_shifted(e, body_at) for e in evidence]
        return _Reading(Detection(
            score=score,
            level=level,
            complaint=complaint,
            evidence=tuple(evidence),
            facts=facts,
            rules_version=self.rules_version,
            topic=choose_topic(rules.facts, topics, facts.products),
            asks=asks,
        ), judged)


READINGS_KEPT = 1024


@dataclass(frozen=True)
class _Reading:
    """One text read: its Detection without archetypes, and the evidence they are decided on."""

    detection: Detection
    evidence: list[Evidence]


_EMPHASIS = frozenset({"shout"})
_CONTENT = SCORED_KINDS - _EMPHASIS


def _emphasised(evidence: list[Evidence], anger: AngerRules) -> float:
    """The raw anger sum: what was said, made louder by how it was said.

    ``content`` is the strongest stretch of the anger evidence that is not emphasis,
    ``emphasis`` that of capitals and "!!"/"?!" (kind ``shout``); the sum is
    content + alone x emphasis + amplifies x content x min(emphasis, cap), so the same
    words shouted score higher on a continuous scale, and shouting with nothing
    angry in it scores less than angry words do.
    """
    if anger.emphasis_amplifies == 0.0 and anger.emphasis_alone == 1.0:
        return max(0.0, strongest_stretch(evidence, SCORED_KINDS, anger.window))
    content = strongest_stretch(evidence, _CONTENT, anger.window)
    emphasis = strongest_stretch(evidence, _EMPHASIS, anger.window)
    if not emphasis:
        return max(0.0, content)
    loud = anger.emphasis_amplifies * max(0.0, content) * min(emphasis, anger.emphasis_cap)
    return max(0.0, content + anger.emphasis_alone * emphasis + loud)


def _damping(length: int, long_text: int) -> float:
    """1 up to ``long_text`` characters, then sqrt(long_text / length): a long digest of
    other people's news is not one person's anger, however many sharp words it quotes."""
    if not long_text or length <= long_text:
        return 1.0
    return math.sqrt(long_text / length)


def _name_not_profanity(doc: Any, hit: tuple[int, int, Any]) -> bool:
    """A profanity match on a capitalised word inside a sentence is a name ("Dick", "Hell's Kitchen")."""
    start, _, rule = hit
    if rule.kind != "profanity" or not doc[start].is_title or start == 0:
        return False
    before = doc[start - 1]
    return not (before.is_punct and before.text in (".", "!", "?", ":", '"', "(", "-")) and "\n" not in before.text


def _shifted(ev: Evidence, body_at: int) -> Evidence:
    """Evidence with offsets into the text, or into the subject (``where="subject"``)."""
    if ev.start >= body_at:
        return Evidence(ev.start - body_at, ev.end - body_at, ev.text, ev.rule, ev.weight, ev.kind)
    return Evidence(ev.start, ev.end, ev.text, ev.rule, ev.weight, ev.kind, where="subject")


def _longest(hits: list[tuple[int, int, Any]], zero_holds_only_its_own: bool = False) -> list[tuple[int, int, Any]]:
    """Non-overlapping hits, longer spans first ("sick and tired" beats "tired"), in text order.

    ``zero_holds_only_its_own``: a weight-0 hit (an archetype's "this is not that", such as
    "my order ... cancel it") drops only the hits inside it, not one that runs past it: in
    "the delivery was late, I want to cancel my subscription" the leaving phrase
    "cancel my subscription" reaches beyond "delivery ... cancel" and stands."""
    if len(hits) < 2:
        return hits
    kept: list[tuple[int, int, Any]] = []
    taken: set[int] = set()
    zero: list[tuple[int, int]] = []
    for hit in sorted(hits, key=lambda h: (h[0] - h[1], h[0])):
        tokens = range(hit[0], hit[1])
        if not taken.isdisjoint(tokens) or (zero and any(s <= hit[0] and hit[1] <= e for s, e in zero)):
            continue
        if zero_holds_only_its_own and not hit[2].weight:
            zero.append((hit[0], hit[1]))
        else:
            taken.update(tokens)
        kept.append(hit)
    kept.sort(key=lambda h: h[0])
    return kept


def classify_text(detector: Detector, text: str, sender: str = "", subject: str = "") -> Detection:
    """Detect one text (convenience for ``triage classify``)."""
    return detector.detect([text], [Context(sender_address=sender, subject=subject)])[0]
