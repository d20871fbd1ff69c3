"""``poll``: source -> parse -> detect -> draft -> store, one batch at a time.

Each batch is decided first (parse, detect) and then applied in one
``BEGIN IMMEDIATE`` transaction together with the folder's checkpoint, so a
crash anywhere leaves either the whole batch or none of it, and the next
run picks up where the last commit left off. A message that fails at any
stage is stored as quarantined with its error and raw bytes; the batch goes
on. But when every message of a batch (at least SYSTEMIC_MIN) fails with one
and the same error, the fault is not in the messages (a bug, a broken
environment): the batch is rolled back, nothing quarantined, its checkpoint
not advanced, and the run fails (``BatchFailed``, exit 3) so the next run
tries the same mail again. Only SYSTEMIC_HOLDS runs in a row, though: an
identical error may still be the messages' own (a blast of one kind of mail
that one bug trips on), so the run after them quarantines the batch as any
other and goes on, lest no later mail is ever triaged. A message over
``[mailbox] max_message_mb`` arrives with its headers only: it is stored
with them and its size, quarantined as too large, and ``retry`` fetches it
again from the source once the limit allows it. spaCy and Jinja are loaded
only when a batch has mail to classify.

With a worker pool (``[poll] workers`` above 1, ``triage.workers``) parsing,
detection and the drafter's decision and text run in worker processes, a
chunk of the batch each; everything that reads or writes the store stays
here, and the results are applied in the batch's order exactly as a
single-process poll applies its own.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from triage import ruleset
from triage.config import Settings
from triage.errors import TriageError
from triage.mailbox import Batch, Fetched, Source
from triage.message import Message, ParseError, parse, raw_hash, synthetic_id
from triage.ruleset import RuleSet
from triage.runs import storage_failed
from triage.store import CaseStatus, DeadlineKind, MessageStatus, NewMessage, Store, StoredMessage, iso, utcnow
from triage.workers import MIN_MESSAGES, Pool, Prepared, WorkerRaised

if TYPE_CHECKING:
    from triage.detect import Context, Detection

log = logging.getLogger(__name__)

TOO_LARGE = "too large:"  # how a quarantined message held by its headers only starts its error
SYSTEMIC_MIN = 5  # a batch of at least this many, every one failing the same way: not the messages' fault
SYSTEMIC_HOLDS = 3  # failed runs in a row such a batch is held back for; the next run quarantines it


class BatchFailed(TriageError):
    """Every message of a batch failed with the same error: nothing of it is stored, the next poll
    tries it again. A temporary failure as far as cron is concerned (exit 3), counted as a failed run;
    ``record`` goes into the run's record, for ``remind`` to tell the owner."""

    exit_code = 3

    def __init__(self, text: str, folder: str, messages: int, fault: str):
        super().__init__(text)
        self.record = {"batch_failure": {"folder": folder, "messages": messages, "fault": fault}}


def too_large_error(size: int, limit_mb: int) -> str:
    return (
        f"{TOO_LARGE} {size / 2**20:.1f} MB is over [mailbox] max_message_mb = {limit_mb}; only its "
        "headers and size are kept: raise the limit, then `triage retry` fetches it again"
    )


def is_too_large(message: StoredMessage) -> bool:
    """A quarantined message that holds only the headers of one over the limit."""
    return message.error.startswith(TOO_LARGE)


