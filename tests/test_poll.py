"""triage.poll and triage.runs: a poll holds the lock, records its run, ok or failed, and raises its error."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from conftest import Workspace, email_bytes
from servers import free_port

from triage import config, poll
from triage.errors import LockedError, ServerError
from triage.lock import run_lock


def runs(workspace: Workspace) -> list[tuple[str, int, dict[str, Any]]]:
    with sqlite3.connect(workspace.db) as db:
        rows = db.execute("SELECT kind, ok, summary FROM runs ORDER BY id").fetchall()
    return [(kind, ok, json.loads(summary)) for kind, ok, summary in rows]


def test_a_poll_is_recorded_with_its_summary(workspace: Workspace, maildir: Any) -> None:
    workspace.maildir_config(maildir([email_bytes()]))
    summary = poll.run(config.load(workspace.config))
    assert summary.drafts == 1
    assert runs(workspace) == [("poll", 1, summary.as_dict())]


def test_a_failed_poll_is_recorded_with_its_error_and_raised(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_TEST_PW", "secret")
    workspace.write_config(
        f'[mailbox]\nsource = "imap"\nhost = "127.0.0.1"\nport = {free_port()}\nsecurity = "none"\n'
        'username = "u"\npassword_env = "TRIAGE_TEST_PW"\ntimeout = 5\n[store]\npath = "triage.db"\n'
    )
    with pytest.raises(ServerError) as raised:
        poll.run(config.load(workspace.config))
    assert "cannot reach IMAP server" in str(raised.value)
    assert runs(workspace) == [("poll", 0, {"error": str(raised.value)})]


def test_a_poll_that_finds_the_lock_held_records_nothing(workspace: Workspace, maildir: Any) -> None:
    workspace.maildir_config(maildir([email_bytes()]))
    settings = config.load(workspace.config)
    poll.run(settings)
    with run_lock(settings.lock_path, "test"), pytest.raises(LockedError):
        poll.run(settings)
    assert [ok for _, ok, _ in runs(workspace)] == [1]
