"""Bad input never stops the batch: malformed mail, CPython's own odd messages, generated junk.

Every message ends triaged, ignored (automatic) or quarantined with its error;
no batch aborts; a poll over all of it (with a 20 MB attachment and
5,000-line bodies) stays within a generous memory bound; quarantined mail is
listed and, after a template fix, retried into a draft.
"""

from __future__ import annotations

import json
import mailbox
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import ROOT, Workspace, email_bytes, fault_numbers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage import config, pipeline, ruleset
from triage.mailbox import Batch, Fetched
from triage.store import Store

CORPUS = sorted((Path(__file__).parent / "data" / "mail").glob("*.eml"))


def cpython_messages() -> list[Path]:
    """CPython's test_email/data/msg_*.txt, when this Python ships its test package."""
    try:
        import test
    except ImportError:
        return []
    return sorted((Path(test.__file__).parent / "test_email" / "data").glob("msg_*.txt"))


def big_and_odd() -> list[bytes]:
    attachment = EmailMessage()
    attachment["From"] = "Big <big@customer.test>"
    attachment["To"] = "support@example.com"
    attachment["Subject"] = "Photos of the broken blender"
    attachment["Message-ID"] = "<big-attachment@customer.test>"
    attachment.set_content("It arrived broken, photos attached. I want a refund.")
    attachment.add_attachment(os.urandom(20 * 1024 * 1024), maintype="application", subtype="octet-stream",
                              filename="photos.zip")
    long_lines = "\n".join(f"line {i}: the kettle is broken and I am upset" for i in range(5000))
    return [
        attachment.as_bytes(),
        email_bytes(message_id="<five-thousand-lines@customer.test>", body=long_lines),
        email_bytes(message_id="<html-5000@customer.test>", body="x")
        .replace(b"text/plain", b"text/html")
        .replace(b"\nx\n", ("\n" + "<p>broken</p>" * 5000 + "\n").encode()),
        b"From: Empty <empty@customer.test>\nSubject: \nMessage-ID: <empty-body@customer.test>\n\n",
        b"From: \xe9ric \xff <eric@customer.test>\nSubject: caf\xe9 cass\xe9 \x80\x81\nMessage-ID: <8bit@customer.test>\n\n"
        b"Ma cafeti\xe8re est cass\xe9e !\n",
        b"",
        b"\r\n\r\n",
    ]


