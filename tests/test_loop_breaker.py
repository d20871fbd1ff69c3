"""Auto-responder loops are broken on their case, end to end against real servers.

A responder that carries no sign of automatic mail (no RFC 3834 header, a
"Re:" subject, the customer's own address) answers every reply we send
within seconds with the same text. The real loop: poll from Dovecot ->
approve, sent over aiosmtpd -> the responder's answer appended to Dovecot ->
poll, again and again. After our third reply the case gets no more drafts,
is flagged "possible auto-responder loop" in `triage queue`, `triage show`
and the review page (Chromium), with an audit event; every message is still
stored. A person who breaks in with new words is answered; an agent clears
the flag.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD as IMAP_PASSWORD
from conftest import Workspace, email_bytes, fault_numbers, logged_in, review_page, smtp_config
from servers import Dovecot, SmtpServer

from triage.automatic import LoopPolicy, is_loop, loop_address, similar

CUSTOMER = "orders@wholesale.example"
COMPLAINT_TEXT = "Forty kettles from order #48213 arrived broken. This is unacceptable. Replace them now."
COMPLAINT = email_bytes(
    subject="Order #48213: 40 kettles arrived broken",
    body=COMPLAINT_TEXT,
    sender=f"Wholesale Orders <{CUSTOMER}>",
    message_id="<po-48213@wholesale.example>",
)


def responder_answer(ours: EmailMessage, n: int, text: str | None = None, paste: bool = False,
                     sender: str = CUSTOMER) -> bytes:
    """What a helpdesk with no RFC 3834 headers sends back to each of our replies."""
    msg = EmailMessage()
    msg["From"] = f"Wholesale Orders <{sender}>"
    msg["To"] = str(ours["From"])
    msg["Subject"] = f"Re: {ours['Subject']}"
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain="wholesale.example")
    msg["In-Reply-To"] = str(ours["Message-ID"])
    msg["References"] = f"{ours.get('References', '')} {ours['Message-ID']}".strip()
    quoted = "\n".join(f"> {line}" for line in ours.get_content().splitlines())
    body = text or (
        "Thank you for your message. Our order desk is unstaffed this week and your\n"
        f"email has been filed under reference WH-{48000 + n} on {datetime.now(timezone.utc):%d/%m/%Y %H:%M}.\n"
        "The kettles are still broken and we still expect replacements.\n"
    )
    if paste:  # our whole reply under a heading no client writes: not cut as quoted history
        msg.set_content(f"{body}\nYour message:\n{ours.get_content()}")
    else:
        msg.set_content(f"{body}\nOn {ours['Date']}, {ours['From']} wrote:\n{quoted}\n")
    return msg.as_bytes()


def _complaint_polled(dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace) -> None:
    """The wholesale customer's complaint, polled from Dovecot: one draft, replies sent over ``smtp_server``."""
    dovecot.append("INBOX", COMPLAINT)
    workspace.imap_config(dovecot, extra=smtp_config(smtp_server))
    assert workspace.run_json("poll")["drafts"] == 1


