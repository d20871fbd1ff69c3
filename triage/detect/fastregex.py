"""A faster ``finditer`` for the rules' regular expressions, with the same matches.

Python's ``re`` scans quickly only for a pattern that starts with a literal or a
class and has no IGNORECASE. ``FastRegex.of(regex)`` therefore prepares, once
per rule:

* a leading ``\\b`` dropped from the pattern and checked by hand at each match
  start (when the ``\\b`` covers the whole pattern, not one alternative);
* an ``ignore_case`` pattern written in lower case run case-sensitively on the
  lowered text (offsets stay the same: ``lowered`` gives the lowered text only
  when it is as long as the original and re would read its letters alike);
* a prefilter, as RE2 has one: strings of which every match must contain one
  (per requirement), so a text without them is skipped without running ``re``;
* a locator, for a pattern ``re`` would try at every position (it starts with
  neither a literal nor a class ``re`` scans for): strings of which every match
  holds one at a known range of offsets from its start (``inv`` 0-5 characters
  in, a digit first), so ``match`` runs only at the few starts near where they
  occur (one search for the next of them), in order, as ``finditer`` would find them.

Private API: the prefilter and the locator read the parse tree of CPython's
``re._parser`` (``parse``, ``SubPattern.getwidth``) and the opcode names of ``re._constants`` (``LITERAL``,
``SUBPATTERN``, ``BRANCH``, ``MAX_REPEAT``, ``MIN_REPEAT``,
``POSSESSIVE_REPEAT``, ``IN``, ``CATEGORY``, ``CATEGORY_DIGIT``), since the
public ``re`` API does not say what a pattern requires. They are private and
have changed before (``sre_parse`` became ``re._parser`` in 3.11). If they are
missing, raise, or no longer give the known answers of ``_SELF_CHECK`` and
``_LOCATOR_CHECK`` (run once, see ``parser_works``), there is neither: every
regex then runs on every text with ``re.finditer``, slower and with the same matches.

State: ``_DigitCache`` remembers whether the last text asked about has a digit
(every fact regex asks about the same text in turn); ``parser_works`` caches
its one answer; ``_finder`` one compiled search per locator. All are deliberate
caches, safe across threads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DIGIT = "\\d"  # in a requirement: any character that \d matches
Needs = tuple[frozenset[str], ...]


@dataclass(frozen=True, eq=False)
class FastRegex:
    """How to run ``regex`` fast: see the module docstring and ``finditer``."""

    regex: re.Pattern[str]  # the rule's own pattern
    fast: re.Pattern[str]  # the pattern to run
    on_lower: bool  # run on the lowered text
    boundary: bool  # leading \b dropped from ``fast``, checked by hand
    needs: Needs | None  # prefilter, most selective first; None: no prefilter
    locator: Locator | None = None  # where matches can start; None: ``fast.finditer`` finds them

    @classmethod
    def of(cls, regex: re.Pattern[str]) -> FastRegex:
        source, flags = regex.pattern, regex.flags
        boundary = source.startswith("\\b") and not _top_level_bar(source[2:])
        if boundary:
            source = source[2:]
        on_lower = bool(flags & re.IGNORECASE) and _lowercase_only(source)
        if on_lower:
            flags &= ~re.IGNORECASE
        # the prefilter's strings are searched for case-sensitively: only on text the regex sees as is
        needs = requirements(regex) if not flags & re.IGNORECASE else None
        try:
            fast = re.compile(source, flags)
        except re.error:
            return cls(regex, regex, False, False, None)
        locator = locate(fast) if not flags & re.IGNORECASE else None
        if locator is not None and locator_cost(locator) > MAX_LOCATOR_COST:
            locator = None  # starts near so many places that re's own scan is faster
        return cls(regex, fast, on_lower, boundary, needs, locator)

    def may_match_within(self, text: str, lowered: str | None) -> bool:
        """False only when ``finditer`` finds nothing in any slice of ``text`` (``lowered`` is
        ``lowered(text)``): a slice lacks every string the whole text lacks, so a caller that
        searches many slices of one text asks once.

        A slice's lowered text is the same slice of the lowered text (``lowered`` is length for
        length), but at a capital sigma, the one letter ``lower`` reads in context ("σ" or final
        "ς"): a pattern run on lowered text names no cased letter beyond ASCII, so neither is in
        its prefilter's strings."""
        haystack = lowered if self.on_lower else text
        return self.needs is None or haystack is None or may_match(haystack, self.needs)

    def finditer(self, text: str, lowered: str | None) -> Iterator[re.Match[str]]:
        """Matches of ``regex`` in ``text``; ``lowered`` is ``lowered(text)``.

        Same matches as ``regex.finditer(text)``. Offsets index ``text`` either
        way; read values by offset, not ``group()`` (the match may be on the
        lowered text).
        """
        fast, boundary, needs = self.fast, self.boundary, self.needs
        haystack = text
        if self.on_lower:
            if lowered is None:
                fast, boundary, needs = self.regex, False, None
            else:
                haystack = lowered
        if needs is not None and not may_match(haystack, needs):
            return
        if self.locator is not None and fast is self.fast:
            yield from _located(fast, haystack, text, boundary, self.locator)
            return
        if not boundary:
            yield from fast.finditer(haystack)
            return
        pos = 0
        while pos <= len(haystack):  # finditer reads a larger pos as len(haystack)
            for match in fast.finditer(haystack, pos):
                if not _at_boundary(text, match.start()):
                    # \b fails here, but the regex may still match inside this span
                    # ("xa-a" has "-a" for \b[a-]+): look again from the next character
                    pos = match.start() + 1
                    break
                yield match
            else:
                return