@dataclass
class Summary:
    fetched: int = 0
    triaged: int = 0
    ignored: int = 0
    quarantined: int = 0
    drafts: int = 0
    duplicates: int = 0
    rate_limited: int = 0
    loops: int = 0
    too_large: int = 0  # of the quarantined: over max_message_mb, stored by their headers and size
    clashes: int = 0  # different messages reusing a stored Message-ID, each stored as its own
    folders: list[str] = field(default_factory=list)
    #: batches quarantined whole after SYSTEMIC_HOLDS failed runs held them back: folder, messages, fault, held
    released: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        extra = f", {self.duplicates} duplicates skipped" if self.duplicates else ""
        extra += f", {self.clashes} reusing another message's Message-ID" if self.clashes else ""
        extra += f", {self.rate_limited} rate-limited" if self.rate_limited else ""
        extra += f", {self.loops} held as a possible auto-responder loop" if self.loops else ""
        extra += f", {self.too_large} too large (headers kept)" if self.too_large else ""
        return (
            f"fetched {self.fetched}, triaged {self.triaged}, ignored {self.ignored} as automatic, "
            f"quarantined {self.quarantined}, drafts created {self.drafts}{extra}"
        )


@dataclass
class Run:
    """One poll or retry: what every step needs, and the summary the steps add to."""

    settings: Settings
    store: Store
    rules: RuleSet
    clock: Callable[[], datetime] = utcnow
    summary: Summary = field(default_factory=Summary)
    pool: Pool | None = None  # worker processes for this folder's pure work; None: all in this process


@dataclass(frozen=True)
class BatchRun:
    """One batch of a run: the source it came from and the one time it is stored at."""

    run: Run
    mailbox: str
    batch: Batch
    when: datetime


@dataclass
class Item:
    """One fetched message on its way through a batch."""

    fetched: Fetched
    retries: int = 0
    message: Message | None = None
    error: str = ""
    detection: Detection | None = None
    prepared: Prepared | None = None  # a worker's needs-reply decision and draft text
    fault: str = ""  # what an exception said while detecting, drafting or storing it (not a parse error)
    trace: str = ""  # and its traceback, logged once the batch is known not to fail as a whole


def poll(
    settings: Settings,
    store: Store,
    source: Source,
    rules: RuleSet | None = None,
    now: Callable[[], datetime] = utcnow,
    progress: Callable[[int, int], None] | None = None,
    pool: Pool | None = None,
    summary: Summary | None = None,
) -> Summary:
    """Fetch everything new from every configured folder and triage it.

    ``pool``: worker processes to use for a folder with at least MIN_MESSAGES
    new messages (or any folder, once they are started). ``summary``: the one to add to, which the
    caller still holds when a later folder fails (what was stored before stays stored).
    """
    run = Run(settings, store, rules or ruleset.load(settings), clock=now,
              summary=summary if summary is not None else Summary())
    for folder in source.folders:
        pending = source.pending(folder, store.checkpoint(source.name, folder), store.known_keys_for(source.name))
        run.summary.folders.append(folder)
        run.pool = pool if pool is not None and (pool.procs or pending.total >= MIN_MESSAGES) else None
        if run.pool is not None:
            run.pool.start()  # they load the rules while the first batch is fetched
        if progress:
            progress(0, pending.total)
        for batch in pending.batches:
            process_batch(run, source.name, batch)
            if progress:
                progress(len(batch.messages), pending.total)
    return run.summary


