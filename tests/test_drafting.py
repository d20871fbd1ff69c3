"""Drafting: template choice by rules, personal and safe rendering, and the rules check."""

from __future__ import annotations

import dataclasses
import re
import shutil
import tomllib
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from triage.config import SupportSettings
from triage.detect import ARCHETYPES, ArchetypeHit, Detection, Facts
from triage.drafting.context import CONTEXT_KEYS, add_working_days, cancel_what, first_name, format_day
from triage.drafting.drafter import Drafter, DraftText, draft_row
from triage.drafting.outgoing import parse_our_id
from triage.errors import DraftError, RulesError
from triage.message import Message
from triage.store import DraftKind, NewDraft

ROOT = Path(__file__).parent.parent
RULES, TEMPLATES = ROOT / "rules", ROOT / "templates"
DATA = Path(__file__).parent / "data" / "draft"
SUPPORT = SupportSettings(address="help@bramble.test", name="Bramble & Co", agent="Maya")
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)  # a Friday
CASES = tomllib.loads((DATA / "cases.toml").read_text(encoding="utf-8"))["case"]


@pytest.fixture(scope="module")
def drafter() -> Drafter:
    return Drafter.load(RULES, TEMPLATES, SUPPORT)


def message(sender_name: str = "Ann Lee", subject: str = "Broken blender", text: str = "",
            reply_to: str = "") -> Message:
    return Message(message_id="<orig.1@customer.test>", sender_name=sender_name,
                   sender_address="ann@customer.test", subject=subject, date=NOW, text=text,
                   full_text=text, reply_to=reply_to)


def detection(level: str = "angry", complaint: bool = True, archetypes: tuple[str, ...] = (),
              topic: str = "", **facts: Any) -> Detection:
    return Detection(score=0.5, level=level, complaint=complaint,
                     archetypes=tuple(ArchetypeHit(a, "test") for a in archetypes),
                     facts=Facts(**facts), topic=topic)


def case_inputs(case: dict[str, Any]) -> tuple[Message, Detection]:
    facts = {k: tuple(case.get(k, ())) for k in ("orders", "amounts", "dates", "products")}
    return (message(case["sender_name"], case["subject"], case["text"]),
            detection(case["level"], case["complaint"], tuple(case.get("archetypes", ())),
                      case.get("topic", ""), problem=case.get("problem", ""), **facts))


def paragraphs(body: str) -> list[str]:
    return [p.strip() for p in body.strip().split("\n\n") if p.strip()]


REPLY_CLOSE = "You can reply to this email at any point, and it comes straight to me."
MEEK_CLOSE = "Please don't worry about writing again if anything else comes up: I'd much rather hear about it."


def assert_well_formed(draft: DraftText, greeting: str | None = None) -> None:
    """The handling steps every draft must show, whatever the template."""
    paras = paragraphs(draft.body)
    assert paras[0] in ("Hi there,", greeting or paras[0]) and re.fullmatch(r"Hi \S+,", paras[0])
    assert paras[-1] == "Best wishes,\nMaya\nBramble & Co"
    closing = paras[-2]
    # the close asks only what is still open: a question, or (nothing open) where to reach us
    assert "\n" not in closing and (closing.endswith("?") or closing in (REPLY_CLOSE, MEEK_CLOSE)), closing
    if draft.situation not in ("information", "thanks"):  # a question answered needs no apology or date
        assert "I'm sorry" in draft.body or "I\u2019m sorry" in draft.body
        assert re.search(r"(Monday|Tuesday|Wednesday|Thursday|Friday) \d{1,2} [A-Z][a-z]+", draft.body)
    assert draft.lint == ()
    assert "  " not in draft.body and " ." not in draft.body and " ," not in draft.body
    assert not re.search(r"#(?!\w)|\u201c\s*\u201d|\(\s*\)", draft.body)
    assert "Dear" not in draft.body and "valued customer" not in draft.body


# --------------------------------------------------------------------------- choice and rendering


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_each_case_gets_its_template_and_a_personal_well_formed_draft(
        drafter: Drafter, case: dict[str, Any]) -> None:
    msg, det = case_inputs(case)
    draft = drafter.render(msg, det, 42, NOW)
    assert draft.template == case["expect_template"]
    assert draft.body.startswith(case["expect_greeting"] + "\n")
    assert case["expect_detail"] in draft.body
    assert_well_formed(draft, case["expect_greeting"])


