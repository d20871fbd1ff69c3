"""Follow-ups join their case: the same order or invoice, a Re:/Fwd: of its subject, a thank-you.

Through the real pipeline on a Maildir, without threading headers (those are
tests/test_pipeline.py's); and the demo inbox's pairs.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Workspace, email_bytes
from test_pipeline import run_poll

from triage import config
from triage.errors import ConfigError
from triage.followups.joining import strip_prefixes
from triage.store import Store, iso, utcnow

ANGRY = "My blender from order #48213 arrived broken. This is unacceptable, I want a refund."


def _cases(workspace: Workspace) -> list[tuple[int, str, str]]:
    """(case, sender, draft statuses) per message, oldest first."""
    with Store(workspace.db) as store:
        rows = store.db.execute(
            "SELECT m.case_id, m.sender, (SELECT group_concat(status) FROM drafts d WHERE d.case_id = m.case_id) "
            "FROM messages m ORDER BY m.id"
        ).fetchall()
    return [(r[0], r[1], r[2] or "") for r in rows]


def _events(workspace: Workspace, kind: str) -> list[dict[str, object]]:
    with Store(workspace.db) as store:
        rows = store.db.execute("SELECT case_id, detail FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    return [{"case": r[0], **json.loads(r[1] or "{}")} for r in rows]


def _two(workspace: Workspace, maildir, first: bytes, second: bytes, extra: str = "") -> list[tuple[int, str, str]]:  # type: ignore[no-untyped-def]
    path = maildir([first])
    workspace.maildir_config(path, extra)
    run_poll(workspace)
    maildir([second], path)
    run_poll(workspace)
    return _cases(workspace)


def test_a_second_angry_mail_about_the_same_order_joins_the_case(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    rows = _two(workspace, maildir, email_bytes(subject="Broken blender", body=ANGRY),
                email_bytes(subject="STILL WAITING", body="Nobody answered about order 48213!!! I want my money back."))
    assert rows[0][0] == rows[1][0]
    assert rows[1][2] == "superseded,pending"  # one draft for one problem: it answers the latest mail
    assert _events(workspace, "case-joined") == [{"case": rows[0][0], "reason": "reference", "matched": "48213"}]


def test_an_invoice_number_joins_the_case(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    rows = _two(workspace, maildir,
                email_bytes(subject="Billed twice", body="Invoice INV-2026-0883 was billed twice. I want it fixed."),
                email_bytes(subject="Any news?", body="Still nothing on inv-2026-0883. This is unacceptable."))
    assert rows[0][0] == rows[1][0]


def test_a_forward_of_the_case_subject_joins_the_case(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    rows = _two(workspace, maildir,
                email_bytes(subject="Kettle  stopped working", body="My kettle stopped working. Unacceptable."),
                email_bytes(subject="FW: Fwd: kettle stopped working", body="No answer yet. I am very disappointed."))
    assert rows[0][0] == rows[1][0]
    assert _events(workspace, "case-joined") == [{"case": rows[0][0], "reason": "subject"}]


def test_a_thank_you_confirming_the_fix_closes_the_pending_draft_instead_of_opening_a_case(
    workspace: Workspace, maildir  # type: ignore[no-untyped-def]
) -> None:
    rows = _two(workspace, maildir,
                email_bytes(subject="Charged twice", body="I was charged $64.50 twice. Please refund one."),
                email_bytes(subject="Refund received – thank you",
                            body="The duplicate $64.50 charge has been refunded. Thanks for sorting it!"))
    assert rows[0][0] == rows[1][0]
    assert rows[1][2] == "superseded"  # the pending draft promising the refund is withdrawn; no new draft
    with Store(workspace.db) as store:
        case = store.case(rows[0][0])
        assert case is not None and case.status == "closed"
        assert store.db.execute("SELECT count(*) FROM cases").fetchone()[0] == 1
        draft = store.db.execute("SELECT id FROM drafts").fetchone()[0]
    [closed] = _events(workspace, "case-closed")
    assert closed["case"] == rows[0][0] and closed["superseded"] == [draft]


def test_a_thank_you_about_something_else_leaves_the_pending_draft(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    rows = _two(workspace, maildir, email_bytes(subject="Broken blender", body=ANGRY),
                email_bytes(subject="Thanks", body="Order #50007 arrived today, all good. Thank you!"))
    assert rows[0][0] != rows[1][0]
    assert rows[0][2] == "pending"  # the blender is not fixed: its draft still waits
    assert _events(workspace, "case-joined") == []


def test_the_same_order_from_another_address_opens_its_own_case(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    rows = _two(workspace, maildir, email_bytes(subject="Broken blender", body=ANGRY),
                email_bytes(subject="Re: Broken blender", sender="Mallory <mallory@elsewhere.test>",
                            body="About order #48213: it is unacceptable, refund it to me."))
    assert rows[0][0] != rows[1][0]
    assert rows[0][2] == "pending" and rows[1][2] == "pending"  # the customer's draft is untouched
    assert _events(workspace, "case-joined") == []


def test_an_address_tied_to_the_customer_joins_by_the_same_order(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    path = maildir([email_bytes(subject="Broken blender", body=ANGRY)])
    workspace.maildir_config(path)
    run_poll(workspace)
    with Store(workspace.db) as store, store.write():
        store.link_address("ann.private@home.test", store.db.execute("SELECT id FROM customers").fetchone()[0],
                           "owner", utcnow())
    maildir([email_bytes(subject="From my other address", sender="Ann <ann.private@home.test>",
                         body="Order #48213: still broken, still no answer. Unacceptable.")], path)
    run_poll(workspace)
    rows = _cases(workspace)
    assert rows[0][0] == rows[1][0]  # the same "is this the case's customer" rule as threading


def test_a_different_order_and_subject_opens_a_new_case(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    rows = _two(workspace, maildir, email_bytes(subject="Broken blender", body=ANGRY),
                email_bytes(subject="Late kettle", body="Order #50001 is late. This is unacceptable."))
    assert rows[0][0] != rows[1][0]


def test_a_case_older_than_join_days_is_not_joined_and_a_recent_resolved_one_reopens(
    workspace: Workspace, maildir  # type: ignore[no-untyped-def]
) -> None:
    path = maildir([email_bytes(subject="Broken blender", body=ANGRY, date=utcnow())])
    workspace.maildir_config(path, "[cases]\njoin_days = 10\n")
    run_poll(workspace)
    with Store(workspace.db) as store:
        store.db.execute("UPDATE cases SET status = 'resolved', resolved_at = ?, updated_at = ?",
                         (iso(utcnow() - timedelta(days=5)),) * 2)
        store.db.commit()
    maildir([email_bytes(subject="Again", body="Order #48213 broke again. Unacceptable.", date=utcnow())], path)
    run_poll(workspace)
    rows = _cases(workspace)
    assert rows[0][0] == rows[1][0]
    assert [e["case"] for e in _events(workspace, "case-reopened")] == [rows[0][0]]
    with Store(workspace.db) as store:
        store.db.execute("UPDATE cases SET status = 'resolved', resolved_at = ?, updated_at = ?",
                         (iso(utcnow() - timedelta(days=11)),) * 2)
        store.db.commit()
    maildir([email_bytes(subject="Third time", body="Order #48213 broke a third time. Unacceptable.", date=utcnow())], path)
    run_poll(workspace)
    rows = _cases(workspace)
    assert rows[2][0] != rows[0][0]


def test_join_days_is_checked_like_every_key(workspace: Workspace, tmp_path: Path) -> None:
    workspace.maildir_config(tmp_path, "[cases]\njoin_days = 0\n")
    with pytest.raises(ConfigError, match="join_days"):
        config.load(workspace.config)
    workspace.maildir_config(tmp_path, "[cases]\njoin_dayz = 3\n")
    with pytest.raises(ConfigError, match="did you mean 'join_days'"):
        config.load(workspace.config)
    workspace.maildir_config(tmp_path)
    assert config.load(workspace.config).cases.join_days == 30


def test_reply_and_forward_prefixes() -> None:
    assert strip_prefixes("FW: Re:  Invoice  INV-1 – billed") == ("invoice inv-1 – billed", True)
    assert strip_prefixes("AW: WG: Bestellung") == ("bestellung", True)
    assert strip_prefixes("Refund received") == ("refund received", False)
    assert strip_prefixes("Regarding my order") == ("regarding my order", False)


def test_the_demo_inboxs_forward_and_follow_up_pairs_end_in_one_case_each(workspace: Workspace) -> None:
    from test_demo_drafts import demo_drafts

    demo_drafts(workspace)  # the demo inbox, polled with the golden test's fixed clock
    with Store(workspace.db) as store:
        rows = store.db.execute("SELECT source_key, case_id FROM messages WHERE case_id IS NOT NULL").fetchall()
        case_of = {key.split(".")[1]: case for key, case in rows}

        def one_case(*names: str) -> int:
            cases = {case_of[n] for n in names}
            assert len(cases) == 1, (names, cases)
            return cases.pop()

        one_case("highroller_bigcorp_invoice_billed_twice_multipart", "highroller_bigcorp_forward_outlook_original_message")
        one_case("barnacle_gloria_refund_free_blender_coffee", "barnacle_gloria_second_demand_more")
        one_case("moderate_broken_after_a_week_kettle_switch", "moderate_still_not_working_thread_reply")
        refunded = one_case("moderate_double_charge_card", "praise_refund_received_thanks")
        statuses = [r[0] for r in store.db.execute("SELECT status FROM drafts WHERE case_id = ?", (refunded,))]
        assert statuses == ["superseded"]  # no draft still promises the refund
        case = store.case(refunded)
        assert case is not None and case.status == "closed"
        # a chronic complainer's three different problems stay three cases
        martin = {case_of[n] for n in ("chronic_martin_grinder_squeak", "chronic_martin_box_dented",
                                       "chronic_martin_invoice_wrong_name")}
        assert len(martin) == 3
        # the payment processor's notice about Derek's order #48213 is not Derek's
        assert case_of["angry_broken_blender_second_time"] != case_of.get("auto_noreply_payment_dispute")


def test_a_cases_facts_in_one_query_are_those_of_its_customer_messages(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    rows = _two(workspace, maildir, email_bytes(subject="Broken blender", body=ANGRY),
                email_bytes(subject="STILL WAITING", body="Nobody answered about order 48213!!! Invoice INV-2026-0883."))
    with Store(workspace.db) as store:
        case = rows[0][0]
        one_by_one = [found["facts"] for m in store.customer_messages(case)
                      if (found := store.detection_for(m.id)) is not None]
        assert store.customer_facts(case) == one_by_one and len(one_by_one) == 2
        assert "INV-2026-0883" in json.dumps(one_by_one[1])
