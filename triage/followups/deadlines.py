"""What agents and incoming mail do to a case's deadlines.

Deadline kinds (``deadlines.kind``): ``first-response`` (made by poll, done
when the first reply is sent), ``promise`` (``triage promise``: what we told
the customer we would do, by when), ``follow-up`` (the check-in ``triage
resolve`` schedules; ``triage remind`` drafts it when due). ``closed`` says
why a deadline ended: done, kept, resolved, drafted, cancelled.

Waiting on the customer: ``triage wait CASE`` (we asked them a question)
sets the case to ``waiting`` and pauses its open first-response and promise
clocks; the customer's next message (``customer_wrote``, called by poll) or
``triage wait CASE --resume`` restarts them with the business time that was
left. Paused deadlines are never reminded.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from triage.config import Settings
from triage.errors import NotFound
from triage.followups.policy import Policy, parse_when
from triage.review import Refused
from triage.store import (
    Case,
    CaseStatus,
    DeadlineClosed,
    DeadlineKind,
    DraftKind,
    Store,
    iso,
)

if TYPE_CHECKING:
    from triage.drafting.drafter import Drafter

PAUSABLE = (DeadlineKind.FIRST_RESPONSE, DeadlineKind.PROMISE)


def _case(store: Store, case_id: int) -> Case:
    case = store.case(case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def promise(store: Store, policy: Policy, case_id: int, by: str, what: str, agent: str,
            now: datetime) -> dict[str, Any]:
    """Record a promise made to the customer; returns the deadline (id, due, what)."""
    if not what.strip():
        raise Refused("a promise needs --what: what was promised")
    try:
        due = parse_when(by, now, policy)
    except ValueError as exc:
        raise NotFound(str(exc)) from None  # a usage error: exit 2
    with store.write():
        case = _case(store, case_id)
        deadline_id = store.add_deadline(case_id, DeadlineKind.PROMISE, due, " ".join(what.split()), now)
        store.update_deadline(deadline_id, created_by=agent)
        if case.status == CaseStatus.WAITING:
            store.update_deadline(deadline_id, paused_at=iso(now))
        store.event("promise-made", agent, now, case_id=case_id, deadline=deadline_id, due=iso(due), what=what)
    return {"id": deadline_id, "case": case_id, "due": iso(due), "what": what}


def kept(store: Store, case_id: int, agent: str, now: datetime, deadline_id: int | None = None) -> list[int]:
    """Mark the case's open promise(s) kept (or only ``deadline_id``); the ids closed."""
    with store.write():
        _case(store, case_id)
        rows = store.deadline_rows(case_id=case_id, kinds=[DeadlineKind.PROMISE])
        if deadline_id is not None:
            rows = [r for r in rows if r.id == deadline_id]
        if not rows:
            raise Refused(f"case {case_id} has no open promise" + (f" {deadline_id}" if deadline_id else ""))
        for row in rows:
            store.update_deadline(row.id, done_at=iso(now), closed=DeadlineClosed.KEPT, paused_at=None)
            store.event("promise-kept", agent, now, case_id=case_id, deadline=row.id,
                        on_time=iso(now) <= row.due)
    return [r.id for r in rows]


def resolve(store: Store, policy: Policy, case_id: int, agent: str, now: datetime,
            root_cause: str | None = None, outcome: str = "resolved") -> dict[str, Any]:
    """Resolve a case: record root cause and outcome, close its clocks, schedule the check-in.

    Open promises are closed as ``resolved`` (kept if on time). A check-in is
    scheduled ``check_in.after_days`` later for outcome "resolved" only: a
    "did this fix it?" makes no sense for an unresolvable case.
    """
    if outcome not in ("resolved", "unresolvable"):
        raise Refused(f"--outcome must be resolved or unresolvable, not {outcome!r}")
    with store.write():
        case = _case(store, case_id)
        fields: dict[str, Any] = {"status": CaseStatus.RESOLVED, "resolved_at": iso(now), "outcome": outcome,
                                  "updated_at": iso(now)}
        if root_cause is not None and root_cause.strip():
            fields["root_cause"] = " ".join(root_cause.split())
        store.update_case(case_id, **fields)
        closed = store.close_deadlines(case_id, PAUSABLE, now, DeadlineClosed.RESOLVED)
        store.close_deadlines(case_id, [DeadlineKind.FOLLOW_UP], now, DeadlineClosed.CANCELLED)  # an earlier resolution's check-in
        check_in = None
        if outcome == "resolved":
            due = policy.check_in_due(now)
            check_in = store.add_deadline(case_id, DeadlineKind.FOLLOW_UP, due, "check-in after resolution", now)
            store.update_deadline(check_in, created_by=agent)
        store.event("case-resolved", agent, now, case_id=case_id, outcome=outcome,
                    root_cause=fields.get("root_cause", case.root_cause), closed=closed, check_in=check_in)
    return {"case": case_id, "status": CaseStatus.RESOLVED, "outcome": outcome,
            "root_cause": fields.get("root_cause", case.root_cause),
            "check_in_due": iso(policy.check_in_due(now)) if check_in else None}