@pytest.mark.parametrize("archetypes", [(), *((a,) for a in ARCHETYPES)])
@pytest.mark.parametrize("facts", ["rich", "missing"])
@pytest.mark.parametrize("topic", ["", "billing", "gardening"])
def test_every_archetype_renders_cleanly_with_rich_and_missing_facts(
        drafter: Drafter, archetypes: tuple[str, ...], facts: str, topic: str) -> None:
    if facts == "rich":
        msg = message("Ann Lee", "Order 10234", "My Vitamix arrived with a cracked jug.")
        det = detection("angry", True, archetypes, topic, orders=("10234",), products=("Vitamix",),
                        amounts=("£320",), dates=("2 November",),
                        problem="My Vitamix arrived with a cracked jug.")
        detail = "10234"
    else:
        msg = message("Support Team", "", "it broke")
        det = detection("annoyed", True, archetypes, topic)
        detail = "you wrote \u201cit broke\u201d"  # nothing named: their words, never a guessed "the item"
    draft = drafter.render(msg, det, 7, NOW)
    assert detail in draft.body
    assert_well_formed(draft)


@pytest.mark.parametrize(("archetypes", "topic", "level", "complaint", "template"), [
    (("high_roller", "aggressive"), "", "furious", True, "high_roller"),
    (("aggressive", "high_roller"), "", "furious", True, "high_roller"),
    (("cancelling", "high_roller"), "billing", "angry", True, "cancelling"),
    (("barnacle", "chronic"), "", "annoyed", True, "barnacle"),
    (("meek", "chronic"), "", "annoyed", True, "chronic"),
    (("aggressive",), "billing", "furious", True, "transfer"),
    (("aggressive",), "shipping", "furious", True, "transfer"),
    (("aggressive",), "gardening", "furious", True, "aggressive"),
    ((), "", "calm", False, "question"),
    ((), "", "annoyed", False, "complaint"),
    ((), "", "calm", True, "complaint"),
    ((), "", "furious", True, "complaint"),
])
def test_precedence_when_archetypes_combine(drafter: Drafter, archetypes: tuple[str, ...], topic: str,
                                            level: str, complaint: bool, template: str) -> None:
    assert drafter.choose(detection(level, complaint, archetypes, topic))[0] == template


def test_transfer_names_the_specialist_and_why(drafter: Drafter) -> None:
    draft = drafter.render(message(text="I was charged twice."), detection(topic="billing"), 1, NOW)
    assert "Dana, our billing specialist, because she can see every payment" in draft.body


def test_cancellation_is_confirmed_at_once_without_retention(drafter: Drafter) -> None:
    draft = drafter.render(message(text="Please close my account."),
                           detection(archetypes=("cancelling",)), 1, NOW)
    # the draft never claims the cancellation is done: it is the agent's checklist item
    assert "[[confirm: I've closed your account.]]" in draft.body
    assert "effective today" not in draft.body and "Done:" not in draft.body
    assert not re.search(r"(?i)\b(discount|offer|reconsider|before you leave, )\b", draft.body)
    # next step today (0 working days): the same Friday
    assert "Friday 20 November" in draft.body


CANCEL_WHAT = [
    # (their words, subject, order numbers found, expected cancel_what)
    ("Hi, please cancel my coffee bean box subscription (KC-SUB-2291) as of now.", "", (), "subscription"),
    ("", "Cancel subscription KC-SUB-2291", (), "subscription"),
    (("Could you cancel our coffee bean box (KC-SUB-3050) after the November one? "
      "And close the account too."), "", (), "subscription"),
    ("Please close my Kettle & Crumb account and delete my personal data.", "", (), "account"),
    ("Please close my account.", "", (), "account"),
    ("I want to delete my profile.", "", (), "account"),
    ("Please end my membership from December.", "", (), "membership"),
    ("Unsubscribe me from the monthly plan please.", "", (), "subscription"),
    ("Please cancel order #10234, it hasn't shipped.", "", ("#10234",), "order"),
    ("Please cancel #10234.", "", ("#10234",), "order"),
    ("It hasn't shipped yet, so please cancel it.", "Order 10234", ("10234",), "order"),
    ("I'd like to stop my order from going out.", "", (), "order"),
    ("I don't want to cancel my account, just the order 10234 please cancel.", "", ("10234",), "order"),
    ("I'm leaving 1-star reviews everywhere about order KC-21190.", "", ("KC-21190",), ""),
    ("I want out. Delete my data.", "", (), ""),
    ("The kettle from order 10234 leaks.", "Cancelling", ("10234",), ""),
    ("At the end of my subscription period I was charged again.", "", (), ""),
    ("", "", (), ""),
]


