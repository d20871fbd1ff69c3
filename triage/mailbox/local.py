"""Maildir and mbox sources: the offline twins of the IMAP source.

Messages are read, never moved between ``new/`` and ``cur/``, never flagged.
A Maildir message's key is its file name up to the info suffix; an mbox
message's key is the hash of its bytes (mbox positions are not stable).
The folder ``INBOX`` is the Maildir's top level; other names are Maildir++
sub-folders.
"""

from __future__ import annotations

import hashlib
import mailbox
from collections.abc import Iterator

from triage.config import MailboxSettings
from triage.errors import ConfigError
from triage.mailbox.base import Batch, Fetched, Known, Pending


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

    def pending(self, folder: str, checkpoint: tuple[int, int] | None, known: Known) -> Pending:
        try:
            box = self._open(folder)
            if self.settings.source == "mbox":
                items = [(self._mbox_key(box, k), k) for k in box.keys()]
            else:
                # Maildir readers ignore dot files (.gitkeep and friends)
                items = [(k, k) for k in sorted(box.keys()) if not k.startswith(".")]
        except (OSError, mailbox.Error) as exc:
            raise ConfigError(f"mailbox.path: cannot read {self.path} ({folder}): {exc}") from None
        stored = known(folder, [key for key, _ in items])
        todo = [(key, k) for key, k in items if key not in stored]
        return Pending(folder, len(todo), self._batches(box, folder, todo))

    @staticmethod
    def _mbox_key(box: mailbox.Mailbox, key: str) -> str:  # type: ignore[type-arg]
        return hashlib.sha256(box.get_bytes(key)).hexdigest()[:32]

    def _batches(
        self,
        box: mailbox.Mailbox,  # type: ignore[type-arg]
        folder: str,
        todo: list[tuple[str, str]],
    ) -> Iterator[Batch]:
        size = self.settings.batch_size
        for i in range(0, len(todo), size):
            fetched = []
            for key, k in todo[i : i + size]:
                try:
                    raw = box.get_bytes(k)
                except KeyError:  # removed while we were reading
                    continue
                fetched.append(Fetched(source_key=key, raw=raw))
            yield Batch(folder=folder, messages=fetched)

    def close(self) -> None:
        for box in self._opened:
            box.close()  # reading only: nothing to flush
