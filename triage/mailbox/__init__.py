"""Mail sources: IMAP, Maildir and mbox behind one contract.

A source lists, for one folder, the messages not yet stored and yields them
in batches of raw bytes. It never marks a message seen, moves or deletes
it. ``Batch.checkpoint`` is what the store may record once the batch is
committed (IMAP: UIDVALIDITY and the highest UID of the batch; local
sources keep no checkpoint and rely on the stored source keys).

Memory stays bounded whatever the mail: sizes are known before bodies are
read (IMAP ``RFC822.SIZE``, a file's size), a batch's bodies together stay
under ``BATCH_BYTES`` (a bigger message travels alone), and a message over
``[mailbox] max_message_mb`` is never loaded whole: only its header block
is read, with ``too_large`` set, for the pipeline to quarantine it
(triage.mailbox.base).
"""

from __future__ import annotations

from triage.config import MailboxSettings
from triage.mailbox.base import Batch, Fetched, Known, Pending, Source

__all__ = ["Batch", "Fetched", "Known", "Pending", "Source", "open_source"]


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
