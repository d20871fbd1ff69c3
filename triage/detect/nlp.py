"""The spaCy side of detection: one blank English pipeline and its matchers, built from rules.

This is the only module that imports spaCy, and only inside ``build`` (the cron
idle poll must not pay for importing it). ``build`` compiles

* one ``PhraseMatcher(attr="LOWER")`` for every phrase list (anger, complaint,
  archetype signals, modifiers, topics),
* one ``Matcher`` for every token pattern,
* an ``EntityRuler`` (``phrase_matcher_attr="LOWER"``, ``overwrite_ents``; see ruler.py) for the
  entities facts.py reads from ``doc.ents``: product names and token patterns
  (label PRODUCT, the canonical name as the entity id), ``[products] exclude``
  (NOT_PRODUCT: "Kettle & Crumb" is longer than "kettle", so it wins), and the
  ``[[invoices]]`` / ``[[orders]]`` entries written as token patterns (INVOICE,
  ORDER, the rule id as the entity id); it runs inside ``nlp.pipe``,

each with ``validate=True``. A blank pipeline has no POS, TAG, LEMMA, MORPH or
DEP, and spaCy only notices at match time, so every token pattern is first
compiled alone and run on a probe text: whatever fails becomes a ``Problem``
naming its file, key and line, and the pattern is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from triage.detect.rulefiles import FactRules, Modifier, PatternRule, PhraseRule, Signals
from triage.errors import Problem

PROBE_TEXT = "Probe: I am NOT happy!!! Order #123 was late, still not fixed. Is it?"
ENT_ID_SEP = "||"  # the EntityRuler's separator of label and entity id (must not be in a product name)


# Words so frequent that a pattern anchored on them would gain little (see _anchor).
_COMMON = frozenset(
    ["the", "a", "an", "i", "you", "my", "our", "your", "it", "is", "to", "and", "of", "in", "that", "this", "for", "on", "with", "be", "was", "are", "not", "n't", "have", "has", "do", "does", "did", "me", "we", "or", "so", "no", "just", "what", "how", "why", "been", "am", "'s", "'m"]
)
MAX_REPEAT = 8  # "*" and "+" reach at most this many tokens in an anchored pattern


# Token attributes the in-house matcher reads, in the column order of ``Doc.to_array``.
_COLUMNS = ("ORTH", "LOWER", "IS_ALPHA", "IS_PUNCT", "IS_SPACE", "LIKE_NUM")
_TEXT_KEYS = {"ORTH": 0, "TEXT": 0, "LOWER": 1}
_FLAG_KEYS = {"IS_ALPHA": 2, "IS_PUNCT": 3, "IS_SPACE": 4, "LIKE_NUM": 5}
# one pattern token: (checks, min, max); a check is (column, set of values, wanted membership)
Step = tuple[tuple[tuple[int, frozenset[int], bool], ...], int, int]


@dataclass(frozen=True, eq=False)
class Anchored:
    """A token pattern run only around a word it must contain (found by the PhraseMatcher)."""

    key: int  # match id reported for the pattern
    matcher: Any  # a Matcher holding just this pattern
    before: int  # tokens the pattern can reach before the anchor
    after: int  # ... and after it
    steps: tuple[Step, ...] | None = None  # the pattern for the in-house matcher, when it can run it


def _steps(pattern: tuple[dict[str, Any], ...], string_id: Any) -> tuple[Step, ...] | None:
    """The pattern as steps for ``_match_steps``; None when it uses anything beyond
    ORTH/TEXT/LOWER (a string, IN or NOT_IN), IS_ALPHA/IS_PUNCT/IS_SPACE/LIKE_NUM and
    the ``?``, ``*``, ``+``, ``{n}``, ``{n,m}`` operators (spaCy's Matcher runs it then)."""
    steps: list[Step] = []
    for token in pattern:
        checks: list[tuple[int, frozenset[int], bool]] = []
        op = "1"
        for key, value in token.items():
            name = key.upper()
            if name == "OP":
                op = str(value)
            elif name in _TEXT_KEYS and isinstance(value, str):
                checks.append((_TEXT_KEYS[name], frozenset([string_id(value)]), True))
            elif name in _TEXT_KEYS and isinstance(value, dict) and len(value) == 1:
                (how, words), = value.items()
                if how not in ("IN", "NOT_IN") or not isinstance(words, list):
                    return None
                if not all(isinstance(w, str) for w in words):
                    return None
                checks.append((_TEXT_KEYS[name], frozenset(string_id(w) for w in words), how == "IN"))
            elif name in _FLAG_KEYS and isinstance(value, bool):
                checks.append((_FLAG_KEYS[name], frozenset([int(value)]), True))
            else:
                return None
        bounds = {"1": (1, 1), "?": (0, 1), "*": (0, MAX_REPEAT * 100), "+": (1, MAX_REPEAT * 100)}.get(op)
        if bounds is None:
            if not (op.startswith("{") and op.endswith("}")):
                return None
            parts = op[1:-1].split(",")
            try:
                lo = int(parts[0]) if parts[0].strip() else 0
                hi = int(parts[-1]) if parts[-1].strip() else MAX_REPEAT * 100
            except ValueError:
                return None
            if len(parts) > 2 or lo > hi:
                return None
            bounds = (lo, hi)
        steps.append((tuple(checks), *bounds))
    return tuple(steps)


def _ok(checks: tuple[tuple[int, frozenset[int], bool], ...], row: list[int]) -> bool:
    for column, values, wanted in checks:
        if (row[column] in values) is not wanted:
            return False
    return True


def _ends(steps: tuple[Step, ...], k: int, pos: int, hi: int, rows: list[list[int]], out: set[int]) -> None:
    """Every end position of a match of ``steps[k:]`` starting at token ``pos`` (before ``hi``)."""
    if k == len(steps):
        out.add(pos)
        return
    checks, least, most = steps[k]
    count = 0
    while count < least:
        if pos >= hi or not _ok(checks, rows[pos]):
            return
        pos += 1
        count += 1
    _ends(steps, k + 1, pos, hi, rows, out)
    while count < most and pos < hi and _ok(checks, rows[pos]):
        pos += 1
        count += 1
        _ends(steps, k + 1, pos, hi, rows, out)


def _match_steps(steps: tuple[Step, ...], rows: list[list[int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """All (start, end) token spans in [lo, hi) that match, as spaCy's Matcher reports them."""
    found: list[tuple[int, int]] = []
    first, least, _ = steps[0]
    for start in range(lo, hi):
        if least and not _ok(first, rows[start]):
            continue  # the common case, checked without a call
        ends: set[int] = set()
        _ends(steps, 0, start, hi, rows, ends)
        found.extend((start, end) for end in sorted(ends) if end > start)
    return found


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

    def match(self, doc: Any) -> list[tuple[int, int, int]]:
        """All phrase and pattern matches of ``doc``; anchor hits replaced by their pattern's matches."""
        matches = self.phrases(doc)
        if self.has_patterns:
            matches += self.matcher(doc)
        found: list[tuple[int, int, int]] = []
        windows: dict[Anchored, list[tuple[int, int]]] = {}
        for match_id, start, end in matches:
            entry = self.entries[match_id]
            if entry.anchored is None:
                found.append((match_id, start, end))
            else:
                anchored = entry.anchored
                windows.setdefault(anchored, []).append(
                    (max(0, start - anchored.before), min(len(doc), end + anchored.after))
                )
        if not windows:
            return found
        rows: list[list[int]] | None = None
        for anchored, spans in windows.items():
            for lo, hi in _merge(spans):
                if anchored.steps is not None:
                    if rows is None:  # one C call for the token attributes, only when needed
                        rows = doc.to_array(list(_COLUMNS)).tolist()
                    for s, e in _match_steps(anchored.steps, rows, lo, hi):
                        found.append((anchored.key, s, e))
                else:
                    for _, s, e in anchored.matcher(doc[lo:hi]):
                        found.append((anchored.key, lo + s, lo + e))
        return found


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching token windows joined, so each stretch is matched once."""
    spans.sort()
    merged = [spans[0]]
    for lo, hi in spans[1:]:
        if lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _reach(token: dict[str, Any]) -> int:
    op = str(token.get("OP", token.get("op", "")))
    if op in ("", "!", "?", "1"):
        return 0 if op == "!" else 1
    if op in ("*", "+"):
        return MAX_REPEAT
    if op.startswith("{") and op.endswith("}"):
        parts = op[1:-1].split(",")
        top = parts[-1].strip()
        return int(top) if top else MAX_REPEAT
    return MAX_REPEAT


def _anchor(pattern: tuple[dict[str, Any], ...]) -> tuple[int, tuple[str, ...]] | None:
    """The index and words of the most selective token every match must contain, or None."""
    best: tuple[int, int, tuple[str, ...]] | None = None
    for index, token in enumerate(pattern):
        op = str(token.get("OP", token.get("op", "")))
        if op not in ("", "+", "1"):
            continue
        for key, value in token.items():
            if key.upper() not in ("LOWER", "ORTH", "TEXT"):
                continue
            if isinstance(value, str):
                words: tuple[str, ...] = (value,)
            elif isinstance(value, dict) and set(value) == {"IN"} and isinstance(value["IN"], list):
                words = tuple(str(v) for v in value["IN"])
            else:
                continue
            if not words or any(not w.strip() for w in words):
                continue
            cost = len(words) + 100 * sum(w.lower() in _COMMON for w in words)
            if best is None or cost < best[0]:
                best = (cost, index, words)
    return (best[1], best[2]) if best else None


def _spacy_error(exc: Exception) -> str:
    """spaCy's validation message, shortened to the useful lines."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    detail = [ln for ln in lines if ln.startswith("- [")]
    return "; ".join(detail) if detail else (lines[0] if lines else type(exc).__name__)


def build(
    channels: dict[str, Signals], modifiers: tuple[Modifier, ...], facts: FactRules, batch_size: int = 64
) -> tuple[Compiled, list[Problem]]:
    """Compile the pipeline; returns it with the problems found in token patterns."""
    import spacy
    from spacy.matcher import Matcher, PhraseMatcher

    nlp = spacy.blank("en")
    problems: list[Problem] = []
    phrases = PhraseMatcher(nlp.vocab, attr="LOWER", validate=True)
    matcher = Matcher(nlp.vocab, validate=True)
    compiled = Compiled(nlp, phrases, matcher)
    probe = nlp.make_doc(PROBE_TEXT)

    def add_phrases(key: str, terms: tuple[str, ...], entry: Entry) -> None:
        compiled.entries[nlp.vocab.strings.add(key)] = entry
        tokenizer: Any = nlp.tokenizer
        phrases.add(key, list(tokenizer.pipe(terms, batch_size=batch_size)))

    for channel, signals in channels.items():
        for rule in signals.phrases:
            add_phrases(f"{channel}:{rule.rule}", rule.terms, Entry(channel, rule))
        for pattern_rule in signals.patterns:
            message = _check_pattern(nlp, Matcher, probe, pattern_rule.pattern)
            if message:
                problems.append(_problem(pattern_rule.where, pattern_rule.rule, message))
                continue
            key = f"{channel}:{pattern_rule.rule}"
            key_id = nlp.vocab.strings.add(key)
            compiled.entries[key_id] = Entry(channel, pattern_rule)
            anchor = _anchor(pattern_rule.pattern)
            if anchor is None:
                matcher.add(key, [list(pattern_rule.pattern)])
                compiled.has_patterns = True
                continue
            # speed: a Matcher tries every pattern at every token, in Python for IN sets;
            # run this one only around the words it cannot match without
            index, words = anchor
            single = Matcher(nlp.vocab, validate=True)
            single.add(key, [list(pattern_rule.pattern)])
            reach = [_reach(t) for t in pattern_rule.pattern]
            steps = _steps(pattern_rule.pattern, nlp.vocab.strings.add)
            anchored = Anchored(key_id, single, sum(reach[:index]), sum(reach[index + 1 :]), steps)
            add_phrases(f"anchor:{key}", words, Entry("anchor", pattern_rule, anchored=anchored))
    for modifier in modifiers:
        add_phrases(f"modifier:{modifier.name}", modifier.terms, Entry("modifier", modifier=modifier))
    for topic, terms in facts.topics.items():
        add_phrases(f"topic:{topic}", terms, Entry("topic", topic=topic))

    entity_patterns: list[dict[str, Any]] = []
    for entity in facts.entities:
        if not isinstance(entity.pattern, str):
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
            f"parser): {_spacy_error(exc)} Use LOWER, TEXT, SHAPE, IS_* or LENGTH, "
            'e.g. {LOWER = {IN = ["wait", "waited", "waiting"]}}'
        )
    return ""