def test_a_responder_loop_stops_after_three_replies(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, browser: Any
) -> None:
    _complaint_polled(dovecot, smtp_server, workspace)
    rounds = drafted = held = 0
    while rounds < 6:
        queue = workspace.run_json("queue")
        if not queue:
            break
        [draft] = queue
        done = workspace.run("approve", str(draft["id"]), "--agent", "dana")
        assert done.returncode == 0, done.stderr
        rounds += 1
        ours = smtp_server.wait_for(rounds)[-1].message
        dovecot.append("INBOX", responder_answer(ours, rounds))
        summary = workspace.run_json("poll")
        assert summary["ignored"] == 0  # nothing marks it automatic: only the loop breaker can stop it
        drafted += int(summary["drafts"])  # type: ignore[call-overload]
        held += int(summary["loops"])  # type: ignore[call-overload]
    # the responder answers once more on its own (a reminder): still held, still stored
    dovecot.append("INBOX", responder_answer(ours, rounds + 1))
    again = workspace.run_json("poll")
    fault_numbers("responder_loop", replies_sent=len(smtp_server.messages), responder_messages=rounds + 1,
                  drafts_after_first=drafted + int(again["drafts"]),  # type: ignore[call-overload]
                  held=held + int(again["loops"]))  # type: ignore[call-overload]
    assert rounds == 3 and len(smtp_server.messages) == 3
    assert drafted == 2 and held == 1 and again["drafts"] == 0 and again["loops"] == 1
    assert workspace.run_json("queue") == []

    with sqlite3.connect(workspace.db) as db:
        stored = db.execute("SELECT COUNT(*), COUNT(DISTINCT case_id) FROM messages WHERE status = 'triaged'").fetchone()
        flags = db.execute("SELECT actor, case_id, message_id FROM events WHERE kind = 'loop-suspected'").fetchall()
        [(case_id,)] = db.execute("SELECT DISTINCT case_id FROM messages").fetchall()
        open_first = db.execute("SELECT COUNT(*) FROM deadlines WHERE kind = 'first-response' AND done_at IS NULL").fetchone()
    assert stored == (5, 1)  # the complaint and four answers, all on one case
    assert [(a, c) for a, c, _ in flags] == [("poll", case_id)] * 2 and all(m for *_, m in flags)
    assert open_first == (0,)  # a held answer opens no first-response deadline

    listed = workspace.run("queue")
    assert listed.returncode == 0
    assert "Possible auto-responder loop, no drafts made (1 case(s))" in listed.stdout
    assert f"case {case_id:>4}  {CUSTOMER}" in listed.stdout and "2 held" in listed.stdout
    with sqlite3.connect(workspace.db) as db:
        [(last_draft,)] = db.execute("SELECT MAX(id) FROM drafts").fetchall()
    [flagged] = workspace.run_json("queue", "--loops")
    assert (flagged["case"], flagged["customer"], flagged["held"], flagged["draft"]) == (case_id, CUSTOMER, 2, last_draft)
    shown = workspace.run("show", str(last_draft))
    assert f"Case {case_id}: possible auto-responder loop: 2 message(s) held" in shown.stdout
    assert workspace.run_json("show", str(last_draft))["loop"]["held"] == 2

    # the review page shows it too, and an agent clears it from there
    workspace.add_agents()  # dana and sam, password conftest.AGENT_PASSWORD
    monkeypatch.setenv("TRIAGE_TEST_PW", IMAP_PASSWORD)
    monkeypatch.delenv("TRIAGE_WEB_SECRET", raising=False)
    _page_shows_and_clears(workspace, browser, case_id, last_draft)

    with sqlite3.connect(workspace.db) as db:
        cleared = db.execute("SELECT actor FROM events WHERE kind = 'loop-cleared'").fetchall()
    assert cleared == [("dana",)]
    assert "auto-responder" not in workspace.run("queue").stdout
    assert workspace.run_json("queue", "--loops") == []
    # after the agent's check, the responder's next answer gets a draft again
    dovecot.append("INBOX", responder_answer(ours, rounds + 2))
    assert workspace.run_json("poll")["drafts"] == 1


@pytest.mark.parametrize("address", ["orders+wh{n}x@wholesale.example", "orders-{n}f3a9c2e81@wholesale.example"])
def test_a_responder_whose_address_changes_each_time_is_caught_too(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace, address: str
) -> None:
    """The helpdesk answers from a new address each time (a +tag or a token of its own): each
    answer is another sender, so it opens a case of its own linked to the last; the loop is still
    seen across those cases, and held after our third reply. A colleague at the same company
    who answers the same way from her own address is not part of it."""
    _complaint_polled(dovecot, smtp_server, workspace)
    rounds = held = 0
    while rounds < 6:
        queue = workspace.run_json("queue")
        if not queue:
            break
        [draft] = queue
        assert workspace.run("approve", str(draft["id"]), "--agent", "dana").returncode == 0
        rounds += 1
        ours = smtp_server.wait_for(rounds)[-1].message
        dovecot.append("INBOX", responder_answer(ours, rounds, sender=address.format(n=rounds)))
        summary = workspace.run_json("poll")
        assert summary["ignored"] == 0
        held += int(summary["loops"])  # type: ignore[call-overload]
    assert (rounds, held, len(smtp_server.messages)) == (3, 1, 3)
    [flagged] = workspace.run_json("queue", "--loops")
    assert flagged["customer"] == address.format(n=3)
    # a person at the same company, from her own address, answering our reply the same way: answered
    dovecot.append("INBOX", responder_answer(ours, 9, sender="maria@wholesale.example"))
    assert (summary := workspace.run_json("poll"))["loops"] == 0 and summary["drafts"] == 1, summary


