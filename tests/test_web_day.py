"""The review page for a full day (issue 15 item 7) through Flask's test client: search, sorting,
times, the case page's thread, attachments and follow-up buttons, the next draft after an action."""

from __future__ import annotations

import mailbox
import re
import shutil
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import ROOT
from servers import SmtpServer
from test_web import MESSAGES, PASSWORD, XSS, Web, _copy_store, _settings, agent, polled, web  # noqa: F401

from triage import agents, poll
from triage.store import Store, iso, utcnow
from triage.web import create_app, render


def _rows(page_text: str, marker: str = "data-draft") -> list[int]:
    return [int(i) for i in re.findall(rf'<tr[^>]*{marker}="(\d+)"', page_text)]


# -- search ---------------------------------------------------------------------


def test_search_finds_cases_and_links_to_them(agent: Web) -> None:  # noqa: F811
    did = agent.draft_for("derek@customer.test")
    page = agent.get("/?q=lawyer")
    assert page.status_code == 200 and 'id="search-results"' in page.text
    results = page.text[page.text.index('id="search-results"'):page.text.index("</section>", page.text.index('id="search-results"'))]
    with agent.store() as store:
        case_id = store.draft(did).case_id
    assert f'data-case="{case_id}"' in results and "<mark>lawyer</mark>" in results
    assert len(re.findall(r"<tr data-case=", results)) == 1
    link = agent.get(f"/cases/{case_id}")
    assert link.status_code == 302 and link.headers["Location"].endswith(f"/drafts/{did}")
    assert agent.get("/cases/999999").status_code == 404
    for q in ("Derek", "derek@customer.test", "48213", "BROKEN again"):
        assert f'data-case="{case_id}"' in agent.get("/", query_string={"q": q}).text, q
    assert "No case matches." in agent.get("/?q=kettle").text
    assert 'id="search-results"' not in agent.get("/").text  # no query, no results section


def test_bad_fts_syntax_in_a_search_is_never_an_error(agent: Web) -> None:  # noqa: F811
    for q in ['"', '"refund', "*", "refund*", "NEAR", "NEAR(refund lawyer, 2)", "refund OR", "AND", "NOT",
              "(", ")", "sender:derek", "{subject}:x", "^refund", "-refund", "a\"b\"c", "\\", "'", "%", "\x00"]:
        page = agent.get("/", query_string={"q": q})
        assert page.status_code == 200, q
        assert 'id="search-results"' in page.text or not q.strip("\x00 ")


def test_a_search_query_and_matched_text_are_shown_as_text(agent: Web) -> None:  # noqa: F811
    page = agent.get("/", query_string={"q": XSS})
    assert page.status_code == 200
    assert "<script>window.__xss" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page.text  # echoed in the box, escaped
    found = agent.get("/", query_string={"q": "script window"})  # Eve's message holds the markup as text
    results = found.text[found.text.index('id="search-results"'):]
    assert "data-case=" in results
    assert "<script>" not in results and "<img src=x" not in results
    assert set(re.findall(r"<(\w+)", results[results.index('class="snippet"'):results.index("</td>", results.index('class="snippet"'))])) <= {"mark", "small"}


# -- sorting, overdue, times ----------------------------------------------------------


def test_every_shown_column_sorts_server_side_and_unknown_ones_fall_back(agent: Web) -> None:  # noqa: F811
    page = agent.get("/").text
    head = page[page.index('<table class="queue"'):page.index("</thead>")]
    keys = re.findall(r'data-sort="(\w+)"', head)
    assert keys == ["urgency", "level", "customer", "subject", "archetype", "age", "due", "status", "owner"]
    assert head.count("<th>") == len(keys)  # every shown column has its link
    with agent.store() as store:
        rows = {r.id: r for r in store.queue()}
    derek = agent.draft_for("derek@customer.test")
    agent.post(f"/drafts/{derek}/assign", {"to": "sam"})
    by = {key: _rows(agent.get(f"/?sort={key}&dir=asc").text) for key in keys}
    by_desc = {key: _rows(agent.get(f"/?sort={key}&dir=desc").text) for key in keys}
    assert by["customer"] == sorted(rows, key=lambda i: rows[i].customer)
    assert by_desc["customer"] == sorted(rows, key=lambda i: rows[i].customer, reverse=True)
    assert by["subject"] == sorted(rows, key=lambda i: rows[i].subject.lower())
    assert by["owner"][0] == derek and by_desc["owner"][0] == derek  # the only owner; nobody's stay last
    assert all(sorted(v) == sorted(rows) for v in by.values())
    for bad in ("nonsense", "d.id; DROP TABLE drafts", "level_rank"):
        response = agent.get("/", query_string={"sort": bad, "dir": "sideways"})
        assert response.status_code == 200 and _rows(response.text) == by["urgency"]


