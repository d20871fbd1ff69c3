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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from triage import ruleset
from triage.config import Settings
from triage.drafting import checklist
from triage.drafting.situation import SavedAnswer, open_questions
from triage.drafting.situation import insert_answer as place_answer
from triage.errors import NotFound, ServerError, TriageError
from triage.lock import wait_lock
from triage.store import DeadlineKind, Draft, DraftStatus, Store, StoredMessage, iso, utcnow

log = logging.getLogger(__name__)

def open_items(body: str) -> list[checklist.Item]:
    """Every open checklist item of ``body`` (``[[confirm: ...]]`` and ``[[answer: ...]]``)."""
    return checklist.items(body)


def _items_refusal(draft_id: int, open_: list[checklist.Item], saved: bool = False) -> str:
    """Why a draft with open checklist items is not approved, and what to do about each kind."""
    kinds = {i.kind for i in open_}
    todo = []
    if "confirm" in kinds:
        todo.append(f"do each action, then confirm it (Confirm on the review page, or triage confirm {draft_id} ITEM)")
    if "answer" in kinds:
        todo.append("write the answer in place of each [[answer: ...]] (or insert a saved answer)")
    unanswered = sum(i.kind == "answer" for i in open_)
    unconfirmed = len(open_) - unanswered
    counts = [f"{unconfirmed} checklist item(s) not confirmed"] if unconfirmed else []
    counts += [f"{unanswered} question(s) with no answer yet"] if unanswered else []
    return (f"draft {draft_id} {'was saved, but it ' if saved else ''}has {' and '.join(counts)}: "
            f"{checklist.summary(open_)}. {'; '.join(todo).capitalize()}, then approve")


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


def signature(store: Store, agent: str | None) -> str:
    """The display name agent ``agent`` signs replies with ("" when none is set or no such agent)."""
    row = store.agent(agent) if agent else None
    return str(row["display_name"] or "") if row else ""


def sign_off(body: str, default: str, name: str) -> str:
    """``body`` signed by ``name``: its sign-off line -- the last line that is exactly the
    configured ``[support] agent`` (``default``), as templates write ``{{ agent }}`` -- becomes
    ``name``. Unchanged when ``name`` is empty or no line is the default (the agent wrote their own)."""
    from triage.drafting.outgoing import clean_line

    default, name = clean_line(default, 80), clean_line(name, 80)
    if not name or not default or name == default:
        return body
    lines = body.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip() == default:
            lines[i] = name
            return "\n".join(lines)
    return body


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


def set_cc(store: Store, draft_id: int, cc: str, agent: str, now: datetime | None = None) -> tuple[str, ...]:
    """Replace a pending draft's Cc with the addresses in ``cc`` ("a@x, b@y"; "" for none); return
    them. Refused (naming it) for an address that is not one, or a draft that is not pending."""
    from triage.drafting.outgoing import ReplyError, parse_cc

    now = now or utcnow()
    try:
        addresses = parse_cc(cc)
    except ReplyError as exc:
        raise Refused(f"draft {draft_id}: Cc not changed: {exc}") from None
    with store.write():
        draft = _draft(store, draft_id)
        if draft.status != DraftStatus.PENDING:
            raise Refused(f"draft {draft_id} is {draft.status}; only a pending draft's Cc can be changed")
        if list(addresses) != draft.cc:
            store.update_draft(draft_id, cc=addresses, edited_by=agent, updated_at=iso(now))
            store.event("draft-cc-changed", agent, now, case_id=draft.case_id, draft_id=draft_id,
                        cc=len(addresses))
    return addresses


