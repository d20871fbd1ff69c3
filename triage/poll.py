"""A poll run, as cron starts it: hold the lock, open the source, run the pipeline, record the run.

``retry`` runs quarantined messages through the pipeline again under the
same lock. The CLI, the tests and the benchmarks poll through here. A
database that cannot be written ends either with one StorageError line
(triage.runs.storage_failures).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from triage import pipeline, workers
from triage.config import Settings
from triage.lock import run_lock
from triage.mailbox import Fetched, Source, open_source
from triage.runs import recorded_run, storage_failures
from triage.store import Store, StoredMessage


def run(
    settings: Settings, since: date | None = None, progress: Callable[[int, int], None] | None = None
) -> pipeline.Summary:
    """Poll every configured folder once; ``since`` limits a first run to mail since that date.

    Raises LockedError when another run holds the lock (nothing is recorded),
    and any other triage error after recording the run as failed; a store
    that cannot be written is a StorageError, noted beside the database.
    """
    with (
        storage_failures(settings.store_path, "poll", settings.store_timeout),
        run_lock(settings.lock_path, "poll"),
        Store(settings.store_path, timeout=settings.store_timeout) as store,
        recorded_run(store, "poll") as record,
    ):
        source = open_source(settings.mailbox, since=since)
        pool = workers.Pool.for_settings(settings)  # started only for a folder with enough new mail
        summary = pipeline.Summary()
        record.kept["released"] = summary.released  # batches quarantined stay so if a later folder fails
        try:
            pipeline.poll(settings, store, source, progress=progress, pool=pool, summary=summary)
        finally:
            if pool is not None:
                pool.close()
            source.close()
        record.summary = summary.as_dict()
    return summary


def retry(settings: Settings, ids: list[int] | None) -> pipeline.Summary:
    """Run quarantined messages (``ids``, or all when None) through the pipeline again, under the lock.

    The source is opened only if a too-large message is among them: it is fetched again from there.
    """
    opened: list[Source] = []

    def refetch(row: StoredMessage) -> Fetched | None:
        if not opened:
            opened.append(open_source(settings.mailbox))
        return opened[0].refetch(row.folder, row.source_key, row.uidvalidity, row.uid)

    with (
        storage_failures(settings.store_path, "", settings.store_timeout),
        run_lock(settings.lock_path, "retry"),
        Store(settings.store_path, timeout=settings.store_timeout) as store,
    ):
        try:
            return pipeline.retry(settings, store, ids, refetch=refetch)
        finally:
            for source in opened:
                source.close()
