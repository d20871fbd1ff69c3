"""Storage failures are visible: disk full, read-only file or folder, a lock past the busy timeout.

Each ends `poll`, `remind` and `send-pending` with one line naming the file and
the cause, exit 3, and a failed run that `status` and `remind` see (noted in
`<db>.failures.json` when the database itself cannot be written) and that the
next successful run folds into the runs table. Nothing committed is damaged.

The full and read-only filesystems are real: a 4 MB tmpfs mounted for the
store, `chattr +i`, a read-only remount. That needs root; CI runs as root, so
under CI=true these never skip.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from conftest import Workspace, email_bytes

from triage.runs import failures_path

# Mounting a tmpfs and chattr need root; CI runs as root, and under CI=true this never skips.
needs_root = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="needs root (not under CI)")


@pytest.fixture
def store_dir(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of its own for the store: a disk that really fills up."""
    mnt = tmp_path / "store"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["chattr", "-R", "-i", str(mnt)], check=False, capture_output=True)
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True)


def setup(workspace: Workspace, maildir: Callable[..., Path], store: Path, count: int = 3, extra: str = "") -> Path:
    path = maildir([email_bytes(message_id=f"<first{i}@customer.test>", sender=f"F{i} <f{i}@customer.test>")
                    for i in range(count)])
    workspace.maildir_config(path, extra=extra)
    workspace.write_config(workspace.config.read_text().replace('path = "triage.db"', f'path = "{store / "triage.db"}"'))
    done = workspace.run("poll", "--json")
    assert done.returncode == 0, done.stderr
    return path


def add_mail(path: Path, count: int, size: int = 200) -> None:
    import mailbox

    box = mailbox.Maildir(str(path))
    for i in range(count):
        body = "My order arrived broken, I want a refund. " + "Details follow. " * (size // 16)
        box.add(email_bytes(message_id=f"<later{i}@customer.test>", sender=f"L{i} <l{i}@customer.test>", body=body))
    box.close()


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 3, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def status(workspace: Workspace) -> dict[str, object]:
    return workspace.run_json("status")


def snapshot(db: Path) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT m.id, m.message_id, m.status, m.text, d.id, d.body FROM messages m "
                            "LEFT JOIN drafts d ON d.message_id = m.id ORDER BY m.id").fetchall()


def runs(db: Path) -> list[tuple[str, int, dict[str, object]]]:
    with closing(sqlite3.connect(db)) as conn:
        return [(k, ok, json.loads(s)) for k, ok, s in conn.execute("SELECT kind, ok, summary FROM runs ORDER BY id")]


def fill(directory: Path) -> Path:
    """Write a filler file until the filesystem is full."""
    filler = directory / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


@needs_root
def test_disk_full_is_one_line_exit_3_counted_and_nothing_committed_is_damaged(
    workspace: Workspace, maildir: Callable[..., Path], store_dir: Path
) -> None:
    path = setup(workspace, maildir, store_dir)
    db = store_dir / "triage.db"
    before = snapshot(db)
    assert failures_path(db).exists()  # made, padded, by the first run that could write
    add_mail(path, 40, size=10_000)
    filler = fill(store_dir)

    line = one_line(workspace.run("poll"), str(db), "disk full")
    assert snapshot(db) == before  # the batch that did not fit left no trace; the rest is intact
    noted = json.loads(failures_path(db).read_text())["failures"]
    assert [(n["kind"], line.removeprefix("error: ")) for n in noted] == [("poll", n["error"]) for n in noted]
    one_line(workspace.run("remind"), str(db))
    one_line(workspace.run("send-pending"), str(db))

    full = workspace.run("status", "--json")  # the database may not even open now: what is noted beside it
    if full.returncode == 3:
        assert json.loads(full.stdout)["consecutive_failures"] >= 1
        one_line(full, str(db))
    else:
        assert full.returncode == 0 and json.loads(full.stdout)["consecutive_failures"] == 1, full.stderr

    filler.unlink()
    health = status(workspace)
    assert health["consecutive_failures"] == 1 and "disk full" in str(health["last_error"])

    assert workspace.run_json("poll")["fetched"] == 40
    assert snapshot(db)[: len(before)] == before and len(snapshot(db)) == 43  # each message once
    recorded = runs(db)
    assert [(k, ok) for k, ok, _ in recorded] == [("poll", 1), ("poll", 0), ("remind", 0), ("send-pending", 0), ("poll", 1)]
    assert "disk full" in str(recorded[1][2]["error"])
    assert json.loads(failures_path(db).read_text())["failures"] == []
    assert status(workspace)["consecutive_failures"] == 0


