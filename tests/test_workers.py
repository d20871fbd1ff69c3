"""Worker processes (``[poll] workers``): the same store as one process, and nothing left behind.

Real Dovecot, real worker processes (spawned), real SIGKILLs: a poll killed
leaves no worker running and no lock held; a worker killed fails the run
(exit 3) with nothing of its batch stored, and the next poll does the batch.
"""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest
from conftest import PASSWORD, ROOT, Workspace, email_bytes, fault_numbers
from servers import Dovecot
from test_crash_poll import (
    check_checkpoint,
    check_no_duplicates,
    child_env,
    fill,
    kill_poll,
    mixed_mail,
    outcome,
    poll_cmd,
    poll_workers,
    server_state,
    still_running,
    store_rows,
    wait_for_progress,
)

from triage import config, pipeline
from triage.mailbox import open_source
from triage.store import Store
from triage.workers import Pool

# Columns that differ between two polls of the same mail by design: our outgoing
# Message-IDs carry a random part; a checkpoint is stamped with the wall clock.
RANDOM_COLUMNS = {"outgoing_message_id", "checkpoints.updated_at"}


def tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in row order, without the random columns."""
    con = sqlite3.connect(db)
    try:
        out = {}
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE '%VIRTUAL%' "
                                           "AND sql NOT LIKE '%WITHOUT ROWID%'")]  # the FTS5 index's own tables
        for name in names:
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({name})")
                    if r[1] not in RANDOM_COLUMNS and f"{name}.{r[1]}" not in RANDOM_COLUMNS]
            out[name] = con.execute(f"SELECT {', '.join(cols)} FROM {name} ORDER BY rowid").fetchall()
        return out
    finally:
        con.close()


def booby_trapped_templates(tmp: Path) -> Path:
    """The shipped templates, with a sign-off that fails to render for a subject saying "boom"."""
    templates = tmp / "templates"
    shutil.copytree(ROOT / "templates", templates)
    sign_off = templates / "_sign_off.j2"
    sign_off.write_text(sign_off.read_text() + '{% if "boom" in subject %}{{ 1 // 0 }}{% endif %}\n')
    return templates


def test_one_and_two_workers_give_identical_stores(dovecot: Dovecot, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_TEST_PW", PASSWORD)
    rng = random.Random(17)
    raws = mixed_mail(150, rng)
    raws += [email_bytes(subject=f"boom {i}: order #{700 + i} broken", sender=f"B{i} <b{i}@customer.test>",
                         message_id=f"<boom{i}@customer.test>") for i in range(3)]
    fill(dovecot, raws)
    templates = booby_trapped_templates(tmp_path)
    fixed = datetime(2026, 11, 21, 10, 0, tzinfo=timezone.utc)
    started: dict[int, list[int]] = {}
    for count in (1, 2):
        work = Workspace(tmp_path / f"w{count}")
        work.dir.mkdir()
        work.imap_config(dovecot, extra=f'[paths]\ntemplates = "{templates}"\n[poll]\nworkers = {count}\n')
        settings = config.load(work.config)
        assert settings.poll.workers == count
        pool = Pool.for_settings(settings)
        assert (pool is None) == (count == 1)
        source = open_source(settings.mailbox)
        try:
            with Store(settings.store_path) as store:
                summary = pipeline.poll(settings, store, source, now=lambda: fixed, pool=pool)
                started[count] = pool.pids if pool else []
        finally:
            source.close()
            if pool:
                pool.close()
        assert summary.fetched == len(raws)
    assert len(started[2]) == 2, "the workers were never started"
    one, two = tables(tmp_path / "w1" / "triage.db"), tables(tmp_path / "w2" / "triage.db")
    assert one.keys() == two.keys()
    for name in one:
        assert one[name] == two[name], f"table {name} differs"
    db = sqlite3.connect(tmp_path / "w2" / "triage.db")
    errors = [e for (e,) in db.execute("SELECT error FROM messages WHERE message_id LIKE '<boom%' ORDER BY id")]
    drafts = db.execute("SELECT COUNT(*) FROM drafts").fetchone()[0]
    db.close()
    assert len(errors) == 3 and all(e.startswith("DraftError: template ") and "division" in e for e in errors), errors
    assert drafts > 100


def started_poll(workspace: Workspace, dovecot: Dovecot, before: int = 0) -> tuple[subprocess.Popen[bytes], list[psutil.Process]]:
    """A poll subprocess that has committed a batch with its workers running."""
    child = subprocess.Popen(poll_cmd(workspace, "--json"), env=child_env(), cwd=workspace.dir,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_progress(workspace.db, before, child, limit=120)
    assert child.poll() is None, child.communicate()
    workers = poll_workers(child.pid)
    assert len(workers) == 2, workers
    return child, workers


def finished_poll(workspace: Workspace) -> subprocess.CompletedProcess[str]:
    done = workspace.run("poll", "--json", timeout=600)
    assert done.returncode == 0 and "another triage run holds" not in done.stderr, done.stderr
    return done


def two_worker_config(workspace: Workspace, dovecot: Dovecot) -> None:
    workspace.imap_config(dovecot, extra="[poll]\nworkers = 2\n")
    workspace.write_config(workspace.config.read_text().replace("batch_size = 50", "batch_size = 10"))


@pytest.mark.slow
def test_a_killed_poll_leaves_no_worker_behind_and_no_lock_held(dovecot: Dovecot, workspace: Workspace) -> None:
    fill(dovecot, mixed_mail(300, random.Random(5)))
    two_worker_config(workspace, dovecot)
    child, workers = started_poll(workspace, dovecot)
    started = time.monotonic()
    everyone, alive = kill_poll(child)
    took = time.monotonic() - started
    child.communicate(timeout=30)
    fault_numbers("workers_orphans", workers=len(workers), children=len(everyone), alive_after_5s=len(alive),
                  seconds_to_exit=round(took, 2))
    assert not alive, [(p.pid, p.cmdline()) for p in alive]

    finished_poll(workspace)  # the lock is free: the next poll runs, and finishes the folder
    uidvalidity, flags = server_state(dovecot)
    rows = store_rows(workspace.db)
    assert check_no_duplicates(rows) == 0
    assert sorted(uid for _, _, v, uid, _, _ in rows["messages"] if v == uidvalidity) == sorted(flags)


@pytest.mark.slow
def test_a_killed_worker_fails_the_run_without_its_batch_and_the_next_poll_does_it(
    dovecot: Dovecot, workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> None:
    fill(dovecot, mixed_mail(300, random.Random(6)))
    two_worker_config(workspace, dovecot)
    child, workers = started_poll(workspace, dovecot)
    victim = workers[0]
    victim.send_signal(signal.SIGKILL)
    out, err = child.communicate(timeout=60)
    stderr = err.decode()
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert child.returncode == 3, stderr
    assert lines == [lines[0]] and f"worker process {victim.pid} was killed by SIGKILL" in lines[0], stderr
    assert "next poll does it again" in lines[0] and "Traceback" not in stderr
    alive = still_running(workers[1:], 5)
    assert not alive

    rows = store_rows(workspace.db)
    uidvalidity, flags = server_state(dovecot)
    assert not check_checkpoint(rows, uidvalidity, sorted(flags)) and check_no_duplicates(rows) == 0
    with Store(workspace.db) as store:
        last = store.db.execute("SELECT ok, summary FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    assert last[0] == 0 and "killed by SIGKILL" in last[1]  # counted as a failed run

    finished_poll(workspace)
    clean = Workspace(tmp_path_factory.mktemp("clean"))
    clean.write_config(workspace.config.read_text().replace("workers = 2", "workers = 1"))
    assert clean.run("poll", "--json", timeout=600).returncode == 0
    assert outcome(workspace.db) == outcome(clean.db)
    assert len(outcome(workspace.db)) == len(flags)


@pytest.mark.parametrize("value, expected", [
    ("0", "key 'poll.workers': expected an integer from 1 to 64, got 0"),
    ('"two"', "key 'poll.workers': expected an integer, got 'two'"),
    ("true", "key 'poll.workers': expected an integer, got True"),
])
def test_a_bad_workers_value_is_exit_2_naming_file_and_key(workspace: Workspace, maildir, value: str,
                                                          expected: str) -> None:
    workspace.maildir_config(maildir([]), extra=f"[poll]\nworkers = {value}\n")
    done = workspace.run("poll")
    assert done.returncode == 2 and done.stderr.count("error:") == 1, done.stderr
    assert "triage.toml:" in done.stderr and expected in done.stderr, done.stderr


def test_broken_rules_stop_a_poll_with_workers_as_without(tmp_path: Path, maildir) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "anger.toml").write_text((rules / "anger.toml").read_text() + "\n[[broken\n")
    box = maildir([email_bytes(message_id=f"<r{i}@customer.test>", sender=f"R{i} <r{i}@customer.test>")
                   for i in range(30)])
    results = []
    for count in (1, 2):
        work = Workspace(tmp_path / f"w{count}")
        work.dir.mkdir()
        work.maildir_config(box, extra=f'[paths]\nrules = "{rules}"\n[poll]\nworkers = {count}\n')
        results.append(work.run("poll"))
        assert not (work.dir / "triage.db").exists() or Store(work.db).db.execute(
            "SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    assert [r.returncode for r in results] == [2, 2]
    assert results[0].stderr == results[1].stderr and "anger.toml" in results[0].stderr
