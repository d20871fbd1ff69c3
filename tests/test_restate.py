"""Restating in our words: every demo draft, and the parts the restatement is built from."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import ROOT, Workspace
from test_demo_drafts import demo_drafts

from triage.detect.engine import Detector, classify_text
from triage.drafting.context import asked_for, key_phrase, repeat_of, waited_for

MAX_RUN = 12
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_GREETING = re.compile(r"^(?:hi|hello|hey|dear|bonjour|hallo|good (?:morning|afternoon|evening))\b", re.I)
_META = re.compile(r"\b(?:I am|I'm) writing\b|\bhope it is ok\b|\bto whom it may concern\b", re.I)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load(ROOT / "rules")


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def longest_shared_run(theirs: str, ours: str) -> tuple[int, str]:
    """The longest run of consecutive words the draft shares with the customer's text."""
    a, b = _words(theirs), _words(ours)
    best, where = 0, 0
    prev = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        cur = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                cur[j] = prev[j - 1] + 1
                if cur[j] > best:
                    best, where = cur[j], j
        prev = cur
    return best, " ".join(b[where - best : where])


def test_the_run_counter_counts() -> None:
    assert longest_shared_run("one two three four", "x two three y") == (2, "two three")
    assert longest_shared_run("a b", "c d")[0] == 0


@pytest.fixture(scope="module")
def drafted(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str]]:
    """(message, the customer's new words, the draft) for every demo draft."""
    workspace = Workspace(tmp_path_factory.mktemp("restate"))
    drafts = demo_drafts(workspace)
    with sqlite3.connect(workspace.dir / "triage.db") as db:
        texts = dict(db.execute("SELECT source_key, text FROM messages").fetchall())
    return [(d["message"], texts[d["message"]] or "", d["body"]) for d in drafts]


def test_no_draft_repeats_more_than_twelve_of_their_words(drafted: list[tuple[str, str, str]]) -> None:
    long = {}
    for message, theirs, body in drafted:
        # [[answer: ...]] and [[confirm: ...]] are notes for the agent, never sent (the agent replaces them)
        run, words = longest_shared_run(theirs, re.sub(r"\[\[.*?\]\]", " ", body, flags=re.S))
        if run > MAX_RUN:
            long[message] = words
    assert not long


def test_no_draft_quotes_a_greeting_a_meta_sentence_or_an_insult(drafted: list[tuple[str, str, str]]) -> None:
    restated = 0
    for message, _, body in drafted:
        # what is quoted, and what is said back in our words (their clause, unquoted)
        said = re.findall(r"As I understand it, ([^\n]*)", body)
        restated += len(said)
        for quoted in [*re.findall(r"“([^”]*)”", body), *said]:
            assert not _GREETING.match(quoted), (message, quoted)
            assert not _META.search(quoted), (message, quoted)
            assert not re.search(r"\b(?:incompetent|useless|idiots?|crap|ridiculous)\b", quoted, re.I), (message, quoted)
    assert restated  # the restated lines are read too, not only the quotes


def test_no_draft_claims_to_have_looked_up_an_order_in_the_restatement(drafted: list[tuple[str, str, str]]) -> None:
    assert not [m for m, _, body in drafted if "I've looked up order" in body]


def test_the_french_customer_is_not_told_she_writes_in_english(drafted: list[tuple[str, str, str]]) -> None:
    [body] = [b for m, _, b in drafted if "latin1_iso8859_1_french_wrong_beans" in m]
    assert "writing in English" not in body and "second month in a row" in body and "replacement" in body


def test_the_blender_draft_restates_problem_repeat_and_asks(drafted: list[tuple[str, str, str]]) -> None:
    [body] = [b for m, _, b in drafted if "angry_broken_blender_second_time" in m]
    # in our words: what, which order, what went wrong and how many times, not their sentence quoted
    assert "As I understand it, your blender from order 48213 arrived damaged and this is the second blender." in body
    # what they asked for is said once: by the ask lines that answer it, not again in the restatement
    assert "You'd like a replacement" not in body and "You asked for a replacement" in body


