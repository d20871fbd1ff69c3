"""Outgoing mail: subject, threading, addressing, and header injection on this machine's Python."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.config import SupportSettings
from triage.drafting.drafter import DraftText
from triage.drafting.outgoing import (
    MAX_REFERENCES,
    ReplyError,
    build_reply,
    header_text,
    new_message_id,
    parse_our_id,
    references_for,
    reply_message,
    reply_subject,
)
from triage.message import Message, automatic_reason

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
SUPPORT = SupportSettings(address="help@bramble.test", name="Bramble & Co", agent="Maya")
MID = new_message_id(42, "bramble.test", "a1b2c3")


def build(**overrides: object) -> EmailMessage:
    args: dict[str, object] = dict(
        to="ann@customer.test", subject="Re: Broken blender", body="Hi Ann,\n\nHow can I help?\n",
        message_id=MID, in_reply_to="<orig.1@customer.test>",
        references=("<root@customer.test>", "<orig.1@customer.test>"),
        from_address="help@bramble.test", from_name="Bramble & Co", date=NOW, to_name="Ann Lee")
    args.update(overrides)
    return build_reply(**args)  # type: ignore[arg-type]


def reparse(msg: EmailMessage) -> EmailMessage:
    raw = msg.as_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


CLEAN_KEYS = [k.lower() for k in reparse(build()).keys()]


@pytest.mark.parametrize(("original", "expected"), [
    ("Broken blender", "Re: Broken blender"),
    ("Re: Broken blender", "Re: Broken blender"),
    ("Re: Re: Re: Broken blender", "Re: Broken blender"),
    ("RE: Broken blender", "Re: Broken blender"),
    ("re: broken blender", "Re: broken blender"),
    ("Re[2]: Broken blender", "Re: Broken blender"),
    ("Re(3): Broken blender", "Re: Broken blender"),
    ("AW: Broken blender", "Re: Broken blender"),
    ("SV: Broken blender", "Re: Broken blender"),
    ("Aw: RE: sv: Broken blender", "Re: Broken blender"),
    ("Re : Broken blender", "Re: Broken blender"),
    ("Fwd: Broken blender", "Re: Fwd: Broken blender"),
    ("Re: Fwd: Broken blender", "Re: Fwd: Broken blender"),
    ("FW: Broken blender", "Re: FW: Broken blender"),
    ("Regarding my order", "Re: Regarding my order"),
    ("Réclamation", "Re: Réclamation"),
    ("", "Re: your message"),
    ("Re:", "Re: your message"),
    ("  Broken\r\n blender  ", "Re: Broken blender"),
    ("{{ 7*7 }}", "Re: {{ 7*7 }}"),
])
def test_reply_subject(original: str, expected: str) -> None:
    assert reply_subject(original) == expected


def test_headers_of_a_reply_to_a_message() -> None:
    original = Message(
        message_id="<orig.3@customer.test>", sender_name="Lee, Ann", sender_address="ann@customer.test",
        subject="RE: Broken blender", date=NOW, text="x", full_text="x",
        references=("<root@customer.test>", "<orig.2@customer.test>", "<root@customer.test>"))
    draft = DraftText("complaint", reply_subject(original.subject), "Hi Ann,\n\nWhat else?\n")
    msg = reparse(reply_message(original, draft, SUPPORT, MID, NOW))
    assert msg["Subject"] == "Re: Broken blender"
    assert msg["From"] == "Bramble & Co <help@bramble.test>"
    assert msg["To"].addresses[0].addr_spec == "ann@customer.test"
    assert msg["In-Reply-To"] == "<orig.3@customer.test>"
    assert msg["References"].split() == [
        "<root@customer.test>", "<orig.2@customer.test>", "<orig.3@customer.test>"]
    assert msg["Message-ID"] == MID
    assert msg["X-Triage-Sent"] == "1"
    assert msg["Auto-Submitted"] is None
    assert msg["Date"].datetime == NOW
    assert msg.get_content().replace("\r\n", "\n") == "Hi Ann,\n\nWhat else?\n"


def test_reply_to_wins_over_from() -> None:
    original = Message("<o@c.test>", "Ann Lee", "ann@customer.test", "Hi", NOW, "x", "x",
                       reply_to="tickets@customer.test")
    msg = reparse(reply_message(original, DraftText("c", "Re: Hi", "Hi?\n"), SUPPORT, MID, NOW))
    assert str(msg["To"]) == "tickets@customer.test"


def test_message_id_embeds_the_case_id_and_a_random_part() -> None:
    assert re.fullmatch(r"<triage\.c42\.a1b2c3\.[A-Za-z0-9_-]{22}@bramble\.test>", MID)
    assert re.search(r"triage\.c(\d+)\.", MID).group(1) == "42"  # type: ignore[union-attr]
    evil = new_message_id(7, "bram>ble.test\r\nBcc: x", "to<k>en")
    assert re.fullmatch(r"<triage\.c7\.token\.[A-Za-z0-9_-]{22}@[a-z0-9.-]+>", evil)
    assert new_message_id(42, "bramble.test", "a1b2c3") != MID


@settings(max_examples=300, deadline=None)
@given(case_id=st.integers(min_value=0, max_value=10**12), domain=st.text(max_size=60),
       token=st.text(max_size=80))
def test_our_message_id_reads_back_as_the_case_and_domain_it_was_made_for(
        case_id: int, domain: str, token: str) -> None:
    mid = new_message_id(case_id, domain, token)
    ours = parse_our_id(mid)
    assert ours is not None and ours.case_id == case_id
    assert mid.endswith(f"@{ours.domain}>")
    assert automatic_reason({"Message-ID": mid}, "ann@customer.test", "text/plain") == "our own reply"


@pytest.mark.parametrize("mid", ["<abc@customer.test>", "<triage.cx.1@bramble.test>",
                                 "<triage.c12@bramble.test>", "<re.triage.c1.a@bramble.test>",
                                 "<triage.c1.a@<b>", "triage.c1.a@bramble.test", ""])
def test_anyone_elses_message_id_is_not_ours(mid: str) -> None:
    assert parse_our_id(mid) is None
    assert automatic_reason({"Message-ID": mid}, "ann@customer.test", "text/plain") == ""


def test_our_message_id_format_is_written_only_in_outgoing() -> None:
    """message.py (our own mail coming back) and pipeline.py (threading) read it via parse_our_id."""
    triage_dir = Path(__file__).parent.parent / "triage"
    writers = [p.relative_to(triage_dir).as_posix() for p in triage_dir.rglob("*.py")
               if re.search(r"triage\\?\.c(?:\{|\(|\\d)", p.read_text(encoding="utf-8"))]
    assert writers == ["drafting/outgoing.py"]


def test_references_are_deduplicated_and_bounded() -> None:
    refs = tuple(f"<r{i}@customer.test>" for i in range(40)) + ("<r3@customer.test>", "not-an-id",
                                                                "<bad id@x>")
    original = Message("<last@customer.test>", "", "a@c.test", "s", NOW, "", "", references=refs)
    out = references_for(original)
    assert len(out) == MAX_REFERENCES and len(set(out)) == len(out)
    assert out[0] == "<r0@customer.test>" and out[-1] == "<last@customer.test>"
    assert all(re.fullmatch(r"<[^<>\s]+@[^<>\s]+>", r) for r in out)
    # build_reply bounds a caller's own list the same way
    parsed = reparse(build(references=[*refs, "<last@customer.test>"]))
    assert tuple(parsed["References"].split()) == out


INJECTIONS = [
    "Hello\r\nBcc: victim@evil.test",
    "Hello\nBcc: victim@evil.test",
    "Hello\rBcc: victim@evil.test",
    "Hello\x00Bcc: victim@evil.test",
    "Hello\x0bBcc:\x0cvictim@evil.test",
    "Hello\u2028Bcc: victim@evil.test",
    "=?UTF-8?Q?=0A?=Bcc: victim@evil.test",
    "=?UTF-8?Q?=0D=0A?=Bcc: victim@evil.test",
    "x =?utf-8?q?a=0D=0ABcc:_victim@evil.test?= y",
    "=?UTF-8?B?CkJjYzogdmljdGltQGV2aWwudGVzdA==?=",
    # an encoded-word that decodes to another encoded-word that decodes to a newline
    "=?utf-8?b?PT9VVEYtOD9RPz0wQT89QmNjOiB2aWN0aW1AZXZpbC50ZXN0?=",
]


@pytest.mark.parametrize("evil", INJECTIONS)
@pytest.mark.parametrize("where", ["subject", "to_name", "from_name"])
def test_no_value_can_create_a_header(evil: str, where: str) -> None:
    msg = build(**{where: evil})
    parsed = reparse(msg)
    assert parsed["Bcc"] is None
    assert [k.lower() for k in parsed.keys()] == CLEAN_KEYS
    for name in ("Subject", "To", "From"):
        assert not re.search(r"[\x00-\x1f\x7f]", str(parsed[name]))


@pytest.mark.parametrize("evil", INJECTIONS)
def test_a_draft_subject_from_a_decoded_header_is_safe(evil: str) -> None:
    """CVE-2024-6923: a decoded subject re-used in a reply must not smuggle a header."""
    incoming = message_from_bytes(f"Subject: {evil}\r\nFrom: a@c.test\r\n\r\nx".encode(),
                                  policy=policy.default)
    subject = reply_subject(str(incoming["Subject"]))
    parsed = reparse(build(subject=subject))
    assert parsed["Bcc"] is None and [k.lower() for k in parsed.keys()] == CLEAN_KEYS


def test_header_text_is_a_fixed_point() -> None:
    for evil in INJECTIONS:
        once = header_text(evil)
        assert header_text(once) == once and "\n" not in once


def test_a_10000_character_name_and_subject() -> None:
    msg = build(to_name="Zoë " * 2500, subject="Broken " * 1500, from_name="B" * 10_000)
    parsed = reparse(msg)
    assert len(parsed["To"].addresses[0].display_name) <= 64
    assert len(parsed["From"].addresses[0].display_name) <= 64
    assert len(str(parsed["Subject"])) <= 200
    assert [k.lower() for k in parsed.keys()] == CLEAN_KEYS


def test_non_ascii_names_subject_and_body_round_trip() -> None:
    body = "Hi Zoë,\n\nŁukasz here — £320 refunded.\n\nWhat else may I help you with?\n"
    parsed = reparse(build(to_name="Zoë Ødegård", subject="Re: Blender — kaputt", body=body))
    assert parsed["To"].addresses[0].display_name == "Zoë Ødegård"
    assert str(parsed["Subject"]) == "Re: Blender — kaputt"
    assert parsed.get_content().replace("\r\n", "\n") == body


def test_quotes_and_specials_in_names_stay_inside_the_name() -> None:
    parsed = reparse(build(to_name='Ann "the boss" <boss@evil.test>, Bob'))
    assert [a.addr_spec for a in parsed["To"].addresses] == ["ann@customer.test"]


@pytest.mark.parametrize("overrides", [
    {"to": "ann@customer.test\r\nBcc: x@evil.test"},
    {"to": "Ann <ann@customer.test>"},
    {"to": "a@b.test, c@d.test"},
    {"to": ""},
    {"from_address": "not an address"},
    {"message_id": "<no-at-sign>"},
    {"message_id": "<x@y>\r\nBcc: x@evil.test"},
])
def test_bad_addresses_and_ids_are_refused(overrides: dict[str, str]) -> None:
    with pytest.raises(ReplyError):
        build(**overrides)


def test_invalid_threading_ids_are_dropped_not_sent() -> None:
    parsed = reparse(build(in_reply_to="<x@y>\r\nBcc: a@evil.test",
                           references=("<ok@c.test>", "junk", "<x@y>\nBcc: a@evil.test")))
    assert parsed["In-Reply-To"] is None
    assert parsed["References"] == "<ok@c.test>"
    assert parsed["Bcc"] is None