def process_batch(
    run: Run, mailbox: str, batch: Batch, replacing: dict[str, tuple[int, int]] | None = None
) -> None:
    """Parse, detect and store one batch in one transaction with its checkpoint.

    ``replacing`` maps source keys to (row id, retries) of quarantined rows
    being retried: they are replaced in the same transaction.
    """
    store, summary = run.store, run.summary
    b = BatchRun(run, mailbox, batch, run.clock())
    when = b.when
    replacing = replacing or {}
    items = [Item(f, retries=replacing.get(f.source_key, (0, -1))[1] + 1) for f in batch.messages]
    automatic = run.rules.automatic if items else None  # broken rules/automatic.toml: exit 2, before any mail
    limit_mb = run.settings.mailbox.max_message_mb
    pool = run.pool if items else None
    if pool is not None:
        for item, parsed in zip(items, pool.parse([(i.fetched.raw, i.fetched.received_at or when) for i in items]),
                                strict=True):
            item.message, item.error = parsed.message, parsed.error
    for item in items:
        if pool is None:
            try:
                item.message = parse(item.fetched.raw, item.fetched.received_at or when, automatic)
            except ParseError as exc:
                item.error = f"parse: {exc}"
        if item.fetched.too_large:  # the headers were parsed for the quarantine list; the body never read
            item.error = too_large_error(item.fetched.size or 0, limit_mb)
    summary.fetched += len(items)
    if any(_needs_detection(i) for i in items):
        # Broken rules or templates stop the run (exit 2) instead of quarantining every message.
        if pool is not None:  # the workers load the detector and the drafter; this process never needs them
            run.rules.policy  # noqa: B018
            pool.ready()
        else:
            run.rules.detector, run.rules.drafter, run.rules.policy  # noqa: B018 - loads all three, once per run

    with store.write():
        for row_id, _ in replacing.values():
            store.delete_message(row_id)
        seen: dict[str, list[Content]] = {}  # the same message twice in one batch (a Cc and a To copy, identical junk)
        fresh = [i for i in items if not _duplicate(b, i, seen)]
        _detect(b, fresh)
        if pool is not None:
            _prepare_drafts(pool, b, fresh)
        for item in fresh:
            _apply(b, item)
        released = _refuse_systemic(b, fresh)  # raises inside the transaction: nothing of the batch is kept
        if batch.checkpoint:
            store.set_checkpoint(mailbox, batch.folder, *batch.checkpoint)
    if released:  # one line for the batch, not one traceback per message
        log.warning("%s", released)
        log.debug("the first message's traceback:\n%s", fresh[0].trace or "(none)")
        return
    for item in fresh:
        if item.trace:
            log.error("quarantined %s: %s\n%s", item.fetched.source_key, item.fault, item.trace.rstrip())
        elif item.error:
            log.warning("quarantined %s: %s", item.fetched.source_key, item.error)


def _refuse_systemic(b: BatchRun, items: list[Item]) -> str:
    """Raise BatchFailed when every one of at least SYSTEMIC_MIN messages failed with one error,
    unless the SYSTEMIC_HOLDS poll runs before this one failed so for the same folder and error:
    then the batch is quarantined as it is, and what to tell the owner is returned ("" otherwise)."""
    faults = {i.fault for i in items}
    if len(items) < SYSTEMIC_MIN or len(faults) != 1 or "" in faults:
        return ""
    fault = faults.pop()
    # without the count, which grows while new mail joins a batch that is not full
    same = f"messages of a batch from {b.batch.folder} failed the same way, so the fault is not in them ({fault})"
    held = 0
    for run in b.run.store.runs_of("poll", limit=SYSTEMIC_HOLDS):
        if run["ok"] or same not in str(run["summary"].get("error", "")):
            break
        held += 1
    if held >= SYSTEMIC_HOLDS:
        b.run.summary.released.append({"folder": b.batch.folder, "messages": len(items), "fault": fault, "held": held})
        return (f"all {len(items)} {same}, but {held} failed runs in a row have held them back: they are "
                "quarantined now, each with its error, and the poll goes on; once the fault is fixed, "
                "`triage retry --all` takes them again")
    log.debug("the first message's traceback:\n%s", items[0].trace or "(none)")
    raise BatchFailed(
        f"all {len(items)} {same}: none was quarantined and the folder's checkpoint stays before "
        "them; the next poll tries them again", b.batch.folder, len(items), fault)


@dataclass(frozen=True)
class Content:
    """What makes two messages with one Message-ID the same message: the raw bytes, or
    the sender, Date and body (the same mail re-encoded by a server: other line ends,
    transfer encoding or added trace headers)."""

    raw_hash: str
    body: tuple[str, str, str] | None  # (sender, Date, body hash); None when unparsed or without a sender

    def same(self, other: Content) -> bool:
        return self.raw_hash == other.raw_hash or (self.body is not None and self.body == other.body)


def _body_key(sender: str, date: str | None, text: str) -> tuple[str, str, str] | None:
    if not sender or not date:
        return None
    return sender, date, hashlib.sha256(" ".join(text.split()).encode("utf-8", "replace")).hexdigest()


