"""Owners' phrases compiled on demand: a text without a phrase's needs is skipped, and nothing
the phrase's regex finds is ever missed (every shipped phrase, and random ones)."""

from __future__ import annotations

import dataclasses
import random
import re
from pathlib import Path
from typing import Any

import pytest

from triage.drafting.phrases import Phrase, compile_phrase, spans
from triage.drafting.rules import load_reply_rules
from triage.drafting.situation import is_urgent, load_policy, urgency
from triage.drafting.tone import Linter

ROOT = Path(__file__).parent.parent
RULES = ROOT / "rules"

_FILLER = ["the", "my", "order", "really", "it", "x", "we", "ok", "parcel", "not", "2", "_"]
_SEPARATORS = [" ", " ", " ", "\n", ", ", " - ", "  ", "... ", "_"]
_CONTRACT = [("do not", "don't"), ("do not", "don\u2019t"), ("can not", "can't"), ("can not", "cannot"),
             ("will not", "won't"), ("shall not", "shan't"), ("is not", "isn't"), ("has not", "hasn't"),
             ("we are", "we're"), ("it is", "it's"), ("that is", "that's"), ("i am", "i'm"),
             ("we have", "we've"), ("we will", "we'll"), ("let us", "let's")]
_SPELL = [("ise", "ize"), ("ize", "ise"), ("isation", "ization"), ("our", "or"), ("lled", "led"), ("lling", "ling")]


def _word(word: str, rng: random.Random) -> str:
    for a, b in _SPELL:
        if word.endswith(a) and (a != "our" or len(word) >= 6) and rng.random() < 0.4:
            word = word[: -len(a)] + b
    return rng.choice([word, word, word.upper(), word.title(), word.replace("'", "\u2019")])


def realise(phrase: str, rng: random.Random) -> str:
    """Some text the phrase is written to match (a wording it allows, in varied case and spacing)."""
    tokens = re.findall(r"\*\d*|\(|\)|\[|\]|\||[^\s*()\[\]|]+", phrase)
    pos = 0

    def seq(stop: set[str]) -> list[str]:
        nonlocal pos
        out: list[str] = []
        while pos < len(tokens) and tokens[pos] not in stop:
            tok = tokens[pos]
            if tok.startswith("*"):
                out += rng.sample(_FILLER, rng.randint(0, min(int(tok[1:] or 3), 2)))
                pos += 1
            elif tok in ("(", "["):
                close = ")" if tok == "(" else "]"
                alts = []
                pos += 1
                while True:
                    alts.append(seq({"|", close}))
                    if tokens[pos] == close:
                        pos += 1
                        break
                    pos += 1
                if tok == "(" or rng.random() < 0.5:
                    out += rng.choice(alts)
            else:
                out.append(_word(tok, rng))
                pos += 1
        return out

    text = " ".join(seq(set()))
    for a, b in _CONTRACT:
        if rng.random() < 0.5:
            text = re.sub(rf"\b{a}\b", b, text, flags=re.I)
        elif rng.random() < 0.3:
            text = re.sub(rf"\b{re.escape(b)}\b", a, text, flags=re.I)
    text = re.sub(" ", lambda _: rng.choice(_SEPARATORS), text)
    before = rng.choice(["", "Hello, ", "So ", "x", "\u00c9t\u00e9: ", "Dear team,\n\n"])
    after = rng.choice(["", ".", "!", " today.", "s", "\u2019s", " \U0001f600"])
    return before + text + after