def wait(store: Store, case_id: int, agent: str, now: datetime) -> list[int]:
    """The case waits on the customer: pause its open first-response and promise clocks."""
    with store.write():
        case = _case(store, case_id)
        if case.status.finished:
            raise Refused(f"case {case_id} is {case.status}; only an open case can wait on the customer")
        paused = []
        for row in store.deadline_rows(case_id=case_id, kinds=PAUSABLE):
            if row.paused_at is None:
                store.update_deadline(row.id, paused_at=iso(now))
                paused.append(row.id)
        store.update_case(case_id, status=CaseStatus.WAITING, updated_at=iso(now))
        store.event("case-waiting", agent, now, case_id=case_id, paused=paused)
    return paused


def resume(store: Store, policy: Policy, case_id: int, actor: str, now: datetime) -> list[int]:
    """End a wait (agent's ``--resume``); see ``customer_wrote`` for the usual way."""
    with store.write():
        case = _case(store, case_id)
        if case.status != CaseStatus.WAITING:
            raise Refused(f"case {case_id} is {case.status}, not waiting")
        return _resume(store, policy, case_id, actor, now)


def _resume(store: Store, policy: Policy, case_id: int, actor: str, now: datetime) -> list[int]:
    """Restart paused clocks with the business time they had left (none if already overdue)."""
    resumed = []
    for row in store.deadline_rows(case_id=case_id, kinds=PAUSABLE):
        if row.paused_at is None:
            continue
        left = policy.between(datetime.fromisoformat(row.paused_at), datetime.fromisoformat(row.due))
        store.update_deadline(row.id, paused_at=None, due=iso(policy.add(now, left)))
        resumed.append(row.id)
    store.update_case(case_id, status=CaseStatus.OPEN)
    store.event("case-resumed", actor, now, case_id=case_id, resumed=resumed)
    return resumed


def customer_wrote(store: Store, policy: Policy, case_id: int, when: datetime) -> None:
    """Poll's hook for a customer's (not automatic) message on an existing case, inside its transaction.

    A waiting case's clocks restart; a pending check-in is cancelled (and its
    draft superseded): the customer wrote first.
    """
    case = store.case(case_id)
    if case is None:
        return
    if case.status == CaseStatus.WAITING:
        _resume(store, policy, case_id, "poll", when)
    cancelled = store.close_deadlines(case_id, [DeadlineKind.FOLLOW_UP], when, DeadlineClosed.CANCELLED)
    drafts = store.supersede_pending_kind(case_id, DraftKind.CHECK_IN, when)
    if cancelled or drafts:
        store.event("check-in-cancelled", "poll", when, case_id=case_id, deadlines=cancelled, drafts=drafts,
                    reason="the customer wrote first")


def draft_check_in(settings: Settings, store: Store, deadline_id: int, now: datetime,
                   drafter: Drafter | None = None) -> int:
    """Draft the check-in for a due follow-up deadline into the review queue; the draft id.

    Inside the caller's transaction. It answers the customer's latest message
    (so it threads) and restates the facts of their first one; the deadline is
    closed as ``drafted``. It is never sent without an agent's approval.
    """
    from triage.detect import Detection
    from triage.drafting.drafter import draft_row
    from triage.message import Message

    [row] = [r for r in store.deadline_rows(case_id=None, kinds=[DeadlineKind.FOLLOW_UP]) if r.id == deadline_id]
    messages = store.customer_messages(row.case_id)
    if not messages:
        raise Refused(f"case {row.case_id} has no customer message to check in on")
    first, latest = messages[0], messages[-1]
    detection = Detection.from_dict(store.detection_for(first.id) or {})
    # The reply threads on the latest message but restates the first one, which opened the case.
    message = Message(
        message_id=latest.message_id, sender_name=latest.sender_name, sender_address=latest.sender,
        subject=latest.subject, date=datetime.fromisoformat(latest.date), text=first.text,
        full_text=first.full_text, reply_to=latest.reply_to, to=tuple(latest.recipients),
    )
    if drafter is None:
        from triage import ruleset

        drafter = ruleset.load(settings).drafter
    text = drafter.render(message, detection, row.case_id, now, purpose="follow_up")
    draft_id = store.insert_draft(draft_row(row.case_id, latest.id, message, text, settings.support,
                                            token=f"f{deadline_id}", now=now, kind=DraftKind.CHECK_IN))
    store.update_deadline(deadline_id, done_at=iso(now), closed=DeadlineClosed.DRAFTED)
    store.event("draft-created", "remind", now, case_id=row.case_id, draft_id=draft_id, purpose="check-in",
                deadline=deadline_id)
    return draft_id