def confirm(settings: Settings, store: Store, draft_id: int, agent: str, item: int | str | None = None,
            now: datetime | None = None, body: str | None = None) -> str:
    """An agent confirms a ``[[confirm: ...]]`` item of a pending draft: by its number (from 1,
    as ``show`` lists the checklist), by its text (the review page's button), or ``None`` when
    the draft has only one. The marker becomes its plain text and the confirmation is a
    ``checklist-confirmed`` audit event with who confirmed what. ``body``: the agent's unsaved
    text (the page's box), confirmed in and saved as an edit. Returns the item's text. Refused
    when there is no such item, it is a question to answer, or the draft is not pending."""
    now = now or utcnow()
    with store.write():
        draft = _draft(store, draft_id)
        if draft.status != DraftStatus.PENDING:
            raise Refused(f"draft {draft_id} is {draft.status}; only a pending draft's items can be confirmed")
        text = draft.body if body is None else body
        every = checklist.items(text)
        confirms = [i for i in every if i.kind == "confirm"]
        if not confirms:
            raise Refused(f"draft {draft_id} has no checklist item to confirm")
        if item is None:
            if len(confirms) > 1:
                raise Refused(f"draft {draft_id} has {len(confirms)} checklist items to confirm: "
                              f"{checklist.summary(confirms)}. Name one: triage confirm {draft_id} ITEM")
            chosen = confirms[0]
        elif isinstance(item, str):
            found = next((i for i in confirms if i.text == item.strip()), None)
            if found is None:
                raise Refused(f"draft {draft_id} has no open checklist item {item.strip()!r} "
                              "(already confirmed, or edited away)")
            chosen = found
        else:
            numbered = next((i for i in every if i.number == item), None)
            if numbered is None:
                raise Refused(f"draft {draft_id} has no checklist item {item} (it has {len(every)})")
            if numbered.kind != "confirm":
                raise Refused(f"item {item} of draft {draft_id} is a question ({numbered.text!r}): "
                              f"{checklist.KINDS[numbered.kind]}, nothing to confirm")
            chosen = numbered
        text = checklist.replace(text, chosen, chosen.text)
        store.update_draft(draft_id, body=text, lint=lint(settings, text), updated_at=iso(now),
                           **({"edited_by": agent} if body is not None and body != draft.body else {}))
        store.event("checklist-confirmed", agent, now, case_id=draft.case_id, draft_id=draft_id, item=chosen.text)
    return chosen.text


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


def redraft(settings: Settings, store: Store, draft_id: int, agent: str, template: str | None = None,
            scratch: bool = False, now: datetime | None = None) -> int:
    """A fresh pending draft for the case of ``draft_id``, answering its latest customer message.

    From the template the rules choose, or ``template``; ``scratch``: an empty reply with
    the greeting and the sign-off, for the agent to write. The case's pending drafts are
    superseded. Refused while a draft of the case is being sent. Returns the new draft's id.
    """
    from triage.detect import ArchetypeHit, Detection, Facts
    from triage.drafting.context import build_context
    from triage.drafting.drafter import DraftText, draft_row, normalise_body
    from triage.errors import DraftError
    from triage.message import Message

    now = now or utcnow()
    old = _draft(store, draft_id)
    messages = store.customer_messages(old.case_id)
    if not messages:
        raise Refused(f"case {old.case_id} has no customer message to answer")
    latest = messages[-1]
    found = store.detection_for(latest.id) or {}
    facts: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in found.get("facts", {}).items()
                             if k in Facts.__dataclass_fields__}
    detection = Detection(
        score=found.get("score", 0.0), level=found.get("level", "calm"), complaint=bool(found.get("complaint")),
        archetypes=tuple(ArchetypeHit(a["name"], a.get("rule", "")) for a in found.get("archetypes", [])
                         if isinstance(a, dict)),
        facts=Facts(**facts),
    )
    message = Message(
        message_id=latest.message_id, sender_name=latest.sender_name, sender_address=latest.sender,
        subject=latest.subject, date=datetime.fromisoformat(latest.date), text=latest.text,
        full_text=latest.full_text, reply_to=latest.reply_to, to=tuple(latest.recipients),
    )
    drafter = ruleset.load(settings).drafter
    signer = signature(store, agent)  # the redrafting agent signs it, when they have a display name
    if scratch:
        from dataclasses import replace

        from triage.drafting.outgoing import reply_subject

        support = replace(settings.support, agent=signer) if signer else settings.support
        ctx = build_context(message, detection, old.case_id, now, support)
        body = normalise_body(f"{ctx['greeting']}\n\n\n\nBest wishes,\n{ctx['agent']}\n{ctx['shop']}\n")
        body = body.replace("\n\nBest wishes", "\n\n\n\nBest wishes", 1)  # room to write
        text = DraftText("(from scratch)", reply_subject(latest.subject), body)
    else:
        try:
            text = drafter.render(message, detection, old.case_id, now, template=template, signer=signer)
        except DraftError as exc:
            raise Refused(str(exc)) from exc
    with store.write():
        drafts = store.case_drafts(old.case_id)
        busy = [d.id for d in drafts if d.status in (DraftStatus.APPROVED, DraftStatus.SENDING)]
        if busy:
            raise Refused(f"case {old.case_id}: draft {busy[0]} is approved and being sent; "
                          "reject it first (triage reject) to redraft")
        superseded = store.supersede_pending(old.case_id, now)
        new_id = store.insert_draft(draft_row(old.case_id, latest.id, message, text, settings.support,
                                              token=f"r{len(drafts) + 1}", now=now))
        store.event("draft-created", agent, now, case_id=old.case_id, draft_id=new_id, superseded=superseded,
                    redraft_of=draft_id, template=text.template)
    return new_id


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