@pytest.mark.parametrize(("text", "subject", "orders", "expected"), CANCEL_WHAT,
                         ids=[f"{c[3] or 'nothing'}: {(c[0] or c[1])[:40]}" for c in CANCEL_WHAT])
def test_cancel_what_names_what_they_asked_to_cancel(text: str, subject: str, orders: tuple[str, ...],
                                                     expected: str) -> None:
    assert cancel_what(message(subject=subject, text=text), Facts(orders=orders)) == expected


CANCEL_DRAFTS = [
    # (their words, level, complaint, facts, must be in the draft, must not be)
    ("Please cancel my coffee bean box subscription. Nothing wrong with it, just cutting back.",
     "calm", True, {"products": ("coffee subscription",)},
     ["[[confirm: I've cancelled your coffee subscription.]] I'm sorry to see you go.",
      "Your account and past orders stay"], ["let you down", "cancelled your account"]),
    ("Please cancel my subscription.", "calm", False, {},
     ["[[confirm: I've cancelled your subscription.]] I'm sorry to see you go."], ["let you down"]),
    ("Three late boxes is enough, cancel my subscription!", "angry", True, {},
     ["[[confirm: I've cancelled your subscription.]] I'm sorry we let you down."], ["see you go"]),
    ("Please end my membership.", "calm", False, {},
     ["[[confirm: I've cancelled your membership.]] I'm sorry to see you go."], ["account,"]),
    ("Please cancel order #10234, I ordered the wrong size.", "calm", False, {"orders": ("#10234",)},
     ["[[confirm: I've cancelled order 10234.]] I'm sorry it didn't work out this time.",
      "Anything else you've ordered from us is unaffected.", "Is there anything else I can help with?"],
     ["see you go", "before you go", "let you down"]),
    # nothing named to cancel: nothing is confirmed, not even as an item for the agent; the draft asks which
    ("The kettle from order 10234 leaks. I'm leaving.", "angry", True, {"orders": ("10234",)},
     ["I'm sorry we let you down.", "Is it an order, your subscription, or your whole account?"],
     ["cancelled order", "closed your account", "[[confirm:", "written confirmation"]),
    ("Please close my account.", "calm", False, {},
     ["[[confirm: I've closed your account.]] I'm sorry to see you go.",
      "The warranties on what you've bought from us still hold"], ["let you down", "stay exactly"]),
]


@pytest.mark.parametrize(("text", "level", "complaint", "facts", "must", "must_not"), CANCEL_DRAFTS,
                         ids=[c[0][:40] for c in CANCEL_DRAFTS])
def test_cancellation_confirms_what_they_asked_and_apologises_only_as_it_fits(
        drafter: Drafter, text: str, level: str, complaint: bool, facts: dict[str, tuple[str, ...]],
        must: list[str], must_not: list[str]) -> None:
    draft = drafter.render(message(subject="Cancelling", text=text),
                           detection(level, complaint, ("cancelling",), **facts), 5, NOW)
    assert draft.template == "cancelling"
    for phrase in must:
        assert phrase in draft.body
    for phrase in must_not:
        assert phrase not in draft.body
    assert len(re.findall(r"I'm sorry", draft.body)) == 1
    assert_well_formed(draft)


@pytest.mark.parametrize(("purpose", "extra", "must"), [
    ("promise_update", {"promise": "a replacement jug", "promise_due": date(2026, 11, 24),
                        "progress": "it left our warehouse this morning."},
     ["I promised you a replacement jug by Tuesday 24 November",
      "it left our warehouse this morning."]),
    ("promise_update", None, ["I'm still working on it"]),
    ("follow_up", None, ["order 10234", "check that everything is now as it should be"]),
])
def test_promise_update_and_follow_up(drafter: Drafter, purpose: str, extra: dict[str, Any] | None,
                                      must: list[str]) -> None:
    det = detection(orders=("10234",))
    draft = drafter.render(message(), det, 3, NOW, purpose=purpose, extra=extra)
    assert draft.template == purpose
    for text in must:
        assert text in draft.body
    assert_well_formed(draft)