def outcomes(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT status, error, auto_reason FROM messages").fetchall()


def test_corpus_polls_without_aborting_and_within_bounded_memory(workspace: Workspace, tmp_path: Path) -> None:
    raws = [p.read_bytes() for p in CORPUS + cpython_messages()] + big_and_odd()
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    for raw in raws:
        box.add(raw)
    box.close()
    workspace.maildir_config(tmp_path / "Maildir")
    with open(tmp_path / "out", "w+b") as out_file, open(tmp_path / "err", "w+b") as err_file:
        child = subprocess.Popen([sys.executable, "-m", "triage", "--config", str(workspace.config), "poll", "--json"],
                                 cwd=workspace.dir, stdout=out_file, stderr=err_file)
        _, status, rusage = os.wait4(child.pid, 0)  # this child's own peak RSS
        child.returncode = os.waitstatus_to_exitcode(status)
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert child.returncode == 0, err
    peak_mb = rusage.ru_maxrss / 1024
    summary = json.loads(out)
    rows = outcomes(workspace.db)
    fault_numbers("bad_input_corpus", malformed_messages_processed=len(raws), cpython_files=len(cpython_messages()),
                  triaged=summary["triaged"], ignored=summary["ignored"], quarantined=summary["quarantined"],
                  duplicates=summary["duplicates"], peak_rss_mb=round(peak_mb))
    assert summary["fetched"] == len(raws), err
    assert summary["triaged"] + summary["ignored"] + summary["quarantined"] + summary["duplicates"] == len(raws)
    assert len(rows) == len(raws) - summary["duplicates"]
    assert all(status in ("triaged", "ignored", "quarantined") for status, _, _ in rows)
    assert all(error for status, error, _ in rows if status == "quarantined")
    assert all(reason for status, _, reason in rows if status == "ignored")
    assert peak_mb < 800, f"poll peak RSS {peak_mb:.0f} MB"


# -- generated mail --------------------------------------------------------------------

NAMES = ["From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "Reply-To",
         "Content-Type", "Content-Transfer-Encoding", "MIME-Version", "Auto-Submitted", "X-Junk"]
CTYPES = ["text/plain", "text/html", "multipart/mixed", "multipart/alternative", "multipart/report",
          "message/rfc822", "application/octet-stream", "text/plain; charset=x-unknown-8",
          "text/plain; charset=utf-16", "text/html; charset=iso-2022-jp", "multipart/mixed; boundary=",
          'multipart/mixed; boundary="' + "b" * 200 + '"']
text = st.text(st.characters(codec="utf-8"), max_size=80)
raw_bytes = st.binary(max_size=200)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 12))):
        name = draw(st.sampled_from(NAMES) | st.text("abcXYZ-:; \t", min_size=0, max_size=12))
        value = draw(text.map(str.encode) | raw_bytes | st.sampled_from(CTYPES).map(str.encode))
        lines.append(name.encode("utf-8", "surrogateescape") + b": " + value)
    if draw(st.booleans()):
        lines.append(b"From: " + draw(text).encode() + b" <c@customer.test>")
    boundary = draw(st.sampled_from([b"b1", b"", b"--", b"b1 b2"]))
    if draw(st.booleans()):
        lines.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"')
    body_parts = []
    for _ in range(draw(st.integers(0, 4))):
        declared = draw(st.sampled_from([b"b1", b"b2", boundary, b"b1--"]))
        head = draw(st.sampled_from([b"Content-Type: text/plain; charset=latin-1", b"Content-Type: text/html",
                                     b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
                                     b"Content-Type: message/rfc822", b""]))
        body_parts.append(b"--" + declared + b"\n" + head + b"\n\n" + draw(raw_bytes | text.map(str.encode)))
    if draw(st.booleans()):
        body_parts.append(b"--" + boundary + b"--")
    body = b"\n".join(body_parts) or draw(raw_bytes)
    sep = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    return sep.join(lines) + sep + sep + body


