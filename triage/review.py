"""What agents do to drafts: edit, reject, approve, and the exactly-once send.

A draft moves pending -> approved -> sending -> sent (or rejected /
superseded). Its Message-ID was fixed when it was created. Sending:

1. claim the draft (``sending``) in a durable commit;
2. if a crash left it in ``sending`` before, decide from what the crashed
   run recorded (below) whether it may be sent again;
3. hand it to SMTP. Once the envelope is accepted and just before DATA, an
   ``smtp-data`` event is committed durably; as soon as the server accepts
   the message, an ``smtp-accepted`` event. On a refusal it goes back to
   ``approved`` with the error, for ``triage send-pending`` to retry;
4. append the copy to Sent (unless ``append_sent = false``), then record
   ``sent`` with ``synchronous=FULL``, then set ``\\Answered`` on the original.

Recovering a draft left in ``sending``: its Message-ID in Sent, or an
``smtp-accepted`` event, means it was sent (it is filed in Sent if missing
and recorded as sent, never sent again); no ``smtp-data`` event means the
server never had it (it is sent). An ``smtp-data`` event with no answer
recorded after it -- a crash, or a lost connection, between handing over
the message and learning the server's answer (milliseconds) -- cannot be
decided: the server may have taken it. Such a draft is *held*: back to
``approved`` with an error in the queue and a ``send-held`` event;
``send-pending`` leaves it alone, and an agent who has checked approves it
again to send it (or rejects it). Nothing is ever sent twice by the machine.
Every action is written to the ``events`` audit log with who and when.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from triage import ruleset
from triage.config import Settings
from triage.drafting.situation import SavedAnswer, open_marks, open_questions
from triage.drafting.situation import insert_answer as place_answer
from triage.errors import NotFound, ServerError, TriageError
from triage.lock import wait_lock
from triage.store import DeadlineKind, Draft, DraftStatus, Store, StoredMessage, iso, utcnow

log = logging.getLogger(__name__)

# an action only an agent can take, written by a template as a checklist item
_CONFIRM = re.compile(r"\[\[confirm:\s*(?P<item>[^\]]*)\]\]")


def checklist(body: str) -> list[tuple[int, int, str]]:
    """(start, end, item) of every ``[[confirm: ...]]`` an agent has still to confirm."""
    return [(m.start(), m.end(), m.group("item").strip()) for m in _CONFIRM.finditer(body)]


class Refused(TriageError):
    """The action is not allowed for this draft now (exit 1)."""

    exit_code = 1


@dataclass
class SendReport:
    sent: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # could not be sent in this run
    held: dict[int, str] = field(default_factory=dict)  # held earlier, waiting for an agent

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "recovered": self.recovered, "failed": self.failed, "held": self.held}


def _draft(store: Store, draft_id: int) -> Draft:
    draft = store.draft(draft_id)
    if draft is None:
        raise NotFound(f"no draft {draft_id}")
    return draft


def lint(settings: Settings, body: str) -> list[dict[str, Any]]:
    """The tone findings of ``body`` under the current rules/tone.toml."""
    findings = ruleset.load(settings).linter.lint(body) + open_questions(body)
    return [f.to_dict() for f in sorted(findings, key=lambda f: f.start)]


def edit(settings: Settings, store: Store, draft_id: int, body: str, agent: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Replace a pending draft's text (stored as text, never rendered again); return its findings."""
    now = now or utcnow()
    findings = lint(settings, body)
    with store.write():
        draft = _draft(store, draft_id)
        if draft.status != DraftStatus.PENDING:
            raise Refused(f"draft {draft_id} is {draft.status}; only pending drafts can be edited")
        store.update_draft(draft_id, body=body, lint=findings, edited_by=agent, updated_at=iso(now))
        store.event("draft-edited", agent, now, case_id=draft.case_id, draft_id=draft_id, findings=len(findings))
    return findings


