"""Mail sources: IMAP, Maildir and mbox behind one contract.

A source lists, for one folder, the messages not yet stored and yields them
in batches of raw bytes. It never marks a message seen, moves or deletes
it. ``Batch.checkpoint`` is what the store may record once the batch is
committed (IMAP: UIDVALIDITY and the highest UID of the batch; local
sources keep no checkpoint and rely on the stored source keys).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from triage.config import MailboxSettings


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


def open_source(settings: MailboxSettings, since: object = None) -> Source:
    """The source for ``settings`` (connected, for IMAP). ServerError if it cannot be reached."""
    if settings.source == "none":
        from triage.errors import ConfigError

        raise ConfigError("[mailbox]: missing; say where mail comes from (source = imap, maildir or mbox)")
    if settings.source == "imap":
        from triage.mailbox.imap import ImapSource

        return ImapSource.connect(settings, since=since)
    from triage.mailbox.local import LocalSource

    return LocalSource(settings)
