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
  (per requirement), so a text without them is skipped without running ``re``.

Private API: the prefilter reads the parse tree of CPython's ``re._parser``
(``parse``) and the opcode names of ``re._constants`` (``LITERAL``,
``SUBPATTERN``, ``BRANCH``, ``MAX_REPEAT``, ``MIN_REPEAT``,
``POSSESSIVE_REPEAT``, ``IN``, ``CATEGORY``, ``CATEGORY_DIGIT``), since the
public ``re`` API does not say what a pattern requires. They are private and
have changed before (``sre_parse`` became ``re._parser`` in 3.11). If they are
missing, raise, or no longer give the known answers of ``_SELF_CHECK`` (run
once, see ``parser_works``), there is no prefilter: every regex then runs on
every text, slower and with the same matches.

State: ``_DigitCache`` remembers whether the last text asked about has a digit
(every fact regex asks about the same text in turn); ``parser_works`` caches
its one answer. Both are deliberate caches, safe across threads.
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
            return cls(regex, re.compile(source, flags), on_lower, boundary, needs)
        except re.error:
            return cls(regex, regex, False, False, None)

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
    """Whether ``re._parser`` still gives the prefilter the answers it was written for."""
    return all(_requirements(p, 0) == want for p, want in _SELF_CHECK)


def requirements(regex: re.Pattern[str]) -> Needs | None:
    """The prefilter of ``regex`` (run case-sensitively), most selective first; None when it has none."""
    if not parser_works():
        return None
    return _requirements(regex.pattern, regex.flags)