def _content(item: Item) -> Content:
    m = item.message
    if m is None:
        return Content(raw_hash(item.fetched.raw), None)
    return Content(m.raw_hash, _body_key(m.sender_address, iso(m.date), m.full_text))


def _stored_content(row: StoredMessage) -> Content:
    body = None if row.status == MessageStatus.QUARANTINED else _body_key(row.sender, row.date, row.full_text)
    return Content(row.raw_hash, body)


def _duplicate(b: BatchRun, item: Item, seen: dict[str, list[Content]]) -> bool:
    """The same message (Message-ID and content) already stored, or earlier in this batch.

    A different message reusing a stored Message-ID (broken mailers do this; so
    can an attacker) is not a duplicate: it is stored as its own message and
    logged. A stored message seen again in its folder moves to the new UID only
    when the folder's UIDVALIDITY changed (a rescan); otherwise it stays where it
    was first seen, so ``\\Answered`` goes on the message the draft answers.
    """
    store, mailbox, batch, summary = b.run.store, b.mailbox, b.batch, b.run.summary
    mid = item.message.message_id if item.message else synthetic_id(item.fetched.raw)
    content = _content(item)
    earlier = seen.setdefault(mid, [])
    if any(content.same(other) for other in earlier):
        summary.duplicates += 1
        return True
    stored = store.messages_by_mid(mailbox, mid)
    for row in stored:
        if content.same(_stored_content(row)):
            if batch.uidvalidity is not None and row.folder == batch.folder and row.uidvalidity != batch.uidvalidity:
                store.relocate_message(row.id, item.fetched.source_key, batch.uidvalidity, item.fetched.uid)
            summary.duplicates += 1
            return True
    if stored or earlier:
        summary.clashes += 1
        sender = item.message.sender_address if item.message else "?"
        log.warning("Message-ID %s reused by a different message (from %s, %s): stored as its own message",
                    mid, sender or "?", item.fetched.source_key)
    earlier.append(content)
    return False


def _needs_detection(item: Item) -> bool:
    return item.message is not None and not item.message.auto and not item.error


def _detect(b: BatchRun, items: list[Item]) -> None:
    todo = [i for i in items if _needs_detection(i)]
    if not todo:
        return
    contexts = [_context(b, i.message) for i in todo if i.message]
    texts = [i.message.text for i in todo if i.message]
    pool = b.run.pool
    results: list[Detection]
    if pool is not None:  # the same, a chunk per worker; a failed chunk is retried there one by one
        found, traces = pool.detect(texts, contexts)
        for trace in traces:
            log.error("detection failed for a batch; retrying message by message\n%s", trace)
        results = []
        for item, one in zip(todo, found, strict=True):
            if one.error:
                item.error = item.fault = one.error
            results.append(one.detection)  # type: ignore[arg-type]
        _with_batch_history(pool.detect_all, todo, texts, contexts, results)
    else:
        detector = b.run.rules.detector
        try:
            results = detector.detect(texts, contexts)
        except Exception:  # one bad text must not cost the batch: retry one by one
            log.exception("detection failed for a batch; retrying message by message")
            results = []
            for text, ctx, item in zip(texts, contexts, todo, strict=True):
                try:
                    results.extend(detector.detect([text], [ctx]))
                except Exception as exc:
                    item.error = item.fault = f"detect: {type(exc).__name__}: {exc}"
                    results.append(None)  # type: ignore[arg-type]
        _with_batch_history(detector.detect, todo, texts, contexts, results)
    for item, result in zip(todo, results, strict=True):
        item.detection = result


