"""``triage remind``: chase what is due, draft check-ins, escalate, and ``triage status``.

Decide, then apply. ``plan`` reads the store at ``now`` and decides:

- which open first-response deadlines are overdue and which promises are due
  today or overdue, and of those, which were never reminded or were last
  reminded at least ``reminders.every_hours`` ago (paused clocks never are);
- which check-ins are due: drafted into the review queue (never sent), or
  cancelled when the customer wrote after the resolution;
- which items are overdue past the escalation threshold and not yet escalated;
- which cases are held as a possible auto-responder loop (no draft is made for
  them, and a held message opens no deadline, so nothing else chases them) and
  were not in a digest since they were flagged, or not for ``every_hours``;
- whether the owner must hear that polls keep failing (once a day);
- which whole-batch poll failures the owner has not heard of (``batch_failures``):
  a batch whose every message failed the same way, held back by failed polls
  and perhaps quarantined later, is told once, however seldom remind runs and
  however soon the polls after it succeeded.

``run`` applies the plan: check-in drafts first (their own transaction:
drafting does not depend on mail), then every digest and escalation over
SMTP, and only when every message was accepted does it record the items as
reminded / escalated. A refused or unreachable SMTP server records nothing,
so the next run retries, and raises ``SendError`` (exit 3). A missed cron run
catches up once: a due check-in is closed when drafted, an item's
``reminded_at`` moves to this run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from triage.config import Settings
from triage.drafting.outgoing import build_notice
from triage.followups.policy import Policy
from triage.lock import run_lock
from triage.runs import recorded_run, storage_failures, unrecorded
from triage.store import CaseDeadline, CaseStatus, DeadlineClosed, DeadlineKind, DraftStatus, Store, iso

log = logging.getLogger(__name__)

ALERT_EVENT = "poll-failure-alert"
LOOP_EVENT = "loop-reminded"  # a flagged case was in an agents' digest
BATCH_EVENT = "batch-failures-told"  # the owner was told of whole-batch poll failures, up to run ``through_run``


@dataclass(frozen=True)
class BatchFailure:
    """Poll runs since the owner last heard where a whole batch of one folder failed with one error
    (``triage.pipeline``'s guard): the failed polls that held it back and the batches quarantined."""

    folder: str
    fault: str
    failed_runs: int  # polls that failed, holding such a batch back
    first: str  # the first of those runs started
    last: str  # the latest finished
    messages: int  # the largest such batch
    quarantined: int  # messages quarantined when such batches were let through at last
    held: int  # failed polls in a row before a batch was quarantined
    still_failing: bool  # no poll after the last that held it back succeeded or quarantined it

    @property
    def command(self) -> str:
        if self.quarantined:
            return "triage retry --all"
        return "triage poll" if self.still_failing else ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "command": self.command}


@dataclass(frozen=True)
class Loop:
    """A case flagged "possible auto-responder loop", as a digest shows it (``Store.loop_cases``)."""

    case: int
    customer: str
    subject: str
    since: str  # first flagged
    last: str  # latest message held
    held: int  # messages stored without a draft
    draft: int | None  # the case's latest draft, for ``show``

    @property
    def command(self) -> str:
        return f"triage show {self.draft}" if self.draft is not None else "triage queue --loops"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "command": self.command}


@dataclass(frozen=True)
class Item:
    """One deadline as a reminder shows it."""

    deadline: int
    case: int
    kind: DeadlineKind
    due: str
    what: str
    customer: str
    subject: str
    level: str
    overdue_minutes: int
    draft: int | None
    reminders: int = 0
    #: the case owes a first reply but no draft waits (the last was rejected): ``redraft`` makes one
    needs_reply: bool = False

    @property
    def command(self) -> str:
        """The command to run for it, as printed (every one runs as it stands)."""
        if self.draft is None:
            return "triage queue"
        return f"triage redraft {self.draft}" if self.needs_reply else f"triage show {self.draft}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "command": self.command}