def test_overdue_rows_are_highlighted_and_times_are_relative_with_the_absolute_time_on_hover(
    polled: Path, tmp_path: Path,  # noqa: F811
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    policy = rules / "followup.toml"
    policy.write_text(re.sub(r'(?m)^timezone = .*$', 'timezone = "America/New_York"', policy.read_text()))
    _copy_store(polled, tmp_path)
    (tmp_path / "Maildir").symlink_to(polled / "Maildir")
    settings = _settings(tmp_path, extra=f'[paths]\nrules = "{rules}"\ntemplates = "{ROOT / "templates"}"\n')
    client = Web(create_app(settings, secret="s" * 48, port=8025), settings)
    assert client.login().status_code == 302
    eve = client.draft_for("eve@customer.test")
    with client.store() as store:
        case_id = store.draft(eve).case_id
        with store.write():
            store.conn.execute("UPDATE deadlines SET due = ? WHERE case_id != ?", (iso(utcnow() + timedelta(days=1)), case_id))
            store.conn.execute("UPDATE deadlines SET due = '2026-11-20T09:00:00+00:00' WHERE case_id = ?", (case_id,))
            store.conn.execute("UPDATE drafts SET created_at = '2026-11-20T09:00:00+00:00' WHERE id = ?", (eve,))
    page = client.get("/").text
    row = page.split(f'data-draft="{eve}"')[0].rsplit("<tr", 1)[1] + page.split(f'data-draft="{eve}"')[1].split("</tr>")[0]
    assert "overdue-row" in row and 'class="overdue"' in row
    # the absolute time on hover is in the policy's time zone (New York: EST in November)
    assert re.search(r'<time datetime="2026-11-20T09:00:00\+00:00" title="2026-11-20 04:00 EST">\d+d overdue</time>', row)
    assert re.search(r'<time datetime="2026-11-20T09:00:00\+00:00" title="2026-11-20 04:00 EST">\d+d ago</time>', row)
    others = [r for r in page.split("<tr")[1:] if "data-draft=" in r and f'data-draft="{eve}"' not in r]
    assert others and all("overdue-row" not in r.split(">")[0] for r in others)
    case_page = client.get(f"/drafts/{eve}").text
    assert re.search(r'<li class="first-response overdue"[^>]*>first-response ·\s*due <time[^>]*>\d+d overdue</time>', case_page)


# -- the static script and the CSP --------------------------------------------------


def test_the_shortcut_script_is_served_from_the_app_and_nothing_runs_inline(agent: Web) -> None:  # noqa: F811
    script = agent.get("/static/keys.js")
    assert script.status_code == 200 and script.mimetype in ("text/javascript", "application/javascript")
    assert "keydown" in script.text and "confirm(" in script.text
    script.close()
    for path in ("/", f"/drafts/{agent.draft_for('derek@customer.test')}"):
        page = agent.get(path)
        assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/keys.js" defer>']
        assert " on" + "click=" not in page.text and "javascript:" not in page.text
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "default-src 'none'" in csp and "unsafe" not in csp


# -- the case page: thread, attachments, follow-ups --------------------------------------

PHOTO = bytes(range(256)) * 8
EVIL_NAME = '"><img src=x onerror=alert(1)>../../etc/passwd<script>x</script>.html'


def _with_attachments() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Pat Doe <pat@customer.test>"
    msg["To"] = "support@example.com"
    msg["Subject"] = "Kettle arrived dented, photo attached"
    msg["Date"] = "Fri, 20 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = "<photo@customer.test>"
    msg.set_content("My kettle arrived dented and I am annoyed. Photo attached, please replace it.")
    msg.add_attachment(PHOTO, maintype="image", subtype="jpeg", filename="dent photo.jpg")
    msg.add_attachment(b"<script>window.__xss=3</script><h1>hi</h1>", maintype="text", subtype="html",
                       filename=EVIL_NAME)
    return msg.as_bytes()


@pytest.fixture(scope="module")
def attached(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store polled from a Maildir holding the usual three messages and one with two attachments."""
    base = tmp_path_factory.mktemp("attached")
    box = mailbox.Maildir(str(base / "Maildir"), create=True)
    for raw in [*MESSAGES, _with_attachments()]:
        box.add(raw)
    box.close()
    settings = _settings(base)
    assert poll.run(settings).drafts == 4
    with Store(settings.store_path) as store:
        agents.create(store, "dana", PASSWORD)
    return base


@pytest.fixture
def day(attached: Path, tmp_path: Path, smtp_server: SmtpServer) -> Web:
    _copy_store(attached, tmp_path)
    (tmp_path / "Maildir").symlink_to(attached / "Maildir")
    settings = _settings(tmp_path, smtp_server)
    client = Web(create_app(settings, secret="s" * 48, port=8025), settings)
    assert client.login().status_code == 302
    return client


def test_attachments_are_listed_and_downloaded_as_attachments_never_inline(day: Web) -> None:
    did = day.draft_for("pat@customer.test")
    page = day.get(f"/drafts/{did}").text
    links = re.findall(r'<a class="attachment" download href="(/messages/\d+/attachments/\d+)">([^<]*)</a>', page)
    assert [name for _, name in links][:1] == ["dent photo.jpg"] and len(links) == 4  # under the message and in the thread
    assert "<img src=x" not in page and "<script>x</script>" not in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page  # the hostile name, shown as text

    photo = day.get(links[0][0])
    assert photo.status_code == 200 and photo.data == PHOTO
    assert photo.headers["Content-Type"] == "application/octet-stream"
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
    assert photo.headers["Content-Disposition"] == (
        "attachment; filename=\"dent photo.jpg\"; filename*=UTF-8''dent%20photo.jpg")

    evil = day.get(links[1][0])
    assert evil.status_code == 200 and evil.data.startswith(b"<script>window.__xss=3")
    assert evil.headers["Content-Type"] == "application/octet-stream"  # declared text/html: neutralised
    disposition = evil.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=\"")
    plain = disposition.split('filename="')[1].split('"')[0]
    assert re.fullmatch(r"[A-Za-z0-9._ -]+", plain) and "/" not in plain and ".." not in plain.split(".html")[0][-2:]
    assert "%3C" not in disposition.split("filename*=")[1] or "%22" not in disposition.split("filename*=")[1]
    assert "<" not in disposition and '"' not in disposition.split("filename*=")[1]

    with day.store() as store:
        mid = store.draft(did).message_id
    assert day.get(f"/messages/{mid}/attachments/2").status_code == 404
    assert day.get("/messages/999999/attachments/0").status_code == 404
    day.client.post("/logout", data={"csrf_token": day.csrf()}, base_url="http://127.0.0.1:8025")
    assert day.get(links[0][0]).status_code == 302  # needs a login like every page


def test_safe_filenames() -> None:
    assert render.safe_filename("../../etc/passwd", 0) == "passwd"
    assert render.safe_filename("C:\\Users\\x\\report.pdf", 0) == "report.pdf"
    assert render.safe_filename('a"b<c>\r\nd.txt', 0) == "abcd.txt"
    assert render.safe_filename("...", 2) == "attachment-3"
    assert render.safe_filename("x" * 300 + ".jpeg", 0) == "x" * 115 + ".jpeg"
    assert render.content_disposition("Rechnung März.pdf") == (
        "attachment; filename=\"Rechnung Marz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf")


def test_the_thread_shows_every_message_and_every_reply_in_order(day: Web, smtp_server: SmtpServer) -> None:
    did = day.draft_for("pat@customer.test")
    clean = "Hi Pat,\n\nI am sorry about the dent. A new kettle ships today.\n\nSam\n"
    day.post(f"/drafts/{did}/approve", {"body": clean})
    smtp_server.wait_for(1)
    page = day.get(f"/drafts/{did}").text
    thread = page[page.index('id="thread"'):page.index("</ol>", page.index('id="thread"'))]
    kinds = re.findall(r'<li class="(ours|theirs)[^"]*"', thread)
    assert kinds == ["theirs", "ours"]
    assert "we replied</strong> (dana)" in thread and "A new kettle ships today." in thread
    assert "Photo attached, please replace it." in thread


def test_promise_wait_and_resolve_buttons_run_the_clis_commands(day: Web) -> None:
    did = day.draft_for("pat@customer.test")
    with day.store() as store:
        case_id = store.draft(did).case_id
    back = day.post(f"/cases/{case_id}/promise", {"what": "a new kettle", "by": "2d", "draft": str(did)})
    assert back.status_code == 302 and back.headers["Location"] == f"/drafts/{did}"
    page = day.get(f"/drafts/{did}").text
    assert "Promise" in page and "a new kettle" in page and 'class="promise' in page
    refused = day.post(f"/cases/{case_id}/promise", {"what": "x", "by": "someday soon", "draft": str(did)})
    assert refused.status_code == 302 and "flash error" in day.get(f"/drafts/{did}").text
    day.post(f"/cases/{case_id}/wait", {"draft": str(did)})
    page = day.get(f"/drafts/{did}").text
    assert "waits on the customer" in page and "paused since" in page and "Stop waiting" in page
    day.post(f"/cases/{case_id}/wait", {"draft": str(did), "resume": "1"})
    day.post(f"/cases/{case_id}/kept", {"draft": str(did)})
    day.post(f"/cases/{case_id}/resolve", {"draft": str(did), "root_cause": "courier damage", "outcome": "resolved"})
    assert f"Case {case_id} resolved." in day.get(f"/drafts/{did}").text
    with day.store() as store:
        case = store.case(case_id)
        events = [(e["kind"], e["actor"]) for e in store.case_events(case_id)]
    assert case.status == "resolved" and case.root_cause == "courier damage"
    for kind in ("promise-made", "case-waiting", "promise-kept", "case-resolved"):
        assert (kind, "dana") in events, kind
    assert day.post("/cases/999999/wait", {}).status_code == 404


def test_the_new_posts_need_the_csrf_token(day: Web) -> None:
    did = day.draft_for("pat@customer.test")
    with day.store() as store:
        case_id = store.draft(did).case_id
    posts = {
        f"/cases/{case_id}/promise": {"what": "a refund", "by": "2d"},
        f"/cases/{case_id}/kept": {},
        f"/cases/{case_id}/wait": {},
        f"/cases/{case_id}/resolve": {"outcome": "resolved"},
        f"/drafts/{did}/edit": {"body": "changed", "next": "1"},
    }
    for path, data in posts.items():
        assert day.post(path, data, csrf=False).status_code == 403, path
        assert day.post(path, {**data, "csrf_token": "forged"}, csrf=False).status_code == 403, path
    assert day.post(f"/cases/{case_id}/wait", {}, headers={"Origin": "http://evil.example"}).status_code == 403
    with day.store() as store:
        assert store.case(case_id).status == "open"
        assert not [e for e in store.case_events(case_id) if e["kind"] in ("promise-made", "case-waiting")]


# -- next and previous --------------------------------------------------------------


def test_after_an_action_the_page_lands_on_the_next_waiting_draft_with_a_link_back(
    day: Web, smtp_server: SmtpServer
) -> None:
    with day.store() as store:
        order = store.waiting_ids()
    assert len(order) == 4
    first, second, third, last = order
    page = day.get(f"/drafts/{second}").text
    assert f'href="/drafts/{second}/previous" rel="prev"' in page and f'href="/drafts/{second}/next" rel="next"' in page
    assert day.get(f"/drafts/{second}/next").headers["Location"] == f"/drafts/{third}?from={second}"
    assert day.get(f"/drafts/{second}/previous").headers["Location"] == f"/drafts/{first}?from={second}"
    assert day.get(f"/drafts/{last}/next").headers["Location"] == f"/drafts/{first}?from={last}"  # around
    assert day.get(f"/drafts/{first}/previous").headers["Location"] == f"/drafts/{last}?from={first}"

    clean = "Hi,\n\nI am sorry about this. A replacement ships today.\n\nSam\n"
    landed = day.post(f"/drafts/{second}/approve", {"body": clean}).headers["Location"]
    assert landed == f"/drafts/{third}?from={second}"
    page = day.get(landed).text
    assert f'<a href="/drafts/{second}" id="came-from">&larr; back to draft {second}</a>' in page
    assert "(sent:" in page and f"Draft {second} sent to" in page
    assert day.get(f"/drafts/{third}/previous").headers["Location"] == f"/drafts/{first}?from={third}"  # sent: gone

    saved = day.post(f"/drafts/{third}/edit", {"body": clean, "next": "1"}).headers["Location"]
    assert saved == f"/drafts/{last}?from={third}"
    stays = day.post(f"/drafts/{third}/edit", {"body": clean}).headers["Location"]
    assert stays == f"/drafts/{third}"  # plain "Save" stays to show the tone check
    findings = day.post(f"/drafts/{third}/edit", {"body": "Please calm down.\n", "next": "1"}).headers["Location"]
    assert findings == f"/drafts/{third}"  # findings are to be seen first

    rejected = day.post(f"/drafts/{last}/reject", {"reason": "answered by phone"}).headers["Location"]
    assert rejected == f"/drafts/{first}?from={last}"  # none after it: the first still waiting
    for did in (first, third):
        day.post(f"/drafts/{did}/reject", {"reason": "done"})
    assert day.post(f"/drafts/{third}/reject", {"reason": "again"}).headers["Location"] == f"/drafts/{third}"
    with day.store() as store:
        assert store.waiting_ids() == []
    assert day.get(f"/drafts/{third}/next").headers["Location"] == "/"  # none left: the queue