GENERATED = {"messages": 0, "quarantined": 0, "batches": 0}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(messages(), min_size=1, max_size=8))
def test_generated_messages_never_abort_a_batch(raws: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "triage.toml"
        path.write_text('[mailbox]\nsource = "maildir"\npath = "Maildir"\n[store]\npath = "triage.db"\n')
        cfg = config.load(path)
        rules = ruleset.load(cfg)  # the same RuleSet every example: the files do not change
        batch = Batch("INBOX", [Fetched(source_key=f"k{i}", raw=raw) for i, raw in enumerate(raws)])
        with Store(cfg.store_path) as store:
            run = pipeline.Run(cfg, store, rules)
            pipeline.process_batch(run, "maildir", batch)
            summary = run.summary
            rows = store.db.execute("SELECT source_key, status, error FROM messages").fetchall()
    stored = {r[0] for r in rows}
    assert summary.fetched == len(raws)
    assert summary.triaged + summary.ignored + summary.quarantined + summary.duplicates == len(raws)
    assert len(stored) == len(raws) - summary.duplicates
    assert all(r[1] in ("triaged", "ignored", "quarantined") and (r[1] != "quarantined" or r[2]) for r in rows)
    GENERATED["messages"] += len(raws)
    GENERATED["quarantined"] += summary.quarantined
    GENERATED["batches"] += 1
    fault_numbers("bad_input_generated", generated_messages_processed=GENERATED["messages"],
                  batches=GENERATED["batches"], quarantined=GENERATED["quarantined"]) if GENERATED["batches"] % 60 == 0 else None


# -- quarantine, listing and retry after a fix -----------------------------------------------


def test_quarantined_messages_are_listed_and_retried_after_a_template_fix(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    templates = workspace.dir / "templates"
    shutil.copytree(ROOT / "templates", templates)
    sign_off = templates / "_sign_off.j2"
    good = sign_off.read_text()
    # a template bug that only bites some messages (the load-time sample renders pass)
    sign_off.write_text('{% if "kettle" in their_words %}{{ 1 // (their_words|length - their_words|length) }}{% endif %}'
                        + good)
    path = maildir([
        email_bytes(message_id="<kettle@customer.test>", body="My kettle arrived broken, I want a refund.",
                    sender="K <k@customer.test>"),
        email_bytes(message_id="<blender@customer.test>", body="My blender arrived broken, I want a refund.",
                    sender="B <b@customer.test>"),
        b"\x00not mail at all\n",
    ])
    workspace.maildir_config(path, extra=f'[paths]\ntemplates = "{templates}"\n')
    polled = workspace.run_json("poll")
    assert (polled["quarantined"], polled["drafts"]) == (2, 1)

    listed = workspace.run_json("queue", "--quarantined")
    errors = {r["message_id"]: r["error"] for r in listed}
    assert "division or modulo by zero" in errors["<kettle@customer.test>"]
    assert any(e.startswith("parse:") for e in errors.values())
    text = workspace.run("queue", "--quarantined").stdout
    assert "2 quarantined message(s)" in text and "triage retry --all" in text

    sign_off.write_text(good)  # the owner fixes the template
    kettle = next(r["id"] for r in listed if r["message_id"] == "<kettle@customer.test>")
    retried = workspace.run_json("retry", str(kettle))
    assert (retried["triaged"], retried["drafts"]) == (1, 1)
    left = workspace.run_json("queue", "--quarantined")
    assert [r["error"][:6] for r in left] == ["parse:"]
    assert workspace.run_json("retry", "--all")["quarantined"] == 1  # the unparseable one stays, its retries counted
    assert workspace.run_json("queue", "--quarantined")[0]["retries"] == 1
    assert len(workspace.run_json("queue")) == 2


def test_the_same_message_twice_in_one_batch_is_stored_once(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    """A To and a Cc copy of one email (or two identical unparseable blobs) arrive together."""
    copy = email_bytes(message_id="<twice@customer.test>")
    workspace.maildir_config(maildir([copy, copy, b"\x00junk\n", b"\x00junk\n"]))
    summary = workspace.run_json("poll")
    assert (summary["triaged"], summary["quarantined"], summary["duplicates"], summary["drafts"]) == (1, 1, 2, 1)


# -- a batch where every message fails the same way --------------------------------------

# passes the load-time sample renders; fails, with one and the same error, for every kettle
KETTLE_BUG = '{% if "kettle" in their_words %}{{ 1 // (their_words|length - their_words|length) }}{% endif %}'


def kettles(count: int) -> list[bytes]:
    return [email_bytes(subject=f"Kettle {i} broken", message_id=f"<kettle{i}@customer.test>",
                        sender=f"K{i} <k{i}@customer.test>", body=f"My kettle number {i} arrived broken, I want a refund.")
            for i in range(count)]


def buggy_templates(workspace: Workspace) -> tuple[Path, str]:
    templates = workspace.dir / "templates"
    shutil.copytree(ROOT / "templates", templates)
    sign_off = templates / "_sign_off.j2"
    good = sign_off.read_text(encoding="utf-8")
    sign_off.write_text(KETTLE_BUG + good, encoding="utf-8")
    return templates, good


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_where_every_message_fails_the_same_way_fails_the_run_and_is_kept(workspace: Workspace, maildir, workers: int) -> None:  # type: ignore[no-untyped-def]
    """A fault that is not in the mail (here a template bug every message hits) is not 20
    quarantined messages and a run that "succeeded": nothing is stored, the run fails with
    exit 3 and one line, and once the fault is fixed the next poll triages them all."""
    templates, good = buggy_templates(workspace)
    workspace.maildir_config(maildir(kettles(20)),  # 20: enough for the worker pool
                             extra=f'[paths]\ntemplates = "{templates}"\n\n[poll]\nworkers = {workers}\n')
    failed = workspace.run("poll", "--json")
    assert failed.returncode == 3, failed.stdout + failed.stderr
    said = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(said) == 1, failed.stderr
    assert said[0].startswith("error: all 20 messages of a batch") and "division or modulo by zero" in said[0], said
    assert "next poll tries them again" in said[0]
    with Store(workspace.db) as store:
        assert store.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
        assert store.quarantined() == []
    status = workspace.run_json("status")
    assert status["consecutive_failures"] == 1 and "all 20 messages" in status["last_error"], status
    (templates / "_sign_off.j2").write_text(good, encoding="utf-8")  # the owner fixes the template
    summary = workspace.run_json("poll")
    assert (summary["fetched"], summary["triaged"], summary["quarantined"], summary["drafts"]) == (20, 20, 0, 20)


def test_messages_failing_the_same_way_beside_one_that_does_not_are_quarantined(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    """Not every message failed: the guard stays out of it, and so it does for the messages'
    own defects (unparseable junk, however many, is the messages' fault)."""
    templates, _ = buggy_templates(workspace)
    junk = [f"\x00junk number {i}, not mail\n".encode() for i in range(6)]
    ok = email_bytes(message_id="<blender@customer.test>", sender="B <b@customer.test>")
    workspace.maildir_config(maildir([*kettles(6), ok]), extra=f'[paths]\ntemplates = "{templates}"\n')
    polled = workspace.run_json("poll")
    assert (polled["quarantined"], polled["drafts"]) == (6, 1)
    box = maildir(junk, path=workspace.dir / "Junk")
    workspace.maildir_config(box)
    assert workspace.run_json("poll")["quarantined"] == 6


def test_a_batch_failing_the_same_way_run_after_run_is_quarantined_at_last(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    """One identical error does not prove the fault is not in the mail (a blast of one kind of
    message that one bug trips on): held back SYSTEMIC_HOLDS runs in a row, the batch is then
    quarantined, each with its error, so the checkpoint moves and later mail is triaged; after
    the fix ``retry --all`` triages them."""
    templates, good = buggy_templates(workspace)
    workspace.maildir_config(maildir(kettles(20)), extra=f'[paths]\ntemplates = "{templates}"\n')
    for _ in range(pipeline.SYSTEMIC_HOLDS):
        failed = workspace.run("poll", "--json")
        assert failed.returncode == 3, failed.stdout + failed.stderr
        assert "next poll tries them again" in failed.stderr
        with Store(workspace.db) as store:
            assert store.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    done = workspace.run("poll", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["fetched"], summary["triaged"], summary["quarantined"], summary["drafts"]) == (20, 0, 20, 0)
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(said) == 1, done.stderr
    assert "all 20 messages of a batch" in said[0] and f"{pipeline.SYSTEMIC_HOLDS} failed runs in a row" in said[0], said
    assert "quarantined now" in said[0] and "triage retry --all" in said[0], said
    with Store(workspace.db) as store:
        held = store.quarantined()
        assert len(held) == 20 and all("division or modulo by zero" in row["error"] for row in held), held
    status = json.loads(workspace.run("status", "--json").stdout)
    assert status["consecutive_failures"] == 0, status
    again = workspace.run("poll", "--json")  # the checkpoint moved: the same mail is not taken again
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["fetched"] == 0
    (templates / "_sign_off.j2").write_text(good, encoding="utf-8")  # the owner fixes the template
    retried = workspace.run("retry", "--all", "--json")
    assert retried.returncode == 0, retried.stderr
    summary = json.loads(retried.stdout)
    assert (summary["triaged"], summary["quarantined"], summary["drafts"]) == (20, 0, 20), summary
    with Store(workspace.db) as store:
        assert store.quarantined() == []