class Collision(Refused):
    """Someone (or the customer) changed the case since the agent looked at the draft."""

    def __init__(self, message: str, changes: list[str]) -> None:
        super().__init__(message + (":\n" + "\n".join(changes) if changes else ""))
        self.reason = message
        self.changes = changes


def version(draft: Draft) -> str:
    """What an agent saw of a draft: changes whenever its text, state or addressees change."""
    return draft.updated_at


def _diff(old: str, new: str) -> list[str]:
    import difflib

    return [line.rstrip("\n") for line in difflib.unified_diff(
        old.splitlines(), new.splitlines(), "what you saw", "what is stored now", lineterm="", n=1)]


def _collisions(store: Store, draft: Draft, seen_version: str | None, seen_body: str | None) -> None:
    """Refuse when a customer message came after the draft was made, or it changed since it was seen."""
    later = [m for m in store.customer_messages(draft.case_id, since=draft.created_at) if m.id != draft.message_id]
    if later:
        raise Collision(
            f"draft {draft.id}: the customer wrote again on case {draft.case_id} after this draft was made; "
            f"read it, then redraft (triage redraft {draft.id}) or edit the reply",
            [f"  {m.received_at[:16].replace('T', ' ')} {m.sender}: {m.subject}: {m.text.strip()[:200]}"
             for m in later],
        )
    if seen_version is not None and seen_version != version(draft):
        changes = _diff(seen_body, draft.body) if seen_body is not None and seen_body != draft.body else []
        who = draft.edited_by or "someone"
        raise Collision(
            f"draft {draft.id} changed since you opened it ({who}, {draft.updated_at[:19].replace('T', ' ')}; "
            f"now {draft.status}); look at it again before approving",
            changes,
        )


def _tone_refusal(draft_id: int, findings: list[dict[str, Any]], saved: bool = False) -> str:
    phrases = "; ".join(repr(f["text"]) for f in findings)
    return (f"draft {draft_id} {'was saved, but it ' if saved else ''}has {len(findings)} tone finding(s): {phrases}. "
            'Edit it (triage edit), or approve with --override-tone "REASON"')