def _with_batch_history(
    detect: Callable[[list[str], list[Context]], list[Detection]], todo: list[Item], texts: list[str],
    contexts: list[Context], results: list[Detection],
) -> None:
    """Count a sender's earlier messages in this same batch as history, and detect those again.

    The store only holds what earlier batches committed, so without this a chronic
    complainer whose complaints arrive together (a first poll of a backlog) has none.
    """
    from dataclasses import replace

    from triage.detect import HistoryItem

    by_sender: dict[str, list[int]] = {}
    dates: dict[int, datetime] = {}
    for index, item in enumerate(todo):
        if item.message is not None and item.message.sender_address:
            by_sender.setdefault(item.message.sender_address, []).append(index)
            dates[index] = item.message.date
    again: list[int] = []
    for indexes in by_sender.values():
        indexes.sort(key=dates.__getitem__)
        for k, index in enumerate(indexes[1:], start=1):
            earlier = tuple(
                HistoryItem(
                    received_at=todo[j].fetched.received_at or dates[j],
                    complaint=results[j].complaint,
                    archetypes=results[j].archetype_names,
                )
                for j in indexes[:k]
                if results[j] is not None
            )
            if earlier:
                contexts[index] = replace(contexts[index], history=contexts[index].history + earlier)
                again.append(index)
    if not again:
        return
    try:
        redone = detect([texts[i] for i in again], [contexts[i] for i in again])
    except Exception:  # keep the first results; the message-by-message path already ran if needed
        log.exception("detection with in-batch history failed; keeping the first results")
        return
    for index, result in zip(again, redone, strict=True):
        results[index] = result


def _prepare_drafts(pool: Pool, b: BatchRun, items: list[Item]) -> None:
    """The drafter's part for every message that may get a draft, in the workers: does it need
    a reply, and the reply's text. Used by ``_store_message`` at the point it would call them."""
    todo = [i for i in items if i.message is not None and not i.message.auto and not i.error and i.detection]
    pairs = [(i.message, i.detection) for i in todo if i.message is not None and i.detection is not None]
    for item, prepared in zip(todo, pool.draft(pairs, b.when), strict=True):
        item.prepared = prepared


def _context(b: BatchRun, message: Message) -> Context:
    from triage.detect import Context, HistoryItem

    history = b.run.store.customer_history_by_address(message.sender_address, b.when - timedelta(days=365))
    return Context(
        sender_address=message.sender_address,
        subject=message.subject,
        history=tuple(
            HistoryItem(
                received_at=datetime.fromisoformat(h["received_at"]),
                complaint=bool(h["complaint"]),
                archetypes=tuple(h["archetypes"]),
            )
            for h in history
        ),
        now=message.date,
    )


def _thread_case(b: BatchRun, message: Message, customer_id: int) -> tuple[int | None, int | None]:
    """The case a reply joins, and else the case its thread named (to link a new case to).

    A reply joins a case its In-Reply-To/References names (a stored message or
    one of our drafts, looked up: never read out of the id, which anyone can
    write) only when its sender is that case's customer: the same address, an
    address the owner tied to the customer (``triage customer link``), or, with
    ``[cases] join_same_domain``, an address under the same customers-file
    domain as the customer's (a business customer's colleague).
    """
    store = b.run.store
    named = store.thread_cases(b.mailbox, message.thread_ids)
    for case_id in named:
        owner = store.case_customer(case_id)
        if owner is None:
            continue
        if owner[0] == customer_id or _colleagues(b, owner[1], message.sender_address):
            return case_id, None
    return None, (named[0] if named else None)


def _colleagues(b: BatchRun, customer: str, sender: str) -> bool:
    """Both addresses are under one business customer's domain in the customers file, and the owner allows it."""
    if not b.run.settings.cases.join_same_domain or not sender:
        return False
    domain = _business_domain(b.run.rules, customer)
    return bool(domain) and domain == _business_domain(b.run.rules, sender)


def _business_domain(rules: RuleSet, address: str) -> str:
    """The domain entry of a customers file (rules/customers.csv) covering ``address``'s domain, or ""."""
    domain = address.rpartition("@")[2]
    for rule in rules.detector.rules.archetypes.rules:
        found = rule.customers.customers.lookup(domain) if rule.customers else None
        if found and "@" not in found[0]:
            return found[0]
    return ""


