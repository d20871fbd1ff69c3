"""The owners' phrase syntax (tone.toml, policy.toml, replies.toml, answers.toml), compiled on demand.

``compile_phrase("we apologi[s]e * inconvenience")`` reads a phrase (see its
docstring for the syntax) into a ``Phrase``: the regular expression it stands
for, written out but not yet compiled, and the words every match must contain
(the *needs*: the letters each required word starts with, whatever its
spelling or contraction). Compiling a phrase costs about half a millisecond and
a poll reads about 400 of them, most of which a given message cannot match; so
a ``Phrase`` compiles its regex the first time a text holds every one of its
needs, and a text without them is not searched at all. ``search``,
``finditer`` and ``spans`` find exactly what the compiled regex finds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from triage.detect.fastregex import CASE_TRAPS, Needs, lowered, may_match

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

# A need: strings of which a match contains at least one (in the lowered text).
_Need = frozenset[str]


class PhraseError(ValueError):
    """A phrase does not follow the phrase syntax."""


@functools.lru_cache(maxsize=4096)
def _split_contraction(word: str) -> tuple[str, ...]:
    w = re.sub(_APOS, "'", word.lower())
    if w in _CONTRACTED:
        return _CONTRACTED[w]
    for suffix, full in (("n't", "not"), ("'re", "are"), ("'ve", "have"), ("'ll", "will"),
                         ("'m", "am"), ("'d", "would")):
        if w.endswith(suffix) and len(w) > len(suffix):
            return w[: -len(suffix)], full
    if w.endswith("'s") and w[:-2] in _IS_SUBJECTS:
        return w[:-2], "is"
    return (w,)


@functools.lru_cache(maxsize=4096)  # the owners' phrases share most of their words
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


_TRAP = re.compile(f"[{CASE_TRAPS}]")
_LEADING_LITERAL = re.compile(r"[a-z0-9]*")


def _head(regex: str) -> str:
    """The letters and digits every match of a word's ``regex`` (``_spelling``, a short form)
    starts with: its leading run of plain a-z and 0-9, less a last one that is optional."""
    head = _LEADING_LITERAL.match(regex).group(0)  # type: ignore[union-attr]  # matches "" at least
    if head and regex[len(head) : len(head) + 1] in ("?", "*", "{"):
        head = head[:-1]
    return head


def _tokens(phrase: str) -> list[str]:
    out = re.findall(r"\*\d*|\(|\)|\[|\]|\||[^\s*()\[\]|]+", phrase)
    if not out:
        raise PhraseError("empty phrase")
    for token in out:
        # "(the )?", "(a|b)+", "(x){2}": a regular expression's habit, read here as literal characters
        # no text holds where they stand, so the phrase would silently never match
        if token[0] in "?+{":
            raise PhraseError(f"{token[0]!r} after a word or group is not phrase syntax: an optional word is "
                              "written [word], alternatives (a|b), a gap *")
    return out


@functools.lru_cache(maxsize=4096)  # a run of words ("at the airport") recurs across phrases
def _words_regex(words: tuple[str, ...]) -> tuple[str, tuple[_Need, ...]]:
    """Regex for a run of literal words (contractions either way, spellings loose), and its needs."""
    expanded: list[str] = []
    for w in words:
        expanded.extend(_split_contraction(w))
    parts: list[str] = []
    needs: list[_Need] = []
    i = 0
    while i < len(expanded):
        a = expanded[i]
        b = expanded[i + 1] if i + 1 < len(expanded) else None
        short = _contracted_form(a, b) if b else None
        if short and b:
            parts.append(f"(?:{_spelling(a)}{_SEP}{_spelling(b)}|{short})")
            first, other = _head(_spelling(a)), _head(short)
            # "hasn't" holds "has": a text with either holds the shorter
            heads = frozenset([first] if first and first in other else [first, other])
            i += 2
        else:
            parts.append(_spelling(a).replace("'", _APOS))
            heads = frozenset([_head(parts[-1])])
            i += 1
        if "" not in heads:
            needs.append(heads)
    return _SEP.join(parts), tuple(needs)


# (kind, regex, needs): kind "w" (required), "opt" (optional) or "gap"; needs only for "w"
_Item = tuple[str, str, tuple[_Need, ...]]


def _selectivity(need: _Need) -> tuple[int, int]:
    return min(len(n) for n in need), -len(need)


def _seq(tokens: list[str], pos: int, stop: set[str]) -> tuple[list[_Item], int]:
    """Parse tokens into (kind, regex, needs) items until a token in ``stop``."""
    items: list[_Item] = []
    words: list[str] = []

    def flush() -> None:
        if words:
            items.append(("w", *_words_regex(tuple(words))))
            words.clear()

    while pos < len(tokens) and tokens[pos] not in stop:
        tok = tokens[pos]
        if tok.startswith("*"):
            flush()
            n = int(tok[1:]) if len(tok) > 1 else DEFAULT_GAP
            if n > 12:
                raise PhraseError(f"gap {tok} is too wide (at most *12)")
            items.append(("gap", str(n), ()))
            pos += 1
        elif tok in ("(", "["):
            flush()
            close = ")" if tok == "(" else "]"
            alts: list[str] = []
            alt_needs: list[tuple[_Need, ...]] = []
            pos += 1
            while True:
                sub, pos = _seq(tokens, pos, {"|", close})
                if not sub:
                    raise PhraseError("empty alternative")
                regex, needs = _join(sub)
                alts.append(regex)
                alt_needs.append(needs)
                if pos >= len(tokens):
                    raise PhraseError(f"missing '{close}'")
                if tokens[pos] == close:
                    pos += 1
                    break
                pos += 1  # "|"
            group = "(?:" + "|".join(alts) + ")"
            # a choice needs one of its alternatives' needs (each its most selective), if every one has some
            either = (frozenset().union(*(max(n, key=_selectivity) for n in alt_needs)),) if all(alt_needs) else ()
            items.append(("opt", group, ()) if tok == "[" else ("w", group, either))
        elif tok in (")", "]", "|"):
            raise PhraseError(f"unexpected '{tok}'")
        else:
            words.append(tok)
            pos += 1
    flush()
    return items, pos


def _join(items: list[_Item]) -> tuple[str, tuple[_Need, ...]]:
    """Join parsed items (every item after the first is preceded by a separator); the needs of
    the required ones."""
    out = ""
    needs: list[_Need] = []
    lead = False  # has anything that the next item must be separated from been emitted?
    for kind, rx, item_needs in items:
        if kind == "gap":
            out += f"(?:{_SEP}{_WORD}){{0,{rx}}}"
        elif kind == "opt":
            out += f"(?:{_SEP}{rx})?" if lead else f"(?:{rx}{_SEP})?"
            if not lead:
                continue  # the optional item carries its own trailing separator
        else:
            out += f"{_SEP}{rx}" if lead else rx
            needs += item_needs
        lead = True
    return out, tuple(needs)


class _Lowered:
    """``fastregex.lowered`` of the last text asked about: every phrase of a rule set is asked
    about the same text in turn. One tuple, replaced whole, so a reader never sees a text paired
    with another text's lowering; holding the text keeps ``is`` meaningful."""

    last: tuple[str, str | None] = ("", "")

    @classmethod
    def of(cls, text: str) -> str | None:
        last = cls.last
        if last[0] is not text:
            last = cls.last = (text, lowered(text))
        return last[1]