@dataclass
class Plan:
    now: datetime
    remind: list[Item] = field(default_factory=list)  # first responses and promises
    check_ins: list[Item] = field(default_factory=list)  # due: draft them
    cancel: list[Item] = field(default_factory=list)  # due, but the customer wrote since resolution
    announce: list[Item] = field(default_factory=list)  # drafted earlier, not yet in a digest
    escalate: list[Item] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)  # flagged cases to put in the digest
    poll_alert: dict[str, Any] | None = None
    batch: list[BatchFailure] = field(default_factory=list)  # whole-batch poll failures to tell the owner
    batch_through: int = 0  # the latest poll run they cover

    @property
    def digest_items(self) -> list[Item]:
        return self.remind + self.check_ins + self.announce


@dataclass
class Outcome:
    """What a run did (``--json``)."""

    now: str
    dry_run: bool
    reminded: list[dict[str, Any]] = field(default_factory=list)
    drafted: list[dict[str, Any]] = field(default_factory=list)
    escalated: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[dict[str, Any]] = field(default_factory=list)
    loops: list[dict[str, Any]] = field(default_factory=list)  # possible auto-responder loops in the digest
    digests: list[str] = field(default_factory=list)
    poll_alert: bool = False
    batch_failures: list[dict[str, Any]] = field(default_factory=list)  # told to the owner
    warnings: list[str] = field(default_factory=list)
    #: ``[store] retention_days``: what the purge of old resolved cases erased (None: no purge configured).
    purged: dict[str, int] | None = None
    #: the latest poll run whose whole-batch failures were told to an owner or had none to tell
    #: (0: no owner to tell): kept in the run's record, not printed
    batch_through: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["batch_through"]
        return out


