"""What every mail source deals in: fetched messages, batches, a folder's pending mail, the Source contract.

Kept apart from ``triage.mailbox`` (which picks and opens a source) so that the
sources can import these without importing the package that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Fetched:
    source_key: str
    raw: bytes
    received_at: datetime | None = None
    uid: int | None = None


@dataclass(frozen=True)
class Batch:
    folder: str
    messages: list[Fetched]
    uidvalidity: int | None = None
    checkpoint: tuple[int, int] | None = None  # (uidvalidity, last uid) after this batch


@dataclass(frozen=True)
class Pending:
    """What a folder holds that is not stored yet: a count, then the batches."""

    folder: str
    total: int
    batches: Iterator[Batch]
    rescan: bool = False  # the UIDVALIDITY changed: dedupe by Message-ID


Known = Callable[[str, list[str]], set[str]]  # (folder, keys) -> keys already stored


class Source(Protocol):
    name: str
    folders: tuple[str, ...]

    def pending(self, folder: str, checkpoint: tuple[int, int] | None, known: Known) -> Pending: ...

    def close(self) -> None: ...
