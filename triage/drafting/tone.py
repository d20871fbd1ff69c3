"""The tone linter: passive-aggressive, dismissive and stiff phrasings in a draft.

``Linter.load(rules_dir)`` reads ``rules/tone.toml`` (raising ``RulesError``
with every problem) and ``linter.lint(text)`` returns ``Finding`` values with
the character span, the matched text, why it reads badly and what to say
instead. Rules are owner-edited *phrases* in a small, forgiving syntax (see
``compile_phrase``) plus optional raw regular expressions, so that an owner can
ban "we apologise for any inconvenience" once and catch "We sincerely
apologize for any inconvenience caused" too. ``compile_phrase`` is also used
by the drafter's reply rules.

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

from triage.rulefile import TomlFile

TONE_FILE = "tone.toml"
DEFAULT_GAP = 3
_APOS = "['\u2019\u2018`\u00b4]"
_SEP = r"[\W_]{1,12}"  # between two words: spaces, newlines, punctuation
_WORD = r"[^\W_]+(?:['\u2019][^\W_]+)?"

# Contractions, expanded when a phrase is read and offered as alternatives when matching.
_CONTRACTED = {
    "can't": ("can", "not"), "cannot": ("can", "not"), "won't": ("will", "not"),
    "shan't": ("shall", "not"), "i'm": ("i", "am"), "let's": ("let", "us"),
}
_NOT_VERBS = {"do", "does", "did", "is", "are", "was", "were", "has", "have", "had",
              "should", "would", "could", "must", "need"}
_IS_SUBJECTS = {"that", "it", "there", "here", "what", "who", "he", "she", "this"}
_ARE_SUBJECTS = {"we", "you", "they", "who"}
_HAVE_SUBJECTS = {"i", "we", "you", "they", "should", "would", "could", "might", "must"}
_WILL_SUBJECTS = {"i", "we", "you", "they", "he", "she", "it", "that", "there"}


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
    patterns: tuple[re.Pattern[str], ...]
    exceptions: tuple[re.Pattern[str], ...]
    reason: str
    suggestion: str
    line: int | None = None
    token_patterns: tuple[tuple[dict[str, Any], ...], ...] = ()


class PhraseError(ValueError):
    """A phrase does not follow the phrase syntax."""


def _split_contraction(word: str) -> list[str]:
    w = re.sub(_APOS, "'", word.lower())
    if w in _CONTRACTED:
        return list(_CONTRACTED[w])
    for suffix, full in (("n't", "not"), ("'re", "are"), ("'ve", "have"), ("'ll", "will"),
                         ("'m", "am"), ("'d", "would")):
        if w.endswith(suffix) and len(w) > len(suffix):
            return [w[: -len(suffix)], full]
    if w.endswith("'s") and w[:-2] in _IS_SUBJECTS:
        return [w[:-2], "is"]
    return [w]


def _spelling(word: str) -> str:
    """A regex for one literal word that accepts British and US spellings."""
    pat = re.escape(word)
    pat = re.sub(r"i[sz](e|ed|es|ing|ation|ations)$", r"i[sz]\1", pat)
    if len(word) >= 6:
        pat = re.sub(r"our(s|ed|ing|able)?$", r"ou?r\1", pat)
    pat = re.sub(r"ll(ed|ing|ation)$", r"ll?\1", pat)
    return pat


def _contracted_form(a: str, b: str) -> str | None:
    """A regex for the contraction of the word pair (a, b), or None."""
    ap = _APOS
    if b == "not":
        special = {"can": f"(?:cannot|can{ap}t)", "will": f"won{ap}t", "shall": f"shan{ap}t"}
        if a in special:
            return special[a]
        return f"{re.escape(a)}n{ap}t" if a in _NOT_VERBS else None
    if b == "are" and a in _ARE_SUBJECTS:
        return f"{a}{ap}re"
    if b == "is" and a in _IS_SUBJECTS:
        return f"{a}{ap}s"
    if b == "am" and a == "i":
        return f"i{ap}m"
    if b == "have" and a in _HAVE_SUBJECTS:
        return f"{a}{ap}ve"
    if b == "will" and a in _WILL_SUBJECTS:
        return f"{a}{ap}ll"
    if b == "us" and a == "let":
        return f"let{ap}s"
    return None


def _tokens(phrase: str) -> list[str]:
    out = re.findall(r"\*\d*|\(|\)|\[|\]|\||[^\s*()\[\]|]+", phrase)
    if not out:
        raise PhraseError("empty phrase")
    return out


def _words_regex(words: list[str]) -> str:
    """Regex for a run of literal words (contractions either way, spellings loose)."""
    expanded: list[str] = []
    for w in words:
        expanded.extend(_split_contraction(w))
    parts: list[str] = []
    i = 0
    while i < len(expanded):
        a = expanded[i]
        b = expanded[i + 1] if i + 1 < len(expanded) else None
        short = _contracted_form(a, b) if b else None
        if short and b:
            parts.append(f"(?:{_spelling(a)}{_SEP}{_spelling(b)}|{short})")
            i += 2
        else:
            parts.append(_spelling(a).replace("'", _APOS))
            i += 1
    return _SEP.join(parts)


def _seq(tokens: list[str], pos: int, stop: set[str]) -> tuple[list[tuple[str, str]], int]:
    """Parse tokens into (kind, regex) items until a token in ``stop``."""
    items: list[tuple[str, str]] = []
    words: list[str] = []

    def flush() -> None:
        if words:
            items.append(("w", _words_regex(words)))
            words.clear()

    while pos < len(tokens) and tokens[pos] not in stop:
        tok = tokens[pos]
        if tok.startswith("*"):
            flush()
            n = int(tok[1:]) if len(tok) > 1 else DEFAULT_GAP
            if n > 12:
                raise PhraseError(f"gap {tok} is too wide (at most *12)")
            items.append(("gap", str(n)))
            pos += 1
        elif tok in ("(", "["):
            flush()
            close = ")" if tok == "(" else "]"
            alts: list[str] = []
            pos += 1
            while True:
                sub, pos = _seq(tokens, pos, {"|", close})
                if not sub:
                    raise PhraseError("empty alternative")
                alts.append(_join(sub))
                if pos >= len(tokens):
                    raise PhraseError(f"missing '{close}'")
                if tokens[pos] == close:
                    pos += 1
                    break
                pos += 1  # "|"
            group = "(?:" + "|".join(alts) + ")"
            items.append(("opt" if tok == "[" else "w", group))
        elif tok in (")", "]", "|"):
            raise PhraseError(f"unexpected '{tok}'")
        else:
            words.append(tok)
            pos += 1
    flush()
    return items, pos


def _join(items: list[tuple[str, str]]) -> str:
    """Join parsed items; every item after the first is preceded by a separator."""
    out = ""
    lead = False  # has anything that the next item must be separated from been emitted?
    for kind, rx in items:
        if kind == "gap":
            out += f"(?:{_SEP}{_WORD}){{0,{rx}}}"
        elif kind == "opt":
            out += f"(?:{_SEP}{rx})?" if lead else f"(?:{rx}{_SEP})?"
            if not lead:
                continue  # the optional item carries its own trailing separator
        else:
            out += f"{_SEP}{rx}" if lead else rx
        lead = True
    return out


def compile_phrase(phrase: str) -> re.Pattern[str]:
    """Compile an owner's phrase into a case-insensitive regex.

    Syntax: words match whole words, case-insensitively, across any run of
    whitespace, newlines or punctuation; straight and curly apostrophes are
    the same; "we are"/"we're", "do not"/"don't", "that is"/"that's",
    "should have"/"should've" etc. match either way round; -ise/-ize,
    -our/-or and -lled/-led spellings match both. ``*`` allows up to three
    inserted words, ``*N`` up to N (N <= 12); ``(a|b c)`` is a choice of
    alternatives; ``[word]`` is optional. Raises ``PhraseError``.
    """
    tokens = _tokens(phrase)
    items, pos = _seq(tokens, 0, set())
    if pos != len(tokens) or not items:
        raise PhraseError("could not read the phrase")
    if items[0][0] == "gap" or items[-1][0] == "gap":
        raise PhraseError("a phrase cannot start or end with a gap '*'")
    body = _join(items)
    pattern = re.compile(rf"(?<![^\W_]){body}(?![^\W_])", re.I)
    _LOWERED_BODY[pattern] = body
    return pattern


# The same phrase for already-lowered text, without IGNORECASE and without the leading
# look-behind: about five times faster (see ``_spans``). Compiled when ``_spans`` first asks:
# the phrases of policy.toml, replies.toml and answers.toml are only searched as written, and
# compiling a phrase costs about 0.5 ms (a third of a poll's rule loading was compiling them).
_LOWERED: dict[re.Pattern[str], re.Pattern[str]] = {}
_LOWERED_BODY: dict[re.Pattern[str], str] = {}


def _lowered_twin(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    fast = _LOWERED.get(pattern)
    if fast is None and (body := _LOWERED_BODY.get(pattern)) is not None:
        fast = _LOWERED[pattern] = re.compile(rf"{body}(?![^\W_])")
    return fast


def _spans(pattern: re.Pattern[str], text: str, lowered: str | None) -> Iterator[tuple[int, int]]:
    """Non-empty match spans of ``pattern`` in ``text``.

    ``lowered`` is ``text.lower()`` when that keeps every offset (else None).
    Phrase patterns then run on it, checking the left word boundary by hand,
    which finds exactly what the case-insensitive pattern finds on ``text``.
    """
    fast = _lowered_twin(pattern) if lowered is not None else None
    if fast is None or lowered is None:
        for whole in pattern.finditer(text):
            if whole.end() > whole.start():
                yield whole.span()
        return
    pos = 0
    while (m := fast.search(lowered, pos)) is not None:
        start = m.start()
        if start > 0 and lowered[start - 1].isalnum():
            pos = start + 1  # not at a word start: look again from the next character
            continue
        if m.end() > start:
            yield start, m.end()
            pos = m.end()
        else:
            pos = start + 1


def compile_patterns(file: TomlFile, key: str, value: Any, *, regex: bool) -> list[re.Pattern[str]]:
    """Compile a list of phrases (or raw regexes) from a rule file, recording problems."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        file.problem(key, f"expected a list of strings, got {value!r}")
        return []
    out: list[re.Pattern[str]] = []
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
        active = frozenset(i for i, (_, _, needs) in enumerate(self._token_patterns)
                           if all(seen[attr] & words for attr, words in needs))
        if not active:
            return
        previous = ""
        for token, lem in zip(doc, lemmas, strict=True):
            token.lemma_ = lem
            # a sentence starts after . ! ? or a line break (the blank pipeline has no parser)
            token._.set(_SENT_START, not previous or previous in ".!?" or "\n" in previous)
            previous = token.text
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
            excepted = [span for x in rule.exceptions for span in _spans(x, text, lowered)]
            for pattern in rule.patterns:
                for start, end in _spans(pattern, text, lowered):
                    if any(s < end and start < e for s, e in excepted):
                        continue
                    hits.append(Finding(start, end, text[start:end], rule.reason,
                                        rule.suggestion, rule.id))
        # the customer's own words, quoted back, are theirs: the families skip them
        quoted = [m.span() for m in _QUOTED.finditer(text)]
        for rule, start, end in self._token_spans(text):
            excepted = [span for x in rule.exceptions for span in _spans(x, text, lowered)]
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
