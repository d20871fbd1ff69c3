"""The tone linter: passive-aggressive, dismissive and stiff phrasings in a draft.

``Linter.load(rules_dir)`` reads ``rules/tone.toml`` (raising ``RulesError``
with every problem) and ``linter.lint(text)`` returns ``Finding`` values with
the character span, the matched text, why it reads badly and what to say
instead. Rules are owner-edited *phrases* in a small, forgiving syntax (see
``triage.drafting.phrases``) plus optional raw regular expressions, so that an
owner can ban "we apologise for any inconvenience" once and catch "We sincerely
apologize for any inconvenience caused" too. The drafter's reply rules and the
policy use the same phrases (``compile_patterns``).

An entry can also carry ``patterns``: spaCy token patterns, matched on the
text tokenized by ``spacy.blank("en")`` with each token's ``LEMMA`` taken from
spaCy's English lookup table (contractions included: "n't" is "not", "'re" is
"be"). They catch a family of phrasings by its structure (who is blamed, what
follows an apology) rather than by listing its wordings. ``{GAP = N}`` is a
shorthand for up to N tokens that do not end a sentence.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.drafting.phrases import Phrase, PhraseError, compile_phrase, spans
from triage.rulefile import TomlFile

TONE_FILE = "tone.toml"
# what a rule file's list of phrases (or raw regular expressions) becomes
Pattern = Phrase | re.Pattern[str]


@dataclass(frozen=True)
class Finding:
    """One flagged span: ``text == source[start:end]``."""

    start: int
    end: int
    text: str
    reason: str
    suggestion: str
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``triage lint``: start, end, text, reason, suggestion."""
        return {"start": self.start, "end": self.end, "text": self.text,
                "reason": self.reason, "suggestion": self.suggestion}


@dataclass(frozen=True)
class ToneRule:
    """One ``[[avoid]]`` entry of tone.toml, compiled."""

    id: str
    patterns: tuple[Pattern, ...]
    exceptions: tuple[Pattern, ...]
    reason: str
    suggestion: str
    line: int | None = None
    token_patterns: tuple[tuple[dict[str, Any], ...], ...] = ()


def compile_patterns(file: TomlFile, key: str, value: Any, *, regex: bool) -> list[Pattern]:
    """Compile a list of phrases (or raw regexes) from a rule file, recording problems."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        file.problem(key, f"expected a list of strings, got {value!r}")
        return []
    out: list[Pattern] = []
    for i, text in enumerate(value):
        try:
            out.append(re.compile(text, re.I) if regex else compile_phrase(text))
        except (re.error, PhraseError) as exc:
            kind = "regular expression" if regex else "phrase"
            file.problem(f"{key}[{i}]", f"invalid {kind} {text!r}: {exc}")
    return out


_RULE_KEYS = {"id", "phrases", "regex", "patterns", "except", "reason", "suggestion"}
_SENTENCE_END = [".", "!", "?", ";", "\n\n"]
_CONTRACTION_LEMMAS = {"n't": "not", "'re": "be", "'m": "be", "'ve": "have", "'ll": "will",
                       "'d": "would", "ca": "can", "wo": "will", "sha": "shall"}


def _expand(token: Any) -> Any:
    """A pattern token with the ``{GAP = N}`` shorthand expanded."""
    if isinstance(token, dict) and set(token) == {"GAP"}:
        n = token["GAP"]
        if not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= 12:
            raise PhraseError(f"GAP must be a whole number from 1 to 12, got {n!r}")
        return {"TEXT": {"NOT_IN": _SENTENCE_END}, "IS_SPACE": False, "OP": f"{{0,{n}}}"}
    if isinstance(token, dict) and "IS_SENT_START" in token:
        # the blank pipeline has no sentence splitter; setting is_sent_start token by
        # token is quadratic, so the linter marks sentence starts in an extension
        token = dict(token)
        token["_"] = {_SENT_START: bool(token.pop("IS_SENT_START"))}
    return token


_SENT_START = "tone_sentence_start"
_QUOTED = re.compile(r'\u201c[^\u201c\u201d]*\u201d|"[^"\n]*"')


def _words(token: dict[str, Any], attr: str) -> frozenset[str] | None:
    """The words a pattern token's ``attr`` must be one of, or None when it does not say."""
    value = token.get(attr)
    if isinstance(value, str):
        return frozenset([value])
    if isinstance(value, dict) and set(value) == {"IN"}:
        return frozenset(value["IN"])
    return None


def _lead(pattern: tuple[dict[str, Any], ...]) -> tuple[tuple[frozenset[str] | None, frozenset[str] | None,
                                                          bool | None], ...]:
    """(lower words, lemma words, sentence start) for each of the tokens a match of ``pattern``
    must begin with, one token each (those before the first with an ``OP``); None: not said."""
    lead = []
    for token in pattern:
        if "OP" in token:
            break
        ext = token.get("_")
        start = ext.get(_SENT_START) if isinstance(ext, dict) else None
        lead.append((_words(token, "LOWER"), _words(token, "LEMMA"),
                     start if isinstance(start, bool) else None))
    return tuple(lead)