def confirm(settings: Settings, store: Store, draft_id: int, agent: str, item: int | None = None,
            now: datetime | None = None) -> str:
    """An agent confirms a checklist item of a pending draft (numbered from 1; ``None`` when it has
    only one): the marker becomes its plain text and the confirmation is an audit event. Returns
    the item's text. Refused when there is no such item or the draft is not pending."""
    now = now or utcnow()
    with store.write():
        draft = _draft(store, draft_id)
        if draft.status != DraftStatus.PENDING:
            raise Refused(f"draft {draft_id} is {draft.status}; only a pending draft's items can be confirmed")
        items = checklist(draft.body)
        if not items:
            raise Refused(f"draft {draft_id} has no checklist item to confirm")
        if item is None and len(items) > 1:
            listed = "; ".join(f"{n}. {text!r}" for n, (_, _, text) in enumerate(items, 1))
            raise Refused(f"draft {draft_id} has {len(items)} checklist items: {listed}. Name one: "
                          f"triage confirm {draft_id} ITEM")
        number = item or 1
        if not 1 <= number <= len(items):
            raise Refused(f"draft {draft_id} has no checklist item {number} (it has {len(items)})")
        start, end, text = items[number - 1]
        body = draft.body[:start] + text + draft.body[end:]
        store.update_draft(draft_id, body=body, lint=lint(settings, body), updated_at=iso(now))
        store.event("checklist-confirmed", agent, now, case_id=draft.case_id, draft_id=draft_id, item=text)
    return text


def saved_answers(settings: Settings) -> tuple[SavedAnswer, ...]:
    """The owner's saved answers (rules/answers.toml) under the current rules."""
    return ruleset.load(settings).drafter.policy.answers