def shipped_phrases() -> list[Phrase]:
    """Every phrase the shipped rules hold: tone.toml, policy.toml, answers.toml and replies.toml."""
    policy, problems = load_policy(RULES)
    rules, more = load_reply_rules(RULES, {p.stem for p in (ROOT / "templates").glob("*.j2")})
    assert policy is not None and rules is not None and not problems and not more
    found: list[Phrase] = []

    def walk(value: Any) -> None:
        if isinstance(value, Phrase):
            found.append(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                walk(getattr(value, f.name))
        elif isinstance(value, (tuple, list)):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(policy)
    walk(rules)
    walk(Linter.load(RULES).rules)
    return list(dict.fromkeys(found))


def exact(phrase: Phrase, text: str) -> list[tuple[int, int]]:
    return [m.span() for m in phrase.regex.finditer(text)]


def check(phrase: Phrase, text: str) -> bool:
    """Assert the phrase finds just what its regex finds; whether it found anything."""
    want = exact(phrase, text)
    assert [m.span() for m in phrase.finditer(text)] == want, (phrase, text)
    assert (phrase.search(text) is not None) == bool(want), (phrase, text)
    lower = text.lower()
    if len(lower) == len(text):
        assert list(spans(phrase, text, lower)) == [s for s in want if s[0] < s[1]], (phrase, text)
    return bool(want)


def test_every_shipped_phrase_finds_what_its_regex_finds() -> None:
    rng = random.Random(17)
    phrases = shipped_phrases()
    assert len(phrases) > 300
    found = 0
    for phrase in phrases:
        for _ in range(6):
            found += check(phrase, realise(phrase.text, rng))
    # the realisations are meant to match: the check above is not about texts the phrases miss
    assert found > 0.6 * 6 * len(phrases)  # some realisations are glued to a word on purpose
    # and some of every phrase's needs are in another phrase's text: the prefilter must pass those too
    texts = [realise(p.text, rng) for p in phrases]
    for phrase in phrases[::7]:
        for text in texts[::3]:
            check(phrase, text)


_WORDS = ["do", "not", "can", "will", "shall", "we", "are", "it", "is", "i", "am", "let", "us", "have",
          "apologise", "organization", "colour", "cancelled", "travelling", "o'clock", "e-mail", "caf\u00e9",
          "24", "x", "arrived", "don't", "can't", "won't", "we're", "that's", "hasn't"]


def random_phrase(rng: random.Random) -> str:
    def part(depth: int) -> str:
        roll = rng.random()
        if depth < 2 and roll < 0.15:
            return "(" + " | ".join(seq(depth + 1) for _ in range(rng.randint(2, 3))) + ")"
        if depth < 2 and roll < 0.25:
            return "[" + seq(depth + 1) + "]"
        return rng.choice(_WORDS)

    def seq(depth: int) -> str:
        items = [part(depth) for _ in range(rng.randint(1, 3))]
        if depth == 0 and len(items) > 1 and rng.random() < 0.3:
            items.insert(1, rng.choice(["*", "*1", "*5"]))
        return " ".join(items)

    return seq(0)


def test_random_phrases_find_what_their_regex_finds() -> None:
    rng = random.Random(4)
    found = total = 0
    for _ in range(400):
        phrase = compile_phrase(random_phrase(rng))
        for _ in range(5):
            found += check(phrase, realise(phrase.text, rng))
            total += 1
        check(phrase, " ".join(rng.choice(_WORDS) for _ in range(12)))
    assert found > 0.6 * total


@pytest.mark.parametrize(("phrase", "needs"), [
    ("has not arrived", ({"arrived"}, {"has"})),
    ("we apologise * inconvenience", ({"inconvenience"}, {"apologi"}, {"we"})),
    ("colour", ({"colo"},)),
    ("cancelled", ({"cancel"},)),
    ("will not", ({"will", "won"},)),
    ("can not", None),  # "can not", "cannot" or "can't": read without a prefilter
    ("can not find", ({"find"},)),
    ("my (flight|train) * cancelled", ({"flight", "train"}, {"cancel"}, {"my"})),
    ("[please] calm down", ({"down"}, {"calm"})),
    ("(x | [a] b)", ({"x", "b"},)),
    ("o'clock", ({"o"},)),
])
def test_a_phrase_needs_the_words_every_match_holds(phrase: str, needs: tuple[set[str], ...] | None) -> None:
    got = compile_phrase(phrase).needs
    assert (None if got is None else set(got)) == (None if needs is None else {frozenset(n) for n in needs})


def test_a_text_without_the_needs_is_not_searched_and_the_regex_not_compiled() -> None:
    phrase = compile_phrase("has not arrived")
    assert phrase.search("The parcel came on time, thank you.") is None
    assert list(spans(phrase, "the parcel came", "the parcel came")) == []
    assert phrase._regex is None and phrase._fast is None
    assert phrase.search("It HASN\u2019T arrived yet") is not None
    assert phrase._regex is not None


@pytest.mark.parametrize("text", [
    "It ha\u017f not arrived",  # long s: IGNORECASE reads it as "s", str.lower() leaves it
    "\u0130t has not arr\u0131ved",  # dotted capital I lowers to two characters; dotless i
    "HAS NOT ARRIVED",
])
def test_texts_lower_cannot_stand_for_are_searched_as_written(text: str) -> None:
    phrase = compile_phrase("has not arrived")
    assert check(phrase, text) == bool(re.search(r"(?i)has\W+not\W+arr[i\u0131]ved", text))


def test_urgency_reads_the_subject_and_body_once_with_the_same_answers() -> None:
    policy, _ = load_policy(RULES)
    assert policy is not None
    rng = random.Random(3)
    pieces = [realise(p.text, rng) for p in policy.urgent] + [realise(p.text, rng) for p in policy.urgent_unless]
    pieces += ["Where is my order?", "Thanks.", "", "last month", "I am stuck at the", "airport now."]
    checked = 0
    for _ in range(600):
        subject = " ".join(rng.sample(pieces, rng.randint(0, 2)))
        body = rng.choice(["", "Hi. "]) + " ".join(rng.sample(pieces, rng.randint(0, 3)))
        text = f"{subject}\n{body}"
        assert urgency(policy, text, body) == (is_urgent(policy, text), is_urgent(policy, body)), (subject, body)
        checked += is_urgent(policy, text) != is_urgent(policy, body)
    # a phrase running from the subject into the body ("...stuck at the" / "airport now.")
    assert urgency(policy, "I am stuck at the\nairport now.", "airport now.") == (True, False)
    assert checked  # some cases where the subject alone makes it urgent


def test_a_phrase_that_can_match_nothing_ends_at_the_end_of_the_text() -> None:
    phrase = compile_phrase("[please]")  # every word optional: an empty match fits at the very end
    assert list(spans(phrase, "thanks", "thanks")) == []
    for text in ("please thanks", "please, ", "!"):
        check(phrase, text)
