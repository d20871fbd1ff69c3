"""Detection on the shapes real mail takes: subjects, quoted and forwarded mail, business mail.

Each table holds sentences written for these tests (no corpus rows): the
causes of misfires found on public development sets, one row each.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import email_bytes

from triage.detect import Context
from triage.detect.engine import Detector, subject_line
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
