"""The review page for a full day in real headless Chromium (Debian's, never a downloaded one):
search, sorting, keyboard shortcuts and attachment downloads, against real Dovecot and SMTP servers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Workspace, logged_in
from servers import Dovecot, SmtpServer
from test_web import CLEAN, MESSAGES
from test_web_browser import landed, polled_and_served, polled_template
from test_web_day import PHOTO, _with_attachments

from triage.store import Store


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return polled_template([*MESSAGES, _with_attachments()], tmp_path_factory.mktemp("polled"))


@pytest.fixture
def served(template: Path, dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Workspace]]:
    """Four messages polled (one with a photo and a hostile HTML attachment), agents dana and sam, the app."""
    with polled_and_served(template, dovecot, smtp_server, workspace, monkeypatch) as base:
        yield base, workspace


def _at(page: object, url: str) -> None:
    """Wait until the page is at exactly ``url`` (a regex: Playwright reads a string as a glob)."""
    page.wait_for_url(re.compile(re.escape(url) + "$"))  # type: ignore[attr-defined]


def _ids(page: object, selector: str = "table.queue tbody tr") -> list[int]:
    rows = page.locator(selector)  # type: ignore[attr-defined]
    return [int(rows.nth(i).get_attribute("data-draft") or 0) for i in range(rows.count())]


def test_in_chromium_search_sort_and_shortcuts(
    served: tuple[str, Workspace], browser: object, smtp_server: SmtpServer
) -> None:
    base, workspace = served
    context, page = logged_in(browser, base)
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))  # type: ignore[attr-defined]
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)  # type: ignore[attr-defined]
    with Store(workspace.db) as store:
        rows = {r.id: r for r in store.queue()}
        order = store.waiting_ids()

    # search: "/" focuses the box; quotes and NEAR are searched for as text, never an error page
    page.goto(base + "/")  # type: ignore[attr-defined]
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    page.keyboard.press("/")  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.id") == "search", errors  # type: ignore[attr-defined]
    page.keyboard.type('"NEAR(')  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    assert "No case matches." in page.locator("#search-results").inner_text()  # type: ignore[attr-defined]
    page.fill("#search", "dented kettle")  # type: ignore[attr-defined]
    page.press("#search", "Enter")  # type: ignore[attr-defined]
    hits = page.locator("#search-results tbody tr")  # type: ignore[attr-defined]
    assert hits.count() == 1 and "<mark>" not in hits.inner_text() and hits.locator("mark").count() >= 1
    hits.locator("a.open").click()
    pat = next(i for i, r in rows.items() if r.customer == "pat@customer.test")
    _at(page, f"{base}/drafts/{pat}")

    # sort: each click on a header sorts on the server, the second click the other way
    page.goto(base + "/")  # type: ignore[attr-defined]
    page.click("th a[data-sort=customer]")  # type: ignore[attr-defined]
    _at(page, f"{base}/?sort=customer&dir=asc")
    by_customer = sorted(rows, key=lambda i: rows[i].customer)
    assert _ids(page) == by_customer
    page.click("th a[data-sort=customer]")  # type: ignore[attr-defined]
    _at(page, f"{base}/?sort=customer&dir=desc")
    assert _ids(page) == by_customer[::-1]
    page.click("th a[data-sort=subject]")  # type: ignore[attr-defined]
    assert _ids(page) == sorted(rows, key=lambda i: rows[i].subject.lower())

    # shortcuts on the queue: j/k move the selection, e opens the selected draft with the cursor in the reply
    page.goto(base + "/")  # type: ignore[attr-defined]
    assert _ids(page) == order
    page.keyboard.press("j")  # type: ignore[attr-defined]
    page.keyboard.press("j")  # type: ignore[attr-defined]
    assert _ids(page, "tr.selected") == [order[1]]
    page.keyboard.press("k")  # type: ignore[attr-defined]
    assert _ids(page, "tr.selected") == [order[0]]
    page.keyboard.press("e")  # type: ignore[attr-defined]
    _at(page, f"{base}/drafts/{order[0]}#draft-body")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'draft-body'")  # type: ignore[attr-defined]
    page.keyboard.type("typed keys stay in the box: j k a e ")  # type: ignore[attr-defined]
    assert page.url == f"{base}/drafts/{order[0]}#draft-body"  # type: ignore[attr-defined]

    # on a case page: j/k next/previous waiting draft, e the reply box, a approves after a confirmation
    page.goto(f"{base}/drafts/{order[0]}")  # type: ignore[attr-defined]
    page.keyboard.press("j")  # type: ignore[attr-defined]
    _at(page, f"{base}/drafts/{order[1]}?from={order[0]}")
    page.keyboard.press("k")  # type: ignore[attr-defined]
    _at(page, f"{base}/drafts/{order[0]}?from={order[1]}")
    page.keyboard.press("e")  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.id") == "draft-body"  # type: ignore[attr-defined]
    page.fill("#draft-body", CLEAN)  # type: ignore[attr-defined]
    page.locator("#draft-body").blur()  # type: ignore[attr-defined]

    page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    page.keyboard.press("a")  # type: ignore[attr-defined]
    assert dialogs and "Approve and send this reply to" in dialogs[0]
    assert page.url == f"{base}/drafts/{order[0]}?from={order[1]}" and smtp_server.messages == []  # type: ignore[attr-defined]
    page.once("dialog", lambda d: (dialogs.append(d.message), d.accept()))  # type: ignore[attr-defined]
    page.keyboard.press("a")  # type: ignore[attr-defined]
    landed(page, base, order[0])
    assert page.url == f"{base}/drafts/{order[1]}?from={order[0]}"  # type: ignore[attr-defined]
    [mail] = smtp_server.wait_for(1)
    assert "A replacement ships today." in mail.message.get_content()  # the box's text
    assert page.locator("#came-from").get_attribute("href") == f"/drafts/{order[0]}"  # type: ignore[attr-defined]
    assert errors == [] and len(dialogs) == 2
    context.close()  # type: ignore[attr-defined]


def test_in_chromium_attachments_download_and_never_render(
    served: tuple[str, Workspace], browser: object
) -> None:
    base, workspace = served
    context, page = logged_in(browser, base)
    with Store(workspace.db) as store:
        pat = next(r.id for r in store.queue() if r.customer == "pat@customer.test")
    page.goto(f"{base}/drafts/{pat}")  # type: ignore[attr-defined]
    links = page.locator("article.message a.attachment")  # type: ignore[attr-defined]
    assert links.count() == 2 and links.first.inner_text() == "dent photo.jpg"
    assert page.evaluate("window.__xss") is None  # type: ignore[attr-defined]

    with page.expect_download() as photo:  # type: ignore[attr-defined]
        links.first.click()
    assert photo.value.suggested_filename == "dent photo.jpg"
    assert Path(photo.value.path()).read_bytes() == PHOTO

    with page.expect_download() as html:  # type: ignore[attr-defined]
        links.nth(1).click()
    assert html.value.suggested_filename.endswith(".html") and "/" not in html.value.suggested_filename
    assert page.url == f"{base}/drafts/{pat}"  # type: ignore[attr-defined]  # downloaded, not opened
    assert page.evaluate("window.__xss") is None  # type: ignore[attr-defined]

    # opened directly, the hostile HTML is still a download, with the headers that say so
    href = links.nth(1).get_attribute("href")
    response = context.request.get(base + href)  # type: ignore[attr-defined]
    assert response.status == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith('attachment; filename="')
    other = context.new_page()  # type: ignore[attr-defined]
    with other.expect_download() as direct:
        try:
            other.goto(base + href)
        except Exception as exc:  # Chromium reports a navigation that became a download
            assert "Download is starting" in str(exc)
    assert direct.value.suggested_filename == html.value.suggested_filename
    assert other.evaluate("window.__xss") is None
    context.close()  # type: ignore[attr-defined]