def test_unknown_purpose_or_extra_is_refused(drafter: Drafter) -> None:
    with pytest.raises(DraftError):
        drafter.render(message(), detection(), 1, NOW, purpose="newsletter")
    with pytest.raises(DraftError):
        drafter.render(message(), detection(), 1, NOW, purpose="follow_up", extra={"bonus": "x"})


def test_subject_is_a_reply_subject(drafter: Drafter) -> None:
    draft = drafter.render(message(subject="RE: Re: AW: Broken blender"), detection(), 1, NOW)
    assert draft.subject == "Re: Broken blender"


# --------------------------------------------------------------------------- injection


@pytest.mark.parametrize("evil", [
    "{{ 7*7 }}", "{% for x in range(3) %}loop{% endfor %}", "{{ ''.__class__.__mro__ }}",
    "{# comment #}", "{% include '/etc/passwd' %}", "{{ greeting }}{{ agent }}",
])
def test_customer_text_is_printed_literally_never_run(drafter: Drafter, evil: str) -> None:
    msg = message(sender_name=evil, subject=evil, text=f"The jug is cracked {evil} and leaks.")
    det = detection(problem=f"The jug is cracked {evil} and leaks.", products=(evil,))
    draft = drafter.render(msg, det, 1, NOW)
    assert evil in draft.body
    assert "49" not in draft.body and "looploop" not in draft.body
    assert draft.subject == f"Re: {evil}"
    assert draft.body.startswith("Hi there,\n")


def test_a_10000_character_name_and_subject_render_safely(drafter: Drafter) -> None:
    huge = "Ann " + "x" * 10_000
    draft = drafter.render(message(sender_name="y" * 10_000, subject=huge, text=""), detection(), 1, NOW)
    assert draft.body.startswith("Hi there,\n")
    assert len(draft.subject) < 260 and len(draft.body) < 3000
    assert drafter.render(message(sender_name=huge), detection(), 1, NOW).body.startswith("Hi Ann,")


def test_control_characters_never_reach_the_body_or_subject(drafter: Drafter) -> None:
    msg = message(sender_name="Ann\r\nBcc: x@evil.test", subject="Hi\r\nBcc: x@evil.test\x00",
                  text="It broke\x00\x1b[31m badly.")
    draft = drafter.render(msg, detection(), 1, NOW)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\r]", draft.body + draft.subject)
    assert "\n" not in draft.subject


def test_customer_quoting_a_banned_phrase_is_not_blamed_on_us(drafter: Drafter) -> None:
    text = "Your agent said calm down and that's our policy!"
    draft = drafter.render(message(subject="", text=text), detection(problem=text), 1, NOW)
    assert "calm down" in draft.body and draft.lint == ()


# --------------------------------------------------------------------------- needs_reply


@pytest.mark.parametrize(("text", "det", "needs"), [
    ("Thanks, all good now!", detection("calm", False), False),
    ("Problem solved, thank you.", detection("calm", False), False),
    ("Got it, cheers", detection("calm", False), False),
    ("It arrived today. Many thanks!", detection("calm", False), False),
    ("Thanks, but it's still broken.", detection("calm", False), True),
    ("Thanks! When will the refund arrive?", detection("calm", False), True),
    ("Thanks, please send the invoice too", detection("calm", False), True),
    ("Thanks for nothing.", detection("angry", True), True),
    ("Thank you, please cancel my account", detection("calm", False, ("cancelling",)), True),
    ("Hello, my blender is making a noise.", detection("calm", False), True),
    ("Thanks " + "really " * 60, detection("calm", False), True),
    ("", detection("calm", False), True),
])
def test_needs_reply(drafter: Drafter, text: str, det: Detection, needs: bool) -> None:
    assert drafter.needs_reply(message(text=text, subject="Re: your order"), det) is needs


# --------------------------------------------------------------------------- names and dates

