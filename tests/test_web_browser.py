"""The review page in real headless Chromium, against real Dovecot and SMTP servers.

Mail is polled from Dovecot by the real CLI once per module; each test gets
its own Dovecot holding the Maildir that poll left and its own copy of the
store. The app runs in werkzeug's threaded server on a free loopback port;
Playwright drives Debian's chromium (never a downloaded browser). A missing
chromium fails the test.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import PASSWORD as IMAP_PASSWORD
from conftest import USER, Workspace, logged_in, review_page, smtp_config
from servers import Dovecot, SmtpServer
from test_web import CLEAN, MESSAGES, PASSWORD, _copy_store

from triage import config
from triage.store import Store


def polled_template(messages: list[bytes], directory: Path) -> Path:
    """Poll ``messages`` once, by the real CLI, from a Dovecot of their own; keep in ``directory`` the store
    (agents dana and sam added) and the user's Maildir as the poll left it (UIDVALIDITY, UIDs, flags)."""
    template = Workspace(directory)
    with Dovecot({USER: IMAP_PASSWORD}) as server:
        for raw in messages:
            server.append("INBOX", raw)
        template.imap_config(server)
        assert template.run_json("poll")["drafts"] == len(messages)
        # Dovecot rebuilds its index files from the Maildir and its uidlist
        shutil.copytree(server.mail_dir / USER, directory / "mail", ignore=shutil.ignore_patterns("dovecot.*index*"))
    template.add_agents()  # password conftest.AGENT_PASSWORD
    return directory


@contextmanager
def polled_and_served(template: Path, dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This test's own Dovecot and store, as the ``polled_template`` poll left them; serve the app on them."""
    mail = dovecot.mail_dir / USER  # nobody has logged in yet
    shutil.copytree(template / "mail", mail)
    owner = dovecot.mail_dir.stat()
    for path in [mail, *mail.rglob("*")]:
        os.chown(path, owner.st_uid, owner.st_gid)
    _copy_store(template, workspace.dir)
    workspace.imap_config(
        dovecot,
        extra=smtp_config(smtp_server),
    )
    monkeypatch.setenv("TRIAGE_TEST_PW", IMAP_PASSWORD)  # the app sends and files in Sent over IMAP
    monkeypatch.delenv("TRIAGE_WEB_SECRET", raising=False)
    with review_page(workspace) as base:
        yield base


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return polled_template(MESSAGES, tmp_path_factory.mktemp("polled"))


@pytest.fixture
def served(template: Path, dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Workspace]]:
    """The three messages of test_web, polled, agents dana and sam, the app: (base URL, workspace)."""
    with polled_and_served(template, dovecot, smtp_server, workspace, monkeypatch) as base:
        yield base, workspace


def landed(page: object, base: str, did: int) -> None:
    """After approving or rejecting draft ``did``: the next waiting draft's page, or the queue when none is left."""
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/(drafts/\d+\?from={did})?$"))  # type: ignore[attr-defined]


def _draft_for(workspace: Workspace, sender: str) -> int:
    with Store(workspace.db) as store:
        return next(r.id for r in store.queue() if r.customer == sender)


