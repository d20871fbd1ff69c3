"""fastregex: the prefilter never drops a text re would match."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from triage.detect.fastregex import may_match, parser_works, requirements

ATOMS = ["a", "b", "ab", "-", "1", "_", "[ab]", "[a-]", r"\d", r"\w", r"\s", ".", "A", "[A-Z]"]


def _pieces(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map(lambda p: f"(?:{p[0]}|{p[1]})"),
        inner.map(lambda p: f"({p})"),
        st.tuples(inner, st.sampled_from(["+", "*", "?", "{1,3}", "{2}", "+?"])).map(lambda p: f"(?:{p[0]}){p[1]}"),
    )


PATTERNS = st.tuples(
    st.sampled_from(["", r"\b"]),
    st.recursive(st.sampled_from(ATOMS), _pieces, max_leaves=6),
    st.sampled_from(["", r"\b"]),
).map("".join)
TEXTS = st.text(alphabet="abAB-1 _.\n", max_size=30)


def test_the_private_parser_still_gives_the_known_answers() -> None:
    # otherwise the prefilter is off and the properties below test nothing
    assert parser_works()
    date = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
    assert requirements(date) == (frozenset({"-"}), frozenset({"\\d"}))


@settings(max_examples=300, deadline=None)
@given(PATTERNS, TEXTS)
def test_the_prefilter_never_skips_a_text_re_matches(pattern: str, text: str) -> None:
    regex = re.compile(pattern)
    needs = requirements(regex)
    if needs is not None and any(True for _ in regex.finditer(text)):
        assert may_match(text, needs), (pattern, needs, text)