def _page_shows_and_clears(workspace: Workspace, browser: Any, case_id: int, draft_id: int) -> None:
    with review_page(workspace) as base:
        context, page = logged_in(browser, base)
        banner = page.locator("#loops")
        assert "Possible auto-responder loop" in banner.inner_text()
        assert CUSTOMER in banner.locator(f'li[data-case="{case_id}"]').inner_text()
        banner.locator("a").first.click()
        assert page.url == f"{base}/drafts/{draft_id}"
        assert "2 message(s) held" in page.locator("#loop").inner_text()
        page.click("#clear-loop")
        assert "no longer flagged" in page.locator(".flash.ok").inner_text()
        assert page.locator("#loop").count() == 0
        page.goto(base + "/")
        assert page.locator("#loops").count() == 0
        context.close()


def test_a_responder_that_pastes_our_reply_is_caught_too_and_a_person_breaking_in_is_answered(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    """Each answer carries our (different) reply in full; the responder's own words are the same.
    Then a person at the customer writes with new words into the held loop: they get a draft."""
    _complaint_polled(dovecot, smtp_server, workspace)
    held = 0
    for n in range(1, 5):
        queue = workspace.run_json("queue")
        if not queue:
            break
        assert workspace.run("approve", str(queue[0]["id"])).returncode == 0
        ours = smtp_server.wait_for(n)[-1].message
        dovecot.append("INBOX", responder_answer(ours, n, paste=True))
        held += int(workspace.run_json("poll")["loops"])  # type: ignore[call-overload]
    fault_numbers("responder_loop_pasting", replies_sent=len(smtp_server.messages), held=held)
    assert len(smtp_server.messages) == 3 and held == 1
    assert workspace.run_json("queue") == []
    person = "Hello, this is Maria from the order desk, back early. Please ignore our helpdesk's\n" \
             "replies. We still need 40 replacement kettles; can you ship them on Monday?\n"
    dovecot.append("INBOX", responder_answer(ours, 9, text=person))
    summary = workspace.run_json("poll")
    assert (summary["drafts"], summary["loops"]) == (1, 0)


def test_status_counts_a_held_loop_and_remind_lists_it_for_the_agents(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    """A held case has no draft and no open deadline, so nothing else would chase it: status
    counts it, and remind's digest lists it once, then again only after every_hours."""
    agent = "agents@shop.example"
    dovecot.append("INBOX", COMPLAINT)
    workspace.imap_config(
        dovecot,
        extra=smtp_config(smtp_server) + f'[reminders]\nto = ["{agent}"]\n',
    )
    assert workspace.run_json("status")["loops"] == 0
    assert workspace.run_json("poll")["drafts"] == 1
    for n in range(1, 4):
        [draft] = workspace.run_json("queue")
        assert workspace.run("approve", str(draft["id"])).returncode == 0
        ours = smtp_server.wait_for(n)[-1].message
        dovecot.append("INBOX", responder_answer(ours, n))
        workspace.run_json("poll")
    [flagged] = workspace.run_json("queue", "--loops")
    case = flagged["case"]
    assert workspace.run_json("status")["loops"] == 1
    assert "possible auto-responder loops: 1" in workspace.run("status").stdout

    now = datetime.now(timezone.utc)
    reminded = workspace.run_json("remind", "--now", now.isoformat())
    assert reminded["reminded"] == [] and reminded["digests"] == [agent]
    [listed] = reminded["loops"]
    assert (listed["case"], listed["held"], listed["command"]) == (case, 1, f"triage show {flagged['draft']}")
    digest = smtp_server.wait_for(4)[-1]
    assert digest.rcpt_tos == (agent,)
    body = digest.message.get_content()
    assert "Possible auto-responder loops, no drafts made (1)" in body and f"triage clear-loop {case}" in body
    assert "possible loop" in str(digest.message["Subject"])
    # said once: not again within [reminders] every_hours (4), again after it
    assert workspace.run_json("remind", "--now", (now + timedelta(hours=1)).isoformat())["loops"] == []
    assert len(smtp_server.messages) == 4
    assert [r["case"] for r in workspace.run_json("remind", "--now", (now + timedelta(hours=5)).isoformat())["loops"]] == [case]
    assert workspace.run("clear-loop", str(case), "--agent", "dana").returncode == 0
    assert workspace.run_json("status")["loops"] == 0
    assert workspace.run_json("remind", "--now", (now + timedelta(hours=10)).isoformat())["loops"] == []


# -- the loop test itself ---------------------------------------------------------

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
SAME = "Thank you for your message. Your email has been filed under reference WH-{n} on 20/11/2026."


def _answers(minutes: list[float], texts: list[str] | None = None) -> list[tuple[datetime, str]]:
    texts = texts or [SAME.format(n=48000 + i) for i in range(len(minutes))]
    return [(T0 + timedelta(hours=i, minutes=m), t) for i, (m, t) in enumerate(zip(minutes, texts, strict=True))]


SENT = [T0 + timedelta(hours=i) for i in range(3)]


@pytest.mark.parametrize(
    ("sent", "answers", "loop"),
    [
        (SENT, _answers([1, 2, 0.5]), True),
        (SENT[:2], _answers([1, 2]), False),  # two replies only
        (SENT, _answers([1, 2, 11]), False),  # the last answer came after 10 minutes
        (SENT, _answers([1, 20, 0.5]), False),
        (SENT, _answers([1, 2, 3], [SAME.format(n=1), "Where are my kettles? I am still waiting.", SAME.format(n=3)]),
         False),
    ],
)
def test_is_loop(sent: list[datetime], answers: list[tuple[datetime, str]], loop: bool) -> None:
    assert is_loop(LoopPolicy(), sent, answers, answers[-1][1]) is loop


def test_our_own_lines_pasted_into_the_answers_are_left_out() -> None:
    replies = [f"Dear Ann,\n\nWe are sorry about order #{n}. Reply number {['one', 'two', 'three'][i]}: "
               f"a {['courier', 'refund', 'replacement'][i]} is on its way, tracking {n}.\n\nSam"
               for i, n in enumerate((48213, 51234, 60001))]
    canned = "Thank you, filed.\nYour message:\n"
    answers = [(when + timedelta(minutes=1), canned + reply) for when, reply in zip(SENT, replies, strict=True)]
    assert not is_loop(LoopPolicy(similarity=0.95), SENT, answers, answers[-1][1])
    assert is_loop(LoopPolicy(similarity=0.95), SENT, answers, answers[-1][1], ours=replies)


def test_the_current_message_must_match_the_loop() -> None:
    answers = _answers([1, 2, 0.5])
    assert not is_loop(LoopPolicy(), SENT, answers, "Maria here: please ship the kettles on Monday.")


def test_an_answer_before_our_reply_does_not_count() -> None:
    answers = _answers([1, 2, 0.5])
    answers[1] = (SENT[1] - timedelta(minutes=1), answers[1][1])
    assert not is_loop(LoopPolicy(), SENT, answers, answers[-1][1])


def test_one_answer_never_counts_for_two_replies() -> None:
    sent = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    answers = [(T0 + timedelta(seconds=30), SAME.format(n=1)), (T0 + timedelta(minutes=2, seconds=30), SAME.format(n=2))]
    assert not is_loop(LoopPolicy(), sent, answers, answers[-1][1])
    answers.append((T0 + timedelta(minutes=3), SAME.format(n=3)))
    assert is_loop(LoopPolicy(), sent, answers, answers[-1][1])


def test_near_identical_means_digits_and_dates_aside_or_a_high_ratio() -> None:
    assert similar("Ticket 123 filed on 20/11/2026 at 09:01", "Ticket 124 filed on 21/11/2026 at 10:45", 0.9)
    assert similar(SAME.format(n=1), SAME.format(n=1).replace("Thank you", "Thanks"), 0.9)
    assert not similar("My kettle is broken.", "Your kettle will ship on Monday.", 0.9)
    assert not similar("", "x", 0.9)


def test_a_loop_policy_from_the_rules_file(tmp_path: Path) -> None:
    import shutil

    from triage.automatic import AutoRules

    rules = tmp_path / "rules"
    shutil.copytree(Path(__file__).resolve().parent.parent / "rules", rules)
    path = rules / "automatic.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("replies = 3", "replies = 2"), encoding="utf-8")
    policy = AutoRules.load(rules).loop
    assert policy == LoopPolicy(replies=2, within_minutes=10, similarity=0.9)
    assert is_loop(policy, SENT[:2], _answers([1, 2]), SAME.format(n=2))


@pytest.mark.parametrize(("addresses", "one"), [
    (["noreply+7f3a@vendor.example", "noreply+x9@vendor.example", "NoReply@Vendor.example"], True),
    (["noreply-5f3a9c2e81@vendor.example", "noreply-0b7d1e4a63@vendor.example", "noreply.20261201093011@vendor.example"],
     True),
    (["bounce-support=example.com@vendor.example", "bounce-support=example.com-12345678@vendor.example"], True),
    (["prvs=0123456789=noreply@vendor.example", "noreply@vendor.example"], True),
    # people: never one, however alike
    (["john.smith@acme.example", "jane.smith@acme.example"], False),
    (["m.mueller1@acme.example", "m.mueller2@acme.example"], False),
    (["sales-uk@acme.example", "sales-de@acme.example"], False),
    (["anna.2019@acme.example", "anna.2020@acme.example"], False),
    (["noreply@vendor.example", "noreply@other.example"], False),
    (["a1b2c3d4e5@vendor.example", "f6a7b8c9d0@vendor.example"], False),  # nothing left to keep: as they are
    # real customers whose addresses carry digits of their own: a phone number, a birth date, a year
    (["maria-0612345678@hotmail.example", "maria-0698765432@hotmail.example"], False),
    (["john.smith.19850412@gmail.example", "john.smith.19900101@gmail.example"], False),
    (["anna.bead2012@acme.example", "anna.cafe1990@acme.example"], False),
    (["j_123456@x.example", "j_654321@x.example"], False),
    (["maria-0612345678@hotmail.example", "maria@hotmail.example"], False),
])
def test_a_responders_changing_addresses_are_one_and_people_never_are(addresses: list[str], one: bool) -> None:
    assert (len({loop_address(a) for a in addresses}) == 1) is one, [loop_address(a) for a in addresses]


def test_two_customers_whose_addresses_differ_only_in_digits_are_never_one_loop(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    """maria-0612345678@ answered two of our replies at once with the same words; maria-0698765432@,
    another customer on a case of her own, answers our first reply to her the same way. Nothing
    threads the two cases together, so hers is drafted, never held as the first one's loop."""
    first, second = "maria-0612345678@hotmail.example", "maria-0698765432@hotmail.example"
    dovecot.append("INBOX", email_bytes(subject="Order #48213: 40 kettles arrived broken", body=COMPLAINT_TEXT,
                                        sender=f"Maria <{first}>", message_id="<m1@hotmail.example>"))
    workspace.imap_config(dovecot, extra=smtp_config(smtp_server))
    assert workspace.run_json("poll")["drafts"] == 1
    for n in (1, 2):
        [draft] = workspace.run_json("queue")
        assert workspace.run("approve", str(draft["id"]), "--agent", "dana").returncode == 0
        dovecot.append("INBOX", responder_answer(smtp_server.wait_for(n)[-1].message, n, sender=first))
        assert workspace.run_json("poll")["drafts"] == 1
    dovecot.append("INBOX", email_bytes(subject="Order #48999: 12 kettles arrived broken", body=COMPLAINT_TEXT,
                                        sender=f"Maria <{second}>", message_id="<m2@hotmail.example>"))
    assert workspace.run_json("poll")["drafts"] == 1
    [draft] = [d for d in workspace.run_json("queue") if d["customer"] == second]
    assert workspace.run("approve", str(draft["id"]), "--agent", "dana").returncode == 0
    dovecot.append("INBOX", responder_answer(smtp_server.wait_for(3)[-1].message, 3, sender=second))
    summary = workspace.run_json("poll")
    assert (summary["loops"], summary["drafts"]) == (0, 1), summary