def _can_start(lead: tuple[tuple[frozenset[str] | None, frozenset[str] | None, bool | None], ...],
               lowers: list[str], lemmas: list[str], starts: list[bool]) -> bool:
    """Some token begins a run of tokens meeting ``lead`` (see ``_lead``): a match can start there."""
    if not lead:
        return True
    count = len(lowers) - len(lead) + 1
    for i in range(max(count, 0)):
        for k, (lower, lem, start) in enumerate(lead):
            j = i + k
            if (lower is not None and lowers[j] not in lower) or (lem is not None and lemmas[j] not in lem) \
                    or (start is not None and starts[j] != start):
                break
        else:
            return True
    return False


def _needs(pattern: tuple[dict[str, Any], ...]) -> list[tuple[str, frozenset[str]]]:
    """(attribute, words) for each token of ``pattern`` that must match one of the words."""
    needs: list[tuple[str, frozenset[str]]] = []
    for token in pattern:
        if token.get("OP", "+") != "+":
            continue
        for attr in ("LOWER", "LEMMA"):
            value = token.get(attr)
            if isinstance(value, str):
                needs.append((attr, frozenset([value])))
            elif isinstance(value, dict) and set(value) == {"IN"}:
                needs.append((attr, frozenset(value["IN"])))
    return needs


@functools.cache
def _nlp() -> Any:
    from triage.detect.spacyload import blank

    nlp = blank()  # the detector's tokenizer too: one per process
    from spacy.tokens import Token

    if not Token.has_extension(_SENT_START):
        Token.set_extension(_SENT_START, default=False)
    return nlp


@functools.lru_cache(maxsize=1 << 16)  # a draft's words repeat across drafts; the lookup is pure
def _token_lemma(lower: str) -> str:
    from triage.detect.asks import lemma

    lower = lower.replace("\u2019", "'")
    return _CONTRACTION_LEMMAS.get(lower) or lemma(lower)


