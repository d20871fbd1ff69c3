"""Agents' corrections of a detection, from the review page or `triage label`, for `triage eval --labels`."""

from __future__ import annotations

from datetime import datetime

from triage.errors import NotFound, TriageError
from triage.store import Store, utcnow


class LabelError(TriageError):
    """A correction that says nothing (usage error, exit 2)."""

    exit_code = 2


def record(
    store: Store, message_row: int, angry: bool | None, archetype: str | None, agent: str, now: datetime | None = None
) -> int:
    """Record ``agent``'s correction of a stored message's detection in ``labels`` and the audit log.

    ``angry``/``archetype`` None means "not judged"; at least one must be
    given. Raises NotFound when there is no message ``message_row``.
    """
    now = now or utcnow()
    if angry is None and not archetype:
        raise LabelError("a correction needs angry yes/no or an archetype")
    with store.write():
        message = store.message(message_row)
        if message is None:
            raise NotFound(f"no message {message_row}")
        label_id = store.add_label(message_row, angry, archetype, agent, now)
        store.event(
            "label-recorded", agent, now, case_id=message.case_id, message_id=message_row,
            angry=angry, archetype=archetype or None,
        )
    return label_id
