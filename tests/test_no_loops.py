"""No loops: a corpus of automatic mail (tests/data/auto) is stored but never drafted.

Vacation auto-replies in the shapes real systems send (Exchange "Automatic
reply:", old Outlook OOF with only X-Auto-Response-Suppress, Gmail, Yahoo,
Zimbra, Unix vacation, Sieve), DSNs from Postfix, Exim and Exchange, an MDN,
bulk and list mail, noreply senders, our own replies and digests coming
back into the inbox, and (rules/automatic.toml, tests/test_automatic.py)
auto-replies in eight languages and ticket acknowledgements recognised by
their subject alone, and X-Loop or X-Precedence alone. Every file is written to fail loudly: its text is angry
enough that a human's mail with the same words would get a draft.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import Workspace, email_bytes, fault_numbers
from servers import Dovecot

from triage.message import parse

AUTO = Path(__file__).parent / "data" / "auto"
FILES = sorted(AUTO.glob("*.eml"))


def test_the_corpus_covers_every_kind_of_automatic_mail() -> None:
    names = {p.stem for p in FILES}
    for kind in ("exchange", "outlook", "gmail", "yahoo", "zimbra", "postfix_vacation", "sieve", "postfix_bounce",
                 "exim_bounce", "exchange_ndr", "mdn", "precedence_bulk", "list_id", "noreply", "own_reply"):
        assert any(kind in n for n in names), kind


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_file_is_recognised_as_automatic(path: Path) -> None:
    message = parse(path.read_bytes())
    assert message.auto, f"{path.name} would be answered"


def test_automatic_corpus_polled_from_dovecot_yields_zero_drafts(dovecot: Dovecot, workspace: Workspace) -> None:
    for path in FILES:
        dovecot.append("INBOX", path.read_bytes())
    # a control: one person's complaint in the same poll is drafted, so the poll really drafts
    dovecot.append("INBOX", email_bytes(message_id="<control@customer.test>"))
    workspace.imap_config(dovecot)
    summary = workspace.run_json("poll")
    with sqlite3.connect(workspace.db) as db:
        rows = db.execute("SELECT message_id, status, auto_reason FROM messages").fetchall()
        drafted = db.execute(
            "SELECT m.message_id FROM drafts d JOIN messages m ON m.id = d.message_id"
        ).fetchall()
    loops = [mid for (mid,) in drafted if mid != "<control@customer.test>"]
    fault_numbers("no_loops", automatic_messages=len(FILES), loops_drafted=len(loops))
    assert loops == []
    assert summary["fetched"] == len(FILES) + 1 and summary["ignored"] == len(FILES) and summary["drafts"] == 1
    statuses = {mid: (status, reason) for mid, status, reason in rows}
    assert all(s == "ignored" and r for mid, (s, r) in statuses.items() if mid != "<control@customer.test>"), statuses


def test_our_own_reply_without_its_marker_header_is_not_answered(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    """A copy of our reply whose X-Triage-Sent header was stripped (a Cc to support, a relay)."""
    raw = (AUTO / "own_reply_headers_stripped.eml").read_bytes()
    workspace.maildir_config(maildir([raw]))
    assert workspace.run_json("poll")["drafts"] == 0
