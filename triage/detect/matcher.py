"""The anchored matcher: a token pattern run only around a word it must contain.

spaCy's ``Matcher`` tries every pattern at every token, and in Python for
``IN`` sets, which made token patterns the slowest part of detection. So
``nlp.build`` gives each pattern with a usable *anchor* (a LOWER/ORTH/TEXT word,
or ``IN`` list, that every match contains, ``find_anchor``) to the ``PhraseMatcher``
as phrases; ``run_anchored`` then matches the pattern only in the token windows around
the anchor hits (``reach`` tokens either side; ``*`` and ``+`` reach at most
``MAX_REPEAT`` tokens there); a window without a word of each token the pattern
cannot skip (``needs_of``) is passed over. Inside a window the pattern runs on the small
matcher below (``steps_of``, ``match_steps``) when it uses only ORTH/TEXT/LOWER
(a string, ``IN``, ``NOT_IN``), IS_ALPHA/IS_PUNCT/IS_SPACE/LIKE_NUM and the
``?``, ``*``, ``+``, ``{n}``, ``{n,m}``, ``{n,}``, ``{,m}`` operators, and on a
spaCy ``Matcher`` holding just that pattern otherwise.

What it leans on: no private API, but a re-implementation of part of spaCy's
``Matcher`` (which spans it reports: every (start, end) that matches, longest
and shortest alike, no empty ones; how ``IN``/``NOT_IN`` and the operators
read) and the public ``Doc.to_array`` for the token attributes. If a later
spaCy reads a pattern differently, tests/test_matcher.py (the small matcher
against spaCy's on generated patterns and texts) fails; the way back is to
return None from ``steps_of``, and every pattern runs on spaCy's ``Matcher``
again, in the same windows. No module state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Words so frequent that a pattern anchored on them would gain little (see find_anchor).
_COMMON = frozenset(
    ["the", "a", "an", "i", "you", "my", "our", "your", "it", "is", "to", "and", "of", "in", "that", "this", "for", "on", "with", "be", "was", "are", "not", "n't", "have", "has", "do", "does", "did", "me", "we", "or", "so", "no", "just", "what", "how", "why", "been", "am", "'s", "'m"]
)
MAX_REPEAT = 8  # "*" and "+" reach at most this many tokens in an anchored pattern


# Token attributes the small matcher reads, in the column order of ``Doc.to_array``.
COLUMNS = ("ORTH", "LOWER", "IS_ALPHA", "IS_PUNCT", "IS_SPACE", "LIKE_NUM")
_TEXT_KEYS = {"ORTH": 0, "TEXT": 0, "LOWER": 1}
_FLAG_KEYS = {"IS_ALPHA": 2, "IS_PUNCT": 3, "IS_SPACE": 4, "LIKE_NUM": 5}
# one pattern token: (checks, min, max); a check is (column, set of values, wanted membership)
Check = tuple[int, frozenset[int], bool]
Step = tuple[tuple[Check, ...], int, int]


@dataclass(frozen=True, eq=False)
class Anchored:
    """A token pattern run only around a word it must contain (found by the PhraseMatcher)."""

    key: int  # match id reported for the pattern
    matcher: Any  # a spaCy Matcher holding just this pattern
    before: int  # tokens the pattern can reach before the anchor
    after: int  # ... and after it
    steps: tuple[Step, ...] | None = None  # the pattern for the small matcher, when it can run it
    # (column, words) of every token a match cannot do without, the anchor's last (see ``needs_of``)
    needs: tuple[tuple[int, frozenset[int]], ...] = ()


def steps_of(pattern: tuple[dict[str, Any], ...], string_id: Any) -> tuple[Step, ...] | None:
    """The pattern as steps for ``match_steps``; None when it uses anything beyond
    what the module docstring lists (spaCy's Matcher runs it then). ``string_id``
    is ``vocab.strings.add``."""
    steps: list[Step] = []
    for token in pattern:
        checks: list[Check] = []
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


def needs_of(steps: tuple[Step, ...], anchor: int) -> tuple[tuple[int, frozenset[int]], ...]:
    """(column, words) of each step a match cannot skip that must be one of its words (LOWER/ORTH):
    a window holding none of one step's words holds no match. The anchor step comes last (the
    window was made around one of its words, so it rarely rules anything out)."""
    order = [k for k in range(len(steps)) if k != anchor] + [anchor]
    return tuple(
        (column, values)
        for k in order
        if steps[k][1]
        for column, values, wanted in steps[k][0]
        if wanted and column in _TEXT_KEYS.values()
    )


def _ok(checks: tuple[Check, ...], columns: list[list[int]], pos: int) -> bool:
    for column, values, wanted in checks:
        if (columns[column][pos] in values) is not wanted:
            return False
    return True


def _ends(steps: tuple[Step, ...], start: int, hi: int, columns: list[list[int]]) -> set[int]:
    """Every end position (before ``hi``) of a match of ``steps`` starting at token ``start``:
    step by step, the positions each step can reach from where the steps before it ended."""
    frontier = {start}
    for checks, least, most in steps:
        reached: set[int] = set()
        single = len(checks) == 1  # speed: a step of one check (most are) reads it inline
        column, values, wanted = checks[0] if single else (0, frozenset(), True)
        col = columns[column]
        for pos in frontier:
            count = 0
            while count < least:
                if pos >= hi or not ((col[pos] in values) is wanted if single else _ok(checks, columns, pos)):
                    break
                pos += 1
                count += 1
            else:
                reached.add(pos)
                while count < most and pos < hi and ((col[pos] in values) is wanted if single else _ok(checks, columns, pos)):
                    pos += 1
                    count += 1
                    reached.add(pos)
        if not reached:
            return reached
        frontier = reached
    return frontier


def match_steps(steps: tuple[Step, ...], columns: list[list[int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """All (start, end) token spans in [lo, hi) that match, as spaCy's Matcher reports them.

    ``columns`` is ``doc.to_array(list(COLUMNS)).T.tolist()``: one list per column, indexed by token.
    """
    found: list[tuple[int, int]] = []
    first, least, _ = steps[0]
    starts: Any = range(lo, hi)
    if least and first:  # the first token must be there: only where it is can a match start
        column, values, wanted = first[0]
        starts = [lo + i for i, value in enumerate(columns[column][lo:hi]) if (value in values) is wanted]
        if len(first) > 1:
            starts = [s for s in starts if _ok(first, columns, s)]
    for start in starts:
        found.extend((start, end) for end in sorted(_ends(steps, start, hi, columns)) if end > start)
    return found


def run_anchored(doc: Any, windows: dict[Anchored, list[tuple[int, int]]], table: Any = None) -> list[tuple[int, int, int]]:
    """(match id, start, end) of each anchored pattern inside its windows (token spans of ``doc``).

    ``table``: the doc's ``to_array`` of COLUMNS and possibly more columns after them, when the caller has one."""
    found: list[tuple[int, int, int]] = []
    columns: list[list[int]] | None = None
    for anchored, spans in windows.items():
        for lo, hi in _merge(spans) if len(spans) > 1 else spans:
            if anchored.steps is not None:
                if columns is None:  # one C call for the token attributes, only when needed
                    array = doc.to_array(list(COLUMNS)) if table is None else table[:, : len(COLUMNS)]
                    columns = array.T.tolist()
                for column, values in anchored.needs:  # speed: most windows lack a word the pattern needs
                    if values.isdisjoint(columns[column][lo:hi]):
                        break
                else:
                    found.extend((anchored.key, s, e) for s, e in match_steps(anchored.steps, columns, lo, hi))
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


def reach(token: dict[str, Any]) -> int:
    """How many tokens one pattern token can cover in an anchored window."""
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


def find_anchor(pattern: tuple[dict[str, Any], ...]) -> tuple[int, tuple[str, ...]] | None:
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


def make_anchored(key: int, single: Any, pattern: tuple[dict[str, Any], ...], index: int, string_id: Any) -> Anchored:
    """The Anchored for ``pattern`` whose anchor is token ``index``; ``single`` a Matcher holding only it."""
    reaches = [reach(t) for t in pattern]
    steps = steps_of(pattern, string_id)
    needs = needs_of(steps, index) if steps is not None else ()
    return Anchored(key, single, sum(reaches[:index]), sum(reaches[index + 1 :]), steps, needs)