def test_agent_logs_in_fixes_a_draft_and_approves_it(
    served: tuple[str, Workspace], browser: object, smtp_server: SmtpServer, dovecot: Dovecot
) -> None:
    base, _workspace = served
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(base + "/quarantine")
    assert "/login?next=" in page.url
    page.fill("input[name=name]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    assert page.url == base + "/quarantine"

    page.goto(base + "/")
    first = page.locator("table.queue tbody tr").first
    assert "BROKEN AGAIN!!! Order #48213" in first.inner_text()  # the furious one is the most urgent
    did = int(first.get_attribute("data-draft") or 0)
    first.locator("a.open").click()
    assert page.url == f"{base}/drafts/{did}"
    assert page.locator("#message-text mark").count() > 0  # evidence highlighted

    page.fill("#draft-body", "Hi Derek,\n\nPlease calm down. As per my last email, a new blender ships today.\n\nSam\n")
    page.click("#save")
    findings = page.locator(".lint .finding")
    findings.first.wait_for()
    assert "calm down" in " ".join(findings.all_inner_texts()).lower()

    page.click("#approve")  # refused: the draft still has tone findings
    assert "tone finding" in page.locator(".flash.error").inner_text()
    assert smtp_server.messages == []

    page.fill("#draft-body", CLEAN)
    page.click("#save")
    assert page.locator(".lint").inner_text().strip() == "Tone: no findings."
    page.click("#approve")
    landed(page, base, did)
    assert f"Draft {did} sent to derek@customer.test." in page.locator(".flash.ok").inner_text()
    page.goto(base + "/")
    assert page.locator(f'tr[data-draft="{did}"]').count() == 0
    assert page.locator("table.queue tbody tr").count() == 2

    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ("derek@customer.test",)
    assert "A replacement ships today." in mail.message.get_content()
    assert len(dovecot.messages("Sent")) == 1
    assert dialogs == []
    context.close()


def test_customer_markup_never_runs_and_the_guards_hold(served: tuple[str, Workspace], browser: object) -> None:
    base, workspace = served
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(base + "/")
    page.fill("input[name=name]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(base + "/")

    eve = _draft_for(workspace, "eve@customer.test")
    row = page.locator(f'tr[data-draft="{eve}"]')
    assert "<script>window.__xss=1</script>" in row.inner_text()  # shown as text
    assert page.evaluate("window.__xss") is None
    row.locator("a.open").click()
    page.wait_for_url(f"{base}/drafts/{eve}")
    assert page.evaluate("window.__xss") is None
    assert page.locator("main script, main img").count() == 0
    assert "<img src=x onerror=" in page.locator("#message-text").inner_text()
    assert "<script>" in page.locator("dd.sender").inner_text() and "<script>" in page.locator("dd.subject").inner_text()
    page.locator("textarea#draft-body").wait_for()
    assert dialogs == []

    # The session cookie is sent, but a POST without the form's token is refused.
    forged = page.request.post(f"{base}/drafts/{eve}/reject", form={"reason": "forged"}, max_redirects=0)
    assert forged.status == 403
    with Store(workspace.db) as store:
        draft = store.draft(eve)
        assert draft is not None and draft.status == "pending"
    cookie = next(c for c in context.cookies() if c["name"] == "triage_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: not readable by script

    # A fresh browser without a session only sees the login page.
    stranger = browser.new_context().new_page()  # type: ignore[attr-defined]
    stranger.goto(f"{base}/drafts/{eve}")
    assert "/login?next=" in stranger.url and stranger.locator("input[name=password]").count() == 1
    stranger.context.close()

    # DNS rebinding: the right socket, the wrong name.
    port = int(base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/login", headers={"Host": f"rebound.example:{port}"})
    assert conn.getresponse().status == 400
    conn.close()
    context.close()


def test_in_chromium_logout_ends_the_session_and_guessing_is_refused(
    served: tuple[str, Workspace], browser: object
) -> None:
    _base, workspace = served
    frozen = datetime.now(UTC)  # a second server on the same store whose clock stands still: no wait ever passes
    with review_page(workspace, clock=lambda: frozen) as base:
        context, page = logged_in(browser, base)
        captured = context.cookies()
        page.click("button:has-text('Log out')")
        assert "/login" in page.url

        # The cookie as it was before logging out, replayed in another browser: it logs nobody in.
        thief = browser.new_context()  # type: ignore[attr-defined]
        thief.add_cookies(captured)
        stolen = thief.new_page()
        stolen.goto(base + "/")
        assert "/login?next=" in stolen.url and stolen.locator("input[name=password]").count() == 1
        thief.close()

        # Guessing: after three wrong passwords the page says to wait, and checks no password meanwhile.
        messages = []
        for n in range(4):
            page.fill("input[name=name]", "dana")
            page.fill("input[name=password]", f"guess-{n}")
            page.click("button:has-text('Log in')")
            messages.append(page.locator("p.flash.error").inner_text())
        assert messages[:3] == ["Unknown agent or wrong password."] * 3
        assert messages[3].startswith("Too many failed logins: try again in")
        page.fill("input[name=name]", "dana")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Log in')")
        assert "/login" in page.url and "Too many failed logins" in page.locator("p.flash.error").inner_text()
        assert workspace.run_json("agent", "list")[0]["failed_logins"] == 3
        context.close()


def test_in_chromium_a_2_mb_subject_is_cut_in_the_queue(served: tuple[str, Workspace], browser: object) -> None:
    base, workspace = served
    huge = "Refund now " * 200_000  # 2.2 MB, as a hostile mail could send
    with Store(workspace.db) as store, store.write():
        store.conn.execute("UPDATE cases SET subject = ?", (huge,))
        store.conn.execute("UPDATE customers SET name = ?", ("Eve " * 500_000,))
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body())) if r.url == base + "/" else None)
    page.goto(base + "/login")
    page.fill("input[name=name]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    assert page.url == base + "/"
    links = page.locator("table.queue a.open").all_inner_texts()
    assert len(links) == 3 and all(t.startswith("Refund now Refund now") and t.endswith("…") and len(t) <= 120
                                   for t in links)
    assert sizes and max(sizes) < 20_000, sizes
    context.close()


def test_in_chromium_an_agent_answers_an_open_question_with_a_saved_answer(
    served: tuple[str, Workspace], browser: object, smtp_server: SmtpServer
) -> None:
    base, workspace = served
    did = _draft_for(workspace, "derek@customer.test")
    with Store(workspace.db) as store, store.write():
        store.update_draft(did, body="Hi Derek,\n\nThanks for your message.\n\n[[answer: How do I descale it?]]\n\n"
                           "You can reply to this email at any point.\n\nBest wishes,\nSam\n")
    context, page = logged_in(browser, base)
    page.goto(f"{base}/drafts/{did}")

    page.click("#approve")  # refused: a question nobody has answered yet
    assert "no answer yet" in page.locator(".flash.error").inner_text()
    assert smtp_server.messages == []

    body = page.input_value("#draft-body").replace("Thanks for your message.", "Thanks for writing.")
    page.fill("#draft-body", body)  # an unsaved edit, kept by the insert
    page.fill("#draft-cc", "partner@customer.test")  # so is a Cc typed and not saved
    page.select_option("#answer-choice", "descaling")
    page.click("#insert")
    text = page.input_value("#draft-body")
    assert "[[answer:" not in text and "white vinegar" in text and "Thanks for writing." in text
    assert page.input_value("#draft-cc") == "partner@customer.test"
    assert "Descaling a kettle" in page.locator("#answers-used").inner_text()
    page.click("#approve")
    landed(page, base, did)
    [mail] = smtp_server.wait_for(1)
    assert "white vinegar" in mail.message.get_content() and "[[" not in mail.message.get_content()
    assert mail.message["Cc"] == "partner@customer.test"
    context.close()


def test_in_chromium_approve_sends_the_text_in_the_box_without_saving_first(
    served: tuple[str, Workspace], browser: object, smtp_server: SmtpServer
) -> None:
    base, workspace = served
    did = _draft_for(workspace, "derek@customer.test")
    context, page = logged_in(browser, base)
    page.goto(f"{base}/drafts/{did}")
    typed = "Hi Derek,\n\nTyped just now, never saved: a replacement ships today.\n\nSam\n"
    page.fill("#draft-body", typed)  # type: ignore[attr-defined]
    page.click("#approve")  # type: ignore[attr-defined]
    landed(page, base, did)
    [mail] = smtp_server.wait_for(1)
    assert "Typed just now, never saved" in mail.message.get_content()
    with Store(workspace.db) as store:
        draft = store.draft(did)
        assert draft is not None and draft.status == "sent" and draft.body == typed and draft.edited_by == "dana"

    # typed text with tone findings is kept, and refused as any draft with findings
    other = _draft_for(workspace, "eve@customer.test")
    page.goto(f"{base}/drafts/{other}")  # type: ignore[attr-defined]
    page.fill("#draft-body", "Hi,\n\nPlease calm down. As per my last email, it ships.\n\nSam\n")  # type: ignore[attr-defined]
    page.click("#approve")  # type: ignore[attr-defined]
    assert "was saved, but it has" in page.locator(".flash.error").inner_text()  # type: ignore[attr-defined]
    assert "calm down" in page.locator("#draft-body").input_value()  # type: ignore[attr-defined]
    assert len(smtp_server.messages) == 1
    context.close()  # type: ignore[attr-defined]


def test_in_chromium_a_collision_is_refused_and_shows_what_changed(
    served: tuple[str, Workspace], browser: object, smtp_server: SmtpServer
) -> None:
    base, workspace = served
    did = _draft_for(workspace, "derek@customer.test")
    context, page = logged_in(browser, base)
    page.goto(f"{base}/drafts/{did}")
    # meanwhile a colleague edits the same draft from the terminal
    from triage import review

    settings = config.load(workspace.config)
    with Store(workspace.db) as store:
        review.edit(settings, store, did, "Hi Derek,\n\nSam's version: we refund you in full.\n\nSam\n", "sam")
    page.click("#approve")  # type: ignore[attr-defined]
    refusal = page.locator(".flash.error").inner_text()  # type: ignore[attr-defined]
    assert "changed since you opened it (sam" in refusal
    assert "+Sam's version: we refund you in full." in refusal  # what changed
    assert smtp_server.messages == []
    with Store(workspace.db) as store:
        draft = store.draft(did)
        assert draft is not None and draft.status == "pending" and "Sam's version" in draft.body
    # reloaded, the page shows the colleague's text and approving sends it
    page.goto(f"{base}/drafts/{did}")  # type: ignore[attr-defined]
    page.click("#approve")  # type: ignore[attr-defined]
    landed(page, base, did)
    [mail] = smtp_server.wait_for(1)
    assert "Sam's version" in mail.message.get_content()
    context.close()  # type: ignore[attr-defined]


def test_in_chromium_a_rejected_draft_is_redrafted_and_sent(
    served: tuple[str, Workspace], browser: object, smtp_server: SmtpServer
) -> None:
    base, workspace = served
    did = _draft_for(workspace, "derek@customer.test")
    context, page = logged_in(browser, base)
    page.goto(f"{base}/drafts/{did}")
    page.fill(".reject input[name=reason]", "wrong tone for Derek")  # type: ignore[attr-defined]
    page.click("#reject")  # type: ignore[attr-defined]
    landed(page, base, did)
    page.goto(f"{base}/drafts/{did}")  # type: ignore[attr-defined]
    assert page.locator("#draft-status").inner_text() == "rejected"  # type: ignore[attr-defined]
    page.select_option(".redraft select[name=template]", "scratch")  # type: ignore[attr-defined]
    page.click("#redraft")  # type: ignore[attr-defined]
    assert "New draft" in page.locator(".flash.ok").inner_text()  # type: ignore[attr-defined]
    new_id = int(page.url.rsplit("/", 1)[1])  # type: ignore[attr-defined]
    assert new_id != did
    box = page.locator("#draft-body").input_value()  # type: ignore[attr-defined]
    assert box.startswith("Hi ") and "Best wishes," in box
    page.fill("#draft-body", CLEAN)  # type: ignore[attr-defined]
    page.click("#approve")  # type: ignore[attr-defined]
    landed(page, base, new_id)
    [mail] = smtp_server.wait_for(1)
    assert "A replacement ships today." in mail.message.get_content()
    context.close()  # type: ignore[attr-defined]


def test_in_chromium_an_open_checklist_item_blocks_approval_until_the_agent_confirms_it(
    served: tuple[str, Workspace], browser: object, smtp_server: SmtpServer
) -> None:
    base, workspace = served
    did = _draft_for(workspace, "derek@customer.test")
    with Store(workspace.db) as store, store.write():
        store.update_draft(did, body="Hi Derek,\n\nThanks for your message.\n\n"
                           "[[confirm: I've sent you a prepaid return label for order 48213.]]\n\n"
                           "You can reply to this email at any point.\n\nBest wishes,\nSam\n")
    context, page = logged_in(browser, base)
    page.goto(f"{base}/drafts/{did}")
    item = page.locator("#checklist li.confirm")  # type: ignore[attr-defined]
    assert item.count() == 1 and item.locator("mark").inner_text() == (
        "I've sent you a prepaid return label for order 48213.")

    page.click("#approve")  # type: ignore[attr-defined]
    refused = page.locator(".flash.error").inner_text()  # type: ignore[attr-defined]
    assert "1 checklist item(s) not confirmed" in refused and "prepaid return label" in refused
    assert smtp_server.messages == []

    box = page.input_value("#draft-body")  # type: ignore[attr-defined]
    page.fill("#draft-body", box.replace("Thanks for your message.", "Thanks for writing."))  # type: ignore[attr-defined]
    page.fill("#draft-cc", "partner@customer.test")  # type: ignore[attr-defined]
    item.locator("button.confirm-item").click()
    assert page.input_value("#draft-cc") == "partner@customer.test"  # type: ignore[attr-defined]
    assert "Confirmed: I've sent you a prepaid" in page.locator(".flash.ok").inner_text()  # type: ignore[attr-defined]
    assert page.locator("#checklist").count() == 0  # type: ignore[attr-defined]
    text = page.input_value("#draft-body")  # type: ignore[attr-defined]
    assert "[[" not in text and "Thanks for writing." in text and "prepaid return label for order 48213." in text
    with Store(workspace.db) as store:
        draft = store.draft(did)
        assert draft is not None and draft.edited_by == "dana"
        [event] = [e for e in store.case_events(draft.case_id) if e["kind"] == "checklist-confirmed"]
    assert event["actor"] == "dana" and event["detail"]["item"] == (
        "I've sent you a prepaid return label for order 48213.")

    page.click("#approve")  # type: ignore[attr-defined]
    landed(page, base, did)
    [mail] = smtp_server.wait_for(1)
    sent = mail.message.get_content()
    assert "[[" not in sent and "]]" not in sent and "confirm:" not in sent
    assert "I've sent you a prepaid return label for order 48213." in sent and "Thanks for writing." in sent
    context.close()  # type: ignore[attr-defined]


def test_in_chromium_the_cc_field_is_validated_saved_and_sent(
    served: tuple[str, Workspace], browser: object, smtp_server: SmtpServer
) -> None:
    base, workspace = served
    context, page = logged_in(browser, base)
    did = _draft_for(workspace, "derek@customer.test")
    page.goto(f"{base}/drafts/{did}")
    assert page.input_value("#draft-cc") == ""  # Derek wrote to us alone
    page.fill("#draft-body", CLEAN)
    page.fill("#draft-cc", "cfo@customer.test, not an address")
    page.click("#approve")
    assert "not an email address: 'not an address'" in page.locator(".flash.error").inner_text()
    assert smtp_server.messages == []
    page.fill("#draft-cc", "cfo@customer.test")
    page.click("#save")
    assert page.input_value("#draft-cc") == "cfo@customer.test"  # saved with the text
    page.fill("#draft-cc", "Finance <finance@customer.test>, cfo@customer.test")
    page.click("#approve")  # the Cc on screen is the Cc sent
    landed(page, base, did)
    [mail] = smtp_server.wait_for(1)
    assert mail.message["Cc"] == "finance@customer.test, cfo@customer.test"
    assert sorted(mail.rcpt_tos) == ["cfo@customer.test", "derek@customer.test", "finance@customer.test"]
    with Store(workspace.db) as store:
        assert store.draft(did).cc == ["finance@customer.test", "cfo@customer.test"]  # type: ignore[union-attr]
    context.close()  # type: ignore[attr-defined]