FIRST_NAMES = [
    ("Ann Lee", "Ann"), ("Lee, Ann", "Ann"), ("ANN LEE", "Ann"), ("ann lee", "Ann"),
    ('"Ann Lee"', "Ann"), ("'Ann Lee'", "Ann"), ("\u201cAnn Lee\u201d", "Ann"),
    ("Zoë Ødegård", "Zoë"), ("Łukasz Nowak", "Łukasz"), ("ŁUKASZ NOWAK", "Łukasz"),
    ("Dr. Ann Lee", "Ann"), ("Mr John Smith", "John"), ("Prof. Dr. Hans Müller", "Hans"),
    ("Mr Smith", ""), ("Dr. Lee", ""), ("J. Smith", ""), ("J. Edgar Hoover", "Edgar"),
    ("Ann Lee, PhD", "Ann"), ("Ann Lee, Sales Manager", "Ann"), ("Ann Lee, Acme Ltd", "Ann"),
    ("Lee, Ann (Accounts)", "Ann"), ("jean-luc picard", "Jean-Luc"),
    ("Siobhán O'Brien", "Siobhán"), ("O'Brien, Siobhán", "Siobhán"),
    ("ann@customer.test", ""), ("ann.lee", ""), ("Support Team", ""), ("Accounts Payable", ""),
    ("ACME Ltd", ""), ("Customer Service", ""), ("user1234", ""), ("", ""), ("   ", ""),
    ("山田 太郎", ""), ("x" * 10_000, ""), ("Ann\r\nBcc: x@evil.test", ""), ("A", ""),
]


@pytest.mark.parametrize(("display", "expected"), FIRST_NAMES)
def test_first_name(display: str, expected: str) -> None:
    assert first_name(display) == expected


@pytest.mark.parametrize(("start", "days", "expected"), [
    (date(2026, 11, 20), 1, "Monday 23 November"),   # Friday + 1
    (date(2026, 11, 23), 1, "Tuesday 24 November"),
    (date(2026, 11, 21), 0, "Monday 23 November"),   # Saturday, today -> Monday
    (date(2026, 11, 20), 0, "Friday 20 November"),
    (date(2026, 12, 23), 1, "Monday 28 December"),   # holidays 24-26 December
    (date(2026, 11, 20), 5, "Friday 27 November"),
])
def test_next_step_date(start: date, days: int, expected: str) -> None:
    holidays = frozenset({date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26)})
    assert format_day(add_working_days(start, days, holidays)) == expected


# --------------------------------------------------------------------------- the rules check


def shipped_copy(tmp_path: Path) -> tuple[Path, Path]:
    rules, templates = tmp_path / "rules", tmp_path / "templates"
    shutil.copytree(RULES, rules)
    shutil.copytree(TEMPLATES, templates)
    return rules, templates


def load_fails(rules: Path, templates: Path) -> str:
    with pytest.raises(RulesError) as exc:
        Drafter.load(rules, templates, SUPPORT)
    return str(exc.value)


@pytest.mark.parametrize(("fixture", "must"), [
    ("undefined_variable.j2", ["undefined variable(s): order_number"]),
    ("banned_phrase.j2", ["banned phrase 'We apologize for any inconvenience'",
                          "banned phrase 'As per my last email'"]),
    ("syntax_error.j2", ["line", "template syntax error"]),
    ("empty_order.j2", ["'#' with nothing after it"]),
])
def test_a_broken_template_fails_the_rules_check_with_file_and_name(
        tmp_path: Path, fixture: str, must: list[str]) -> None:
    rules, templates = shipped_copy(tmp_path)
    target = templates / fixture.replace(".j2", "_reply.j2")
    shutil.copy(DATA / "broken" / fixture, target)
    error = load_fails(rules, templates)
    assert f"{target}: key '{target.stem}'" in error or f"{target}:" in error
    for text in must:
        assert text in error


def test_a_shipped_template_edited_badly_fails_with_its_name(tmp_path: Path) -> None:
    rules, templates = shipped_copy(tmp_path)
    path = templates / "aggressive.j2"
    path.write_text(path.read_text() + "\nCalm down, {{ customer_name }}.\n")
    error = load_fails(rules, templates)
    assert "key 'aggressive': undefined variable(s): customer_name" in error


def test_a_variable_in_an_untaken_branch_is_still_caught(tmp_path: Path) -> None:
    rules, templates = shipped_copy(tmp_path)
    (templates / "odd.j2").write_text("{% if level == 'nope' %}{{ shoe_size }}{% endif %}Hi?\n")
    assert "shoe_size" in load_fails(rules, templates)


BAD_REPLIES = tomllib.loads((DATA / "broken" / "replies_additions.toml").read_text())["bad"]