def _item(row: CaseDeadline, now: datetime) -> Item:
    due = datetime.fromisoformat(row.due)
    return Item(
        deadline=row.id, case=row.case_id, kind=row.kind, due=row.due, what=row.what,
        customer=row.customer, subject=row.subject, level=row.level,
        overdue_minutes=int((now - due).total_seconds() // 60),
        draft=row.pending_draft or row.last_draft, reminders=row.reminders,
        needs_reply=(row.kind == DeadlineKind.FIRST_RESPONSE and row.pending_draft is None
                     and row.last_draft is not None and row.last_draft_status == DraftStatus.REJECTED),
    )


def consecutive_poll_failures(store: Store) -> tuple[int, dict[str, Any] | None, dict[str, Any] | None]:
    """(failed polls since the last success, the newest failure, the last success)."""
    failures, newest, success = 0, None, None
    noted = [  # failed polls that could not write the database, newest first (triage.runs)
        {"ok": 0, "finished_at": e.get("finished_at"), "summary": e}
        for e in reversed(unrecorded(store.path)) if e.get("kind") == "poll"
    ]
    for run in [*noted, *store.runs_of("poll", limit=1000)]:
        if run["ok"]:
            success = run
            break
        failures += 1
        newest = newest or run
    return failures, newest, success


def batch_failures(store: Store) -> tuple[list[BatchFailure], int]:
    """Whole-batch poll failures the owner was not told of: those in poll runs after the last
    successful remind run and after the last run told of, by folder and fault; and the latest
    poll run looked at. A failed remind run (SMTP down) moves neither, so the next run tells them."""
    told = store.last_event_of(BATCH_EVENT)
    # a remind run with an owner to tell and nothing to tell covers its polls too (``batch_through``);
    # one without an owner covers nothing, so its failures are told once an owner is configured
    last = store.last_ok_run("remind")
    after = max(int(last["summary"].get("batch_through", 0)) if last and isinstance(last["summary"], dict) else 0,
                int(json.loads(told["detail"]).get("through_run", 0)) if told else 0)
    runs = store.runs_after("poll", after)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    failed_at: dict[tuple[str, str], int] = {}  # the latest run that held such a batch back
    taken_at: dict[tuple[str, str], int] = {}  # the latest run that quarantined one
    for run in runs:
        summary = run["summary"] if isinstance(run["summary"], dict) else {}
        # a failed run keeps what it quarantined before it failed (triage.poll), so both are read
        found = [(r, True) for r in summary.get("released", []) if isinstance(r, dict)]
        if not run["ok"] and isinstance(summary.get("batch_failure"), dict):
            found.append((summary["batch_failure"], False))
        for f, released in found:
            key = (str(f.get("folder", "")), str(f.get("fault", "")))
            g = groups.setdefault(key, {
                "failed_runs": 0, "first": run["started_at"], "messages": 0, "quarantined": 0, "held": 0})
            g["last"] = run["finished_at"]
            g["messages"] = max(g["messages"], int(f.get("messages", 0)))
            if released:
                g["quarantined"] += int(f.get("messages", 0))
                g["held"] = max(g["held"], int(f.get("held", 0)))
                taken_at[key] = run["id"]
            else:
                g["failed_runs"] += 1
                failed_at[key] = run["id"]
    last_ok = max((run["id"] for run in runs if run["ok"]), default=0)
    # still held back unless a poll after the last that held it back succeeded (or quarantined it):
    # a later poll that failed for another reason (a login refused) took nothing
    return ([BatchFailure(folder, fault, still_failing=max(last_ok, taken_at.get((folder, fault), 0))
                          < failed_at.get((folder, fault), 0), **g)
             for (folder, fault), g in groups.items()], runs[-1]["id"] if runs else after)


def plan(settings: Settings, store: Store, policy: Policy, now: datetime) -> Plan:
    """What a remind run at ``now`` should do; reads only."""
    p = Plan(now)
    every = timedelta(hours=policy.remind_every_hours)
    today = policy.local(now).date()
    for row in store.deadline_rows(kinds=[DeadlineKind.FIRST_RESPONSE, DeadlineKind.PROMISE]):
        if row.paused_at or row.case_status.finished:
            continue
        due = datetime.fromisoformat(row.due)
        due_now = due <= now if row.kind == DeadlineKind.FIRST_RESPONSE else policy.local(due).date() <= today
        if not due_now:
            continue
        item = _item(row, now)
        last = row.reminded_at
        if last is None or now - datetime.fromisoformat(last) >= every:
            p.remind.append(item)
        after = policy.escalate_after(row.kind)
        if after is not None and row.escalated_at is None and due <= now and policy.between(due, now) >= after:
            p.escalate.append(item)
    for row in store.deadline_rows(kinds=[DeadlineKind.FOLLOW_UP]):
        if datetime.fromisoformat(row.due) > now:
            continue
        wrote = store.customer_messages(row.case_id, since=row.resolved_at) if row.resolved_at else []
        (p.cancel if wrote or row.case_status != CaseStatus.RESOLVED else p.check_ins).append(_item(row, now))
    for row in store.deadline_rows(open_only=False, kinds=[DeadlineKind.FOLLOW_UP], closed=DeadlineClosed.DRAFTED,
                                  unreminded=True):
        p.announce.append(_item(row, now))
    mentioned = store.latest_by_case(LOOP_EVENT)
    for flagged in store.loop_cases():
        last_said = mentioned.get(flagged["case"])
        if (last_said is None or datetime.fromisoformat(last_said) < datetime.fromisoformat(flagged["since"])
                or now - datetime.fromisoformat(last_said) >= every):
            p.loops.append(Loop(flagged["case"], flagged["customer"], flagged["subject"], flagged["since"],
                                flagged["last"], flagged["held"], flagged["draft"]))
    p.loops.sort(key=lambda loop: loop.case)
    failures, newest, success = consecutive_poll_failures(store)
    if failures >= settings.reminders.failure_threshold:
        alerted = store.last_event_of(ALERT_EVENT)
        since_success = success is None or (alerted is not None and alerted["at"] < success["finished_at"])
        if alerted is None or since_success or now - datetime.fromisoformat(alerted["at"]) >= timedelta(days=1):
            p.poll_alert = {
                "failures": failures,
                "last_error": (newest or {}).get("summary", {}).get("error", ""),
                "last_success": success["finished_at"] if success else None,
            }
    p.batch, p.batch_through = batch_failures(store)
    return p


# --------------------------------------------------------------------------- messages


def _when(policy: Policy, value: str) -> str:
    return policy.local(datetime.fromisoformat(value)).strftime("%a %d %b %H:%M") + f" {policy.zone}"


def _span(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{minutes // 1440}d{(minutes % 1440) // 60}h"


def _lines(policy: Policy, item: Item) -> list[str]:
    head = f"  - Case {item.case} · {item.customer} · {item.level} · \"{item.subject}\""
    if item.kind == DeadlineKind.FIRST_RESPONSE:
        detail = f"first reply was due {_when(policy, item.due)}; overdue by {_span(item.overdue_minutes)}"
    elif item.kind == DeadlineKind.PROMISE:
        late = f"; overdue by {_span(item.overdue_minutes)}" if item.overdue_minutes > 0 else " (today)"
        detail = f"we promised: {item.what}, by {_when(policy, item.due)}{late}"
    else:
        detail = "resolved a while ago: a check-in (\"did this actually fix it for you?\") waits for approval"
    return [head, f"    {detail}", f"    {item.command}"]


def _loop_lines(policy: Policy, loop: Loop) -> list[str]:
    return [f"  - Case {loop.case} · {loop.customer} · \"{loop.subject}\"",
            f"    {loop.held} message(s) held without a draft since {_when(policy, loop.since)}, the latest "
            f"{_when(policy, loop.last)}; not a loop: triage clear-loop {loop.case}",
            f"    {loop.command}"]


def digest_text(policy: Policy, items: list[Item], now: datetime, loops: list[Loop] | None = None) -> tuple[str, str]:
    """(subject, body) of an agents' digest: overdue first responses, promises, check-ins, and
    cases held as a possible auto-responder loop."""
    groups = [
        ("Overdue first replies", [i for i in items if i.kind == DeadlineKind.FIRST_RESPONSE]),
        ("Promises due today or overdue", [i for i in items if i.kind == DeadlineKind.PROMISE]),
        ("Check-ins to approve", [i for i in items if i.kind == DeadlineKind.FOLLOW_UP]),
    ]
    counts = ", ".join(f"{len(group)} {title.split()[0].lower()}" for title, group in groups if group)
    if loops:
        counts = ", ".join(c for c in (counts, f"{len(loops)} possible loop(s)") if c)
    body = [f"triage reminders at {_when(policy, iso(now) or '')}", ""]
    for title, group in groups:
        if group:
            body += [f"{title} ({len(group)})", *[ln for i in group for ln in _lines(policy, i)], ""]
    if loops:
        body += [f"Possible auto-responder loops, no drafts made ({len(loops)})",
                 *[ln for loop in loops for ln in _loop_lines(policy, loop)], ""]
    body.append("Nothing is sent to a customer until an agent approves it. This message was generated "
                "automatically by triage remind; please do not reply.")
    return f"[triage] {counts}", "\n".join(body) + "\n"


def escalation_text(policy: Policy, items: list[Item], now: datetime) -> tuple[str, str]:
    body = [f"These items are overdue past the escalation threshold (at {_when(policy, iso(now) or '')}):", ""]
    body += [ln for i in items for ln in _lines(policy, i)]
    body += ["", "Each is escalated once; agents keep getting reminders until it is done."]
    return f"[triage] escalation: {len(items)} overdue item(s)", "\n".join(body) + "\n"


def alert_text(alert: dict[str, Any]) -> tuple[str, str]:
    body = [
        f"The last {alert['failures']} polls of the support inbox failed, so new mail is not being triaged.",
        f"Last error: {alert['last_error'] or '(none recorded)'}",
        f"Last successful poll: {alert['last_success'] or 'never'}",
        "",
        ("Check the mailbox settings and the server (`triage status`). This alert repeats once a day "
         "until a poll succeeds."),
    ]
    return f"[triage] polling has failed {alert['failures']} times in a row", "\n".join(body) + "\n"


def batch_lines(policy: Policy, failures: list[BatchFailure]) -> list[str]:
    """What the owner is told of whole-batch poll failures (its own mail, or after a poll alert)."""
    body = ["Every message of a poll batch failed with one and the same error, so the fault is most likely "
            "not in the mail but in the code, a template or the environment. Since the last remind:", ""]
    for f in failures:
        body.append(f"  - {f.folder}: {f.fault}")
        if f.failed_runs:
            polls = "1 failed poll" if f.failed_runs == 1 else f"{f.failed_runs} failed polls"
            body.append(f"    held back by {polls}, {_when(policy, f.first)} to {_when(policy, f.last)} "
                        f"(batches of up to {f.messages} messages)")
        if f.quarantined:
            body.append(f"    {f.quarantined} messages quarantined after {f.held} failed polls in a row "
                        "(triage queue --quarantined lists them); once the fault is fixed: triage retry --all")
        if f.still_failing:
            body.append("    still held back: the next poll tries them again, and after enough failed polls in a "
                        "row quarantines them; once the fault is fixed: triage poll")
        elif not f.quarantined:
            body.append("    a later poll took the batch: nothing is left to do")
    body += ["", "Each failure is told once; later ones come with a later remind."]
    return body


def batch_text(policy: Policy, failures: list[BatchFailure]) -> tuple[str, str]:
    body = [*batch_lines(policy, failures), "",
            "This message was generated automatically by triage remind; please do not reply."]
    return (f"[triage] {len(failures)} poll batch failure(s): every message failed the same way",
            "\n".join(body) + "\n")


def build_mail(settings: Settings, to: str, subject: str, body: str, now: datetime) -> EmailMessage:
    """An internal notice from the support address (see ``triage.drafting.outgoing.build_notice``)."""
    return build_notice(to=to, subject=subject, body=body, from_address=settings.support.address,
                        from_name=settings.support.name, date=now)


# --------------------------------------------------------------------------- the run


def run(settings: Settings, store: Store, policy: Policy, now: datetime, dry_run: bool = False) -> Outcome:
    """Plan at ``now`` and apply it (see the module docstring); ``dry_run`` only plans."""
    from triage.mailbox.smtp import send

    p = plan(settings, store, policy, now)
    out = Outcome(now=iso(now) or "", dry_run=dry_run)
    out.cancelled = [i.as_dict() for i in p.cancel]
    recipients = list(dict.fromkeys(settings.reminders.to))
    owner = settings.reminders.owner
    if not recipients and (p.remind or p.check_ins or p.announce or p.loops):
        out.warnings.append("no [reminders] to in triage.toml: nobody gets the digest")
    if not owner and (p.escalate or p.poll_alert or p.batch):
        out.warnings.append("no [reminders] owner in triage.toml: escalations are not sent")

    if dry_run:
        out.drafted = [{**i.as_dict(), "draft": None} for i in p.check_ins]
        out.reminded = [i.as_dict() for i in p.digest_items] if recipients else []
        out.loops = [loop.as_dict() for loop in p.loops] if recipients else []
        out.escalated = [i.as_dict() for i in p.escalate] if owner else []
        out.digests = recipients if out.reminded or out.loops else []
        out.poll_alert = bool(p.poll_alert and owner)
        out.batch_failures = [f.as_dict() for f in p.batch] if owner else []
        return out

    drafted: list[Item] = []
    if p.check_ins or p.cancel:
        from triage import ruleset
        from triage.followups.deadlines import draft_check_in

        drafter = ruleset.load(settings).drafter if p.check_ins else None
        with store.write():
            for item in p.cancel:
                store.update_deadline(item.deadline, done_at=iso(now), closed=DeadlineClosed.CANCELLED)
                store.event("check-in-cancelled", "remind", now, case_id=item.case, deadlines=[item.deadline],
                            reason="the customer wrote after the resolution")
            for item in p.check_ins:
                draft_id = draft_check_in(settings, store, item.deadline, now, drafter)
                drafted.append(Item(**{**asdict(item), "draft": draft_id}))
                out.drafted.append({**item.as_dict(), "draft": draft_id, "command": f"triage show {draft_id}"})

    digest = p.remind + drafted + p.announce
    mails: list[EmailMessage] = []
    if (digest or p.loops) and recipients:
        subject, body = digest_text(policy, digest, now, p.loops)
        mails += [build_mail(settings, to, subject, body, now) for to in recipients]
    escalate = p.escalate if owner else []
    if escalate:
        mails.append(build_mail(settings, owner, *escalation_text(policy, escalate, now), now))
    alert = p.poll_alert if owner else None
    batch = p.batch if owner else []
    if alert:  # whole-batch failures go in the same mail
        subject, body = alert_text(alert)
        body += "\n" + "\n".join(batch_lines(policy, batch)) + "\n" if batch else ""
        mails.append(build_mail(settings, owner, subject, body, now))
    elif batch:
        mails.append(build_mail(settings, owner, *batch_text(policy, batch), now))
    if mails:  # a database that cannot be written fails here, before anyone is mailed, not after
        with store.write():
            pass
    for msg in mails:  # SendError (exit 3) leaves everything unrecorded: the next run retries
        send(settings.smtp, msg)

    with store.write():
        if digest and recipients:
            for item in digest:
                store.update_deadline(item.deadline, reminded_at=iso(now), reminders=item.reminders + 1)
                store.event("deadline-reminded", "remind", now, case_id=item.case, deadline=item.deadline,
                            deadline_kind=item.kind, to=recipients)
            out.reminded = [i.as_dict() for i in digest]
            out.digests = recipients
        if p.loops and recipients:
            for loop in p.loops:
                store.event(LOOP_EVENT, "remind", now, case_id=loop.case, to=recipients)
            out.loops = [loop.as_dict() for loop in p.loops]
            out.digests = recipients
        for item in escalate:
            store.update_deadline(item.deadline, escalated_at=iso(now))
            store.event("deadline-escalated", "remind", now, case_id=item.case, deadline=item.deadline,
                        deadline_kind=item.kind, to=owner)
        out.escalated = [i.as_dict() for i in escalate]
        if alert:
            store.event(ALERT_EVENT, "remind", now, to=owner, **alert)
            out.poll_alert = True
        if batch:
            out.batch_failures = [f.as_dict() for f in batch]
            store.event(BATCH_EVENT, "remind", now, to=owner, through_run=p.batch_through, failures=out.batch_failures)
        if owner:
            out.batch_through = p.batch_through
    return out


def run_locked(settings: Settings, policy: Policy, now: datetime, dry_run: bool = False) -> Outcome:
    """``run`` as cron starts it: under the run lock, and recorded in ``runs`` (a dry run is not).

    Raises LockedError when another run holds the lock; any other triage
    error is recorded as a failed run first.
    """
    with (
        storage_failures(settings.store_path, "" if dry_run else "remind", settings.store_timeout,
                         failure={"now": now.isoformat()}),
        run_lock(settings.lock_path, "remind"),
        Store(settings.store_path, timeout=settings.store_timeout) as store,
    ):
        if dry_run:
            return run(settings, store, policy, now, dry_run=True)
        with recorded_run(store, "remind", failure={"now": now.isoformat()}) as record:
            out = run(settings, store, policy, now)
            if settings.retention_days:
                with store.write():
                    out.purged = store.purge_resolved(now - timedelta(days=settings.retention_days),
                                                      "remind", now).as_dict()
            record.summary = {k: len(v) if isinstance(v, list) else v for k, v in out.as_dict().items()}
            if out.batch_through:
                record.summary["batch_through"] = out.batch_through
        return out


def status_unopened(db: Path, now: datetime, error: str) -> dict[str, Any]:
    """What ``triage status`` can still tell when the database cannot be opened: the failures noted beside it."""
    noted = unrecorded(db)
    polls = [e for e in noted if e.get("kind") == "poll"]
    return {
        "now": iso(now),
        "error": error,
        "consecutive_failures": len(polls),  # at least: the database holds any earlier ones
        "last_error": polls[-1].get("error", "") if polls else "",
        "unrecorded_failures": noted,
    }


def status(store: Store, now: datetime) -> dict[str, Any]:
    """The worker's health for ``triage status``."""
    failures, newest, success = consecutive_poll_failures(store)
    last_ok = success["finished_at"] if success else None
    overdue = [
        _item(r, now).as_dict()
        for r in store.deadline_rows(kinds=DeadlineKind)
        if not r.paused_at and datetime.fromisoformat(r.due) <= now
    ]
    reminds = store.runs_of("remind", limit=1)
    return {
        "now": iso(now),
        "last_poll": last_ok,
        "last_poll_age_minutes": int((now - datetime.fromisoformat(last_ok)).total_seconds() // 60) if last_ok else None,
        "consecutive_failures": failures,
        "last_error": (newest or {}).get("summary", {}).get("error", "") if failures else "",
        **store.status_counts(),
        "loops": len(store.loop_flags()),
        "overdue": len(overdue),
        "overdue_items": overdue,
        "last_remind": reminds[0]["finished_at"] if reminds else None,
        "unrecorded_failures": unrecorded(store.path),
    }
