"""Big mail never wedges the inbox: byte-bounded fetches, too-large mail kept by its headers, retry.

Against a real Dovecot and real Maildir/mbox files. The memory figure itself
(peak RSS over 40 messages of 30 MB) is measured by bench/bigmail.py, not here.
"""

from __future__ import annotations

import json
import mailbox
import os
import sqlite3
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import imapclient
import pytest
from conftest import USER, Workspace, email_bytes
from servers import Dovecot

import triage.mailbox
import triage.mailbox.imap
from triage import config
from triage import poll as poll_service
from triage.store import Store

MB = 1024 * 1024


def with_photo(message_id: str, size: int, sender: str = "Big Bob <bob@customer.test>") -> bytes:
    """A complaint with an incompressible photo attached, about ``size`` bytes in all."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = USER
    msg["Subject"] = "Photos of the broken blender"
    msg["Date"] = "Fri, 20 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = message_id
    msg.set_content("My blender arrived broken. This is unacceptable, I want a refund. Photos attached.")
    msg.add_attachment(os.urandom(size * 3 // 4), maintype="image", subtype="jpeg", filename="broken.jpg")
    return msg.as_bytes()


def run_json(workspace: Workspace, *args: str) -> dict[str, Any]:
    done = workspace.run(*args, "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("\n") <= 2, done.stderr  # a warning line per quarantined message at most
    return json.loads(done.stdout)


def set_limit(workspace: Workspace, mb: int) -> None:
    text = workspace.config.read_text()
    if "max_message_mb" in text:
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("max_message_mb"))
    workspace.write_config(text.replace("[mailbox]", f"[mailbox]\nmax_message_mb = {mb}", 1))


def head_of(raw: bytes) -> bytes:
    end = raw.index(b"\r\n\r\n") + 4 if b"\r\n\r\n" in raw else raw.index(b"\n\n") + 2
    return raw[:end]


def test_a_message_over_the_limit_is_kept_by_headers_and_size_and_the_batch_is_stored(
    dovecot: Dovecot, workspace: Workspace
) -> None:
    dovecot.append("INBOX", email_bytes(message_id="<small1@customer.test>"))
    big_uid = dovecot.append("INBOX", with_photo("<big@customer.test>", 3 * MB // 2))
    last = dovecot.append("INBOX", email_bytes(message_id="<small2@customer.test>", sender="Cy <cy@customer.test>"))
    workspace.imap_config(dovecot)
    set_limit(workspace, 1)

    summary = run_json(workspace, "poll")
    assert (summary["fetched"], summary["triaged"], summary["quarantined"], summary["too_large"]) == (3, 2, 1, 1)
    on_server = dict((uid, raw) for uid, raw, _ in dovecot.messages("INBOX"))[big_uid]
    with Store(workspace.db) as store:
        [q] = store.quarantined()
        row = store.message(q["id"])
        assert row is not None
        assert q["error"].startswith("too large: 1.5 MB is over [mailbox] max_message_mb = 1")
        assert row.size == len(on_server) > MB
        assert row.raw == head_of(on_server)  # the headers, never the body
        assert (row.message_id, row.sender, row.subject) == (
            "<big@customer.test>", "bob@customer.test", "Photos of the broken blender")
        assert store.checkpoint(f"imap://{USER}@{dovecot.host}", "INBOX")[1] == last  # type: ignore[index]
        assert len(store.queue()) == 2
    listed = workspace.run("queue", "--quarantined")
    assert "too large: 1.5 MB" in listed.stdout
    assert run_json(workspace, "poll")["fetched"] == 0  # the checkpoint moved past it: no refetch loop


def test_retry_after_raising_the_limit_ingests_the_message(dovecot: Dovecot, workspace: Workspace) -> None:
    dovecot.append("INBOX", with_photo("<big@customer.test>", 3 * MB // 2))
    workspace.imap_config(dovecot)
    set_limit(workspace, 1)
    assert run_json(workspace, "poll")["too_large"] == 1

    again = run_json(workspace, "retry", "--all")  # still over the limit: still quarantined, counted
    assert (again["quarantined"], again["too_large"], again["triaged"]) == (1, 1, 0)
    with Store(workspace.db) as store:
        [q] = store.quarantined()
        assert q["retries"] == 1 and q["error"].startswith("too large:")

    set_limit(workspace, 2)
    done = run_json(workspace, "retry", "--all")
    assert (done["triaged"], done["quarantined"], done["drafts"]) == (1, 0, 1)
    with Store(workspace.db) as store:
        assert store.quarantined() == []
        [row] = store.db.execute("SELECT * FROM messages").fetchall()
        assert row["status"] == "triaged" and row["size"] > MB
        assert len(row["raw"]) == row["size"]  # fetched whole now, and kept: its photo is downloadable on the page
        assert "broken" in row["text"]
        [draft] = store.queue()
        assert draft.customer == "bob@customer.test"
    assert run_json(workspace, "poll")["fetched"] == 0


def test_bodies_are_fetched_in_groups_under_the_byte_budget(
    dovecot: Dovecot, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    uids = [dovecot.append("INBOX", with_photo(f"<p{i}@customer.test>", 100_000, sender=f"P{i} <p{i}@customer.test>"))
            for i in range(5)]
    big = dovecot.append("INBOX", with_photo("<huge@customer.test>", 3 * MB // 2))
    workspace.imap_config(dovecot)
    set_limit(workspace, 1)
    sizes = {uid: len(raw) for uid, raw, _ in dovecot.messages("INBOX")}
    budget = 250_000  # two of the 100 KB messages fit, three do not
    monkeypatch.setattr(triage.mailbox.imap, "BATCH_BYTES", budget)
    fetches: list[tuple[list[int], list[str]]] = []
    real_fetch = imapclient.IMAPClient.fetch

    def recording_fetch(self: imapclient.IMAPClient, messages: Any, data: Any, modifiers: Any = None) -> Any:
        fetches.append((list(messages), [str(d) for d in data]))
        return real_fetch(self, messages, data, modifiers)

    monkeypatch.setattr(imapclient.IMAPClient, "fetch", recording_fetch)
    os.environ.setdefault("TRIAGE_TEST_PW", "secret")
    summary = poll_service.run(config.load(workspace.config))

    assert (summary.fetched, summary.triaged, summary.too_large) == (6, 5, 1)
    assert fetches[0] == (uids + [big], ["RFC822.SIZE"])  # sizes first, for every UID, before any body
    bodies = [m for m, data in fetches if "BODY.PEEK[]" in data]
    assert len(bodies) == 3 and sorted(u for m in bodies for u in m) == uids  # more than one group, each once
    assert all(sum(sizes[u] for u in m) <= budget for m in bodies)
    heads = [(m, data) for m, data in fetches if any(d.startswith("BODY.PEEK[HEADER]") for d in data)]
    assert [m for m, _ in heads] == [[big]] and big not in {u for m in bodies for u in m}  # never loaded whole
    with Store(workspace.db) as store:
        assert store.checkpoint(f"imap://{USER}@{dovecot.host}", "INBOX") == (dovecot.uidvalidity("INBOX"), big)
        assert len(store.queue()) == 5


def test_maildir_applies_the_limit_by_file_size_and_retry_reads_the_file_again(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    raw = with_photo("<bigfile@customer.test>", 3 * MB // 2)
    path = maildir([email_bytes(message_id="<fine@customer.test>"), raw])
    workspace.maildir_config(path)
    set_limit(workspace, 1)
    summary = run_json(workspace, "poll")
    assert (summary["triaged"], summary["too_large"]) == (1, 1)
    with Store(workspace.db) as store:
        [q] = store.quarantined()
        row = store.message(q["id"])
        assert row is not None and row.raw == head_of(raw) and row.size == len(raw)
    set_limit(workspace, 2)
    assert run_json(workspace, "retry", "--all")["triaged"] == 1
    assert run_json(workspace, "poll")["fetched"] == 0


def test_mbox_applies_the_limit_and_keeps_its_keys(workspace: Workspace, tmp_path: Path) -> None:
    box = mailbox.mbox(str(tmp_path / "inbox.mbox"))
    raw = with_photo("<bigmbox@customer.test>", 3 * MB // 2)
    for message in (email_bytes(message_id="<m0@customer.test>"), raw):
        box.add(message)
    box.close()
    workspace.write_config(
        f'[mailbox]\nsource = "mbox"\npath = "{tmp_path / "inbox.mbox"}"\n[store]\npath = "triage.db"\n'
    )
    set_limit(workspace, 1)
    assert run_json(workspace, "poll")["too_large"] == 1
    box = mailbox.mbox(str(tmp_path / "inbox.mbox"))
    import hashlib

    expected = {hashlib.sha256(box.get_bytes(k)).hexdigest()[:32] for k in box.keys()}  # the keys as always made
    box.close()
    with sqlite3.connect(workspace.db) as db:
        assert {r[0] for r in db.execute("SELECT source_key FROM messages")} == expected
    set_limit(workspace, 2)
    assert run_json(workspace, "retry", "--all")["triaged"] == 1
    assert run_json(workspace, "poll")["fetched"] == 0


@pytest.mark.parametrize("value", ["0", '"big"', "-3"])
def test_max_message_mb_is_validated(workspace: Workspace, tmp_path: Path, value: str) -> None:
    workspace.maildir_config(tmp_path)
    set_limit(workspace, 1)
    workspace.write_config(workspace.config.read_text().replace("max_message_mb = 1", f"max_message_mb = {value}"))
    done = workspace.run("poll")
    assert done.returncode == 2
    assert "mailbox.max_message_mb" in done.stderr and len(done.stderr.strip().splitlines()) == 1