def _joined_case(b: BatchRun, message: Message, detection: Detection, customer_id: int,
                 received_at: datetime) -> int | None:
    """One of this customer's recent cases the message is a follow-up to (see followups/joining.py)."""
    from triage.followups.joining import joined_case

    join = joined_case(b.run.store, customer_id, message.subject, detection.facts, received_at,
                       b.run.settings.cases.join_days)
    if join is None:
        return None
    detail: dict[str, Any] = {"matched": join.matched} if join.reason == "reference" else {}  # not the subject
    b.run.store.event("case-joined", "poll", b.when, case_id=join.case_id, reason=join.reason, **detail)
    return join.case_id


def _apply(b: BatchRun, item: Item) -> None:
    store, summary = b.run.store, b.run.summary
    message = item.message
    row = _new_row(b, item)
    if message is None or item.error or (not message.auto and item.detection is None):
        if not item.error:
            item.error = item.fault = "detect: no result"
        store.insert_message(_quarantine(row, item, item.error), None, None)
        summary.quarantined += 1
        summary.too_large += item.fetched.too_large
        return
    try:
        with store.savepoint():
            drafted = _store_message(b, item, row)
    except Exception as exc:  # drafting or storing one message failed: quarantine it, go on
        if storage_failed(exc):  # not this message: the database itself (full, read-only, locked)
            raise
        error = exc.text if isinstance(exc, WorkerRaised) else f"{type(exc).__name__}: {exc}"
        item.fault, item.trace = error, traceback.format_exc()
        store.insert_message(_quarantine(row, item, error), None, None)
        summary.quarantined += 1
        return
    if message.auto:
        summary.ignored += 1
    else:
        summary.triaged += 1
        summary.drafts += drafted


