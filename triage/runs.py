"""The ``runs`` table: each poll, remind and send-pending records when it ran, whether it worked, and its summary.

``triage status`` and ``remind``'s poll-failure alert read these records.

A run that fails because the database itself cannot be written (disk full,
a read-only file, directory or filesystem, a lock held past the busy
timeout) cannot record itself there. ``storage_failures`` turns such a
failure into one ``StorageError`` line (exit 3) naming the file and the
cause, and notes the failed run in a small file beside the database,
``<db>.failures.json``; ``status`` and ``remind`` read it, and the next run
that can write folds it into ``runs`` (``recorded_run``). That file is made
by the first run that can write, already padded to ``FILE_BYTES``, so on a
full disk it is overwritten in place without needing a new block.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from triage.errors import StorageError, TriageError
from triage.store import Store, iso, utcnow

log = logging.getLogger(__name__)

FILE_BYTES = 8192  # the failures file's size: written in place, never grown on a full disk
KEEP = 20  # failures kept in the file (the oldest go first); each is ~300 bytes


@dataclass
class RunRecord:
    """What a run is recorded with; the run sets ``summary`` before it finishes."""

    kind: str
    started: datetime
    summary: dict[str, Any] = field(default_factory=dict)
    #: what is recorded even if the run fails (its non-empty entries): what it did that is not undone,
    #: such as a poll's batches quarantined (``released``) before a later folder failed
    kept: dict[str, Any] = field(default_factory=dict)


@contextmanager
def recorded_run(store: Store, kind: str, failure: Mapping[str, Any] | None = None) -> Iterator[RunRecord]:
    """Record the run in ``runs``: ok with its summary, or failed with the error (``failure`` added).

    Failures noted in the failures file by earlier runs are folded in first.
    A triage error is recorded and raised again, for the caller to turn into
    an exit code (with its ``record`` mapping, if it has one: ``pipeline.BatchFailed``, and the
    run's ``kept``); when even that cannot be written, it goes to the failures file. A storage
    failure (sqlite3.Error) is left to ``storage_failures``; anything else (a bug, Ctrl-C) is not
    recorded as a run.
    """
    record = RunRecord(kind, utcnow())
    fold_in(store)
    try:
        yield record
    except TriageError as exc:
        kept = {key: value for key, value in record.kept.items() if value}
        details = {"error": str(exc), **kept, **getattr(exc, "record", {}), **(failure or {})}
        try:
            store.record_run(kind, record.started, False, details)
        except sqlite3.Error as cause:
            note_failure(store.path, kind, record.started, {**details, "not_recorded": describe_sqlite(cause, None, store.path)})
        raise
    store.record_run(kind, record.started, True, record.summary)


@contextmanager
def storage_failures(db: Path, kind: str, timeout: float, failure: Mapping[str, Any] | None = None) -> Iterator[None]:
    """One ``StorageError`` line for a database (or lock file) that cannot be written, noted as a failed run.

    ``kind`` "" converts without noting (a run that is not counted, such as a dry run).
    """
    started = utcnow()
    try:
        yield
    except StorageError as exc:
        error = exc
    except sqlite3.Error as exc:
        error = StorageError(f"{db}: {describe_sqlite(exc, timeout, db)}")
    except OSError as exc:
        if not _storage_os_error(exc, db):
            raise
        error = StorageError(describe_os(exc))
    else:
        return
    if kind:
        reason = note_failure(db, kind, started, {"error": str(error), **(failure or {})})
        if reason:
            error = StorageError(f"{error}; the failure could not be noted in {failures_path(db)} either ({reason})")
    raise error from None


# SQLite's primary result codes that say the database cannot be used, whatever was being written.
STORAGE_CODES = frozenset({
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT,
})


def storage_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is the database failing (not one row's fault, such as a constraint)."""
    return isinstance(exc, sqlite3.Error) and ((getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF) in STORAGE_CODES


def _full(folder: Path | None) -> bool:
    """Whether the filesystem holding ``folder`` has no room left (SQLite may call that an I/O error)."""
    if folder is None:
        return False
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def describe_sqlite(exc: sqlite3.Error, timeout: float | None = None, db: Path | None = None) -> str:
    """The cause of an SQLite failure in words an owner can act on, with SQLite's own text."""
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    text = str(exc) or type(exc).__name__
    full_disk = code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN) and _full(db.parent if db else None)
    if code == sqlite3.SQLITE_FULL or "disk is full" in text or full_disk:
        cause = "disk full: no space left to write the database"
    elif code == sqlite3.SQLITE_READONLY or "readonly" in text:
        cause = "read-only: the database file, its folder or the filesystem cannot be written"
    elif code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
        after = f" ({timeout:g} s)" if timeout is not None else ""
        cause = f"locked: another process held the database for longer than the busy timeout{after}"
    elif code == sqlite3.SQLITE_CANTOPEN:
        cause = "cannot open the database or create its -wal/-shm files (a missing or read-only folder?)"
    elif code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        cause = "not a valid triage database (damaged, or another kind of file)"
    elif code == sqlite3.SQLITE_IOERR:
        cause = "disk I/O error (a full or failing disk?)"
    else:
        return text
    return f"{cause} [sqlite: {text}]"


def describe_os(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    cause = {
        errno.ENOSPC: "disk full",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "read-only filesystem",
        errno.EACCES: "not writable (permission denied)",
        errno.EPERM: "not writable (operation not permitted: immutable?)",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{where}{cause}"


def _storage_os_error(exc: OSError, db: Path) -> bool:
    """An OSError from the store's own folder (the database, its lock and failures files), not from elsewhere."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return True
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EIO) and exc.filename:
        return Path(os.fsdecode(exc.filename)).parent == db.parent
    return False


# -- the failures file ----------------------------------------------------------


def failures_path(db: Path) -> Path:
    return db.with_name(db.name + ".failures.json")


def unrecorded(db: Path) -> list[dict[str, Any]]:
    """Failed runs noted beside ``db`` and not yet in its ``runs`` table, oldest first."""
    path = failures_path(db)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [{"kind": "unknown", "started_at": None, "finished_at": None, "error": describe_os(exc)}]
    try:
        data = json.loads(text.strip() or "{}")
        entries = data.get("failures", []) if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("not a list of failures")
    except ValueError:
        return [{"kind": "unknown", "started_at": None, "finished_at": None, "error": f"{path}: unreadable"}]
    return entries


def note_failure(db: Path, kind: str, started: datetime, details: Mapping[str, Any]) -> str:
    """Add a failed run to the failures file; "" when noted, else why it could not be."""
    entry = {"kind": kind, "started_at": iso(started), "finished_at": iso(utcnow()), **details}
    try:
        _write(db, [*unrecorded(db), entry])
    except OSError as exc:
        log.debug("cannot note the failed %s run: %s", kind, exc)
        return describe_os(exc)
    return ""


def _write(db: Path, entries: list[dict[str, Any]]) -> None:
    """Write the failures file: in place when it exists (no new block on a full disk), else created padded."""
    path = failures_path(db)
    entries = entries[-KEEP:]
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        body = _body(entries, FILE_BYTES)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)
        return
    with os.fdopen(fd, "r+b") as f:
        size = max(f.seek(0, 2), 2)
        body = _body(entries, size)
        while len(body) > size and len(entries) > 1:  # fit the room there is: the newest failures matter most
            entries = entries[1:]
            body = _body(entries, size)
        f.seek(0)
        f.write(body)
        f.flush()
        os.fsync(f.fileno())


def _body(entries: list[dict[str, Any]], size: int) -> bytes:
    text = json.dumps({"failures": entries}, ensure_ascii=False, default=str).encode()
    return text + b" " * (size - len(text) - 1) + b"\n" if len(text) < size else text + b"\n"


def fold_in(store: Store) -> None:
    """Move the failures noted beside the database into ``runs``; make the file if it is missing.

    The rows are committed first and the file emptied after: a file that
    cannot be emptied then is folded again later, and rows already in
    ``runs`` (same kind and times) are skipped, so nothing is counted twice
    and nothing is lost to a commit that fails.
    """
    entries = unrecorded(store.path)
    path = failures_path(store.path)
    if not entries:
        if not path.exists():
            try:
                _write(store.path, [])
            except OSError as exc:  # a folder we cannot write to: the database will tell soon enough
                log.debug("cannot create %s: %s", path, exc)
        return
    now = iso(utcnow()) or ""
    with store.write():
        for entry in entries:
            kind = str(entry.get("kind") or "unknown")
            started, finished = str(entry.get("started_at") or now), str(entry.get("finished_at") or now)
            if any(r["started_at"] == started and r["finished_at"] == finished and not r["ok"]
                   for r in store.runs_of(kind)):
                continue
            details = {k: v for k, v in entry.items() if k not in ("kind", "started_at", "finished_at")}
            store.insert_run(kind, started, finished, False, {**details, "noted_beside": path.name})
    _write(store.path, [])
    log.info("folded %d failed run(s) from %s into the runs table", len(entries), path)
