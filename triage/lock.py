"""One run at a time: an advisory lock file beside the store.

``flock`` is released by the kernel when the process dies, so a killed run
never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from triage.errors import LockedError


@contextmanager
def run_lock(path: Path, what: str) -> Iterator[None]:
    """Hold the lock at ``path`` or raise LockedError at once (never wait)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"another triage run holds {path}; this {what} is skipped") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {what}\n".encode())
        yield
    finally:
        os.close(fd)


@contextmanager
def wait_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold the lock at ``path``, waiting up to ``timeout`` seconds for another holder."""
    import time

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockedError(f"{path} is still held after {timeout:.0f} s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