def _store_message(b: BatchRun, item: Item, row: NewMessage) -> int:
    """Store one parsed message with its case, detection, deadline and draft; drafts made."""
    settings, store, summary, when = b.run.settings, b.run.store, b.run.summary, b.when
    message, detection = item.message, item.detection
    assert message is not None
    complaint = bool(detection and detection.complaint)
    customer_id = store.customer(message.sender_address or "unknown@invalid", message.sender_name, message.date, complaint)
    case_id, named = _thread_case(b, message, customer_id)

    if message.auto:  # recorded on its thread, never answered, never reopens
        store.insert_message(row, customer_id, case_id)
        return 0
    assert detection is not None

    window = timedelta(minutes=settings.poll.rate_window_minutes)
    limited = store.recent_from(message.sender_address, row.received_at - window) >= settings.poll.rate_limit
    if case_id is None:  # not a reply by headers: a follow-up naming the same order, or a Fwd: of its subject?
        case_id = _joined_case(b, message, detection, customer_id, row.received_at)
    if case_id is None:
        case_id = store.open_case(customer_id, message.subject, message.date, linked_case=named)
        store.event("case-opened", "poll", when, case_id=case_id)
        if named is not None:  # someone else's thread: their own case, linked for the agent to see
            store.event("case-linked", "poll", when, case_id=case_id, linked_case=named)
            store.event("case-linked", "poll", when, case_id=named, linked_case=case_id)
            log.warning("a message from %s names case %d of another customer: opened case %d, linked to it",
                        message.sender_address, named, case_id)
    else:
        case = store.case(case_id)
        if case and case.status.finished:
            store.update_case(case_id, status=CaseStatus.OPEN, resolved_at=None)
            store.event("case-reopened", "poll", when, case_id=case_id)
        from triage.followups.deadlines import customer_wrote

        customer_wrote(store, b.run.rules.policy, case_id, row.received_at)
    store.update_case(
        case_id,
        score=detection.score,
        level=detection.level,
        archetypes=list(detection.archetype_names),
        updated_at=row.received_at.isoformat(),
    )
    message_row = store.insert_message(
        NewMessage(**{**row.__dict__, "rate_limited": limited}), customer_id, case_id
    )
    store.insert_detection(message_row, detection.to_dict())

    if limited:  # no draft, but the case is owed an answer: its deadline reminds, the queue shows it
        _open_first_response(b, case_id, detection, row.received_at)
        summary.rate_limited += 1
        store.event("rate-limited", "poll", when, case_id=case_id, message_id=message_row)
        log.warning("%s sent more than %d messages in %d minutes: case %d gets no new draft (rate-limited)",
                    message.sender_address, settings.poll.rate_limit, settings.poll.rate_window_minutes, case_id)
        return 0
    if _responder_loop(b, case_id, message, message_row):
        return 0
    prepared = item.prepared
    if prepared is not None and prepared.error:  # the drafter raised in a worker: as if it had raised here
        raise WorkerRaised(prepared.error, prepared.trace)
    if not (prepared.needs_reply if prepared is not None else b.run.rules.drafter.needs_reply(message, detection)):
        # "thanks, all sorted": nothing left to answer, so no draft waits on this case
        superseded = store.supersede_pending(case_id, when)
        store.update_case(case_id, status=CaseStatus.CLOSED)
        store.event("case-closed", "poll", when, case_id=case_id, message_id=message_row,
                    reason="customer needs nothing more", superseded=superseded)
        return 0
    # Every customer message that needs an answer gets a response deadline (the first one,
    # or the reply to a customer who writes again); sending a reply completes it.
    _open_first_response(b, case_id, detection, row.received_at)
    superseded = store.supersede_pending(case_id, when)
    text = (prepared.text if prepared is not None and prepared.text is not None
            else b.run.rules.drafter.render(message, detection, case_id, when))
    from triage.drafting.drafter import draft_row

    draft_id = store.insert_draft(draft_row(case_id, message_row, message, text, settings.support,
                                            token=f"m{message_row}", now=when))
    store.event("draft-created", "poll", when, case_id=case_id, draft_id=draft_id, superseded=superseded)
    return 1


def _open_first_response(b: BatchRun, case_id: int, detection: Detection, received: datetime) -> None:
    """The case's first-response deadline, unless one is open already."""
    store = b.run.store
    if store.open_deadline(case_id, DeadlineKind.FIRST_RESPONSE) is None:
        due = b.run.rules.policy.first_response_due(detection.level, detection.archetype_names, received)
        store.add_deadline(case_id, DeadlineKind.FIRST_RESPONSE, due, "", b.when)


_LOOP_CHAIN = 50  # linked cases a responder's changing addresses are followed back through


def _responder_loop(b: BatchRun, case_id: int, message: Message, message_row: int) -> bool:
    """The counterpart answered each of our last replies at once with the same text: flag the
    case for an agent (an audit event the queue and review page show) and draft nothing.

    A responder that writes from a new address each time (``noreply+<token>@``, a VERP tail)
    is another sender each time, so each answer opens a case of its own, linked to the case
    whose reply it answered (``linked_case``, set from its In-Reply-To/References). The replies
    and answers of that chain of linked cases count then, as far back as each case's customer
    keeps the same address (``loop_address``): cases are grouped only where the threading says
    they are one correspondence, never from alike addresses alone."""
    from triage.automatic import is_loop, loop_address

    store, policy = b.run.store, b.run.rules.automatic.loop
    sender = message.sender_address
    threads = {(case_id, sender)}
    key, case = loop_address(sender), store.case(case_id)
    while case is not None and case.linked_case is not None and len(threads) < _LOOP_CHAIN:
        owner = store.case_customer(case.linked_case)
        if owner is None or loop_address(owner[1]) != key or case.linked_case in {c for c, _ in threads}:
            break
        threads.add((case.linked_case, owner[1]))
        case = store.case(case.linked_case)
    cases = sorted({c for c, _ in threads})
    cleared = max(filter(None, (store.loop_cleared_at(c) for c in cases)), default=None)
    replies = sorted(r for c in cases for r in store.sent_replies(c, since=cleared))[-policy.replies:]
    if len(replies) < policy.replies:
        return False
    sent, bodies = [when for when, _ in replies], [body for _, body in replies]
    answers = [a for c, s in sorted(threads) for a in store.answers_from(c, s, sent[0])]
    if not is_loop(policy, sent, answers, message.text or message.full_text, ours=bodies):
        return False
    b.run.summary.loops += 1
    store.event("loop-suspected", "poll", b.when, case_id=case_id, message_id=message_row,
                replies=policy.replies, within_minutes=policy.within_minutes)
    log.warning("case %d: possible auto-responder loop; no draft made", case_id)
    return True