def insert_answer(settings: Settings, store: Store, draft_id: int, answer_id: str, agent: str,
                  body: str | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Put a saved answer into a pending draft's text (``body``, the agent's unsaved text, else the
    stored one) in place of its first open question, else before the closing line; saved like an
    edit; return the findings. NotFound for an unknown answer."""
    answer = next((a for a in saved_answers(settings) if a.id == answer_id), None)
    if answer is None:
        raise NotFound(f"no saved answer {answer_id!r} in rules/answers.toml")
    text = body if body and body.strip() else _draft(store, draft_id).body
    return edit(settings, store, draft_id, place_answer(text, answer.text), agent, now)


def reject(store: Store, draft_id: int, agent: str, reason: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    if not reason.strip():
        raise Refused("a rejection needs a reason")
    with store.write():
        draft = _draft(store, draft_id)
        if draft.status not in (DraftStatus.PENDING, DraftStatus.APPROVED):
            raise Refused(f"draft {draft_id} is {draft.status}; it cannot be rejected")
        store.update_draft(draft_id, status=DraftStatus.REJECTED, updated_at=iso(now), error="")
        store.event("draft-rejected", agent, now, case_id=draft.case_id, draft_id=draft_id, reason=reason)


def clear_loop(store: Store, case_id: int, agent: str, now: datetime | None = None) -> bool:
    """An agent checked a case flagged "possible auto-responder loop": not one (or over).

    Its next message gets a draft, and only replies sent from now on count toward a
    new loop. False when the case was not flagged.
    """
    if not store.case_exists(case_id):
        raise NotFound(f"no case {case_id}")
    flag = store.loop_flags([case_id]).get(case_id)
    if flag is None:
        return False
    with store.write():
        store.event("loop-cleared", agent, now or utcnow(), case_id=case_id, held=flag["held"])
    return True


def approve(
    settings: Settings,
    store: Store,
    draft_id: int,
    agent: str,
    override_tone: str | None = None,
    now: datetime | None = None,
) -> SendReport:
    """Approve a pending draft (refused while it has tone findings, unless overridden) and send it."""
    now = now or utcnow()
    draft = _draft(store, draft_id)
    findings = lint(settings, draft.body) if draft.status == DraftStatus.PENDING else []
    with store.write():
        draft = _draft(store, draft_id)
        if draft.status in (DraftStatus.APPROVED, DraftStatus.SENDING):
            pass  # approving again retries the send
        elif draft.status != DraftStatus.PENDING:
            raise Refused(f"draft {draft_id} is {draft.status}; it cannot be approved")
        else:
            questions = open_marks(draft.body)
            if questions:  # a marker must never reach a customer, whatever the override
                asked = "; ".join(repr(q) for _, _, q in questions)
                raise Refused(
                    f"draft {draft_id} has {len(questions)} question(s) with no answer yet: {asked}. "
                    "Write the answer in place of each [[answer: ...]] (triage edit), then approve"
                )
            items = checklist(draft.body)
            if items:  # nobody may claim an action that nobody has confirmed, whatever the override
                listed = "; ".join(f"{n}. {text!r}" for n, (_, _, text) in enumerate(items, 1))
                raise Refused(
                    f"draft {draft_id} has {len(items)} checklist item(s) not confirmed: {listed}. "
                    f"Do each, then confirm it (triage confirm {draft_id} ITEM), then approve"
                )
            if findings and not (override_tone or "").strip():
                phrases = "; ".join(repr(f["text"]) for f in findings)
                raise Refused(
                    f"draft {draft_id} has {len(findings)} tone finding(s): {phrases}. "
                    'Edit it (triage edit), or approve with --override-tone "REASON"'
                )
            store.update_draft(
                draft_id,
                status=DraftStatus.APPROVED,
                approved_by=agent,
                approved_at=iso(now),
                lint=findings,
                override_reason=override_tone if findings else None,
                updated_at=iso(now),
            )
            store.event(
                "draft-approved", agent, now, case_id=draft.case_id, draft_id=draft_id,
                override_tone=override_tone if findings else None,
            )
    report = SendReport()
    with _send_lock(settings):
        _send_one(settings, store, draft_id, agent, report, agent_approved=True)
    return report


def send_pending(settings: Settings, store: Store, actor: str = "send-pending") -> SendReport:
    """Send every approved draft not yet sent (and recover those a crash left in 'sending')."""
    report = SendReport()
    with _send_lock(settings):
        for draft_id in store.drafts_to_send():
            _send_one(settings, store, draft_id, actor, report)
    return report


def send_pending_run(settings: Settings) -> SendReport:
    """``send_pending`` as cron starts it: recorded in ``runs``; a store that cannot be written is a StorageError."""
    from triage.runs import recorded_run, storage_failures

    with (
        storage_failures(settings.store_path, "send-pending", settings.store_timeout),
        Store(settings.store_path, timeout=settings.store_timeout) as store,
        recorded_run(store, "send-pending") as record,
    ):
        report = send_pending(settings, store)
        record.summary = {key: len(value) for key, value in report.as_dict().items()}
    return report


@contextmanager
def _send_lock(settings: Settings) -> Iterator[None]:
    with wait_lock(settings.store_path.with_name(settings.store_path.name + ".send.lock"), timeout=120):
        yield


HELD = (
    "the sender was interrupted while the SMTP server was taking this reply, so it may have been "
    "delivered; it is held: check (the customer, the mail server's log), then approve it again to send it, "
    "or reject it"
)
_SEND_MARKS = ("draft-approved", "smtp-data", "smtp-accepted", "send-failed", "send-held", "sent")


def _send_state(store: Store, draft: Draft) -> str:
    """The last send milestone recorded for the draft (an event kind in _SEND_MARKS, or "")."""
    marks = [e["kind"] for e in store.events(draft.case_id) if e["draft_id"] == draft.id and e["kind"] in _SEND_MARKS]
    return marks[-1] if marks else ""


def _mark(store: Store, draft: Draft, actor: str, kind: str) -> None:
    with store.write(durable=True):
        store.event(kind, actor, utcnow(), case_id=draft.case_id, draft_id=draft.id)


def _send_one(
    settings: Settings, store: Store, draft_id: int, actor: str, report: SendReport, agent_approved: bool = False
) -> None:
    """Send one approved draft at most once; failures leave it approved with the error.

    ``agent_approved``: an agent approved it just now, which releases a held draft.
    """
    from triage.drafting.outgoing import ReplyError, build_reply
    from triage.mailbox.smtp import SendError, send

    draft = _draft(store, draft_id)
    if draft.status not in (DraftStatus.APPROVED, DraftStatus.SENDING):
        return
    original = store.message(draft.message_id) if draft.message_id else None
    try:
        msg = build_reply(
            to=draft.to_address,
            subject=draft.subject,
            body=draft.body,
            message_id=draft.outgoing_message_id,
            in_reply_to=original.message_id if original else "",
            references=_references(original),
            from_address=settings.support.address,
            from_name=settings.support.name,
            # the sender's name only when we answer the sender, not a Reply-To address
            to_name=original.sender_name if original and original.sender == draft.to_address else "",
        )
    except ReplyError as exc:
        _send_failed(store, draft, actor, str(exc), report)
        return
    try:
        mailbox = _open_mailbox(settings)  # before claiming: an unreachable IMAP server changes nothing
    except ServerError as exc:
        _send_failed(store, draft, actor, str(exc), report)
        return
    try:
        with store.write(durable=True):
            draft = _draft(store, draft_id)
            if draft.status not in (DraftStatus.APPROVED, DraftStatus.SENDING):
                return
            recovering = draft.status == DraftStatus.SENDING
            state = _send_state(store, draft)
            if state == "send-held" and not agent_approved:
                report.held[draft_id] = draft.error or HELD  # not a fault of this run
                return
            store.update_draft(draft_id, status=DraftStatus.SENDING, updated_at=iso(utcnow()))
        if recovering and mailbox is not None and mailbox.in_sent(draft.outgoing_message_id):
            _record_sent(store, draft, actor, recovered=True)
            report.recovered.append(draft_id)
        elif recovering and state == "smtp-accepted":  # sent, then the crash came before Sent
            _file_in_sent(settings, mailbox, msg, draft_id)
            _record_sent(store, draft, actor, recovered=True)
            report.recovered.append(draft_id)
        elif recovering and state == "smtp-data":
            _hold(store, draft, actor, report)
            return
        else:
            try:
                send(
                    settings.smtp, msg,
                    before_data=lambda: _mark(store, draft, actor, "smtp-data"),
                    on_accepted=lambda: _mark(store, draft, actor, "smtp-accepted"),
                )
            except SendError as exc:
                if exc.uncertain:
                    _hold(store, draft, actor, report, str(exc))
                else:
                    _send_failed(store, draft, actor, str(exc), report)
                return
            _file_in_sent(settings, mailbox, msg, draft_id)
            _record_sent(store, draft, actor, recovered=False)
            report.sent.append(draft_id)
        if mailbox is not None and original is not None:
            try:
                mailbox.mark_answered(original.folder, original.uidvalidity, original.uid)
            except ServerError as exc:
                log.warning("draft %s sent, but the original was not flagged \\Answered: %s", draft_id, exc)
    except ServerError as exc:
        # Lost IMAP while checking Sent for a draft a crash left in 'sending': nothing was sent now,
        # and it stays 'sending', so the next run decides again from what the crashed run recorded.
        log.warning("draft %s not sent: %s", draft_id, exc)
        report.failed[draft_id] = str(exc)
    finally:
        if mailbox is not None:
            mailbox.close()


def _file_in_sent(settings: Settings, mailbox: Any, msg: Any, draft_id: int) -> None:
    if mailbox is not None and settings.smtp.append_sent:
        try:
            mailbox.append_sent(msg.as_bytes())
        except ServerError as exc:
            log.warning("draft %s sent, but not filed in Sent: %s", draft_id, exc)


def _hold(store: Store, draft: Draft, actor: str, report: SendReport, cause: str = "") -> None:
    """It may have been delivered: back to approved, held for an agent, never sent again by itself."""
    error = f"{HELD} ({cause})" if cause else HELD
    with store.write(durable=True):
        store.update_draft(draft.id, status=DraftStatus.APPROVED, error=error, updated_at=iso(utcnow()))
        store.event("send-held", actor, utcnow(), case_id=draft.case_id, draft_id=draft.id, error=error)
    log.warning("draft %s held: %s", draft.id, error)
    report.failed[draft.id] = error


def _send_failed(store: Store, draft: Draft, actor: str, error: str, report: SendReport) -> None:
    """Back to approved with the error shown in the queue, for send-pending to retry."""
    with store.write(durable=True):
        store.update_draft(draft.id, status=DraftStatus.APPROVED, error=error, updated_at=iso(utcnow()))
        store.event("send-failed", actor, utcnow(), case_id=draft.case_id, draft_id=draft.id, error=error)
    log.warning("draft %s not sent: %s", draft.id, error)
    report.failed[draft.id] = error


def _references(original: StoredMessage | None) -> list[str]:
    if original is None:
        return []
    return [*original.refs, original.message_id]


def _open_mailbox(settings: Settings) -> Any:
    """The IMAP write side when the source is IMAP; None for local sources (no Sent to file in)."""
    if settings.mailbox.source != "imap":
        return None
    from triage.mailbox.imap import ImapMailbox

    return ImapMailbox.connect(settings.mailbox, settings.smtp.sent_folder)


def _record_sent(store: Store, draft: Draft, actor: str, recovered: bool) -> None:
    now = utcnow()
    with store.write(durable=True):
        store.update_draft(draft.id, status=DraftStatus.SENT, sent_at=iso(now), error="", updated_at=iso(now))
        case = store.case(draft.case_id)
        if case and not case.first_response_at:
            store.update_case(draft.case_id, first_response_at=iso(now))
        store.complete_deadlines(draft.case_id, DeadlineKind.FIRST_RESPONSE, now)
        store.event("sent", actor, now, case_id=draft.case_id, draft_id=draft.id, recovered=recovered)
