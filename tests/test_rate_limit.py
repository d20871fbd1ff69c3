"""Honest rate limits (issue 12, item 3).

Automatic mail never counts toward the per-sender limit, and a rate-limited
message is stored, keeps a first-response deadline on its case and shows in
the queue (CLI, ``--json`` and the review page in Chromium) as
"rate-limited: no draft made" with the count. Real Dovecot, real CLI.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from conftest import Workspace, email_bytes, logged_in, review_page
from servers import Dovecot


def complaint(i: int, **kw: Any) -> bytes:
    return email_bytes(subject=f"Problem {i}: order #{4000 + i} arrived broken",
                       body=f"Order #{4000 + i} arrived broken. I want a refund.", message_id=f"<c{i}@customer.test>", **kw)


def test_forged_automatic_mail_from_a_customer_does_not_silence_their_complaint(
    dovecot: Dovecot, workspace: Workspace
) -> None:
    forged = [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"X-Autoreply": "yes"},
        {"List-Id": "<news.customer.test>"},
    ]
    for i in range(12):
        dovecot.append("INBOX", email_bytes(subject=f"Out of office {i}", body="I am away until Monday.",
                                            message_id=f"<auto{i}@customer.test>", headers=forged[i % len(forged)]))
    workspace.imap_config(dovecot)
    assert workspace.run_json("poll")["ignored"] == 12
    dovecot.append("INBOX", complaint(1))
    summary = workspace.run_json("poll")
    assert (summary["triaged"], summary["rate_limited"], summary["drafts"]) == (1, 0, 1)
    [row] = workspace.run_json("queue")
    assert row["customer"] == "ann@customer.test" and row["rate_limited"] == 0


def test_a_rate_limited_message_keeps_a_deadline_and_shows_in_the_queue(dovecot: Dovecot, workspace: Workspace) -> None:
    for i in range(3):
        dovecot.append("INBOX", complaint(i))
    workspace.imap_config(dovecot, extra="[poll]\nrate_limit = 2\nrate_window_minutes = 60\n")
    summary = workspace.run_json("poll")
    assert (summary["triaged"], summary["rate_limited"], summary["drafts"]) == (3, 1, 2)
    with sqlite3.connect(workspace.db) as db:
        [(limited_case,)] = db.execute(
            "SELECT case_id FROM messages WHERE rate_limited = 1").fetchall()
        deadlines = db.execute(
            "SELECT COUNT(*) FROM deadlines WHERE case_id = ? AND kind = 'first-response' AND done_at IS NULL",
            (limited_case,)).fetchone()[0]
    assert deadlines == 1  # someone will be reminded

    rows = workspace.run_json("queue")
    assert [r["rate_limited"] for r in rows].count(0) == 2
    [limited] = [r for r in rows if r["case"] == limited_case]
    assert limited["id"] is None and limited["rate_limited"] == 1 and limited["status"] == "rate-limited"
    assert limited["due"] and limited["error"] == "rate-limited: no draft made"
    assert set(rows[0]) >= {"id", "case", "customer", "customer_name", "subject", "level", "archetypes", "template",
                            "status", "created_at", "due", "error", "rate_limited"}
    text = workspace.run("queue")
    assert text.returncode == 0, text.stderr
    [line] = [ln for ln in text.stdout.splitlines() if "rate-limited" in ln and "no draft made" in ln]
    assert f"{limited_case:>4}" in line and "(1)" in line

    # more mail on the same thread: the case's count grows, still one row and one deadline
    dovecot.append("INBOX", email_bytes(subject="Re: Problem 2", body="Still broken! Answer me.",
                                        message_id="<c2b@customer.test>",
                                        headers={"In-Reply-To": "<c2@customer.test>"}))
    workspace.run_json("poll")
    [limited] = [r for r in workspace.run_json("queue") if r["case"] == limited_case]
    assert limited["rate_limited"] == 2
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT COUNT(*) FROM deadlines WHERE case_id = ? AND done_at IS NULL",
                          (limited_case,)).fetchone()[0] == 1


def test_rate_limited_mail_on_a_case_with_a_draft_is_counted_on_that_draft(dovecot: Dovecot, workspace: Workspace) -> None:
    dovecot.append("INBOX", complaint(0))
    for i in range(3):
        dovecot.append("INBOX", email_bytes(subject="Re: Problem 0", body=f"Hello?? Reply {i}. Still broken.",
                                            message_id=f"<again{i}@customer.test>",
                                            headers={"In-Reply-To": "<c0@customer.test>"}))
    workspace.imap_config(dovecot, extra="[poll]\nrate_limit = 2\n")
    assert workspace.run_json("poll")["rate_limited"] == 2
    [row] = workspace.run_json("queue")
    assert row["id"] is not None and row["status"] == "pending" and row["rate_limited"] == 2


def test_the_review_page_shows_rate_limited_cases(dovecot: Dovecot, workspace: Workspace, browser: Any) -> None:
    for i in range(3):
        dovecot.append("INBOX", complaint(i))
    workspace.imap_config(dovecot, extra="[poll]\nrate_limit = 2\n")
    workspace.run_json("poll")
    workspace.add_agents()  # dana and sam, password conftest.AGENT_PASSWORD
    with review_page(workspace) as base:
        context, page = logged_in(browser, base)
        limited = page.locator("#rate-limited li.rate-limited")
        assert limited.count() == 1
        assert "rate-limited: no draft made (1)" in limited.inner_text()
        assert limited.get_attribute("data-case") == str(workspace.run_json("queue")[-1]["case"])
        assert page.locator("table.queue tbody tr").count() == 2
        context.close()