PHRASES = [
    ("The kettle arrived dented. Hi!", "the kettle arrived dented"),
    # the phrase is a clause, never a whole long sentence
    ("I bought it in March and since Wednesday the kettle leaks all over the counter.", "the kettle leaks all over the counter"),
    # an insult's sentence is never quoted, nor a meta sentence, nor what they will do
    ("You are useless idiots, the jug is cracked.", ""),
    ("I'll keep the scratched one too.", ""),
    # a time of day is one word of theirs, never where a clause breaks ("30 coach never showed up")
    ("Our 10:30 coach never showed up at the stop.", "our 10:30 coach never showed up at the stop"),
    # "a while" is a time, not "while" starting a clause
    ("I reported a broken card reader a while ago and nothing happened.", "I reported a broken card reader a while ago"),
]


@pytest.mark.parametrize(("text", "phrase"), PHRASES)
def test_key_phrase(detector: Detector, text: str, phrase: str) -> None:
    assert key_phrase(text, classify_text(detector, text)) == phrase


# where a sentence and a clause end, read in a case known to be trouble
SPLIT = [
    # "even though" opens one clause: no "even" left dangling on the one before
    ("My subscription renewed even though I cancelled it last month.", "my subscription renewed"),
    # "and" between two numbers, and "since" before a time, break no clause
    ("The engineer was supposed to come between 8 and 12.", "the engineer was supposed to come between 8 and 12"),
    ("I've been waiting since March for my deposit.", "I've been waiting since March for my deposit"),
    # a date at the clause's end is left off, not the whole clause
    ("It's the 4th and the tracking hasn't moved since Oct 29.", "the tracking hasn't moved"),
    # a title before a name ends no sentence
    ("The St. Louis branch closed my account.", "the St. Louis branch closed my account"),
]


@pytest.mark.parametrize(("text", "phrase"), SPLIT)
def test_clauses_and_sentences_end_where_they_do(detector: Detector, text: str, phrase: str) -> None:
    assert key_phrase(text, classify_text(detector, text), (0, 0)) == phrase


def test_repeat_and_waiting() -> None:
    assert repeat_of("This is the SECOND time it broke") == "second time"
    assert repeat_of("my third email about this") == "third email"
    assert repeat_of("we can always sign up again later") == ""
    assert waited_for("It's now been three weeks and nothing.") == "three weeks"
    assert waited_for("I have been waiting for 10 days") == "10 days"
    assert waited_for("It worked fine for a week, then stopped.") == ""


def test_asked_for_in_our_words(detector: Detector) -> None:
    def said(text: str) -> str:
        return asked_for(text, classify_text(detector, text))

    assert said("I want a replacement set, or my money back.") == "a replacement or your money back"
    assert said("Please cancel my bean box from the end of this month.") == \
        "to cancel your bean box from the end of this month"
    assert said("Please close my account and delete my personal data.") == \
        "your account closed and your personal data deleted"
    assert said("Do you ship to Canada?") == ""


def test_shipped_templates_render_the_new_keys(tmp_path: Path) -> None:
    text = (ROOT / "templates" / "_restate.j2").read_text(encoding="utf-8")
    for key in ("problem_phrase", "repeat", "waited", "asked_for", "wondered"):
        assert key in text


# --------------------------------------------------------------------------- real mail: subjects made of the first words

def _first_words(text: str) -> str:
    return " ".join(text.split()[:6]) + "..."


def _restated(detector: Detector, text: str, subject: str = "") -> str:
    from triage.config import SupportSettings
    from triage.detect import Context
    from triage.drafting.drafter import Drafter
    from triage.message import Message

    drafter = Drafter.load(ROOT / "rules", ROOT / "templates", SupportSettings(address="help@shop.test", name="Shop",
                                                                                agent="Sam"))
    now = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
    m = Message("<r1@customer.test>", "Ann Lee", "ann@customer.test", subject or _first_words(text), now, text, text)
    [d] = detector.detect([m.text], [Context(sender_address=m.sender_address, subject=m.subject)])
    return drafter.render(m, d, 7, now).body.split("\n\n")[1]


