"""matcher: the small matcher and the anchored windows find what spaCy's own Matcher finds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.detect.matcher import COLUMNS, MAX_REPEAT, find_anchor, make_anchored, match_steps, run_anchored, steps_of

spacy = pytest.importorskip("spacy")
from spacy.matcher import Matcher, PhraseMatcher  # noqa: E402

NLP = spacy.blank("en")
WORDS = ["still", "Still", "NOT", "not", "late", "3", "!", ","]
# what the shipped rules use: LOWER/TEXT/ORTH strings and IN lists, IS_* flags, and these operators
OPS = [None, "?", "*", "+", "{2}", "{1,3}", "{0,2}", "{,2}", "{2,}"]


def _token() -> st.SearchStrategy[dict[str, Any]]:
    words = st.sampled_from(WORDS)
    text = st.one_of(
        words,
        st.lists(words, min_size=1, max_size=3, unique=True).map(lambda w: {"IN": w}),
        st.lists(words, min_size=1, max_size=2, unique=True).map(lambda w: {"NOT_IN": w}),
    )
    one = st.one_of(
        st.just({}),  # any token
        st.tuples(st.sampled_from(["LOWER", "ORTH", "TEXT"]), text),
        st.tuples(st.sampled_from(["IS_ALPHA", "IS_PUNCT", "IS_SPACE", "LIKE_NUM"]), st.booleans()),
    ).map(lambda kv: dict([kv]) if kv else {})
    attrs = st.one_of(one, st.tuples(one, one).map(lambda t: {**t[0], **t[1]}))  # mostly one check, some two
    return st.tuples(attrs, st.sampled_from(OPS)).map(lambda t: {**t[0], **({"OP": t[1]} if t[1] else {})})


PATTERNS = st.lists(_token(), min_size=1, max_size=4).map(tuple)
# a pattern with a word every match contains, as most of the shipped ones have
ANCHORED = st.tuples(
    st.lists(_token(), max_size=3),
    st.integers(0, 3),
    st.sampled_from([{"LOWER": "still"}, {"LOWER": "not"}, {"ORTH": "late"}, {"LOWER": {"IN": ["not", "3"]}}]),
    st.sampled_from([None, "+"]),
).map(lambda t: tuple(t[0][: t[1]] + [{**t[2], **({"OP": t[3]} if t[3] else {})}] + t[0][t[1] :]))


def _texts(max_words: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from([*WORDS, "  "]), max_size=max_words).map(" ".join)


def _spacy(pattern: tuple[dict[str, Any], ...], doc: Any) -> list[tuple[int, int]]:
    matcher = Matcher(NLP.vocab, validate=True)
    matcher.add("p", [list(pattern)])
    return sorted((s, e) for _, s, e in matcher(doc))


@settings(max_examples=300, deadline=None)
@given(PATTERNS, _texts(14))
def test_the_small_matcher_finds_what_spacy_finds(pattern: tuple[dict[str, Any], ...], text: str) -> None:
    steps = steps_of(pattern, NLP.vocab.strings.add)
    assert steps is not None, pattern  # every generated pattern is one it runs itself
    doc = NLP.make_doc(text)
    columns = doc.to_array(list(COLUMNS)).T.tolist()
    assert sorted(match_steps(steps, columns, 0, len(doc))) == _spacy(pattern, doc)


def test_what_the_small_matcher_cannot_read_is_left_to_spacy() -> None:
    add = NLP.vocab.strings.add
    assert steps_of(({"LOWER": "not", "OP": "!"},), add) is None
    assert steps_of(({"LENGTH": 3},), add) is None
    assert steps_of(({"LOWER": {"REGEX": "^n"}},), add) is None
    assert steps_of(({"SHAPE": "dd"},), add) is None


@settings(max_examples=300, deadline=None)
@given(ANCHORED, _texts(MAX_REPEAT))
def test_anchored_windows_find_what_spacy_finds(pattern: tuple[dict[str, Any], ...], text: str) -> None:
    # as nlp.build runs it: the PhraseMatcher finds the anchor, the pattern runs around it;
    # texts of at most MAX_REPEAT words, as "*" and "+" reach that far from the anchor
    doc = NLP.make_doc(text)
    anchor = find_anchor(pattern)
    assert anchor is not None
    index, words = anchor
    key = NLP.vocab.strings.add("p")
    single = Matcher(NLP.vocab, validate=True)
    single.add("p", [list(pattern)])
    phrases = PhraseMatcher(NLP.vocab, attr="LOWER")
    phrases.add("anchor", [NLP.make_doc(w) for w in words])
    for steps in (True, False):  # the small matcher, and spaCy's in the same windows
        anchored = make_anchored(key, single, pattern, index, NLP.vocab.strings.add)
        if not steps:
            anchored = type(anchored)(anchored.key, single, anchored.before, anchored.after, None)
        windows = {
            anchored: [(max(0, s - anchored.before), min(len(doc), e + anchored.after)) for _, s, e in phrases(doc)]
        }
        found = run_anchored(doc, windows) if windows[anchored] else []
        assert sorted((s, e) for _, s, e in found) == _spacy(pattern, doc), (steps, pattern, text)