def compile_token_patterns(file: TomlFile, key: str, value: Any, checked: bool = False,
                           ) -> list[tuple[dict[str, Any], ...]]:
    """Check a list of spaCy token patterns from a rule file, recording problems.

    ``checked``: they passed before (``triage.rulecache``); spaCy's validation is skipped."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(
            isinstance(p, list) and p and all(isinstance(t, dict) for t in p) for p in value):
        file.problem(key, f"expected a list of token patterns (lists of tables), got {value!r}")
        return []
    out: list[tuple[dict[str, Any], ...]] = []
    vocab = None if checked else _nlp().vocab  # spaCy loaded through the detector's loader
    for i, raw in enumerate(value):
        try:
            pattern = tuple(_expand(t) for t in raw)
            if vocab is not None:
                from spacy.matcher import Matcher

                Matcher(vocab, validate=True).add("probe", [list(pattern)])
        except (PhraseError, ValueError, KeyError) as exc:
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
            file.problem(f"{key}[{i}]", f"invalid token pattern: {first}")
            continue
        out.append(pattern)
    return out


class Linter:
    """Compiled tone rules; ``lint`` is pure and safe to call from any stage."""

    def __init__(self, rules: tuple[ToneRule, ...], source: str = ""):
        self.rules = rules
        self.source = source
        # every token pattern with the words it cannot match without (see ``_needs``)
        self._token_patterns = [(n, pattern, _needs(pattern)) for n, rule in enumerate(rules)
                                for pattern in rule.token_patterns]
        # the tokens each must start with, and whether it reads the sentence-start mark
        self._leads = [_lead(pattern) for _, pattern, _ in self._token_patterns]
        self._marks = [any(isinstance(t.get("_"), dict) and _SENT_START in t["_"] for t in pattern)
                       for _, pattern, _ in self._token_patterns]
        self._matchers: dict[frozenset[int], Any] = {}

    def _matcher_for(self, active: frozenset[int]) -> Any:
        """A Matcher holding only the token patterns numbered in ``active`` (cached)."""
        matcher = self._matchers.get(active)
        if matcher is None:
            from spacy.matcher import Matcher

            matcher = Matcher(_nlp().vocab)
            for i in sorted(active):
                n, pattern, _ = self._token_patterns[i]
                matcher.add(str(n), [list(pattern)])
            if len(self._matchers) > 256:
                self._matchers.clear()
            self._matchers[active] = matcher
        return matcher

    def _token_spans(self, text: str) -> Iterator[tuple[ToneRule, int, int]]:
        """(rule, start, end) character spans of the token patterns' matches."""
        if not self._token_patterns:
            return
        doc = _nlp().make_doc(text)
        lowers = [t.lower_ for t in doc]
        lemmas = [_token_lemma(low) for low in lowers]
        # speed: spaCy checks IN sets in Python at every token, so only the patterns whose
        # required words all occur in the text are run (and none: the tokens are not even marked)
        seen = {"LOWER": set(lowers), "LEMMA": set(lemmas)}
        candidates = [i for i, (_, _, needs) in enumerate(self._token_patterns)
                      if all(seen[attr] & words for attr, words in needs)]
        if not candidates:
            return
        # a sentence starts after . ! ? or a line break (the blank pipeline has no parser)
        texts = [t.text for t in doc]
        starts = [not previous or previous in ".!?" or "\n" in previous for previous in ["", *texts[:-1]]]
        # and of those, only the patterns whose first tokens occur in a row somewhere
        active = frozenset(i for i in candidates if _can_start(self._leads[i], lowers, lemmas, starts))
        if not active:
            return
        for token, lem in zip(doc, lemmas, strict=True):
            token.lemma_ = lem
        if any(self._marks[i] for i in active):  # the mark's default is False: set only the starts
            for token, start in zip(doc, starts, strict=True):
                if start:
                    token._.set(_SENT_START, True)
        strings = _nlp().vocab.strings
        for match_id, start, end in self._matcher_for(active)(doc):
            span = doc[start:end]
            yield self.rules[int(strings[match_id])], span.start_char, span.end_char

    @classmethod
    def load(cls, rules_dir: Path, checked: bool = False) -> Linter:
        """Read ``rules_dir/tone.toml``; raise RulesError listing every problem.

        ``checked``: the file passed before (``triage.rulecache``): its token patterns are not
        compiled by spaCy to check them."""
        file = TomlFile(rules_dir / TONE_FILE)
        file.raise_if_problems()
        file.unknown_keys(file.data, {"avoid"}, "")
        entries = file.tables(file.data, "avoid")
        rules: list[ToneRule] = []
        seen: set[str] = set()
        for n, entry in enumerate(entries):
            rid = entry.get("id")
            key = f"avoid[{n}]" if not isinstance(rid, str) else f"avoid.{rid}"
            file.unknown_keys(entry, _RULE_KEYS, key)
            if not isinstance(rid, str) or not rid:
                file.problem(f"avoid[{n}].id", "expected a non-empty string id")
                continue
            if rid in seen:
                file.problem(f"avoid.{rid}", "duplicate id")
            seen.add(rid)
            for field_name in ("reason", "suggestion"):
                file.string(entry, field_name, key, required=True)
            patterns = compile_patterns(file, f"{key}.phrases", entry.get("phrases"), regex=False)
            patterns += compile_patterns(file, f"{key}.regex", entry.get("regex"), regex=True)
            tokens = compile_token_patterns(file, f"{key}.patterns", entry.get("patterns"), checked)
            if not patterns and not tokens and not {"phrases", "regex", "patterns"} & set(entry):
                file.problem(key, "needs 'phrases', 'regex' or 'patterns'")
            exceptions = compile_patterns(file, f"{key}.except", entry.get("except"), regex=False)
            rules.append(ToneRule(rid, tuple(patterns), tuple(exceptions),
                                  str(entry.get("reason", "")), str(entry.get("suggestion", "")),
                                  file.line_of(rid), tuple(tokens)))
        file.raise_if_problems()
        return cls(tuple(rules), str(file.path))

    def lint(self, text: str) -> list[Finding]:
        """Every flagged span in ``text``, in order; overlapping hits are reported once.

        A match is dropped when one of its rule's ``except`` phrases overlaps it.
        Where two matches overlap, the earlier (then the longer) one is kept.
        """
        hits: list[Finding] = []
        lower = text.lower()
        # a few characters lower to two: then the offsets differ and the exact path is used
        lowered = lower if len(lower) == len(text) else None
        for rule in self.rules:
            excepted = [span for x in rule.exceptions for span in spans(x, text, lowered)]
            for pattern in rule.patterns:
                for start, end in spans(pattern, text, lowered):
                    if any(s < end and start < e for s, e in excepted):
                        continue
                    hits.append(Finding(start, end, text[start:end], rule.reason,
                                        rule.suggestion, rule.id))
        # the customer's own words, quoted back, are theirs: the families skip them
        quoted = [m.span() for m in _QUOTED.finditer(text)]
        for rule, start, end in self._token_spans(text):
            excepted = [span for x in rule.exceptions for span in spans(x, text, lowered)]
            if any(s < end and start < e for s, e in excepted):
                continue
            if any(s <= start and end <= e for s, e in quoted):
                continue
            hits.append(Finding(start, end, text[start:end], rule.reason, rule.suggestion, rule.id))
        hits.sort(key=lambda f: (f.start, -(f.end - f.start)))
        kept: list[Finding] = []
        for hit in hits:
            if kept and hit.start < kept[-1].end:
                continue
            kept.append(hit)
        return kept


def lint_text(text: str, rules_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """``triage lint``: {"findings": [{"start","end","text","reason","suggestion"}, ...]}."""
    return {"findings": [f.to_dict() for f in Linter.load(rules_dir).lint(text)]}