def _new_row(b: BatchRun, item: Item) -> NewMessage:
    f, m = item.fetched, item.message
    received = f.received_at or b.when
    base: dict[str, Any] = dict(
        mailbox=b.mailbox,
        folder=b.batch.folder,
        source_key=f.source_key,
        uidvalidity=b.batch.uidvalidity,
        uid=f.uid,
        received_at=received,
        size=f.size if f.size is not None else len(f.raw),
    )
    if m is None:
        return NewMessage(
            **base,
            message_id=synthetic_id(f.raw),
            raw_hash=raw_hash(f.raw),
            status=MessageStatus.QUARANTINED,
            date=received,
        )
    return NewMessage(
        **base,
        message_id=m.message_id,
        raw_hash=m.raw_hash,
        status=MessageStatus.IGNORED if m.auto else MessageStatus.TRIAGED,
        date=m.date,
        in_reply_to=m.in_reply_to,
        references=m.references,
        sender=m.sender_address,
        sender_name=m.sender_name,
        reply_to=m.reply_to,
        recipients=m.to + m.cc,
        subject=m.subject,
        text=m.text,
        full_text=m.full_text,
        attachments=tuple({"name": a.name, "type": a.content_type, "size": a.size} for a in m.attachments),
        defects=m.defects,
        auto_reason=m.auto,
        raw=f.raw if m.attachments and not f.too_large else None,  # the attachments' only copy, for the review page
    )


def _quarantine(row: NewMessage, item: Item, error: str) -> NewMessage:
    """The row as quarantined: its error and raw bytes kept for `triage retry`."""
    return NewMessage(
        **{**row.__dict__, "status": MessageStatus.QUARANTINED, "error": error, "raw": item.fetched.raw, "retries": item.retries}
    )


Refetch = Callable[[StoredMessage], "Fetched | None"]  # a stored message -> the same from its source again


def retry(
    settings: Settings,
    store: Store,
    ids: list[int] | None,
    rules: RuleSet | None = None,
    refetch: Refetch | None = None,
) -> Summary:
    """Run quarantined messages (``ids``, or all when None) through the pipeline again.

    A too-large message is fetched again with ``refetch`` (its headers are
    all that is stored); without one, or when it is gone from the source,
    it stays quarantined as it is.
    """
    run = Run(settings, store, rules or ruleset.load(settings))
    wanted = None if ids is None else set(ids)
    for row in store.quarantined():
        if wanted is not None and row["id"] not in wanted:
            continue
        full = store.message(row["id"])
        if full is None or full.raw is None:
            continue
        if is_too_large(full):
            fetched = refetch(full) if refetch else None
            if fetched is None:
                log.warning("message %s: no longer in %s; it stays quarantined", full.id, full.folder)
                continue
        else:
            fetched = Fetched(
                source_key=full.source_key,
                raw=full.raw,
                received_at=datetime.fromisoformat(full.received_at),
                uid=full.uid,
                size=full.size,
            )
        batch = Batch(full.folder, [fetched], uidvalidity=full.uidvalidity)
        process_batch(run, full.mailbox, batch, replacing={full.source_key: (full.id, full.retries)})
    return run.summary
