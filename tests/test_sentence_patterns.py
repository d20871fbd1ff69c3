"""The sentence patterns written for speed match exactly what their plain forms match."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from triage.detect import facts, judged

TEXTS = st.text(alphabet="ab .!?\n\t$9", max_size=40)
PAIRS = [
    (re.compile(judged.SENTENCE_END_PLAIN), judged._SENTENCE_END),
    (re.compile(facts.SENTENCE_PLAIN), facts._SENTENCE),
]


@settings(max_examples=500, deadline=None)
@given(TEXTS, st.integers(0, 40))
@example("It broke!!\nAgain?! $89.99 e.g. fine.", 0)
@example("a.\n", 1)
def test_the_fast_sentence_patterns_find_what_the_plain_ones_find(text: str, pos: int) -> None:
    for plain, fast in PAIRS:
        assert [m.span() for m in fast.finditer(text, pos)] == [m.span() for m in plain.finditer(text, pos)], (
            fast.pattern,
            text,
        )
