"""Maildir and mbox sources: the offline twins of the IMAP source.

Messages are read, never moved between ``new/`` and ``cur/``, never flagged.
A Maildir message's key is its file name up to the info suffix; an mbox
message's key is the hash of its bytes (mbox positions are not stable),
computed in chunks so a huge message is never held whole. A message over
``max_message_mb`` (by its size on disk) is read up to its blank line only,
as on IMAP. The folder ``INBOX`` is the Maildir's top level; other names are
Maildir++ sub-folders.

A Maildir message is received when its Date header says, bounded by the
file's modification time (when it was delivered): a sender's clock may be
wrong, but mail is not delivered before it is written. No usable Date: the
file's time. (An mbox keeps no delivery time: the poll's clock.)
"""

from __future__ import annotations

import hashlib
import mailbox
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from typing import Any

from triage.config import MailboxSettings
from triage.errors import ConfigError
from triage.mailbox.base import BATCH_BYTES, Batch, Fetched, Known, Pending, byte_batches, read_head

CHUNK = 1024 * 1024


class LocalSource:
    def __init__(self, settings: MailboxSettings):
        self.settings = settings
        self.name = settings.name
        self.folders = settings.folders
        path = settings.path
        if path is None or not path.exists():
            raise ConfigError(f"mailbox.path: {path} does not exist")
        self.path = path
        self._opened: list[mailbox.Mailbox] = []  # type: ignore[type-arg]

    def _open(self, folder: str) -> mailbox.Mailbox:  # type: ignore[type-arg]
        box: mailbox.Mailbox  # type: ignore[type-arg]
        if self.settings.source == "mbox":
            box = mailbox.mbox(str(self.path), create=False)
        else:
            box = mailbox.Maildir(str(self.path), factory=None, create=False)
            box = box if folder == "INBOX" else box.get_folder(folder)
        self._opened.append(box)
        return box

    def _items(self, box: mailbox.Mailbox) -> list[tuple[str, str]]:  # type: ignore[type-arg]
        """(source key, mailbox key) of every message in ``box``."""
        if self.settings.source == "mbox":
            return [(self._mbox_key(box, k), k) for k in box.keys()]
        # Maildir readers ignore dot files (.gitkeep and friends)
        return [(k, k) for k in sorted(box.keys()) if not k.startswith(".")]

    def pending(self, folder: str, checkpoint: tuple[int, int] | None, known: Known) -> Pending:
        try:
            box = self._open(folder)
            items = self._items(box)
        except (OSError, mailbox.Error) as exc:
            raise ConfigError(f"mailbox.path: cannot read {self.path} ({folder}): {exc}") from None
        stored = known(folder, [key for key, _ in items])
        todo = [(key, k) for key, k in items if key not in stored]
        return Pending(folder, len(todo), self._batches(box, folder, todo))

    @staticmethod
    def _mbox_key(box: mailbox.Mailbox, key: str) -> str:  # type: ignore[type-arg]
        """The hash of the message's bytes (as ``get_bytes`` returns them), read in chunks."""
        digest = hashlib.sha256()
        with box.get_file(key) as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()[:32]

    @staticmethod
    def _size(box: mailbox.Mailbox, key: str) -> int:  # type: ignore[type-arg]
        with box.get_file(key) as f:
            f.seek(0, 2)
            return int(f.tell())

    def _read(self, box: mailbox.Mailbox, source_key: str, key: str, size: int) -> Fetched:  # type: ignore[type-arg]
        """The whole message, or its headers only when it is over the limit."""
        if size <= self.settings.max_message_bytes:
            raw = box.get_bytes(key)
            return Fetched(source_key=source_key, raw=raw, size=size, received_at=self._received(box, key, raw))
        with box.get_file(key) as f:
            head = read_head(f)
        return Fetched(source_key=source_key, raw=head, size=size, too_large=True,
                       received_at=self._received(box, key, head))

    @staticmethod
    def _received(box: mailbox.Mailbox, key: str, raw: bytes) -> datetime | None:  # type: ignore[type-arg]
        """A Maildir message's Date, no later than its file's mtime (None for an mbox: the poll's clock)."""
        if not isinstance(box, mailbox.Maildir):
            return None
        try:
            path = os.path.join(box._path, box._lookup(key))  # type: ignore[attr-defined]
            delivered = datetime.fromtimestamp(os.path.getmtime(path), UTC)
        except (OSError, KeyError, AttributeError):
            return None
        return min(delivered, _date_header(raw) or delivered)

    def _batches(
        self,
        box: mailbox.Mailbox,  # type: ignore[type-arg]
        folder: str,
        todo: list[tuple[str, str]],
    ) -> Iterator[Batch]:
        sized: list[tuple[tuple[str, str, int], int]] = []
        for key, k in todo:
            try:
                size = self._size(box, k)
            except KeyError:  # removed while we were reading
                continue
            sized.append(((key, k, size), size))
        limit = self.settings.max_message_bytes
        for group in byte_batches(sized, self.settings.batch_size, BATCH_BYTES, limit):
            fetched = []
            for key, k, size in group:
                try:
                    fetched.append(self._read(box, key, k, size))
                except KeyError:  # removed while we were reading
                    continue
            yield Batch(folder=folder, messages=fetched)

    def refetch(self, folder: str, source_key: str, uidvalidity: int | None, uid: int | None) -> Fetched | None:
        try:
            box = self._open(folder)
            if self.settings.source == "mbox":
                keys: Any = [k for key, k in self._items(box) if key == source_key]
            else:
                keys = [source_key] if source_key in box else []
            if not keys:
                return None
            return self._read(box, source_key, keys[0], self._size(box, keys[0]))
        except KeyError:
            return None
        except (OSError, mailbox.Error) as exc:
            raise ConfigError(f"mailbox.path: cannot read {self.path} ({folder}): {exc}") from None

    def close(self) -> None:
        for box in self._opened:
            box.close()  # reading only: nothing to flush


def _date_header(raw: bytes) -> datetime | None:
    """The Date header as an aware UTC time, or None when it is missing or unreadable."""
    try:
        value = BytesHeaderParser().parsebytes(_head(raw)).get("Date")
        when = parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:  # "-0000": the zone is unknown
        return None
    return when.astimezone(UTC)


def _head(raw: bytes, cap: int = 65536) -> bytes:
    """The header block of ``raw`` (up to the first blank line), at most ``cap`` bytes."""
    head = raw[:cap]
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = head.find(sep)
        if end >= 0:
            return head[: end + len(sep)]
    return head