class Phrase:
    """One compiled owner's phrase: the regex it stands for, compiled on first use, and its needs.

    ``regex`` is the phrase as written: case-insensitive, whole words only.
    ``search`` and ``finditer`` are that regex's, skipping a text that lacks a
    need (``fastregex.lowered`` of the text, when it reads alike). ``spans``
    reads already-lowered text with ``fast``, the same regex without
    IGNORECASE and without its look-behind: about five times faster.
    """

    __slots__ = ("text", "body", "needs", "_regex", "_fast")

    def __init__(self, text: str, body: str, needs: Needs | None) -> None:
        self.text = text  # as the owner wrote it
        self.body = body
        self.needs = needs  # None: no prefilter
        self._regex: re.Pattern[str] | None = None
        self._fast: re.Pattern[str] | None = None

    def __repr__(self) -> str:
        return f"Phrase({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Phrase) and other.body == self.body

    def __hash__(self) -> int:
        return hash(self.body)

    @property
    def regex(self) -> re.Pattern[str]:
        if self._regex is None:
            self._regex = re.compile(rf"(?<![^\W_]){self.body}(?![^\W_])", re.I)
        return self._regex

    @property
    def fast(self) -> re.Pattern[str]:
        if self._fast is None:
            self._fast = re.compile(rf"{self.body}(?![^\W_])")
        return self._fast

    def _may_occur(self, lower: str | None) -> bool:
        return lower is None or self.needs is None or may_match(lower, self.needs)

    def search(self, text: str) -> re.Match[str] | None:
        """``regex.search(text)``."""
        return self.regex.search(text) if self._may_occur(_Lowered.of(text)) else None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """``regex.finditer(text)``."""
        return self.regex.finditer(text) if self._may_occur(_Lowered.of(text)) else iter(())

    def spans(self, text: str, lower: str | None) -> Iterator[tuple[int, int]]:
        """Non-empty match spans in ``text``; ``lower`` is ``text.lower()`` when that keeps every
        offset (else None). On it, ``fast`` runs with the left word boundary checked by hand,
        which finds exactly what ``regex`` finds on ``text`` (a text with a letter IGNORECASE
        reads as another, ``fastregex.CASE_TRAPS``, is read as written)."""
        if lower is None or (not text.isascii() and _TRAP.search(text) is not None):
            for whole in self.finditer(text):
                if whole.end() > whole.start():
                    yield whole.span()
            return
        if not self._may_occur(lower):
            return
        fast = self.fast
        pos = 0
        while pos <= len(lower) and (m := fast.search(lower, pos)) is not None:  # search reads a larger pos as len
            start = m.start()
            if start > 0 and lower[start - 1].isalnum():
                pos = start + 1  # not at a word start: look again from the next character
                continue
            if m.end() > start:
                yield start, m.end()
                pos = m.end()
            else:
                pos = start + 1


def compile_phrase(phrase: str) -> Phrase:
    """Read an owner's phrase: matched case-insensitively, compiled when first needed.

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
    body, needs = _join(items)
    # the three most selective needs: enough to pass over a text, cheap to check
    best = tuple(sorted(dict.fromkeys(needs), key=_selectivity, reverse=True)[:3])
    return Phrase(phrase, body, best or None)


def spans(pattern: Phrase | re.Pattern[str], text: str, lower: str | None) -> Iterator[tuple[int, int]]:
    """Non-empty match spans of a phrase (``Phrase.spans``) or a raw regex in ``text``."""
    if isinstance(pattern, Phrase):
        yield from pattern.spans(text, lower)
        return
    for whole in pattern.finditer(text):
        if whole.end() > whole.start():
            yield whole.span()