# Characters re's IGNORECASE reads as an ASCII letter though str.lower() makes them none (dotless
# i, long s): a text with one runs the regex as written (see lowered). tests/test_fastregex.py
# recomputes this for the running Python's Unicode tables.
CASE_TRAPS = "\u0131\u017f"
_TRAP = re.compile(f"[{CASE_TRAPS}]")
# escapes that write a character by its code (it may be a capital), and scoped flags ("(?-i:...)")
_NOT_LOWERABLE = re.compile(r"\\[xuUN0-7]|\(\?[aiLmsux-]+[:)]")


def lowered(text: str) -> str | None:
    """``text.lower()`` when a FastRegex may read it for ``text`` (same length, no CASE_TRAPS), else None."""
    low = text.lower()
    if len(low) != len(text) or (not text.isascii() and _TRAP.search(text) is not None):
        return None
    return low


def _lowercase_only(source: str) -> bool:
    """Whether ``source`` with IGNORECASE finds what it finds without it on lowered text:
    every character it names is an ASCII non-capital or has no case at all."""
    if _NOT_LOWERABLE.search(source):
        return False
    # group syntax ("(?P<value>", "(?P=value)") and escapes ("\\S") are not letters to match
    bare = re.sub(r"\(\?P[<=]\w*[>)]?", "", re.sub(r"\\.", "", source))
    return all(not c.isupper() if c.isascii() else c.lower() == c.upper() for c in bare)


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _at_boundary(text: str, i: int) -> bool:
    before = i > 0 and _word(text[i - 1])
    after = i < len(text) and _word(text[i])
    return before != after


def _top_level_bar(source: str) -> bool:
    depth, i, in_class = 0, 0, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if source[i + 1 : i + 2] == "]":
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
        i += 1
    return False


_DIGIT = re.compile(r"\d")


class _DigitCache:
    """Whether the last text asked about contains a digit.

    One tuple, replaced whole, so a reader never sees a text paired with
    another text's answer; holding the text keeps ``is`` meaningful.
    """

    last: tuple[str, bool] = ("", False)

    @classmethod
    def has_digit(cls, haystack: str) -> bool:
        last = cls.last
        if last[0] is not haystack:
            last = cls.last = (haystack, _DIGIT.search(haystack) is not None)
        return last[1]


def may_match(haystack: str, needs: Needs) -> bool:
    """False when some requirement has none of its strings in ``haystack`` (then the regex cannot match)."""
    has_digit = _DigitCache.has_digit
    for need in needs:
        for part in need:
            if part in haystack if part != DIGIT else has_digit(haystack):
                break
        else:
            return False
    return True


def _selectivity(need: frozenset[str]) -> tuple[float, int]:
    return min(0.5 if n == DIGIT else len(n) for n in need), -len(need)


