"""Detection with the shipped rules: decisions, evidence, facts, archetypes on a labelled email set."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from triage.detect import LEVELS, Context, Detection, HistoryItem
from triage.detect.engine import Detector, classify_text

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
EMAILS = Path(__file__).parent / "data" / "labelled_emails.toml"
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load(RULES)


def at_least(level: str, floor: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(floor)


# ---------------------------------------------------------------- anger: (text, lowest level, highest level)

ANGER_CASES = [
    ("Hi, do you ship to Norway? And how long does delivery usually take? Thanks!", "calm", "calm"),
    ("Could you please resend the invoice for order 77120 with our VAT number on it?", "calm", "calm"),
    ("I'm not angry, just confused: which grind setting should I use?", "calm", "calm"),
    ("I am not upset at all, the kettle is lovely.", "calm", "calm"),
    ("I hate to be a pain, but could you check my order?", "calm", "calm"),
    ("I'm not happy about this.", "annoyed", "annoyed"),
    ("This is getting annoying.", "annoyed", "angry"),
    ("I am very disappointed with the delivery.", "annoyed", "annoyed"),
    ("This is the second time the parcel is late.", "annoyed", "annoyed"),
    ("I'm furious. You took my money and sent nothing.", "angry", "furious"),
    ("This is absolutely unacceptable and frankly ridiculous.", "angry", "furious"),
    ("WHERE IS MY ORDER?? I have waited three weeks. UNACCEPTABLE!!!", "furious", "furious"),
    ("You are useless idiots and I will file a chargeback.", "furious", "furious"),
    ("What the hell is wrong with you people?!", "angry", "furious"),
]


@pytest.mark.parametrize(("text", "lowest", "highest"), ANGER_CASES)
def test_anger_level(detector: Detector, text: str, lowest: str, highest: str) -> None:
    got = classify_text(detector, text)
    assert at_least(got.level, lowest) and at_least(highest, got.level), (got.level, got.score, got.evidence)
    assert got.angry == (lowest != "calm")


COMPLAINT_CASES = [
    ("The toaster I received on 3 March doesn't turn on.", True),
    ("My package still hasn't arrived and the tracking hasn't updated.", True),
    ("I was charged twice for order 81150.", True),
    ("The blender jar is cracked and leaks.", True),
    ("Do you ship to Norway?", False),
    ("Thank you so much for the fast delivery, the beans are delicious.", False),
    ("Could you tell me when the grinder will be back in stock?", False),
    ("Can I add a gift note to order 71002?", False),
    # plain moderate complaints, calm wording
    ("My kettle stopped working after a week.", True),
    ("The box arrived damaged.", True),
    ("I was charged twice.", True),
    ("Wrong grinder received, I ordered the burr one.", True),
    # negated problem words are not complaint evidence
    ("Please cancel my bean box. Nothing wrong with it, just cutting back.", False),
    ("There was no problem with the delivery, I just want to change my address.", False),
    ("The kettle is not broken, I simply prefer the black one. Can I swap it?", False),
]


@pytest.mark.parametrize(("text", "complaint"), COMPLAINT_CASES)
def test_complaint(detector: Detector, text: str, complaint: bool) -> None:
    assert classify_text(detector, text).complaint is complaint


ARCHETYPE_CASES = [
    ("Sorry to bother you, but the lid is cracked. Not a big deal.", "", "meek"),
    ("You people are USELESS!!! Fix it NOW or I call my lawyer.", "", "aggressive"),
    ("Our order arrived late.", "buyer@bigcorp.test", "high_roller"),
    ("Our order arrived late.", "someone@sub.grandhotel.test", "high_roller"),
    ("Our order arrived late.", "buyer@bigcorp.example", ""),
    ("I want a full refund and a free replacement for my trouble.", "", "barnacle"),
    ("Please close my account.", "", "cancelling"),
    ("Please cancel my subscription. You people are idiots!!!", "buyer@bigcorp.test", "cancelling"),
    ("How long is the warranty on the toaster?", "", ""),
]


CANCELLING_CASES = [
    ("Please close my Kettle & Crumb account and delete my personal data.", True),
    ("Please cancel my coffee bean box subscription from next month.", True),
    ("I'm done with you. I will take my business elsewhere.", True),
    ("I'm leaving you, this is the last straw.", True),
    # leaving a review, or leaving on a trip, is not leaving the shop
    ("I'm giving you until Wednesday, then I'm leaving 1-star reviews everywhere.", False),
    ("I'm leaving for Spain on Friday, can the kettle arrive before?", False),
    ("I don't want to cancel my subscription, just pause it for a month.", False),
    ("Should I cancel the old card on my subscription page?", False),
]


@pytest.mark.parametrize(("text", "cancelling"), CANCELLING_CASES)
def test_cancelling(detector: Detector, text: str, cancelling: bool) -> None:
    got = classify_text(detector, text)
    assert ("cancelling" in got.archetype_names) is cancelling, got.evidence


@pytest.mark.parametrize(("text", "sender", "primary"), ARCHETYPE_CASES)
def test_primary_archetype(detector: Detector, text: str, sender: str, primary: str) -> None:
    got = classify_text(detector, text, sender)
    assert (got.archetypes[0].name if got.archetypes else "") == primary, got.archetypes


def test_archetypes_follow_precedence_and_name_their_rule(detector: Detector) -> None:
    got = classify_text(detector, "You people are USELESS idiots!!! Fix it NOW.", "it@bigcorp.test")
    assert got.archetype_names == ("high_roller", "aggressive")
    assert got.archetypes[0].rule == "customers.csv:bigcorp.test"
    assert got.archetypes[1].rule.startswith("anger.")


def history(*days: int, archetypes: tuple[str, ...] = ()) -> tuple[HistoryItem, ...]:
    return tuple(HistoryItem(NOW - timedelta(days=d), True, archetypes) for d in days)


def test_chronic_counts_complaints_in_the_window(detector: Detector) -> None:
    text = "The replacement kettle is broken too."
    recent = detector.detect([text], [Context("a@b.test", history(20, 9), NOW)])[0]
    old = detector.detect([text], [Context("a@b.test", history(400, 300), NOW)])[0]
    assert recent.archetype_names == ("chronic",)
    assert "chronic.history: 3 complaint in 60 days" in recent.archetypes[0].rule
    assert old.archetypes == ()


def test_barnacle_history_needs_a_new_demand(detector: Detector) -> None:
    past = history(60, 20, archetypes=("barnacle",))
    asks = detector.detect(["The lever is stiff. What compensation can you offer?"], [Context("", past, NOW)])[0]
    plain = detector.detect(["The lever is stiff."], [Context("", past, NOW)])[0]
    assert asks.archetype_names[:1] == ("barnacle",)
    assert "barnacle" not in plain.archetype_names


# ---------------------------------------------------------------- evidence and facts


def test_evidence_offsets_point_into_the_text(detector: Detector) -> None:
    text = "Hello,\nthe kettle is\nbroken and I'm sick and\ntired of waiting. NOT happy!!!"
    got = classify_text(detector, text)
    assert got.evidence
    for ev in got.evidence:
        assert text[ev.start : ev.end] == ev.text
        assert ev.rule and ev.kind
    rules = {ev.rule for ev in got.evidence}
    assert "anger.rage" in rules  # "sick and\ntired" matched across the line wrap
    assert "anger.negated_positive" in rules


def test_negated_anger_is_not_counted_nor_listed(detector: Detector) -> None:
    got = classify_text(detector, "I'm not angry.")
    assert got.level == "calm"
    assert got.evidence == ()  # a negated or zero-weight match explains nothing


def test_facts(detector: Detector) -> None:
    text = (
        "Hi, my order #48213 (invoice INV-7781) arrived on 3 March. The coffee grinder is broken "
        "and I paid $89.99 for it. The bean box was late too."
    )
    got = classify_text(detector, text)
    assert got.facts.orders == ("48213",)
    assert got.facts.invoices == ("INV-7781",)
    assert got.facts.amounts == ("$89.99",)
    assert got.facts.dates == ("3 March",)
    assert got.facts.products == ("coffee grinder", "coffee subscription")
    assert got.facts.problem == "The coffee grinder is broken and I paid $89.99 for it."
    assert got.topic in ("quality", "delivery", "billing")


# (text, invoices, orders, problem): invoice numbers apart from orders; hard-wrapped sentences whole
FACT_CASES = [
    (
        (
            "This is not acceptable. Our invoice INV-7781 charges us for 60 bean boxes but we only\n"
            "received 45. I expect this corrected this week."
        ),
        ("INV-7781",),
        (),
        "Our invoice INV-7781 charges us for 60 bean boxes but we only received 45.",
    ),
    (
        "Hi,\nInvoice KC-INV-7911 charged me $45.00 for shipping, but my order (#48931) was $129.00.",
        ("KC-INV-7911",),
        ("48931",),
        "Invoice KC-INV-7911 charged me $45.00 for shipping, but my order (#48931) was $129.00.",
    ),
    (
        "Invoice INV-2026-0883 was charged on 2 November and then again under\ninvoice INV-2026-0891. Order 48213 is fine.",
        ("INV-2026-0883", "INV-2026-0891"),
        ("48213",),
        "Invoice INV-2026-0883 was charged on 2 November and then again under invoice INV-2026-0891.",
    ),
]


@pytest.mark.parametrize(("text", "invoices", "orders", "problem"), FACT_CASES)
def test_invoices_orders_and_wrapped_problem(
    detector: Detector, text: str, invoices: tuple[str, ...], orders: tuple[str, ...], problem: str
) -> None:
    got = classify_text(detector, text)
    assert got.facts.invoices == invoices
    assert got.facts.orders == orders
    assert got.facts.problem == problem


def test_products_come_from_the_entity_ruler(detector: Detector) -> None:
    nlp = detector.compiled.nlp
    assert "entity_ruler" in nlp.pipe_names
    doc = nlp("The Coffee Grinder and the PowerBlend 900 both arrived.")
    assert [(e.text, e.label_, e.ent_id_) for e in doc.ents] == [
        ("Coffee Grinder", "PRODUCT", "coffee grinder"),
        ("PowerBlend", "PRODUCT", "blender"),
    ]
    got = classify_text(detector, "My PowerBlend 900 and the BG-200 grinder both broke.")
    assert got.facts.products == ("blender", "coffee grinder")


def test_the_shops_own_name_is_not_a_product(detector: Detector) -> None:
    got = classify_text(detector, "Hi Kettle & Crumb team, I love the grinder. Please close my Kettle & Crumb account.")
    assert got.facts.products == ("coffee grinder",)
    assert classify_text(detector, "Kettle & Crumb sent me a kettle that leaks.").facts.products == ("kettle",)


def test_owner_product_patterns_exclusions_and_order_patterns(tmp_path: Path) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    facts = copy / "facts.toml"
    text = facts.read_text(encoding="utf-8")
    text = text.replace('exclude = ["kettle & crumb"]', 'exclude = ["kettle & crumb", "copper kettle club"]')
    text = text.replace(
        '[products]\n',
        '[products]\n"stovetop kettle" = [[{LOWER = "stovetop"}, {IS_TITLE = true, OP = "*"}, {LOWER = "kettle"}],'
        ' [{TEXT = {REGEX = "^SK-\\\\d+$"}}]]\n',
    )
    text += '\n[[orders]]\nid = "kc_code"\npattern = [{TEXT = {REGEX = "^KC-\\\\d{5}$"}}]\n'
    facts.write_text(text, encoding="utf-8")
    custom = Detector.load(copy)
    got = classify_text(
        custom,
        "The Stovetop Whistling Kettle (SK-12) is rusty, and my KC-21044 parcel is late. "
        "Also the copper kettle club newsletter is spam.",
    )
    assert got.facts.products == ("stovetop kettle",)
    assert got.facts.orders == ("KC-21044",)
    # the default rules read neither the model number nor the bare code
    plain = classify_text(Detector.load(RULES), "My SK-12 came with the KC-21044 parcel.")
    assert plain.facts.products == () and plain.facts.orders == ()


def test_topic_falls_back_to_the_product(detector: Detector) -> None:
    assert classify_text(detector, "Is the french press dishwasher safe?").topic == "french press"


def test_to_dict_is_json(detector: Detector) -> None:
    got = classify_text(detector, "This is ridiculous!!! Order 12345, $20.", "x@bigcorp.test")
    data = json.loads(json.dumps(got.to_dict()))
    assert data["angry"] is True
    assert data["rules_version"] == detector.rules_version
    assert {"score", "level", "complaint", "archetypes", "evidence", "facts", "topic"} <= set(data)


def test_to_dict_is_asdict(detector: Detector) -> None:
    """to_dict is written out field by field (it runs for every message): it must stay what
    dataclasses.asdict gives, with every field a Detection and its parts will ever have."""
    from dataclasses import asdict

    got = classify_text(detector, "Subject line\n\nI'll sue you!!! Order 12345 cost $20, refund me by Friday "
                                  "or cancel my account. Where is my parcel?", "x@bigcorp.test")
    assert got.evidence and got.asks and got.threats and got.facts.orders and got.archetypes
    expected = asdict(got)
    expected["angry"] = got.angry
    expected["threats"] = [asdict(e) for e in got.threats]
    data = got.to_dict()
    assert data == expected
    assert list(data) == list(expected)
    assert [type(v) for v in data.values()] == [type(v) for v in expected.values()]


def test_batch_and_context_contract(detector: Detector) -> None:
    texts = ["", "fine", "This is unacceptable."]
    got = detector.detect(texts, [])
    assert [type(d) for d in got] == [Detection] * 3
    assert got[0].level == "calm" and got[0].evidence == ()
    with pytest.raises(ValueError):
        detector.detect(texts, [Context()])


def test_rules_version_follows_the_files(tmp_path: Path, detector: Detector) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    assert Detector.load(copy).rules_version == detector.rules_version
    with open(copy / "customers.csv", "a", encoding="utf-8") as handle:
        handle.write("vip.test,premium\n")
    changed = Detector.load(copy)
    assert changed.rules_version != detector.rules_version
    assert classify_text(changed, "Hello", "a@vip.test").archetype_names == ("high_roller",)


def test_importing_detection_does_not_import_spacy() -> None:
    code = "import sys, triage.detect, triage.detect.engine, triage.evaluate; print('spacy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- the labelled email set


def load_emails() -> list[dict]:  # type: ignore[type-arg]
    return tomllib.loads(EMAILS.read_text(encoding="utf-8"))["email"]


def test_email_set_is_big_and_covers_every_archetype() -> None:
    emails = load_emails()
    assert len(emails) >= 60
    names = {e["archetype"] for e in emails}
    assert names >= {"", "meek", "aggressive", "high_roller", "chronic", "barnacle", "cancelling"}


@pytest.fixture(scope="module")
def email_results(detector: Detector) -> list[tuple[dict, Detection]]:  # type: ignore[type-arg]
    emails = load_emails()
    contexts = [
        Context(
            e["sender"],
            tuple(
                HistoryItem(
                    NOW - timedelta(days=h["days_ago"]), h.get("complaint", False), tuple(h.get("archetypes", ()))
                )
                for h in e.get("history", ())
            ),
            NOW,
        )
        for e in emails
    ]
    return list(zip(emails, detector.detect([e["text"] for e in emails], contexts), strict=True))


def test_email_set_per_archetype_accuracy(email_results: list[tuple[dict, Detection]]) -> None:  # type: ignore[type-arg]
    right: dict[str, list[bool]] = defaultdict(list)
    for email, got in email_results:
        primary = got.archetypes[0].name if got.archetypes else ""
        right[email["archetype"] or "none"].append(primary == email["archetype"])
    accuracy = {name: sum(v) / len(v) for name, v in right.items()}
    assert all(a >= 0.8 for a in accuracy.values()), accuracy


def test_email_set_anger_and_complaint_accuracy(email_results: list[tuple[dict, Detection]]) -> None:  # type: ignore[type-arg]
    n = len(email_results)
    angry = sum(got.angry == email["angry"] for email, got in email_results) / n
    complaint = sum(got.complaint == email["complaint"] for email, got in email_results) / n
    assert angry >= 0.85, angry
    assert complaint >= 0.85, complaint
    calm_questions = [got for email, got in email_results if not email["complaint"] and not email["angry"]]
    assert sum(g.level == "calm" for g in calm_questions) / len(calm_questions) >= 0.95


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # the failure is the problem, not the insult, the threat or the demand around it
        ("My knife set never arrived. You are completely INCOMPETENT. I will sue you.", "My knife set never arrived."),
        (
            "The blender jug arrived cracked again. I want my money back TODAY or I'm filing a chargeback.",
            "The blender jug arrived cracked again.",
        ),
        ("You people are useless idiots!!!", ""),  # nothing but abuse: no sentence to restate
    ],
)
def test_problem_sentence_never_quotes_insults_or_threats(detector: Detector, text: str, problem: str) -> None:
    assert detector.detect([text], [Context()])[0].facts.problem == problem


def test_a_stored_detection_reads_back_whole(detector: Detector) -> None:
    """What poll stores is what a later check-in sees: topic, asks and evidence included (the
    check-in used to rebuild the detection by hand and lost its topic and evidence)."""
    text = "The kettle from order 48213 broke AGAIN. I want a refund by Friday or I'll dispute the charge."
    [found] = detector.detect([text], [Context(sender_address="ann@customer.test")])
    stored = json.loads(json.dumps(found.to_dict()))  # through the store's JSON columns
    assert found.evidence and found.facts.orders
    assert Detection.from_dict(stored) == found
