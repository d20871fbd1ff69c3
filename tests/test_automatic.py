"""rules/automatic.toml: auto-replies without RFC 3834 headers, per language, and ticket acknowledgements.

The files in tests/data/auto named ``<lang>_...`` are out-of-office replies
whose only sign is their subject (and, for an "opening" without a colon,
their text or that they answer our reply); ``ticket_ack_...`` are
ticket-system acknowledgements; ``x_loop_...``/``x_precedence_...`` carry
only that header. tests/data/auto/human holds people's complaints that
mention the same words and must stay complaints.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import Workspace, email_bytes

from triage.automatic import AutoRules
from triage.errors import RulesError
from triage.message import parse

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
AUTO = Path(__file__).parent / "data" / "auto"
HUMAN = sorted((AUTO / "human").glob("*.eml"))
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt", "sv")
BY_LANGUAGE = sorted(p for p in AUTO.glob("*.eml") if p.name[:3] in {f"{c}_" for c in LANGUAGES})
TICKETS = sorted(AUTO.glob("ticket_ack_*.eml"))
DEMO = sorted((ROOT / "examples" / "inbox" / "new").glob("*.demo"))


def test_every_language_has_its_files() -> None:
    have = {p.name[:2] for p in BY_LANGUAGE}
    assert have == set(LANGUAGES)
    rules = AutoRules.load(RULES)
    assert {lang.code for lang in rules.languages} >= set(LANGUAGES)
    assert all(lang.prefixes and lang.body for lang in rules.languages)


@pytest.mark.parametrize("path", BY_LANGUAGE, ids=[p.stem for p in BY_LANGUAGE])
def test_an_auto_reply_is_recognised_by_its_subject_in_each_language(path: Path) -> None:
    raw = path.read_bytes()
    assert b"Auto-Submitted" not in raw and b"Precedence" not in raw and b"X-Auto" not in raw
    message = parse(raw, automatic=AutoRules.load(RULES))
    assert message.auto.startswith("auto-reply subject"), f"{path.name} would be answered"
    if "opening" in path.name:  # a subject without a colon needs a second sign
        assert "answering our reply" in message.auto or "and text" in message.auto


@pytest.mark.parametrize("path", TICKETS, ids=[p.stem for p in TICKETS])
def test_ticket_acknowledgements_are_automatic(path: Path) -> None:
    assert parse(path.read_bytes()).auto.startswith("ticket acknowledgement")


@pytest.mark.parametrize("name", ["x_loop_header_only.eml", "x_precedence_bulk_header_only.eml"])
def test_x_loop_or_x_precedence_alone_is_automatic(name: str) -> None:
    assert "header" in parse((AUTO / name).read_bytes()).auto


@pytest.mark.parametrize("path", HUMAN, ids=[p.stem for p in HUMAN])
def test_a_person_writing_about_auto_replies_is_not_automatic(path: Path) -> None:
    assert parse(path.read_bytes()).auto == ""


def test_an_opening_without_a_second_sign_is_a_person() -> None:
    subject = "Out of the office until 4 January"
    assert parse(email_bytes(subject=subject, body="Back soon. Where is my refund?")).auto == ""
    assert parse(email_bytes(subject=subject, body="I am out of the office. Where is my refund?")).auto
    answering = email_bytes(subject=subject, headers={"In-Reply-To": "<triage.c3.m9@example.com>"})
    assert "answering our reply" in parse(answering).auto


@pytest.mark.parametrize(
    ("subject", "body"),
    [("Out of Office - back Monday", "I am out of the office until Monday."),
     ("Automatic reply from Ann Lee", "This is an automatic reply: I am away."),
     ("Abwesenheitsnotiz von Jürgen", "Ich bin bis zum 30.11. nicht im Büro."),
     ("Thank you for contacting Acme Support", "Your ticket number is 4471. This is an automated message.")],
)
def test_a_prefix_without_its_colon_needs_the_body_too(subject: str, body: str) -> None:
    assert parse(email_bytes(subject=subject, body=body)).auto
    assert parse(email_bytes(subject=subject, body="The kettle is still broken. I am furious.")).auto == ""


@pytest.mark.parametrize(
    "subject",
    ["Automatisk svar: Re: ordre", "Automaattinen vastaus: Re: tilaus", "Odpowiedź automatyczna: Re: zamówienie",
     "Automatická odpověď: Re: objednávka", "Otomatik yanıt: Re: sipariş"],
)
def test_more_languages_ship_too(subject: str) -> None:
    assert parse(email_bytes(subject=subject)).auto.startswith("auto-reply subject")


def test_lotus_auto_needs_a_second_sign() -> None:
    lotus = "AUTO: Ann Lee is out of the office (returning 04/01/2027)"
    assert parse(email_bytes(subject=lotus, body="I will be out of the office starting 20/11/2026.")).auto
    assert parse(email_bytes(subject="Auto: the kettle's auto-off is broken", body="It never switches off.")).auto == ""


def test_x_precedence_with_another_value_is_not_automatic() -> None:
    assert parse(email_bytes(headers={"X-Precedence": "first-class"})).auto == ""
    assert parse(email_bytes(headers={"X-Loop": ""})).auto == ""


@pytest.mark.parametrize(
    "subject",
    ["Re: Automatic reply missing from your app", "Fwd: Out of Office: Re: order", "Automatic replying is broken",
     "Autoreplies never arrive", "Outof office: x", "Refund received - thank you", "Order #48213 received broken",
     "Ticket #123 created three weeks ago, still nothing", "Your request has been received?? Where is my refund",
     "Out of Office - back Monday", "Automatic reply missing from your app", "Thanks for your email",
     "Thank you for contacting us - but the kettle is still broken"],
)
def test_subjects_only_match_at_the_start_and_as_whole_phrases(subject: str) -> None:
    assert parse(email_bytes(subject=subject)).auto == ""


@pytest.mark.parametrize(
    "subject",
    ["[EXTERNAL] Automatic reply: Re: order", "AUTOMATIC REPLY: x", "Out-of-Office: Re: x", "Auto-Reply: x",
     "Request received", "Ticket created", "Réponse automatique : Re: x",
     "Respuesta automatica: sin acento", "Automatic reply", "Abwesenheitsnotiz： x", "Out of office"],
)
def test_case_accents_tags_and_separators_do_not_matter(subject: str) -> None:
    assert parse(email_bytes(subject=subject)).auto


def test_none_of_the_demo_inboxs_real_mail_is_automatic() -> None:
    people = [p for p in DEMO if ".auto_" not in p.name and ".malformed_" not in p.name]
    assert len(people) >= 40
    automatic = [p.name for p in people if parse(p.read_bytes(), automatic=AutoRules.load(RULES)).auto]
    assert automatic == []
    robots = [p for p in DEMO if ".auto_" in p.name]
    assert robots and all(parse(p.read_bytes()).auto for p in robots)


# -- the owner's file ---------------------------------------------------------------


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    return copy


def _append(rules: Path, text: str) -> None:
    path = rules / "automatic.toml"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_an_owner_adds_a_language_and_a_header(rules: Path) -> None:
    _append(rules, '\n[subjects.et]\nprefixes = ["Automaatne vastus"]\n'
                   '\n[[headers]]\nid = "shop_bot"\nheader = "X-Shop-Bot"\n')
    mine = AutoRules.load(rules)
    raw = email_bytes(subject="Automaatne vastus: Re: tellimus")
    assert parse(raw).auto == ""  # not in the shipped file
    assert parse(raw, automatic=mine).auto == "auto-reply subject 'automaatne vastus' (et)"
    assert parse(email_bytes(headers={"X-Shop-Bot": "1"}), automatic=mine).auto == "X-Shop-Bot header (shop_bot)"


def test_without_the_file_the_shipped_signs_still_hold(rules: Path) -> None:
    (rules / "automatic.toml").unlink()
    assert parse(email_bytes(subject="Automatic reply: x"), automatic=AutoRules.load(rules)).auto


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('\n[[tickets]]\nid = "bad"\nsubject = "(("\n', "key 'tickets[bad].subject': not a valid regular expression"),
        ('\n[[tickets]]\nid = "all"\nsubject = ".*"\n', "key 'tickets[all].subject': matches an empty subject"),
        ('\n[[headers]]\nid = "sp"\nheader = "X Loop"\n', "key 'headers[sp].header': expected a header name"),
        ('\n[[headers]]\nid = "x_loop"\nheader = "X-Loop"\n', "key 'headers[x_loop].id': duplicate id"),
        ('\n[[headers]]\nid = "v"\nheader = "X-V"\nvalue = ["a"]\n', "key 'headers[v].value': unknown key; did you mean 'values'?"),
        ('\n[subjects.et]\nprefix = ["x"]\n', "key 'subjects.et.prefix': unknown key; did you mean 'prefixes'?"),
        ('\n[subjects.et]\nprefixes = "x"\n', "key 'subjects.et.prefixes': expected a list of non-empty strings"),
    ],
)
def test_a_broken_file_names_file_key_and_line(rules: Path, text: str, expected: str) -> None:
    _append(rules, text)
    with pytest.raises(RulesError) as caught:
        AutoRules.load(rules)
    found = [str(p) for p in caught.value.problems]
    assert any("automatic.toml:" in p and expected in p for p in found), found


def test_a_loop_value_out_of_range_is_reported(rules: Path) -> None:
    path = rules / "automatic.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("replies = 3", "replies = 0"), encoding="utf-8")
    with pytest.raises(RulesError, match=r"automatic\.toml:\d+: key 'loop\.replies': expected an integer from 1 to 100"):
        AutoRules.load(rules)


def test_rules_check_covers_the_file_and_poll_refuses_it(workspace: Workspace, maildir, rules: Path) -> None:  # type: ignore[no-untyped-def]
    _append(rules, '\n[[tickets]]\nid = "bad"\nsubject = "(("\n')
    workspace.maildir_config(maildir([email_bytes()]), extra=f'\n[paths]\nrules = "{rules}"\n')
    check = workspace.run("rules", "check")
    assert check.returncode == 2 and "automatic.toml" in check.stderr + check.stdout
    assert "tickets[bad].subject" in check.stderr + check.stdout
    assert "Traceback" not in check.stderr
    polled = workspace.run("poll")
    assert polled.returncode == 2 and "automatic.toml" in polled.stderr
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_polled_auto_replies_get_no_draft_and_no_deadline(workspace: Workspace, maildir, rules: Path) -> None:  # type: ignore[no-untyped-def]
    """The owner's file is the one the poll uses; no auto-reply opens a first-response deadline."""
    _append(rules, '\n[subjects.et]\nprefixes = ["Automaatne vastus"]\n')
    files = [*BY_LANGUAGE, *TICKETS]
    raws = [p.read_bytes() for p in files]
    raws.append(email_bytes(subject="Automaatne vastus: Re: tellimus", message_id="<et@customer.test>"))
    raws.append(email_bytes(message_id="<control@customer.test>"))
    workspace.maildir_config(maildir(raws), extra=f'\n[paths]\nrules = "{rules}"\n')
    summary = workspace.run_json("poll")
    assert (summary["ignored"], summary["drafts"]) == (len(files) + 1, 1), summary
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT COUNT(*) FROM deadlines").fetchone()[0] == 1
        drafted = db.execute("SELECT m.message_id FROM drafts d JOIN messages m ON m.id = d.message_id").fetchall()
    assert drafted == [("<control@customer.test>",)]
