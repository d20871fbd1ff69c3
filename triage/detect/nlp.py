"""The spaCy side of detection: one blank English pipeline and its matchers, built from rules.

This is the only module that imports spaCy, and only inside ``build`` (the cron
idle poll must not pay for importing it). ``build`` compiles

* one ``PhraseMatcher(attr="LOWER")`` for every phrase list (anger, complaint,
  archetype signals, modifiers, topics),
* one ``Matcher`` for every token pattern,
* an ``entity_ruler`` pipe that labels product names ``PRODUCT`` (id = canonical name),

each with ``validate=True``. A blank pipeline has no POS, TAG, LEMMA, MORPH or
DEP, and spaCy only notices at match time, so every token pattern is first
compiled alone and run on a probe text: whatever fails becomes a ``Problem``
naming its file, key and line, and the pattern is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triage.detect.rulefiles import FactRules, Modifier, PatternRule, PhraseRule, Signals
from triage.errors import Problem

PROBE_TEXT = "Probe: I am NOT happy!!! Order #123 was late, still not fixed. Is it?"


# Words so frequent that a pattern anchored on them would gain little (see _anchor).
_COMMON = frozenset(
    "the a an i you my our your it is to and of in that this for on with be was are not n't "
    "have has do does did me we or so no just what how why been am 's 'm".split()
)
MAX_REPEAT = 8  # "*" and "+" reach at most this many tokens in an anchored pattern


@dataclass(frozen=True, eq=False)
class Anchored:
    """A token pattern run only around a word it must contain (found by the PhraseMatcher)."""

    key: int  # match id reported for the pattern
    matcher: Any  # a Matcher holding just this pattern
    before: int  # tokens the pattern can reach before the anchor
    after: int  # ... and after it


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
        seen: set[tuple[int, int, int]] = set()
        for anchored, spans in windows.items():
            for lo, hi in _merge(spans):
                for _, s, e in anchored.matcher(doc[lo:hi]):
                    hit = (anchored.key, lo + s, lo + e)
                    if hit not in seen:
                        seen.add(hit)
                        found.append(hit)
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
            message = _check_pattern(nlp, Matcher, probe, pattern_rule)
            where = pattern_rule.where
            if message:
                problems.append(
                    Problem(
                        where.file if where else "",
                        where.key if where else pattern_rule.rule,
                        message,
                        where.line if where else None,
                    )
                )
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
            anchored = Anchored(key_id, single, sum(reach[:index]), sum(reach[index + 1 :]))
            add_phrases(f"anchor:{key}", words, Entry("anchor", pattern_rule, anchored=anchored))
    for modifier in modifiers:
        add_phrases(f"modifier:{modifier.name}", modifier.terms, Entry("modifier", modifier=modifier))
    for topic, terms in facts.topics.items():
        add_phrases(f"topic:{topic}", terms, Entry("topic", topic=topic))

    if facts.products:
        ruler: Any = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER", "validate": True})
        ruler.add_patterns(
            [
                {"label": "PRODUCT", "pattern": alias, "id": name}
                for name, aliases in facts.products.items()
                for alias in aliases
            ]
        )
    try:  # the whole pipeline once, as it will run: anything left over is a bug, not an owner's typo
        compiled.match(nlp(PROBE_TEXT))
    except ValueError as exc:
        problems.append(Problem("rules", "", f"probe match failed: {_spacy_error(exc)}"))
    return compiled, problems


def _check_pattern(nlp: Any, matcher_cls: Any, probe: Any, rule: PatternRule) -> str:
    """ "" when the pattern compiles and runs on a blank pipeline, else what is wrong."""
    single = matcher_cls(nlp.vocab, validate=True)
    try:
        single.add("probe", [list(rule.pattern)])
    except ValueError as exc:  # MatchPatternError is a ValueError
        return f"invalid token pattern: {_spacy_error(exc)}"
    try:
        single(probe)
    except ValueError as exc:
        return (
            "token pattern cannot run on triage's blank spaCy pipeline (no tagger, lemmatizer or "
            f"parser): {_spacy_error(exc)} Use LOWER, TEXT, SHAPE, IS_* or LENGTH, "
            'e.g. {LOWER = {IN = ["wait", "waited", "waiting"]}}'
        )
    return ""
