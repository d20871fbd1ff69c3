"""The spaCy side of detection: one blank English pipeline and its matchers, built from rules.

spaCy is imported only inside ``build``, through ``spacyload`` (the cron idle poll
must not pay for importing it). ``build`` compiles

* one ``PhraseMatcher(attr="LOWER")`` for every phrase list (anger, complaint,
  archetype signals, modifiers, topics),
* one ``Matcher`` for every token pattern,
* an ``EntityRuler`` (``phrase_matcher_attr="LOWER"``, ``overwrite_ents``; see ruler.py) for the
  entities facts.py reads from ``doc.ents``: product names and token patterns
  (label PRODUCT, the canonical name as the entity id), ``[products] exclude``
  (NOT_PRODUCT: "Kettle & Crumb" is longer than "kettle", so it wins), and the
  ``[[invoices]]`` / ``[[orders]]`` entries written as token patterns (INVOICE,
  ORDER, the rule id as the entity id); it runs inside ``nlp.pipe``,

each with ``validate=True``. A token pattern with a word it must contain runs only
around that word (see matcher.py). A blank pipeline has no POS, TAG, LEMMA, MORPH or
DEP, and spaCy only notices at match time, so every token pattern (its LEMMA tests
written as LOWER tests over the lemma's forms first, see lexicon.py) is first
compiled alone and run on a probe text: whatever fails becomes a ``Problem``
naming its file, key and line, and the pattern is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from triage.detect.lexicon import expand_lemmas, forms_for, lemma_words
from triage.detect.matcher import Anchored, find_anchor, make_anchored, run_anchored
from triage.detect.rulefiles import FactRules, Modifier, PatternRule, PhraseRule, Signals
from triage.detect.spacyload import pipeline
from triage.errors import Problem

PROBE_TEXT = "Probe: I am NOT happy!!! Order #123 was late, still not fixed. Is it?"
ENT_ID_SEP = "||"  # the EntityRuler's separator of label and entity id (must not be in a product name)


@dataclass(frozen=True)
class Entry:
    """What a match id stands for."""

    channel: str  # anger | complaint | archetype | modifier | topic | anchor
    rule: PhraseRule | PatternRule | None = None
    modifier: Modifier | None = None
    topic: str = ""
    anchored: Anchored | None = None


@dataclass
class Compiled:
    nlp: Any  # spacy.Language
    phrases: Any  # spacy.matcher.PhraseMatcher
    matcher: Any  # spacy.matcher.Matcher: token patterns without a usable anchor
    entries: dict[int, Entry] = field(default_factory=dict)
    has_patterns: bool = False
    anchors: dict[int, Anchored] = field(default_factory=dict)  # match id -> its Anchored, for the anchor entries

    def match(self, doc: Any, table: Any = None) -> list[tuple[int, int, int]]:
        """All phrase and pattern matches of ``doc``; anchor hits replaced by their pattern's matches.
        ``table``: the doc's token array for the anchored matcher (see ``run_anchored``), when there is one."""
        matches = self.phrases(doc)
        if self.has_patterns:
            matches += self.matcher(doc)
        found: list[tuple[int, int, int]] = []
        windows: dict[Anchored, list[tuple[int, int]]] = {}
        anchors, n = self.anchors, len(doc)
        for match in matches:
            anchored = anchors.get(match[0])
            if anchored is None:
                found.append(match)
            else:
                _, start, end = match
                windows.setdefault(anchored, []).append((max(0, start - anchored.before), min(n, end + anchored.after)))
        if windows:
            found += run_anchored(doc, windows, table)
        return found


