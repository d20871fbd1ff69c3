"""What every mail source deals in: fetched messages, batches, a folder's pending mail, the Source contract.

Kept apart from ``triage.mailbox`` (which picks and opens a source) so that the
sources can import these without importing the package that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol, TypeVar


@dataclass(frozen=True)
class Fetched:
    source_key: str
    raw: bytes
    received_at: datetime | None = None
    uid: int | None = None
    size: int | None = None  # the whole message's size in bytes (``raw`` may hold only its headers)
    too_large: bool = False  # over max_message_mb: ``raw`` is the header block only


# What the bodies of one batch may add up to; a message bigger than this is a batch of its own.
BATCH_BYTES = 64 * 1024 * 1024
# The most of a too-large message's header block that is kept.
HEADER_BYTES = 1024 * 1024

T = TypeVar("T")


def byte_batches(items: Iterable[tuple[T, int]], count: int, budget: int, limit: int) -> Iterator[list[T]]:
    """Group ``(item, size)`` in order: at most ``count`` per group, bodies under ``budget`` bytes.

    A message over ``limit`` is fetched by its headers only, so it costs
    nothing against the budget; one over the budget still gets a group.
    """
    group: list[T] = []
    total = 0
    for item, size in items:
        cost = size if size <= limit else 0
        if group and (len(group) >= count or total + cost > budget):
            yield group
            group, total = [], 0
        group.append(item)
        total += cost
    if group:
        yield group


def read_head(f: BinaryIO | Any, cap: int = HEADER_BYTES) -> bytes:
    """The header block of the message open in ``f`` (up to and with the blank line), at most ``cap`` bytes."""
    lines: list[bytes] = []
    n = 0
    while n < cap:
        line = f.readline(cap - n)
        if not line:
            break
        lines.append(line)
        n += len(line)
        if line in (b"\n", b"\r\n"):
            break
    return b"".join(lines)


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

    def refetch(self, folder: str, source_key: str, uidvalidity: int | None, uid: int | None) -> Fetched | None:
        """One stored message again (a too-large one being retried); None when it is gone."""
        ...

    def close(self) -> None: ...