@needs_root
def test_a_read_only_database_file_is_one_line_exit_3_and_counted(
    workspace: Workspace, maildir: Callable[..., Path], store_dir: Path
) -> None:
    path = setup(workspace, maildir, store_dir)
    db = store_dir / "triage.db"
    before = snapshot(db)
    add_mail(path, 2)
    chattr("+i", db)  # root ignores chmod; the immutable flag holds even for root
    try:
        one_line(workspace.run("poll"), str(db), "read-only")
        one_line(workspace.run("remind"), str(db), "read-only")
        one_line(workspace.run("send-pending"), str(db), "read-only")
        health = status(workspace)
        assert health["consecutive_failures"] == 1 and "read-only" in str(health["last_error"])
    finally:
        chattr("-i", db)
    assert snapshot(db) == before
    assert workspace.run_json("poll")["fetched"] == 2
    assert [(k, ok) for k, ok, _ in runs(db)] == [("poll", 1), ("poll", 0), ("remind", 0), ("send-pending", 0), ("poll", 1)]


@needs_root
def test_a_read_only_folder_is_one_line_exit_3_noted_beside_the_database(
    workspace: Workspace, maildir: Callable[..., Path], store_dir: Path
) -> None:
    path = setup(workspace, maildir, store_dir)
    db = store_dir / "triage.db"
    before = snapshot(db)
    add_mail(path, 2)
    last = sqlite3.connect(db)  # the last connection to close checkpoints and removes the -wal and -shm files
    last.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    last.close()
    assert sorted(p.name for p in store_dir.iterdir()) == [
        "triage.db", "triage.db.failures.json", "triage.db.lock", "triage.db.rules-checked"]
    chattr("+i", store_dir)  # no file can be made there: not the -wal/-shm files a writer needs
    try:
        one_line(workspace.run("poll"), str(db))
        noted = json.loads(failures_path(db).read_text())["failures"]
        assert [n["kind"] for n in noted] == ["poll"]  # the file made beforehand is still writable
    finally:
        chattr("-i", store_dir)
    assert snapshot(db) == before

    # A filesystem remounted read-only: not even the failures file can be written. Still one line, exit 3.
    subprocess.run(["mount", "-o", "remount,ro", str(store_dir)], check=True)
    try:
        line = one_line(workspace.run("poll"), str(db), "could not be noted")
        assert "read-only" in line
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(store_dir)], check=True)
    assert snapshot(db) == before
    assert workspace.run_json("poll")["fetched"] == 2
    assert [(k, ok) for k, ok, _ in runs(db)] == [("poll", 1), ("poll", 0), ("poll", 1)]


def test_a_lock_held_past_the_busy_timeout_is_one_line_exit_3_and_counted(
    workspace: Workspace, maildir: Callable[..., Path], tmp_path: Path
) -> None:
    path = setup(workspace, maildir, tmp_path, extra="")
    workspace.write_config(workspace.config.read_text().replace("[store]", "[store]\nbusy_timeout = 0.5"))
    db = tmp_path / "triage.db"
    add_mail(path, 2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer that does not let go
    try:
        one_line(workspace.run("poll"), str(db), "locked", "0.5 s")
        one_line(workspace.run("remind"), str(db), "locked")
        one_line(workspace.run("send-pending"), str(db), "locked")
        health = status(workspace)  # reading still works under another's write lock (WAL)
        assert health["consecutive_failures"] == 1 and "locked" in str(health["last_error"])
        assert [n["kind"] for n in health["unrecorded_failures"]] == ["poll", "remind", "send-pending"]  # type: ignore[union-attr]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert workspace.run_json("poll")["fetched"] == 2
    assert [(k, ok) for k, ok, _ in runs(db)] == [("poll", 1), ("poll", 0), ("remind", 0), ("send-pending", 0), ("poll", 1)]
    assert status(workspace)["unrecorded_failures"] == []


def test_busy_timeout_is_validated(workspace: Workspace, tmp_path: Path) -> None:
    workspace.maildir_config(tmp_path, extra="")
    workspace.write_config(workspace.config.read_text().replace("[store]", "[store]\nbusy_timeout = 0"))
    done = workspace.run("poll")
    assert done.returncode == 2 and "store.busy_timeout" in done.stderr