def _spacy_error(exc: Exception) -> str:
    """spaCy's validation message, shortened to the useful lines."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    detail = [ln for ln in lines if ln.startswith("- [")]
    return "; ".join(detail) if detail else (lines[0] if lines else type(exc).__name__)


def build(
    channels: dict[str, Signals], modifiers: tuple[Modifier, ...], facts: FactRules, batch_size: int = 64,
    checked: bool = False,
) -> tuple[Compiled, list[Problem]]:
    """Compile the pipeline; returns it with the problems found in token patterns.

    ``checked``: these rules passed every probe before (``triage.rulecache``), so the probes are skipped.
    """
    nlp = pipeline()  # the process's blank tokenizer and vocabulary, with room for this ruler
    from spacy.matcher import Matcher, PhraseMatcher

    problems: list[Problem] = []
    phrases = PhraseMatcher(nlp.vocab, attr="LOWER", validate=True)
    matcher = Matcher(nlp.vocab, validate=True)
    compiled = Compiled(nlp, phrases, matcher)
    probe = nlp.make_doc(PROBE_TEXT)

    def add_phrases(key: str, terms: tuple[str, ...], entry: Entry) -> None:
        compiled.entries[nlp.vocab.strings.add(key)] = entry
        if entry.anchored is not None:
            compiled.anchors[nlp.vocab.strings.add(key)] = entry.anchored
        tokenizer: Any = nlp.tokenizer
        phrases.add(key, list(tokenizer.pipe(terms, batch_size=batch_size)))

    # every LEMMA's forms in one pass over the lemma table
    forms = forms_for(w for signals in channels.values() for rule in signals.patterns for w in lemma_words(rule.pattern))
    for channel, signals in channels.items():
        for rule in signals.phrases:
            add_phrases(f"{channel}:{rule.rule}", rule.terms, Entry(channel, rule))
        for pattern_rule in signals.patterns:
            # {LEMMA = "cancel"} becomes {LOWER = {IN = [every form of "cancel"]}} (see lexicon.py)
            expanded, message = expand_lemmas(pattern_rule.pattern, forms)
            if message:
                problems.append(_problem(pattern_rule.where, pattern_rule.rule, f"invalid token pattern: {message}"))
                continue
            if expanded is not pattern_rule.pattern:
                pattern_rule = replace(pattern_rule, pattern=expanded)
            message = "" if checked else _check_pattern(nlp, Matcher, probe, pattern_rule.pattern)
            if message:
                problems.append(_problem(pattern_rule.where, pattern_rule.rule, message))
                continue
            key = f"{channel}:{pattern_rule.rule}"
            key_id = nlp.vocab.strings.add(key)
            compiled.entries[key_id] = Entry(channel, pattern_rule)
            anchor = find_anchor(pattern_rule.pattern)
            if anchor is None:
                matcher.add(key, [list(pattern_rule.pattern)])
                compiled.has_patterns = True
                continue
            # speed: a Matcher tries every pattern at every token, in Python for IN sets;
            # run this one only around the words it cannot match without
            index, words = anchor
            single = Matcher(nlp.vocab, validate=True)
            single.add(key, [list(pattern_rule.pattern)])
            anchored = make_anchored(key_id, single, pattern_rule.pattern, index, nlp.vocab.strings.add)
            add_phrases(f"anchor:{key}", words, Entry("anchor", pattern_rule, anchored=anchored))
    for modifier in modifiers:
        add_phrases(f"modifier:{modifier.name}", modifier.terms, Entry("modifier", modifier=modifier))
    for topic, terms in facts.topics.items():
        add_phrases(f"topic:{topic}", terms, Entry("topic", topic=topic))

    entity_patterns: list[dict[str, Any]] = []
    for entity in facts.entities:
        if not isinstance(entity.pattern, str) and not checked:
            message = _check_pattern(nlp, Matcher, probe, entity.pattern)
            if message:
                problems.append(_problem(entity.where, entity.id, message))
                continue
        if ENT_ID_SEP in entity.id:
            problems.append(_problem(entity.where, entity.id, f"a name must not contain {ENT_ID_SEP!r}"))
            continue
        pattern = entity.pattern if isinstance(entity.pattern, str) else list(entity.pattern)
        entity_patterns.append({"label": entity.label, "pattern": pattern, "id": entity.id})
    if entity_patterns:  # an empty ruler warns on every text
        from triage.detect.ruler import FACTORY  # an EntityRuler that makes no Spans beyond doc.ents

        ruler: Any = nlp.add_pipe(
            FACTORY,
            name="entity_ruler",
            config={"phrase_matcher_attr": "LOWER", "validate": True, "ent_id_sep": ENT_ID_SEP},
        )
        try:
            ruler.add_patterns(entity_patterns)
        except ValueError as exc:  # each token pattern passed alone above: not an owner's typo
            problems.append(Problem("rules", "", f"entity ruler: {_spacy_error(exc)}"))
    if checked:
        return compiled, problems
    try:  # the whole pipeline once, as it will run: anything left over is a bug, not an owner's typo
        compiled.match(nlp(PROBE_TEXT))
    except ValueError as exc:
        problems.append(Problem("rules", "", f"probe match failed: {_spacy_error(exc)}"))
    return compiled, problems


def _problem(where: Any, fallback_key: str, message: str) -> Problem:
    return Problem(
        where.file if where else "", where.key if where else fallback_key, message, where.line if where else None
    )


def _check_pattern(nlp: Any, matcher_cls: Any, probe: Any, pattern: tuple[dict[str, Any], ...]) -> str:
    """ "" when the pattern compiles and runs on a blank pipeline, else what is wrong."""
    single = matcher_cls(nlp.vocab, validate=True)
    try:
        single.add("probe", [list(pattern)])
    except ValueError as exc:  # MatchPatternError is a ValueError
        return f"invalid token pattern: {_spacy_error(exc)}"
    except re.error as exc:  # {REGEX = "..."} is compiled when added
        return f"invalid token pattern: not a valid regular expression: {exc}"
    try:
        single(probe)
    except ValueError as exc:
        return (
            "token pattern cannot run on triage's blank spaCy pipeline (no tagger, lemmatizer or "
            f"parser): {_spacy_error(exc)} Use LEMMA, LOWER, TEXT, SHAPE, IS_* or LENGTH, "
            'e.g. {LOWER = {IN = ["wait", "waited", "waiting"]}}'
        )
    return ""