@pytest.mark.parametrize("bad", BAD_REPLIES, ids=[b["error"][:40] for b in BAD_REPLIES])
def test_bad_replies_toml_fails_with_file_key_and_line(tmp_path: Path, bad: dict[str, str]) -> None:
    rules, templates = shipped_copy(tmp_path)
    path = rules / "replies.toml"
    path.write_text(path.read_text() + "\n" + bad["snippet"])
    error = load_fails(rules, templates)
    assert bad["error"] in error
    assert re.search(rf"{re.escape(str(path))}:\d+: key", error)


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    rules, templates = shipped_copy(tmp_path)
    shutil.copy(DATA / "broken" / "undefined_variable.j2", templates / "one.j2")
    shutil.copy(DATA / "broken" / "banned_phrase.j2", templates / "two.j2")
    (rules / "replies.toml").write_text((rules / "replies.toml").read_text() + "\n[oops]\n")
    with pytest.raises(RulesError) as exc:
        Drafter.load(rules, templates, SUPPORT)
    keys = {p.key for p in exc.value.problems}
    assert {"one", "two", "oops"} <= keys


def test_missing_templates_folder_is_a_problem(tmp_path: Path) -> None:
    error = load_fails(RULES, tmp_path / "nowhere")
    assert "no *.j2 templates found" in error


def test_context_is_documented_in_the_readme() -> None:
    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    missing = [k for k in CONTEXT_KEYS if f"`{k}`" not in readme]
    assert missing == []


def test_every_shipped_template_is_documented_and_reachable(drafter: Drafter) -> None:
    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    shipped = {p.stem for p in TEMPLATES.glob("*.j2")}
    assert all(f"`{name}.j2`" in readme for name in shipped)
    used = {r.template for r in drafter.rules.choose} | {drafter.rules.default_template}
    used |= set(drafter.rules.purposes.values())
    assert used == {n for n in shipped if not n.startswith("_")}


def test_a_reply_and_a_check_in_are_stored_as_the_same_pending_row(drafter: Drafter) -> None:
    original = Message("<m1@customer.test>", "Ann Lee", "ann@customer.test", "Broken blender", NOW,
                       "It arrived broken.", "", reply_to="tickets@customer.test")
    text = drafter.render(original, detection(), 7, NOW)
    reply = draft_row(7, 3, original, text, SUPPORT, token="m3", now=NOW)
    check_in = draft_row(7, 3, original, text, SUPPORT, token="f2", now=NOW, kind=DraftKind.CHECK_IN)
    assert dataclasses.replace(reply, outgoing_message_id="") == NewDraft(
        case_id=7, message_id=3, kind=DraftKind.REPLY, template=text.template,
        to_address="tickets@customer.test", subject=text.subject, body=text.body,
        lint=tuple(text.lint), outgoing_message_id="", created_at=NOW,
    )
    assert re.fullmatch(r"<triage\.c7\.m3\.[A-Za-z0-9_-]{22}@bramble\.test>", reply.outgoing_message_id)
    assert dataclasses.replace(check_in, kind=reply.kind, outgoing_message_id=reply.outgoing_message_id) == reply
    assert (check_in.kind, parse_our_id(check_in.outgoing_message_id)) == ("check-in", (7, "bramble.test"))


def test_findings_kept_by_body_are_still_filtered_by_each_contexts_customer_words() -> None:
    from triage.drafting.drafter import lint_body
    from triage.drafting.tone import Linter

    linter = Linter.load(RULES)
    body = "Hi, you wrote that it is no big deal. Thank you in advance for your patience."
    empty: dict[str, Any] = {k: "" for k in ("their_words", "subject", "about", "details", "problem_phrase", "restated",
                                             "their_question", "wondered")}
    empty.update({k: [] for k in ("orders", "products", "dates", "amounts")})
    theirs = {**empty, "their_words": "it is no big deal"}
    linted: dict[str, Any] = {}
    ours = lint_body(linter, body, empty, linted)
    assert {f.rule for f in ours} >= {"condescending", "thanks-in-advance"} and body in linted
    quoted = lint_body(linter, body, theirs, linted)  # the same body from the cache, other words theirs
    assert quoted == lint_body(linter, body, theirs) == [f for f in ours if f.rule != "condescending"]
    assert lint_body(linter, body, empty, linted) == ours
