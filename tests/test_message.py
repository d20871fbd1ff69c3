"""Parsing: addresses, dates, ids, the customer's new words, automatic mail."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from triage.message import ParseError, automatic_reason, new_words, parse

DATA = Path(__file__).parent / "data" / "mail"


def mail(headers: str, body: str = "Hello\n") -> bytes:
    return (headers.strip() + "\n\n" + body).encode()


def test_basic_fields() -> None:
    m = parse(
        mail(
            """From: "Lee, Ann" <Ann.Lee@Example.com>
To: support@example.com
Reply-To: ann@home.example
Subject: =?UTF-8?Q?Caf=C3=A9_order?=
Date: Tue, 03 Mar 2026 10:00:00 +0100
Message-ID: <abc@example.com>
In-Reply-To: <prev@example.com>
References: <root@example.com> <prev@example.com>""",
            "My order #123 is late.\n",
        )
    )
    assert (m.sender_name, m.sender_address, m.reply_to) == ("Lee, Ann", "ann.lee@example.com", "ann@home.example")
    assert m.subject == "Café order"
    assert m.date == datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)
    assert m.message_id == "<abc@example.com>"
    assert m.thread_ids == ("<prev@example.com>", "<root@example.com>")
    assert m.reply_address == "ann@home.example"
    assert m.auto == ""


def test_missing_date_and_message_id_get_stable_fallbacks() -> None:
    raw = mail("From: a@example.com\nSubject: hi", "body")
    received = datetime(2026, 11, 1, tzinfo=timezone.utc)
    m1, m2 = parse(raw, received), parse(raw, received)
    assert m1.date == received
    assert m1.message_id == m2.message_id and m1.message_id.endswith("@triage.invalid>")


def test_header_values_never_carry_newlines() -> None:
    m = parse(mail("From: x@example.com\nSubject: =?UTF-8?Q?hi=0ABcc:_evil@example.com?=", "b"))
    assert "\n" not in m.subject and "\r" not in m.subject


def test_html_only_becomes_text() -> None:
    raw = mail(
        "From: a@example.com\nSubject: s\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8",
        "<html><body><p>The kettle is <b>broken</b>.</p><script>alert(1)</script></body></html>",
    )
    m = parse(raw)
    assert "The kettle is broken." in m.text
    assert "<b>" not in m.full_text


@pytest.mark.parametrize(
    ("body", "kept", "dropped"),
    [
        ("Still broken.\n\nOn Tue, 3 Mar 2026, Support <s@x.com> wrote:\n> Is it fixed? You idiots\n", "Still broken.", "idiots"),
        ("New words here.\n> quoted furious line\nmore new words\n", "more new words", "furious"),
        ("My reply.\n\n-----Original Message-----\nFrom: x\nThis is TERRIBLE\n", "My reply.", "TERRIBLE"),
        ("The grinder squeaks.\n\n-- \nAnn Lee\nFurious Widgets Ltd\n", "squeaks", "Furious"),
        ("The grinder squeaks.\n\nBest regards,\nAnn\n+1 555 0100\n", "squeaks", "555"),
        ("Thanks\n", "Thanks", "§"),
    ],
)
def test_new_words_excludes_quotes_and_signatures(body: str, kept: str, dropped: str) -> None:
    text = new_words(body)
    assert kept in text
    assert dropped not in text


@pytest.mark.parametrize(
    ("headers", "sender", "ctype", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "a@x.com", "text/plain", "Auto-Submitted: auto-replied"),
        ({"Auto-Submitted": "no"}, "a@x.com", "text/plain", ""),
        ({"Precedence": "bulk"}, "a@x.com", "text/plain", "Precedence: bulk"),
        ({"List-Id": "<news.x.com>"}, "a@x.com", "text/plain", "List-Id"),
        ({"X-Autoreply": "yes"}, "a@x.com", "text/plain", "X-Autoreply"),
        ({"Return-Path": "<>"}, "a@x.com", "text/plain", "null return path"),
        ({}, "MAILER-DAEMON@x.com", "text/plain", "robot sender MAILER-DAEMON@"),
        ({}, "no-reply@x.com", "text/plain", "robot sender no-reply@"),
        ({}, "noreply+billing@x.com", "text/plain", "robot sender noreply+billing@"),
        ({}, "a@x.com", "multipart/report", "delivery or disposition report"),
        ({}, "norah@x.com", "text/plain", ""),
    ],
)
def test_automatic_mail(headers: dict[str, str], sender: str, ctype: str, reason: str) -> None:
    assert automatic_reason(headers, sender, ctype) == reason


@pytest.mark.parametrize("raw", [b"", b"   \n"])
def test_empty_message_is_a_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse(raw)


def test_every_corpus_file_parses_or_raises_parse_error() -> None:
    """No other exception escapes parse(), whatever the input."""
    files = sorted(DATA.glob("*.eml"))
    assert files, "tests/data/mail holds the malformed-mail corpus"
    for path in files:
        try:
            parse(path.read_bytes())
        except ParseError:
            pass