def approve(
    settings: Settings,
    store: Store,
    draft_id: int,
    agent: str,
    override_tone: str | None = None,
    now: datetime | None = None,
    body: str | None = None,
    seen_version: str | None = None,
    seen_body: str | None = None,
    cc: str | None = None,
) -> SendReport:
    """Approve a pending draft (refused while it has tone findings, unless overridden) and send it.

    ``body``: the text on the agent's screen (the review page); when it differs from the
    stored text it is saved, linted and approved in the same step, so what is on screen
    is what is sent. ``seen_version``: ``version(draft)`` when the agent opened it; a
    draft changed since then is refused, as is one whose case got a customer message
    after the draft was made (``Collision``, with what changed). Refused before leaving
    ``pending`` when no SMTP server is configured. ``cc``: the Cc on the agent's screen
    ("a@x, b@y"), saved with the text; a bad address is refused before anything changes.
    """
    now = now or utcnow()
    if not settings.smtp.host:
        raise Refused(f"draft {draft_id} not approved: no [smtp] host is configured, so it could not be sent; "
                      "add an [smtp] section to the configuration")
    draft = _draft(store, draft_id)
    if cc is not None:
        from triage.drafting.outgoing import ReplyError, parse_cc

        try:
            new_cc: list[str] | None = list(parse_cc(cc))
        except ReplyError as exc:
            raise Refused(f"draft {draft_id} not approved: Cc: {exc}") from None
    else:
        new_cc = None
    text = draft.body if body is None else body
    findings = lint(settings, text) if draft.status == DraftStatus.PENDING else []
    marks = open_items(text)
    if (draft.status == DraftStatus.PENDING and text != draft.body
            and (marks or (findings and not (override_tone or "").strip()))):
        # keep what the agent typed, then refuse as for any draft with findings or open questions
        with store.write():
            draft = _draft(store, draft_id)
            _collisions(store, draft, seen_version, seen_body if seen_body is not None else body)
        edit(settings, store, draft_id, text, agent, now)
        if new_cc is not None:
            set_cc(store, draft_id, ", ".join(new_cc), agent, now)
        if marks:
            raise Refused(_items_refusal(draft_id, marks, saved=True))
        raise Refused(_tone_refusal(draft_id, findings, saved=True))
    with store.write():
        draft = _draft(store, draft_id)
        if draft.status in (DraftStatus.APPROVED, DraftStatus.SENDING):
            pass  # approving again retries the send
        elif draft.status != DraftStatus.PENDING:
            raise Refused(f"draft {draft_id} is {draft.status}; it cannot be approved")
        else:
            _collisions(store, draft, seen_version, seen_body if seen_body is not None else body)
            if text != draft.body:
                store.update_draft(draft_id, body=text, lint=findings, edited_by=agent, updated_at=iso(now))
                store.event("draft-edited", agent, now, case_id=draft.case_id, draft_id=draft_id,
                            findings=len(findings))
            if new_cc is not None and new_cc != draft.cc:
                store.update_draft(draft_id, cc=new_cc, edited_by=agent, updated_at=iso(now))
                store.event("draft-cc-changed", agent, now, case_id=draft.case_id, draft_id=draft_id,
                            cc=len(new_cc))
            open_ = open_items(text)  # the text being approved, the box's on the page
            if open_:  # no marker may reach a customer, and no action nobody confirmed, whatever the override
                raise Refused(_items_refusal(draft_id, open_))
            if findings and not (override_tone or "").strip():
                raise Refused(_tone_refusal(draft_id, findings))
            # the approving agent signs it: stored, so the text kept is the text sent
            signer = signature(store, agent)
            signed = sign_off(text, settings.support.agent, signer)
            store.update_draft(
                draft_id,
                status=DraftStatus.APPROVED,
                approved_by=agent,
                approved_at=iso(now),
                lint=findings,
                override_reason=override_tone if findings else None,
                updated_at=iso(now),
                **({"body": signed} if signed != text else {}),
            )
            store.event(
                "draft-approved", agent, now, case_id=draft.case_id, draft_id=draft_id,
                override_tone=override_tone if findings else None,
                signed_as=signer if signed != text else None,
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
            cc=draft.cc,
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
