"""Maildir and mbox sources (triage.mailbox.local): when a message was received."""

from __future__ import annotations

import mailbox
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import Workspace, email_bytes

DELIVERED = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def _touch_all(box: Path, when: datetime) -> None:
    for sub in ("new", "cur"):
        for name in os.listdir(box / sub):
            os.utime(box / sub / name, (when.timestamp(), when.timestamp()))


def _received(workspace: Workspace) -> dict[str, datetime]:
    with sqlite3.connect(workspace.db) as db:
        return {s: datetime.fromisoformat(r) for s, r in db.execute("SELECT subject, received_at FROM messages")}


def test_maildir_mail_is_received_at_its_date_bounded_by_the_file_time(workspace: Workspace, maildir: Any) -> None:
    past = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    undated = email_bytes(subject="Undated", sender="c@customer.test").replace(b"Date: ", b"X-Old-Date: ", 1)
    garbled = email_bytes(subject="Garbled date", sender="d@customer.test").replace(
        b"Date: ", b"Date: the day after tomorrow\nX-Old-Date: ", 1)
    box = maildir([
        email_bytes(subject="Dated in the past", sender="a@customer.test", date=past),
        email_bytes(subject="Dated in the future", sender="b@customer.test", date=datetime(2030, 1, 1, tzinfo=UTC)),
        undated,
        garbled,
    ])
    _touch_all(box, DELIVERED)
    workspace.maildir_config(box)
    polled = workspace.run("poll")
    assert polled.returncode == 0, polled.stderr
    got = _received(workspace)
    assert got["Dated in the past"] == past  # the Date header
    assert got["Dated in the future"] == DELIVERED  # never later than the file's time
    assert got["Undated"] == DELIVERED  # no Date: the file's time
    assert got["Garbled date"] == DELIVERED  # an unreadable Date: the file's time


def test_a_too_large_maildir_message_is_received_at_its_date(workspace: Workspace, maildir: Any) -> None:
    past = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    box = maildir([email_bytes(subject="Huge", body="x" * (2 * 1024 * 1024), date=past)])
    _touch_all(box, DELIVERED)
    workspace.maildir_config(box, extra="")
    text = workspace.config.read_text().replace('source = "maildir"', 'source = "maildir"\nmax_message_mb = 1')
    workspace.config.write_text(text)
    assert workspace.run("poll").returncode == 0
    assert _received(workspace)["Huge"] == past


def test_an_mbox_message_is_received_at_the_polls_clock(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "inbox.mbox"
    box = mailbox.mbox(str(path))
    box.add(email_bytes(subject="From an mbox", date=datetime(2026, 11, 2, 9, 0, tzinfo=UTC)))
    box.close()
    workspace.maildir_config(tmp_path)  # then point it at the mbox
    workspace.config.write_text(workspace.config.read_text().replace('source = "maildir"', 'source = "mbox"')
                                .replace(f'path = "{tmp_path}"', f'path = "{path}"'))
    before = datetime.now(UTC).replace(microsecond=0)
    assert workspace.run("poll").returncode == 0
    assert _received(workspace)["From an mbox"] >= before
