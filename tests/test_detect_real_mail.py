"""Detection on the shapes real mail takes: subjects, quoted and forwarded mail, business mail.

Each table holds sentences written for these tests (no corpus rows): the
causes of misfires found on public development sets, one row each.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import email_bytes

from triage.detect import Context, Evidence
from triage.detect.engine import Detector, subject_line
from triage.detect.judged import sarcastic_thanks
from triage.message import parse

RULES = Path(__file__).resolve().parent.parent / "rules"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load(RULES)


def detect(detector: Detector, text: str, subject: str = ""):  # type: ignore[no-untyped-def]
    return detector.detect([text], [Context(subject=subject)])[0]


# ---------------------------------------------------------------- the subject is a line of the message

@pytest.mark.parametrize(
    ("subject", "body", "complaint"),
    [
        ("Unacceptable delay - compensation expected", "Please see the order details below.\nOrder 5512", True),
        ("Re: Broken kettle, second time", "See my earlier message.", False),  # a reply repeats the thread's subject
        ("Fwd: this is unacceptable", "See below.", False),  # a forward's subject is someone else's
        ("Question about delivery times", "Do you ship to Norway?", False),
    ],
)
def test_the_subject_is_read_as_a_line_of_the_message(detector: Detector, subject: str, body: str, complaint: bool) -> None:
    found = detect(detector, body, subject)
    assert found.complaint is complaint
    assert detect(detector, body).complaint is False  # the body alone says nothing
    assert all(ev.where == "text" for ev in detect(detector, body).evidence)
    for ev in found.evidence:
        source = subject_line(subject) if ev.where == "subject" else body
        assert source[ev.start : ev.end] == ev.text


@pytest.mark.parametrize(
    ("subject", "line"),
    [("Re: Fwd: AW: broken lid", ""), ("RE: late parcel", ""), ("SV: x", ""), ("  Broken   lid ", "Broken lid"),
     ("Refund for order 12", "Refund for order 12"), ("Regarding: my order", "Regarding: my order")],
)
def test_reply_and_forward_subjects_are_not_read_again(subject: str, line: str) -> None:
    assert subject_line(subject) == line


def test_a_polled_message_reads_its_subject(detector: Detector) -> None:
    message = parse(email_bytes(subject="Unacceptable delay, compensation expected", body="Order 5512, see below."))
    found = detector.detect([message.text], [Context(subject=message.subject)])[0]
    assert found.complaint and any(ev.where == "subject" for ev in found.evidence)


# ---------------------------------------------------------------- forwarded mail is context

def test_forwarded_anger_is_not_the_senders(detector: Detector) -> None:
    raw = email_bytes(
        body="FYI, see the note below from the vendor.\n\n"
        "---------------------- Forwarded by Bob Smith/HOU/ECT on 03/05/2001 04:23 PM -----\n\n"
        "This is UNACCEPTABLE!!! You idiots broke it AGAIN and I will sue you.\n"
    )
    message = parse(raw)
    assert "idiots" not in message.text and "idiots" in message.full_text
    assert detect(detector, message.text).level == "calm"


def test_subject_evidence_is_not_highlighted_in_the_text() -> None:
    from triage.web.render import highlight

    evidence = [{"start": 0, "end": 5, "text": "Order", "rule": "x", "weight": 0.5, "where": "subject"}]
    assert "<mark" not in str(highlight("Order 12 is late", evidence))
    assert "<mark" in str(highlight("Order 12 is late", [{**evidence[0], "where": "text"}]))


# ---------------------------------------------------------------- the causes of misfires, one row each

def test_lemma_patterns_cover_every_form(detector: Detector) -> None:
    from triage.detect.lexicon import expand_lemmas

    (token,), problem = expand_lemmas(({"LEMMA": "cancel"},))
    assert problem == "" and {"cancel", "cancelled", "cancelling", "cancels"} <= set(token["LOWER"]["IN"])
    from triage.detect.lexicon import forms_for, forms_of, lemma_table

    # the forms looked up for a few lemmas are exactly those the whole table maps to them
    table = lemma_table()
    for lemma in ("cancel", "Wait", "zzxqv"):
        every = {lemma.lower()} | {f.lower() for f, le in table.items() if le.lower() == lemma.lower()}
        assert forms_for([lemma]) == {lemma.lower(): sorted(every)} and forms_of(lemma) == sorted(every)
    assert expand_lemmas(({"LEMMA": {"IN": ["wait", "cancel"]}},), forms_for(["wait", "cancel"]))[0] == (
        {"LOWER": {"IN": sorted(set(forms_of("wait")) | set(forms_of("cancel")))}},)
    for text in ("We waited in line for almost an hour.", "I have been waiting three hours on hold.", "She waits for weeks."):
        assert any(e.rule == "anger.waited_long" for e in detect(detector, text).evidence), text


@pytest.mark.parametrize(
    ("text", "shout"),
    [
        ("The CPUC and CNBC covered ENRON today, see the MIME attachment.", False),  # acronyms and names
        ("Card statement shows KETTLE&CRUMB*SHOP 44.90 and BG-200 on it.", False),  # codes with symbols and digits
        ("Please read the NOTE below about the meeting.", False),  # one word of emphasis
        ("WHY IS IT SO HARD TO GET A SIMPLE ANSWER?", True),
        ("This is the SECOND time and I am NOT happy.", True),
    ],
)
def test_shouting_is_judged_over_the_message(detector: Detector, text: str, shout: bool) -> None:
    found = [e for e in detect(detector, text).evidence if e.kind == "shout" and e.rule == "anger.shouting"]
    assert bool(found) is shout


_LONG = " ".join(["The committee met on Tuesday and went through the quarterly figures in detail."] * 12)


@pytest.mark.parametrize(
    ("text", "shouted"),
    [
        # a long text with one real run: the run counts, the scattered capitals (LA, SD) do not
        (f"Sent from LA. {_LONG} Then SD called. PLEASE READ THIS NOW. {_LONG} Back to LA.", ["PLEASE READ THIS NOW"]),
        ("See [IMAGE] [IMAGE] [IMAGE] below and the [LINK] too.", []),  # a client's placeholders
    ],
)
def test_scattered_capitals_and_placeholders_are_not_shouting(detector: Detector, text: str, shouted: list[str]) -> None:
    assert [e.text for e in detect(detector, text).evidence if e.rule == "anger.shouting"] == shouted


def test_a_caps_run_counts_once(detector: Detector) -> None:
    found = [e for e in detect(detector, "WHY IS IT SO HARD TO GET AN ANSWER").evidence if e.kind == "shout"]
    assert len(found) == 1 and found[0].text == "WHY IS IT SO HARD TO GET AN ANSWER"


def _raw(detector: Detector, text: str) -> float:
    import math

    return -math.log(1.0 - detect(detector, text).score)


@pytest.mark.parametrize(
    ("angry", "plain"),
    [
        ("I am furious about the refund", "I am writing about the refund"),
        ("This is unacceptable, the lid broke", "This is the lid, it arrived"),
        ("You people are incompetent", "You people are in Leeds"),
    ],
)
@pytest.mark.parametrize("emphasis", ["!!!", " ?!", "!!! ?!"])
def test_emphasis_makes_anger_louder_more_than_it_makes_anger(
    detector: Detector, angry: str, plain: str, emphasis: str
) -> None:
    gain_angry = _raw(detector, angry + emphasis) - _raw(detector, angry)
    gain_plain = _raw(detector, plain + emphasis) - _raw(detector, plain)
    assert gain_angry > gain_plain > 0, (gain_angry, gain_plain)


@pytest.mark.parametrize(
    ("text", "profanity"),
    [("I spoke to Dick in accounts about the invoice.", False), ("Ask Hell's Kitchen for the menu.", False),
     ("Damn, the lid broke again.", True), ("What the hell is going on?", True)],
)
def test_profanity_does_not_fire_on_capitalised_names(detector: Detector, text: str, profanity: bool) -> None:
    assert any(e.kind == "profanity" for e in detect(detector, text).evidence) is profanity


@pytest.mark.parametrize(
    ("text", "threat"),
    [
        ("My credit card was charged twice.", False),  # a possessive is not a threat
        ("Our lawyer reviewed the contract yesterday.", False),
        ("I will post a very honest review on Trustpilot.", True),
        ("Refund me by Friday or I'll file a chargeback with my bank.", True),
        ("Unless this is fixed I am going to contact my lawyer.", True),
        ("I'm going to tell everyone I know about this.", True),
        # "about" is an intent only as "about to"
        ("I'm about to post this on Twitter", True),
        ("just about everyone I know had this problem", False),
        ("I told my friends about it", False),
        ("I will tell everyone about you", True),
    ],
)
def test_threats_need_an_intent_and_a_target(detector: Detector, text: str, threat: bool) -> None:
    assert any(e.kind == "threat" for e in detect(detector, text).evidence) is threat, text


@pytest.mark.parametrize(
    ("text", "cancelling"),
    [
        ("Please cancel my Kettle & Crumb plan from next week.", True),
        ("I want to terminate the contract.", True),
        ("Cancel the membership, thanks.", True),
        ("I've cancelled the standing order already, please confirm.", True),
        ("You cancelled my flight without telling me!", False),  # a complaint, not the customer leaving
        ("My flight was cancelled twice this month.", False),
        ("Should I cancel the old card on my page?", False),
    ],
)
def test_cancelling_is_the_verb_whatever_the_thing(detector: Detector, text: str, cancelling: bool) -> None:
    assert ("cancelling" in detect(detector, text).archetype_names) is cancelling, text


@pytest.mark.parametrize(
    ("text", "cancelling"),
    [
        # one order, purchase or booking cancelled is an ask (cancel), not the customer leaving
        ("Please cancel my reservation for next week.", False),
        ("I want to cancel my booking.", False),
        ("I would like to cancel my order.", False),
        ("Can you please help me in canceling my order.", False),
        ("I no longer want this can i cancel my purchase?", False),
        ("I ordered an item and I need help with cancelling and processing a refund.", False),
        ("I haven't received the item I ordered yet so I want to cancel it and get a refund.", False),
        ("My pin hasn't arrived in the post! How do I cancel it or get a new one?", False),
        ("There is a payment in the app I never made. Please cancel it!", False),
        ("I lost my card so I cancelled it, but now I found it again.", False),
        # weighing it up is a warning, not the request
        ("The exchange rate is really bad. I'm considering closing my account because of it.", False),
        ("I'm thinking about cancelling my subscription if this happens again.", False),
        ("I lost my phone, what can I do to stop someone using my account on it?", False),
        # the relationship is leaving, whatever else is cancelled beside it
        ("Cancel my last order and close my account.", True),
        ("I've cancelled the standing order already, please confirm.", True),
        ("Please cancel my subscription, the last order was late again.", True),
        ("I want to cancel. Your service is terrible.", True),
        ("How do I delete my account?", True),
        ("Please delete account.", True),  # no determiner
        ("I want to shut down my account as soon as possible.", True),
        ("I'd like my account to be deleted, I am not satisfied.", True),  # the account first
        ("I no longer want this account.", True),
        ("Please cancel this transaction, I typed the wrong amount.", False),  # one payment back, not leaving
        ("I made a transfer this morning and now I want to cancel it.", False),
        ("My wallet was stolen, please cancel my card and send a new one.", False),
        ("I have cancelled payments to this card.", False),
        # one thing named earlier does not hide the relationship named after the verb
        ("The delivery was late again, I want to cancel my subscription.", True),
        ("My card was charged again. I want to cancel this subscription.", True),
        ("I made a transfer and now I want to cancel it", False),
    ],
)
def test_what_is_cancelled_decides_leaving(detector: Detector, text: str, cancelling: bool) -> None:
    assert ("cancelling" in detect(detector, text).archetype_names) is cancelling, text


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("Cancel this awful order now.", True),
        ("I need to cancel the horrible booking I made.", True),
        ("Please cancel the disastrous reservation.", True),
        ("you cancelled my flight and nobody told me", True),
        ("I need to cancel the previous reservation because you rebooked me on the wrong day", True),
        ("I'd like to cancel my order please.", False),
        ("How do I cancel a transfer?", False),
    ],
)
def test_a_zero_weight_archetype_match_decides_only_the_archetype(detector: Detector, text: str, complaint: bool) -> None:
    """One order cancelled is an ask, not leaving; the words of that match still say how it went."""
    found = detect(detector, text)
    assert "cancelling" not in found.archetype_names, text
    assert found.complaint is complaint, text


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("My card was declined at the supermarket this morning.", "complaint.done_to_me"),  # done to the customer
        ("I got charged a fee for topping up.", "complaint.done_to_me"),
        ("There is a strange payment on my statement.", "complaint.anomaly"),  # there, and should not be
        ("I see a withdrawal in the app that I did not make.", "complaint.not_mine"),  # disowned
        ("That direct debit is not mine.", "complaint.is_not_mine"),
        ("I tried to log in twice but it keeps saying my password is wrong.", "complaint.tried_but"),  # a failed attempt
        ("I was unable to download the invoice from your site.", "complaint.unable"),
        ("I wasn't able to collect the parcel from the locker.", "complaint.could_not"),
        ("The gate agent would not let us board.", "complaint.would_not_let"),
        ("Forty hours now with no luggage.", "complaint.left_without"),  # going without what was due
    ],
)
def test_complaints_by_structure(detector: Detector, text: str, rule: str) -> None:
    found = detect(detector, text)
    assert found.complaint, text
    assert any(e.rule == rule for e in found.evidence), (text, [e.rule for e in found.evidence])


@pytest.mark.parametrize(
    "text",
    [
        "What are your current exchange rates?",  # a currency exchange is not a returned item
        "I was able to find my card this morning, how do I add it back?",  # able is not unable
        "Is ordering a second card possible?",
        "Your delivery came with no problems at all, thank you.",
    ],
)
def test_questions_and_good_news_are_not_complaints(detector: Detector, text: str) -> None:
    assert not detect(detector, text).complaint, (text, [e.rule for e in detect(detector, text).evidence])


@pytest.mark.parametrize(
    "text",
    [
        "Your customer service is terrible.",  # an anger word still grades the complaint
        "The staff at the gate were awful to us.",
        "Worst. Ever.",
    ],
)
def test_a_negative_evaluation_is_a_complaint_even_when_it_is_an_anger_word(detector: Detector, text: str) -> None:
    assert detect(detector, text).complaint, text


@pytest.mark.parametrize(
    "text",
    [
        "We waited in line for almost an hour to check in.",
        "Worst customer service I have dealt with, the staff were rude.",
        "Why isn't there anyone at the desk at this hour?",
        "Still no word about my refund.",
        "Nobody at your office picks up the phone.",
        "The parcel was supposed to arrive on Monday.",
        "Great job, the kettle broke again on the third day.",
        "Thanks for ruining my morning.",
    ],
)
def test_complaints_without_a_failure_word(detector: Detector, text: str) -> None:
    assert detect(detector, text).complaint, text


@pytest.mark.parametrize(("text", "sarcastic"), [
    # a thank-you closing a reported ordeal is sarcasm: a complaint, with the evidence named
    ("drove 9 hours round trip to rescue my daughter. Thanks!", True),
    ("We spent six hours at the airport with two toddlers. Thanks so much!", True),
    ("I drove 9 hours round trip to rescue my daughter because you cancelled our flight. Thanks!", True),
    ("My order never arrived. Thanks!", True),
    # a genuine one: nothing went wrong, it turned out well, or they say what went right after "but"
    ("It arrived today. Many thanks!", False),
    ("The replacement arrived today and works perfectly. Thanks!", False),
    ("My flight was delayed but the crew were lovely. Thank you!", False),
    ("Sorry for the confusion, I found the order. Thanks!", False),
    # what went wrong was put right after it, with or without "but"
    ("Parcel was delayed, arrived today. Thanks!", False),
    ("The parcel was delayed by a week, it finally came today. Thank you so much!", False),
    ("My card was declined yesterday, today it worked. Thanks!", False),
    ("I was charged twice and Sarah sorted it out at once. Thank you!", False),
    # a good word after the last problem, in a clause of its own
    ("We spent six hours at the airport and the staff were wonderful. Thank you!", False),
])
def test_a_thank_you_after_an_ordeal_is_a_complaint(detector: Detector, text: str, sarcastic: bool) -> None:
    found = detect(detector, text)
    assert found.complaint is sarcastic
    assert any(e.rule == "complaint.sarcastic_thanks" for e in found.evidence) is sarcastic, found.evidence


def test_many_thank_yous_after_a_problem_are_one_sarcastic_close() -> None:
    # each thank-you's sentence is looked up by index (the cost is in bench/classify.py, never in a
    # timed test): however many there are, the last closes a message that reported a problem
    n = 2000
    text = "It was broken. " + "Thanks. " * n
    evidence = [Evidence(3, 13, "was broken", "complaint.done_to_me", 0.3, "complaint")]
    evidence += [Evidence(15 + 8 * i, 21 + 8 * i, "Thanks", "complaint.valence", -0.038, "not_complaint")
                 for i in range(n)]
    out = sarcastic_thanks(text, evidence, 0.3)
    added = [e for e in out if e.rule == "complaint.sarcastic_thanks"]
    assert len(added) == 1
    # the thanks' own praise counts nothing once the close is sarcastic
    assert not any(e.kind == "not_complaint" for e in out)


def test_sarcastic_praise_is_not_praise(detector: Detector) -> None:
    found = detect(detector, "Great job, third time the kettle broke.")
    assert not any(e.kind == "not_complaint" for e in found.evidence)
    assert found.angry and found.complaint


@pytest.mark.parametrize(("text", "sarcastic"), [
    # a verdict alone in its sentence, right after a problem, is said of the problem
    ("The parcel arrived broken. Brilliant.", True),
    ("The blender stopped working after a week. Just perfect!", True),
    # praise of something that went well, or turned by "though", is meant
    ("Delivery was quick. Brilliant.", False),
    ("The parcel arrived a day late. Great product though!", False),
])
def test_a_lone_verdict_after_a_problem_is_sarcasm(detector: Detector, text: str, sarcastic: bool) -> None:
    found = detect(detector, text)
    assert any(e.kind == "not_complaint" for e in found.evidence) is not sarcastic, found.evidence
    if sarcastic:
        assert found.complaint


def test_long_digest_of_other_peoples_news_is_not_fury(detector: Detector) -> None:
    sharp = "Critics called the price spike an outrageous disaster. "
    filler = ("The committee met on Tuesday to review the proposal for the new pipeline, and the staff "
              "presented the schedule, the budget and the expected volumes for the next three quarters. ") * 6
    digest = "".join(f"Item {i}: {sharp}{filler}\n\n" for i in range(12))
    assert len(digest) > 10_000
    assert not detect(detector, digest).angry
    assert detect(detector, sharp * 3).angry  # the same words, said at once, are anger


@pytest.mark.parametrize(
    ("excited", "angry_words"),
    [
        # the same swearing or annoyance word: with praise beside it, excitement, not anger
        ("Actually looks really fucking fun. Where can I do this?", "Actually looks really fucking bad. Where can I do this?"),
        ("Holy shit, this new blend is amazing, best coffee ever!", "Holy shit, this new blend is bitter!"),
        ("It's a bit annoying to unwrap, but the mug is lovely and I am delighted.", "It's a bit annoying to unwrap."),
    ],
)
def test_praise_beside_strong_words_calms_the_score(detector: Detector, excited: str, angry_words: str) -> None:
    calm, hot = detect(detector, excited), detect(detector, angry_words)
    assert calm.score < hot.score, (calm.evidence, hot.evidence)
    assert any(e.rule == "anger.valence" and e.kind == "calm" and e.weight < 0 for e in calm.evidence), calm.evidence


@pytest.mark.parametrize(
    "text",
    [
        # praise in a message that reports a problem is sarcasm or politeness: no calm taken off
        "Great, just great. The kettle broke again, so annoying.",
        "I love your shop, but the grinder arrived broken and I am frustrated.",
        "Wonderful service as always: the order is late again. Annoying.",
    ],
)
def test_praise_never_calms_a_complaint(detector: Detector, text: str) -> None:
    found = detect(detector, text)
    assert found.complaint and found.angry, found.evidence
    assert not any(e.rule == "anger.valence" and e.kind == "calm" for e in found.evidence), found.evidence