@pytest.mark.parametrize(("text", "said", "never"), [
    # the subject only repeats the first words: never echoed; the failure is said, not a weak cue
    ("Here we go again. Delayed at the gate why do you even sell a 715 departure", "your journey has been held up",
     "Here we go again"),
    # what went wrong, said in our words (rules/policy.toml [[problems]])
    ("The blender I ordered from your shop last month has still not arrived at my flat, it is a joke",
     "your blender hasn't reached you", "The blender I ordered from"),
    # after "tried ... but", what went wrong is what follows the contrast
    ("I attempted to pay in a cheque on Monday but the balance isn't showing it.", "the balance isn't showing",
     "but the"),
    # a concession is not the complaint, and a statement with a question mark is not a question
    ("Okay I understand one late train. But every single day this week?", "I've read your message.", "You asked"),
    # a sign of trouble says what went wrong when detection found no complaint words
    ("How long does a transfer take? I paid my landlord on Monday and it has not gone through.",
     "has not gone through", "You wrote to us about"),
])
def test_the_restatement_says_what_went_wrong_not_the_first_words(detector: Detector, text: str, said: str,
                                                                  never: str) -> None:
    restated = _restated(detector, text)
    assert said in restated and never not in restated, restated
    assert _first_words(text).rstrip(".") not in restated


# --------------------------------------------------------------------------- their clause, said in our words

OUR_WORDS = [
    # pronouns turned round; tense and negation stay theirs
    ("my bag was left in Denver", "your bag was left in Denver"),
    ("you lost my bag", "we lost your bag"),
    ("I've been charged twice for one coffee", "you've been charged twice for one coffee"),
    ("the card that was sent to me never arrived", "the card that was sent to you never arrived"),
    ("the refund that I was promised was never paid", "the refund that you were promised was never paid"),
    ("im stuck in Denver", "you're stuck in Denver"),
    # no subject written: it happened to them
    ("was told to wait at the gate", "you were told to wait at the gate"),
    ("been delayed three times now", "you've been delayed three times now"),
    ("supervisor humiliated us", "the supervisor humiliated you"),
    # nothing there, said as such
    ("Still no response", "there's still no response"),
    ("no longer freezing", ""),
    # a shouted word is said plainly, an acronym stays
    ("I've been trying for DAYS", "you've been trying for days"),
    ("the ATM kept my card", "the ATM kept your card"),
    # never ours to say: a feeling or a habit of ours they judge, a verdict, what it is not
    ("you don't care about your customers", ""),
    ("you never answer the phone", ""),
    ("the service here is horrible", ""),
    ("three late deliveries is enough", ""),
    ("I'm not a grown man", ""),
    # what must have been or should be is not what happened; "need" is no past of ours
    ("you guys must have been swamped", ""),
    ("bad weather shouldn't mean bad service", ""),
    ("you need to follow me first", ""),
    # "it" would name nothing in our sentence; no subject and verb to read; links and tags
    ("it broke", ""),
    ("Bad coffee", ""),
    ("the gate agent", ""),
    ("my flight was cancelled #fail", ""),
    # what will or would happen is not said as what did; what does not happen now is
    ("your loan payment will be taken twice", ""),
    ("I'll be charged again next month", ""),
    ("the machine won't switch on", "the machine won't switch on"),
    # told what we would do: "you" does it
    ("I was told you would update it", "you were told we would update it"),
    ("they told you to wait", "they told us to wait"),
]


@pytest.mark.parametrize(("clause", "unsaid", "said"), [
    ("was refused boarding at the gate", "My son", "your son was refused boarding at the gate"),
    ("was refused boarding at the gate", "I", "you were refused boarding at the gate"),
    ("was refused boarding at the gate", "", ""),
])
def test_in_our_words_of_whom_the_sentence_named(clause: str, unsaid: str, said: str) -> None:
    from triage.drafting.restate import in_our_words

    assert in_our_words(clause, unsaid) == said


def test_what_we_did_is_said_hedged_after_what_it_is_about(detector: Detector) -> None:
    # their words said back are what we understood, never our own statement of fault
    restated = _restated(detector, "You sent my personal data to another customer.", "Data")
    assert restated == "I've read your message about “Data”. As I understand it, we sent your personal data to " \
        "another customer.", restated


@pytest.mark.parametrize(("clause", "said"), OUR_WORDS)
def test_in_our_words(clause: str, said: str) -> None:
    from triage.drafting.restate import in_our_words

    assert in_our_words(clause) == said