def _required(items: Any, sre: Any) -> list[frozenset[str]]:
    """Requirements every match of the parsed pattern ``items`` meets: it contains one string of each set.

    A literal run, an alternation whose every branch requires something, a
    repeat of at least one, a small character class or ``\\d``. Scoped flags
    such as ``(?i:...)`` raise ValueError (no prefilter then). ``sre`` is
    ``re._constants``.
    """
    needs: list[frozenset[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            needs.append(frozenset(["".join(run)]))
            run.clear()

    for op, av in items:
        if op is sre.LITERAL:
            run.append(chr(av))
            continue
        flush()
        if op is sre.SUBPATTERN:
            if av[1] or av[2]:
                raise ValueError("scoped flags")
            needs.extend(_required(av[3], sre))
        elif op is sre.BRANCH:
            alternatives = [_required(alt, sre) for alt in av[1]]
            if all(alternatives):
                needs.append(frozenset().union(*(max(alt, key=_selectivity) for alt in alternatives)))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            needs.extend(_required(av[2], sre))
        elif op is sre.IN:
            if all(o is sre.LITERAL for o, _ in av) and len(av) <= 6:
                needs.append(frozenset(chr(v) for _, v in av))
            elif av == [(sre.CATEGORY, sre.CATEGORY_DIGIT)]:
                needs.append(frozenset([DIGIT]))
    flush()
    return needs


def _requirements(pattern: str, flags: int) -> Needs | None:
    try:
        from re import _constants, _parser  # type: ignore[attr-defined]

        needs = _required(_parser.parse(pattern, flags & ~re.IGNORECASE), _constants)
    except Exception:  # private API gone or changed, or scoped flags: no prefilter
        return None
    needs = [n for n in dict.fromkeys(needs) if n and " " not in n]  # a space is in every text
    return tuple(sorted(needs, key=_selectivity, reverse=True)[:3]) or None


# Known answers: if re._parser no longer gives them, the prefilter is off.
_SELF_CHECK: tuple[tuple[str, Needs | None], ...] = (
    (r"abc", (frozenset({"abc"}),)),
    (r"x(?:ab|cd)+\d", (frozenset({"ab", "cd"}), frozenset({"x"}), frozenset({DIGIT}))),
    (r"[qz]y?", (frozenset({"q", "z"}),)),
    (r"a*|b", None),
    (r"(?i:k)", None),
)


@functools.cache
def parser_works() -> bool:
    """Whether ``re._parser`` still gives the prefilter and the locator the answers they were written for."""
    return all(_requirements(p, 0) == want for p, want in _SELF_CHECK) and all(
        _locator(p, 0) == want for p, want in _LOCATOR_CHECK
    )


def requirements(regex: re.Pattern[str]) -> Needs | None:
    """The prefilter of ``regex`` (run case-sensitively), most selective first; None when it has none."""
    if not parser_works():
        return None
    return _requirements(regex.pattern, regex.flags)


# A locator: strings (DIGIT: any digit) of which every match holds one, and the least and
# most characters between the match's start and that string's start.
Locator = tuple[frozenset[str], int, int]
MAX_LOCATOR_COST = 0.8  # above this (see locator_cost), re's own scan of every position wins


def locator_cost(locator: Locator) -> float:
    """About how many starts per character of text the locator leaves to try: each string's
    guessed frequency (a letter 1, each more letter a quarter of that, a digit 0.3, another
    character 0.1) times the number of starts it leaves."""
    parts, least, most = locator
    freq = sum(0.3 if p == DIGIT else 0.25 ** (len(p) - 1) if p[0].isalnum() else 0.1 for p in parts)
    return freq * (most - least + 1)


def _located(
    fast: re.Pattern[str], haystack: str, text: str, boundary: bool, locator: Locator
) -> Iterator[re.Match[str]]:
    """What ``finditer`` finds, trying ``match`` only at starts the locator leaves: a match at
    ``start`` holds one of the strings at ``start + least`` to ``start + most``, so when the
    first string from ``pos + least`` is at ``i``, no match starts from ``pos`` to before
    ``i - most``; every match is non-empty (it holds a string), so the next starts at its end."""
    parts, least, most = locator
    finder = _finder(parts)
    pos = 0
    while True:
        found = finder.search(haystack, pos + least)
        if found is None:
            return
        i = found.start()
        for start in range(max(pos, i - most), i - least + 1):
            if boundary and not _at_boundary(text, start):
                continue
            match = fast.match(haystack, start)
            if match is not None:
                yield match
                pos = match.end()
                break
        else:
            pos = i - least + 1


@functools.lru_cache(maxsize=256)
def _finder(parts: frozenset[str]) -> re.Pattern[str]:
    """A regex finding where the next of ``parts`` (DIGIT: any digit) starts."""
    return re.compile("|".join(DIGIT if p == DIGIT else re.escape(p) for p in sorted(parts, key=len, reverse=True)))


def _cheapest(locators: list[Locator]) -> Locator | None:
    return min(locators, key=locator_cost, default=None)


def _locators(items: Any, sre: Any) -> list[Locator]:
    """Every locator of the parsed sequence ``items`` found before a part of unbounded width:
    a literal run, a small class of literals or ``\\d``, inside a group or the first turn of a
    repeat of at least one, and of an alternation whose every branch has one (their union).
    Scoped flags raise ValueError. ``sre`` is ``re._constants``."""
    found: list[Locator] = []
    repeats = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
    for k, (op, av) in enumerate(items):
        lo, hi = items[:k].getwidth()  # how far into a match this item starts
        if hi >= sre.MAXREPEAT:
            break
        inner: list[Locator] = []
        if op is sre.LITERAL and (k == 0 or items[k - 1][0] is not sre.LITERAL):
            run = ""
            for next_op, next_av in items[k:]:
                if next_op is not sre.LITERAL:
                    break
                run += chr(next_av)
            inner = [(frozenset([run]), 0, 0)]
        elif op is sre.IN:
            if all(o is sre.LITERAL for o, _ in av) and len(av) <= 6:
                inner = [(frozenset(chr(v) for _, v in av), 0, 0)]
            elif av == [(sre.CATEGORY, sre.CATEGORY_DIGIT)]:
                inner = [(frozenset([DIGIT]), 0, 0)]
        elif op is sre.SUBPATTERN:
            if av[1] or av[2]:
                raise ValueError("scoped flags")
            inner = _locators(av[3], sre)
        elif op in repeats and av[0] >= 1:
            inner = _locators(av[2], sre)
        elif op is sre.BRANCH:
            best = [_cheapest(_locators(alt, sre)) for alt in av[1]]
            if all(b is not None for b in best):
                chosen = [b for b in best if b is not None]
                inner = [(frozenset().union(*(b[0] for b in chosen)), min(b[1] for b in chosen), max(b[2] for b in chosen))]
        found.extend((parts, lo + a, hi + b) for parts, a, b in inner)
    return found


def _scanned(items: Any, sre: Any) -> bool:
    """Whether ``re`` finds where matches of ``items`` can start by itself, in C: the pattern
    (inside its groups) starts with a literal, a class, or an alternation of branches that
    each start with a literal (how ``re._compiler`` finds a prefix or a first-character set)."""
    while items and items[0][0] is sre.SUBPATTERN:
        items = items[0][1][3]
    if not items:
        return False
    op, av = items[0]
    if op is sre.BRANCH:
        return all(alt and alt[0][0] is sre.LITERAL for alt in av[1])
    return op is sre.LITERAL or op is sre.IN


def _locator(pattern: str, flags: int) -> Locator | None:
    try:
        from re import _constants, _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(pattern, flags)
        return None if _scanned(parsed, _constants) else _cheapest(_locators(parsed, _constants))
    except Exception:  # private API gone or changed, or scoped flags: no locator
        return None


# Known answers: if re._parser no longer gives them, the locator is off (see parser_works).
_LOCATOR_CHECK: tuple[tuple[str, Locator | None], ...] = (
    (r"(?:[a-z]{1,4}-)?inv-?\d", (frozenset({"inv"}), 0, 5)),
    (r"\d{1,2}[/.]\d", (frozenset({DIGIT}), 0, 0)),
    (r"x?(?:ab|c(?:de)?)+y", (frozenset({"ab", "c"}), 0, 1)),
    (r"a*b", None),
    (r"(?:ab|cd)e", None),  # re scans for its first characters itself
)


def locate(regex: re.Pattern[str]) -> Locator | None:
    """The cheapest locator of ``regex`` (run case-sensitively, as written), or None."""
    if not parser_works():
        return None
    return _locator(regex.pattern, regex.flags)
