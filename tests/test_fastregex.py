"""fastregex: the prefilter never drops a text re would match, and FastRegex finds re's matches."""

from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from triage.detect.fastregex import CASE_TRAPS, FastRegex, locate, lowered, may_match, parser_works, requirements

ATOMS = ["a", "b", "s", "i", "ab", "-", "1", "_", "[ab]", "[a-]", "[^s]", r"\d", r"\w", r"\s", ".", "A", "[A-Z]", "é", "€"]
# beyond what the prefilter test needs: escapes naming a character by code, scoped flags
CASE_ATOMS = [*ATOMS, r"\x41", r"\u00c9", "(?-i:a)", "Σ", "σ"]


def _pieces(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map(lambda p: f"(?:{p[0]}|{p[1]})"),
        inner.map(lambda p: f"({p})"),
        st.tuples(inner, st.sampled_from(["+", "*", "?", "{1,3}", "{2}", "+?"])).map(lambda p: f"(?:{p[0]}){p[1]}"),
    )


def _patterns(atoms: list[str]) -> st.SearchStrategy[str]:
    return st.tuples(
        st.sampled_from(["", r"\b"]),
        st.recursive(st.sampled_from(atoms), _pieces, max_leaves=6),
        st.sampled_from(["", r"\b"]),
    ).map("".join)


PATTERNS = _patterns(ATOMS)
# ASCII mostly, and letters whose case re and str.lower() read differently (ı, ſ, İ, Σ, the Kelvin sign)
TEXTS = st.text(alphabet="abAB-1 _.\nsiSIéÉ€ıſİΣσς\u212a", max_size=30)


def test_the_private_parser_still_gives_the_known_answers() -> None:
    # otherwise the prefilter is off and the properties below test nothing
    assert parser_works()
    date = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
    assert requirements(date) == (frozenset({"-"}), frozenset({"\\d"}))
    assert locate(re.compile(r"\d{4}-\d{2}-\d{2}\b")) == (frozenset({"-"}), 4, 4)
    assert FastRegex.of(date).locator is not None  # the shipped date rules run located


@settings(max_examples=300, deadline=None)
@given(PATTERNS, TEXTS)
def test_the_prefilter_never_skips_a_text_re_matches(pattern: str, text: str) -> None:
    regex = re.compile(pattern)
    needs = requirements(regex)
    if needs is not None and any(True for _ in regex.finditer(text)):
        assert may_match(text, needs), (pattern, needs, text)


def _spans(matches: object) -> list[tuple[int, int]]:
    return [m.span() for m in matches]  # type: ignore[attr-defined]


@settings(max_examples=400, deadline=None)
@given(_patterns(CASE_ATOMS), TEXTS, st.booleans())
@example(r"\b(?:[a-])+", "xa-a", False)  # a match skipped for where it starts hid "-a"
@example(r"s", "\u017f", True)  # IGNORECASE reads the long s as s; lower() keeps it
@example(r"\x41", "a", True)  # an escape may name a capital
@example(r"(?-i:a)", "A", True)
@example(r"\b(?:a)?", "", False)  # an empty match where \b fails: the search must end
def test_fastregex_finds_what_re_finds(pattern: str, text: str, ignore_case: bool) -> None:
    regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    fast = FastRegex.of(regex)
    want = _spans(regex.finditer(text))
    assert _spans(fast.finditer(text, lowered(text))) == want, (pattern, text)
    assert _spans(fast.finditer(text, None)) == want


@settings(max_examples=400, deadline=None)
@given(_patterns(ATOMS), TEXTS, st.booleans())
@example(r"\b(?:a-)?ab", "a-ab ab", False)  # a match may start before the string found
@example(r"(?:[ab]|\d)+a", "1ba", False)
def test_a_located_search_finds_what_re_finds(pattern: str, text: str, ignore_case: bool) -> None:
    # the locator whatever it costs, where the pattern has one (FastRegex.of keeps only cheap ones)
    regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    want = _spans(regex.finditer(text))
    fast = FastRegex.of(regex)
    located = locate(fast.fast)
    if located is not None and not fast.fast.flags & re.IGNORECASE:  # as FastRegex.of prepares it
        assert _spans(replace(fast, locator=located).finditer(text, lowered(text))) == want, (pattern, located, text)
    as_written = locate(regex)  # the pattern as written, its \b and all
    if as_written is not None and not ignore_case:
        plain = FastRegex(regex, regex, False, False, None, as_written)
        assert _spans(plain.finditer(text, None)) == want, (pattern, as_written, text)


@settings(max_examples=400, deadline=None)
@given(_patterns(CASE_ATOMS), TEXTS, st.booleans(), st.integers(0, 30), st.integers(0, 30))
@example(r"s", "ΑΣs", True, 1, 3)  # the slice's lowered sigma is final, the text's is not
@example(r"ab", "xaby", False, 1, 3)
def test_a_slice_of_a_text_the_whole_rules_out_holds_no_match(
    pattern: str, text: str, ignore_case: bool, a: int, b: int
) -> None:
    # asks reads the [[times]] sentence by sentence, each rule only where the whole text may hold it
    fast = FastRegex.of(re.compile(pattern, re.IGNORECASE if ignore_case else 0))
    piece = text[a:b]
    if not fast.may_match_within(text, lowered(text)):
        assert not _spans(fast.finditer(piece, lowered(piece))), (pattern, text, piece)


def test_case_traps_are_every_letter_re_and_lower_read_differently() -> None:
    ascii_letter = re.compile("[a-z]", re.IGNORECASE)
    traps = set()
    for code in range(0x110000):
        ch = chr(code)
        low = ch.lower()
        if len(low) != 1 or 0xD800 <= code < 0xE000:
            continue  # a text with these is never lowered (length) or cannot be one (surrogates)
        is_ascii_letter = "a" <= low <= "z"
        if (ascii_letter.fullmatch(ch) is not None) != is_ascii_letter or (
            is_ascii_letter and re.fullmatch(low, ch, re.IGNORECASE) is None
        ):
            traps.add(ch)
    assert traps == set(CASE_TRAPS)
    assert lowered("Stop ſpam") is None and lowered("İ") is None and lowered("STOP") == "stop"