@pytest.mark.parametrize(("text", "said", "never"), [
    # the clause that says what went wrong, not the side remark after it, in our words
    ("I got to the check-in desk and they said they won't take my bike box. I showed the agent my booking, "
     "and she said to call you…?", "As I understand it, they said they won't take your bike box.", "you showed"),
    # no rule says it and no evidence quoted it: read from its own structure, not left at "I've read your message."
    ("The refund that I was promised last week was never paid. Where is it?",
     "As I understand it, the refund that you were promised last week was never paid.", "I've read your message."),
    # what they suspect happened is what went wrong
    ("I think someone has used my card in a shop abroad.",
     "you think someone has used your card", "you wrote"),
    # "it" comes with the clause that says what it is
    ("Why has nothing changed? I paid in a cheque on Monday and it still isn't showing.",
     "you paid in a cheque on Monday and it still isn't showing", "As I understand it, it "),
    # what we did, as they tell it, is said as ours
    ("You moved my seat without asking me first. Now my wife and I sit apart.",
     "we moved your seat without asking you first", "You moved my seat"),
    # what follows a concession is what went wrong
    ("Okay, I understand the weather is nobody's fault, but my bag was sent to Oslo.",
     "As I understand it, your bag was sent to Oslo.", "you wrote"),
    # the reason for an aside is not what went wrong ("…as I can't be bothered"), nor a verdict
    ("I'll keep the dented tin as I can't be bothered going to the post office.", "I've read your message.", "bothered"),
    ("Honestly the service here is dreadful, and I want my account closed.", "I've read your message.", "dreadful"),
    # a judgement of us is neither quoted nor said back as what we do
    ("You people don't care about your customers at all.", "I've read your message.", "care"),
    # a clause with no subject of its own is about whoever the sentence opened with, across an aside
    ("My son, who is 12, was refused boarding at the gate.",
     "As I understand it, your son was refused boarding at the gate.", "you were"),
    ("Our dog, a small terrier, was put in the wrong crate at the airport.",
     "As I understand it, your dog was put in the wrong crate at the airport.", "you were"),
    ("My grandmother, Mrs. Wiśniewska, was left in a wheelchair at gate B12 for three hours.",
     "your grandmother was left in a wheelchair", "you were"),
    # "you" told what we would do is us doing it
    ("Please stop sending letters to my old address, I was told you would update it.",
     "As I understand it, you were told we would update it.", "told us"),
    # a hedge ("I guess", "I suppose", "I reckon") is not what happened
    ("So I guess my bag is on holiday.", "I've read your message.", "you guess"),
    ("I suppose the parcel went to the wrong town.", "I've read your message.", "you suppose"),
    # a fragment is never quoted: no verb, or under three words
    ("They told me your manager would call me. She didn't.", "I've read your message.", "you wrote"),
    ("My daughter, aged 9, was left alone at the airport.",
     "As I understand it, your daughter was left alone at the airport.", "you wrote"),
])
def test_the_restatement_says_their_clause_in_our_words(detector: Detector, text: str, said: str, never: str) -> None:
    restated = _restated(detector, text)
    assert said in restated and never not in restated, restated


@pytest.mark.parametrize(("text", "said", "never"), [
    # "wrong" said of a queue, not of what arrived: no wrong item
    ("The agent sent us to the wrong gate and the kiosks weren't working.",
     "equipment of ours you needed didn't work", "isn't what you ordered"),
    ("They sent me to the wrong desk twice.", "As I understand it, they sent you to the wrong desk twice.",
     "isn't what you ordered"),
    # a payment in one sentence and "has not arrived" in the next: the parcel has not arrived, not the money
    ("I need to stop a card payment. The parcel I paid for has still not arrived.",
     "what you ordered hasn't reached you", "money you sent"),
    # what they grant is not what went wrong: the delay they concede is not said as the problem
    ("I understand delays happen, but my bag was sent to Oslo.", "As I understand it, your bag was sent to Oslo.",
     "delay"),
    ("Delays happen, but the crew was rude to my mother.", "treated badly by our staff", "delay"),
])
def test_a_problem_is_named_only_where_the_text_says_it_went_wrong(detector: Detector, text: str, said: str,
                                                                   never: str) -> None:
    restated = _restated(detector, text)
    assert said in restated and never not in restated, restated
