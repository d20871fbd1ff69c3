"""The ``runs`` table: each poll and remind records when it ran, whether it worked, and its summary.

``triage status`` and ``remind``'s poll-failure alert read these records.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from triage.errors import TriageError
from triage.store import Store, utcnow


@dataclass
class RunRecord:
    """What a run is recorded with; the run sets ``summary`` before it finishes."""

    kind: str
    started: datetime
    summary: dict[str, Any] = field(default_factory=dict)


@contextmanager
def recorded_run(store: Store, kind: str, failure: Mapping[str, Any] | None = None) -> Iterator[RunRecord]:
    """Record the run in ``runs``: ok with its summary, or failed with the error (``failure`` added).

    A triage error is recorded and raised again, for the caller to turn into
    an exit code; anything else (a bug, Ctrl-C) is not recorded as a run.
    """
    record = RunRecord(kind, utcnow())
    try:
        yield record
    except TriageError as exc:
        store.record_run(kind, record.started, False, {"error": str(exc), **(failure or {})})
        raise
    store.record_run(kind, record.started, True, record.summary)
