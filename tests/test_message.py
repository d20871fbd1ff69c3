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


# One case per client format and language: the customer's new words come first, then
# the client's marker and a quoted or forwarded message whose words must not count.
QUOTED = "The blender is LOUD and I am FURIOUS, you idiots."
QUOTE_FORMATS = {
    "outlook_en": "From: Shop Support <support@shop.test>\nSent: Tuesday, March 3, 2026 10:00 AM\nTo: Ann Lee <ann@x.test>\nSubject: RE: blender\n\n{q}",
    "outlook_de": "Von: Shop Support <support@shop.test>\nGesendet: Dienstag, 3. März 2026 10:00\nAn: Ann Lee\nBetreff: AW: Mixer\n\n{q}",
    "outlook_fr": "De : Shop Support <support@shop.test>\nEnvoyé : mardi 3 mars 2026 10:00\nÀ : Ann Lee\nObjet : RE: mixeur\n\n{q}",
    "outlook_es": "De: Shop Support <support@shop.test>\nEnviado el: martes, 3 de marzo de 2026 10:00\nPara: Ann Lee\nAsunto: RE: batidora\n\n{q}",
    "outlook_one_line": "________________________________\nFrom: Shop Support Sent: Tuesday, March 3, 2026 10:00 AM To: Ann Lee Subject: RE: blender\n{q}",
    "outlook_original_de": "-----Ursprüngliche Nachricht-----\nVon: Shop\nGesendet: Dienstag\n{q}",
    "outlook_original_fr": "-----Message d'origine-----\nDe : Shop\nEnvoyé : mardi\n{q}",
    "outlook_original_es": "-----Mensaje original-----\nDe: Shop\nEnviado: martes\n{q}",
    "gmail_forward_en": "---------- Forwarded message ---------\nFrom: Bob <bob@x.test>\nDate: Tue, Mar 3, 2026 at 10:00 AM\nSubject: blender\n\n{q}",
    "gmail_forward_de": "---------- Weitergeleitete Nachricht ---------\nVon: Bob <bob@x.test>\nDate: Di., 3. März 2026\n\n{q}",
    "gmail_forward_fr": "---------- Message transféré ---------\nDe : Bob <bob@x.test>\nDate: mar. 3 mars 2026\n\n{q}",
    "gmail_forward_es": "---------- Mensaje reenviado ---------\nDe: Bob <bob@x.test>\nDate: mar, 3 mar 2026\n\n{q}",
    "gmail_reply_de": "Am Di., 3. März 2026 um 10:00 Uhr schrieb Shop Support <support@shop.test>:\n{q}",
    "gmail_reply_fr": "Le mar. 3 mars 2026 à 10:00, Shop Support <support@shop.test> a écrit :\n{q}",
    "gmail_reply_es": "El mar, 3 mar 2026 a las 10:00, Shop Support (<support@shop.test>) escribió:\n{q}",
    "gmail_reply_wrapped": "On Tue, Mar 3, 2026 at 10:00 AM Shop Support <support@shop.test>\nwrote:\n{q}",
    "apple_forward_en": "Begin forwarded message:\n\nFrom: Bob <bob@x.test>\nSubject: blender\n\n{q}",
    "apple_forward_de": "Anfang der weitergeleiteten Nachricht:\n\nVon: Bob <bob@x.test>\n\n{q}",
    "apple_forward_fr": "Début du message réexpédié :\n\nDe : Bob <bob@x.test>\n\n{q}",
    "apple_forward_es": "Inicio del mensaje reenviado:\n\nDe: Bob <bob@x.test>\n\n{q}",
    "apple_reply_de": "Am 03.03.2026 um 10:00 schrieb Shop Support <support@shop.test>:\n\n{q}",
    "thunderbird_forward_en": "-------- Forwarded Message --------\nSubject: blender\nDate: Tue, 3 Mar 2026 10:00:00 +0100\nFrom: Bob <bob@x.test>\n\n{q}",
    "thunderbird_original_de": "-------- Originalnachricht --------\nBetreff: Mixer\nDatum: Tue, 3 Mar 2026\n\n{q}",
    "thunderbird_forward_fr": "-------- Message transféré --------\nSujet : mixeur\nDate : Tue, 3 Mar 2026\nDe : Bob\n\n{q}",
    "thunderbird_forward_es": "-------- Mensaje reenviado --------\nAsunto: batidora\nFecha: Tue, 3 Mar 2026\n\n{q}",
    "thunderbird_reply_es": "El 03/03/26 a las 10:00, Shop Support escribió:\n{q}",
    "thunderbird_reply_fr": "Le 03/03/2026 à 10:00, Shop Support a écrit :\n{q}",
    "notes_forward_en": "---------------------- Forwarded by Bob Smith/HOU/ECT on 03/05/2001 04:23 PM ---------------------------\n\n{q}",
    "notes_forward_de": "----- Weitergeleitet von Bob Smith/HOU am 03.05.2001 16:23 -----\n\n{q}",
    "notes_forward_fr": "----- Transféré par Bob Smith/HOU le 03/05/2001 16:23 -----\n\n{q}",
    "notes_forward_es": "----- Reenviado por Bob Smith/HOU el 03/05/2001 16:23 -----\n\n{q}",
    "notes_header_block": "Bob Smith\n03/05/2001 04:23 PM\nTo: Ann Lee/HOU/ECT@ECT\ncc: Tim Roe/HOU/ECT@ECT\n\nSubject: blender\n\n{q}",
}


@pytest.mark.parametrize("fmt", sorted(QUOTE_FORMATS))
def test_new_words_stop_at_quoted_and_forwarded_mail(fmt: str) -> None:
    body = "Could you check where my order is?\n\n" + QUOTE_FORMATS[fmt].format(q=QUOTED) + "\n"
    text = new_words(body)
    assert text == "Could you check where my order is?"


@pytest.mark.parametrize("fmt", ["gmail_forward_en", "apple_forward_en", "notes_forward_en", "notes_header_block"])
def test_a_message_that_is_all_forwarded_mail_has_no_new_words(fmt: str) -> None:
    assert new_words(QUOTE_FORMATS[fmt].format(q=QUOTED)) == ""


@pytest.mark.parametrize(
    "body",
    [
        "To be honest, I am not sure.\nFrom: my point of view the lid is loose.\n",  # one header-like line is not a block
        "The date: 3 March. The kettle arrived cracked.\n",
        "Le kettle est cassé. I wrote to you before:\nstill nothing.\n",
    ],
)
def test_new_words_keep_ordinary_lines_that_look_like_headers(body: str) -> None:
    assert new_words(body) == body.strip()
