"""Mail commands: poll, queue, show, retry, and setting up (init, demo)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from triage.cli.common import (
    _agent,
    _date,
    agent_option,
    cli,
    emit_json,
    json_option,
    open_store,
    settings_from,
)
from triage.drafting import checklist
from triage.errors import NotFound
from triage.timetext import span

if TYPE_CHECKING:
    from triage.store import Case, Draft, NeedsReplyCase, QueueRow, RateLimitedCase, StoredMessage

# -- poll ---------------------------------------------------------------------


@cli.command()
@json_option
@click.option("--since", metavar="DATE", help="On a first run, only mail since this date (YYYY-MM-DD).")
@click.pass_context
def poll(ctx: click.Context, as_json: bool, since: str | None) -> None:
    """Fetch new mail, triage it and queue reply drafts for review.

    Holds a lock: a second overlapping run says so and exits 0.

    Example: triage poll --json
    """
    settings = settings_from(ctx)
    summary = _poll(settings, since=_date(since), show_progress=not as_json and sys.stderr.isatty())
    if as_json:
        emit_json(summary.as_dict())
    else:
        click.echo(summary.line())


def _poll(settings: Any, since: Any = None, show_progress: bool = False) -> Any:
    """triage.poll.run, with a progress bar on a TTY."""
    from triage import poll as poll_service

    bar = _Progress() if show_progress else None
    try:
        return poll_service.run(settings, since=since, progress=bar)
    finally:
        if bar:
            bar.close()


class _Progress:
    """A progress bar on a TTY for long polls (only when there is real work)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None and total >= 50:
            self.bar = click.progressbar(length=total, label="polling", file=sys.stderr)
            self.bar.__enter__()
        if self.bar is not None and done:
            self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


# -- queue and show -----------------------------------------------------------


def _case_json(c: NeedsReplyCase | RateLimitedCase, status: str, *, rate_limited: int = 0,
               owner: str | None = None) -> dict[str, object]:
    """A queue row for a case that owes a reply but has no draft waiting (``id`` null)."""
    return {
        "id": None, "case": c.case, "customer": c.customer, "customer_name": c.customer_name,
        "subject": c.subject, "level": c.level, "archetypes": c.archetypes, "template": "",
        "status": status, "created_at": c.since, "received_at": c.since, "due": c.due, "error": c.ERROR,
        "rate_limited": rate_limited, "last_draft": c.draft, "owner": owner,
    }


def _age(created: str, now: datetime) -> str:
    seconds = (now - datetime.fromisoformat(created)).total_seconds()
    return span(seconds)




@cli.command()
@json_option
@click.option("--quarantined", is_flag=True, help="List quarantined messages (with their errors) instead.")
@click.option("--loops", "loops_only", is_flag=True,
              help="List the cases flagged as a possible auto-responder loop instead.")
@click.option("--mine", is_flag=True, help="Only cases assigned to you (the agent --agent or its default names).")
@click.option("--unassigned", is_flag=True, help="Only cases nobody is assigned to.")
@agent_option
@click.pass_context
def queue(ctx: click.Context, as_json: bool, quarantined: bool, loops_only: bool, mine: bool, unassigned: bool,
          agent: str | None) -> None:
    """List drafts waiting for an agent, most urgent first, then cases that need a reply.

    Example: triage queue --json
    Example: triage queue --mine
    """
    if mine and unassigned:
        raise click.UsageError("--mine and --unassigned exclude each other")
    settings = settings_from(ctx)
    with open_store(settings) as store:
        if mine or unassigned:
            owner = _agent(agent, store) if mine else None
            rows = [r for r in store.queue() if (r.owner is None if unassigned else r.owner == owner)]
            every = store.rate_limited_cases()
            owned = store.owners([c.case for c in every])
            limited = [c for c in every if (c.case not in owned if unassigned else owned.get(c.case) == owner)]
            print_queue(rows, as_json, limited=limited,
                        needs_reply=store.needs_reply_cases(owner=owner, unassigned=unassigned))
            return
        if loops_only:
            loops = store.loop_cases()
            if as_json:
                emit_json(loops)
            elif loops:
                print_loops(loops)
            else:
                click.echo("No case is flagged as an auto-responder loop.")
            return
        if quarantined:
            print_quarantined(store.quarantined(), as_json)
        else:
            print_queue(store.queue(), as_json, limited=store.rate_limited_cases(),
                        needs_reply=store.needs_reply_cases())
            print_loops([] if as_json else store.loop_cases())


def print_loops(loops: list[dict[str, Any]]) -> None:
    """Cases held as a possible auto-responder loop: no draft is made for them, so say so here."""
    if not loops:
        return
    click.echo(f"\nPossible auto-responder loop, no drafts made ({len(loops)} case(s)):")
    for r in loops:
        click.echo(f"  case {r['case']:>4}  {_cut(r['customer'], 28):<28} {_cut(r['subject'], 38):<38} "
                   f"{r['held']} held, last {r['last'][:16].replace('T', ' ')}")
    click.echo("After checking: triage clear-loop CASE (its next message gets a draft again)")


def print_quarantined(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("No quarantined messages.")
        return
    for r in rows:
        click.echo(f"{r['id']:>5}  {_cut(r['sender'] or '?', 28):<28} {_cut(r['subject'] or '-', 30):<30} "
                   f"retries {r['retries']}  {_cut(r['error'], 60)}")
    click.echo(f"{len(rows)} quarantined message(s). After fixing the cause: triage retry --all")


@cli.command()
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Retry every quarantined message.")
@json_option
@click.pass_context
def retry(ctx: click.Context, ids: tuple[int, ...], retry_all: bool, as_json: bool) -> None:
    """Run quarantined messages through the pipeline again (after a rule or template fix).

    Example: triage retry --all
    """
    from triage import poll as poll_service

    if not ids and not retry_all:
        raise click.UsageError("give message ids or --all")
    summary = poll_service.retry(settings_from(ctx), None if retry_all else list(ids))
    if as_json:
        emit_json(summary.as_dict())
    else:
        click.echo(summary.line().replace("fetched", "retried", 1))


def print_queue(rows: list[QueueRow], as_json: bool, limited: list[RateLimitedCase] | None = None,
                needs_reply: list[NeedsReplyCase] | None = None) -> None:
    """The drafts, then the cases that need a reply but have no draft waiting ("needs reply":
    the latest draft was rejected), then the cases the rate limit left without a draft
    ("rate-limited: no draft made").

    In ``--json`` those cases are rows too, after the drafts, with ``id`` null and
    ``status`` "needs-reply" or "rate-limited"; every row has ``rate_limited``, the count of its
    case's messages no draft answers, ``last_draft`` (for a case row, the case's latest draft,
    which ``redraft`` and ``show`` take; null on a draft row) and ``owner``.
    """
    now = datetime.now(timezone.utc)
    limited = limited or []
    needs_reply = needs_reply or []
    if as_json:
        emit_json(
            [
                {
                    "id": r.id,
                    "case": r.case,
                    "customer": r.customer,
                    "customer_name": r.customer_name,
                    "subject": r.subject,
                    "level": r.level,
                    "archetypes": r.archetypes,
                    "template": r.template,
                    "status": r.status,
                    "created_at": r.created_at,
                    "received_at": r.received_at,
                    "due": r.due,
                    "error": r.error,
                    "rate_limited": r.rate_limited,
                    "last_draft": None,
                    "owner": r.owner,
                }
                for r in rows
            ]
            + [_case_json(c, "needs-reply", owner=c.owner) for c in needs_reply]
            + [_case_json(c, "rate-limited", rate_limited=c.rate_limited) for c in limited]
        )
        return
    if not rows and not limited and not needs_reply:
        click.echo("The queue is empty.")
        return
    if rows:
        # ID is the draft (show, edit, approve, reject); CASE is what promise, resolve and wait take
        click.echo(f"{'ID':>4} {'CASE':>4}  {'CUSTOMER':<28} {'SUBJECT':<38} {'LEVEL':<8} {'ARCHETYPE':<12} "
                   f"{'AGE':>4} {'DUE':>5}")
    troubled = 0
    for r in rows:
        arch = ",".join(r.archetypes) or "-"
        click.echo(
            f"{r.id:>4} {r.case:>4}  {_cut(r.customer, 28):<28} {_cut(r.subject, 38):<38} "
            f"{r.level:<8} {_cut(arch, 12):<12} {_age(r.waiting_since, now):>4} {_due(r.due, now):>5}"
            + (f"  +{r.rate_limited} newer, rate-limited" if r.rate_limited else "")
        )
        state = queue_state(r.status, r.error)
        if state:
            troubled += 1
            click.echo(f"{'':>11}! {state}")
    if rows:
        click.echo(f"{len(rows)} draft(s) waiting for review."
                   + (f" {troubled} not sent (see ! lines): approve again after checking, or reject." if troubled else ""))
    if needs_reply:
        click.echo(f"\nNeeds reply ({len(needs_reply)}): the draft was rejected and no reply was sent; "
                   "each keeps its first-response deadline:")
        for n in needs_reply:
            click.echo(
                f"   - {n.case:>4}  {_cut(n.customer, 28):<28} {_cut(n.subject, 38):<38} {n.level:<8} "
                f"needs reply (draft {n.draft} rejected)  due {_due(n.due, now)}"
            )
        click.echo("Make a new draft: triage redraft DRAFT [--template NAME | --scratch], "
                   "or answer from the mailbox and triage resolve CASE")
    if limited:
        click.echo(f"\nRate-limited cases without a draft ({len(limited)}); each keeps its first-response deadline:")
        for c in limited:
            click.echo(
                f"   - {c.case:>4}  {_cut(c.customer, 28):<28} {_cut(c.subject, 38):<38} {c.level:<8} "
                f"rate-limited: no draft made ({c.rate_limited})  due {_due(c.due, now)}"
            )
        click.echo("The sender wrote more than [poll] rate_limit messages in the window: answer from the mailbox, "
                   "then triage resolve CASE")


def _due(due: str | None, now: datetime) -> str:
    return span((datetime.fromisoformat(due) - now).total_seconds()) if due else "-"


def queue_state(status: str, error: str) -> str:
    """What the queue says under a draft that is not simply waiting: held, send failed, approved, sending."""
    from triage.review import HELD

    if error.startswith(HELD):
        return f"held: {_cut(error, 160)}"
    if error:
        return f"{status}, send failed: {_cut(error, 140)}"
    if status == "sending":
        return "sending (cut off? triage send-pending decides whether it went out)"
    if status == "approved":
        return "approved, not sent yet (triage send-pending sends it)"
    return ""


def _cut(text: str, width: int) -> str:
    text = " ".join(str(text)[: width * 4].split())
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command()
@click.argument("draft_id", type=int)
@json_option
@click.pass_context
def show(ctx: click.Context, draft_id: int, as_json: bool) -> None:
    """Show a draft: the customer's message, the evidence, the reply and its lint findings.

    Example: triage show 12
    """
    settings = settings_from(ctx)
    with open_store(settings) as store:
        draft = store.draft(draft_id)
        if draft is None:
            raise NotFound(f"no draft {draft_id}")
        message = store.message(draft.message_id) if draft.message_id else None
        detection = store.detection_for(draft.message_id) if draft.message_id else None
        case = store.case(draft.case_id)
        history = store.earlier_cases(case) if case else []
        loop = store.loop_flags([draft.case_id]).get(draft.case_id)
    used = _answers_used(settings, draft.body)
    if as_json:
        emit_json(
            {
                "id": draft.id,
                "case": draft.case_id,
                "status": draft.status,
                "to": draft.to_address,
                "cc": draft.cc,
                "subject": draft.subject,
                "body": draft.body,
                "template": draft.template,
                "lint": draft.lint,
                "outgoing_message_id": draft.outgoing_message_id,
                "message": _message_json(message),
                "detection": detection,
                "asks": detection["asks"] if detection else [],
                "answers": [{"id": a.id, "title": a.title} for a in used],
                "checklist": [i.to_dict() for i in checklist.items(draft.body)],
                "history": [
                    {k: getattr(c, k) for k in ("id", "subject", "status", "level", "opened_at", "outcome")}
                    for c in history
                ],
                "loop": loop,
                "linked_case": case.linked_case if case else None,
            }
        )
        return
    if case and case.linked_case:
        click.echo(f"Case {draft.case_id} is linked to case {case.linked_case}: its thread names a message "
                   "of that case, but its sender is not that case's customer (nothing of it is shown here). "
                   "If it is the same customer: triage customer link ADDRESS CUSTOMER\n")
    if loop:
        click.echo(f"Case {draft.case_id}: possible auto-responder loop: {loop['held']} message(s) held "
                   f"without a draft since {loop['since'][:16].replace('T', ' ')} UTC. "
                   f"After checking: triage clear-loop {draft.case_id}\n")
    from triage.cli.common import _policy

    _print_show(draft, message, detection, case, history, _policy(settings).tz)
    if used:
        click.echo("Saved answers used: " + ", ".join(f"{a.title} ({a.id})" for a in used))


def _answers_used(settings: Any, body: str) -> list[Any]:
    """The saved answers (rules/answers.toml) whose paragraph is in the draft."""
    from triage import review
    from triage.drafting.situation import answers_in

    return answers_in(body, review.saved_answers(settings))


@cli.command("confirm")
@click.argument("draft_id", type=int)
@click.argument("item", type=int, required=False)
@agent_option
@click.pass_context
def confirm(ctx: click.Context, draft_id: int, item: int | None, agent: str | None) -> None:
    """Confirm a draft's checklist item ([[confirm: ...]]) once the action is really done.

    ITEM is its number as listed by show (needed when there are several). Recorded
    as an audit event; the item becomes plain text in the reply.

    Example: triage confirm 12 1
    """
    from triage import review

    settings = settings_from(ctx)
    with open_store(settings) as store:
        text = review.confirm(settings, store, draft_id, _agent(agent, store), item)
    click.echo(f"Confirmed on draft {draft_id}: {text}")


@cli.command("clear-loop")
@click.argument("case_id", type=int)
@agent_option
@click.pass_context
def clear_loop(ctx: click.Context, case_id: int, agent: str | None) -> None:
    """The case is not an auto-responder loop (checked by an agent): its next message gets a draft.

    Only our replies sent after this count toward a new loop.

    Example: triage clear-loop 7
    """
    from triage import review

    with open_store(settings_from(ctx)) as store:
        cleared = review.clear_loop(store, case_id, _agent(agent, store))
    if cleared:
        click.echo(f"Case {case_id} is no longer flagged; its next message gets a draft.")
    else:
        click.echo(f"Case {case_id} is not flagged as an auto-responder loop.")


def _message_json(message: StoredMessage | None) -> dict[str, Any] | None:
    if message is None:
        return None
    keys = ("id", "message_id", "sender", "sender_name", "subject", "date", "text", "full_text", "status")
    return {k: getattr(message, k) for k in keys}


def _highlight(text: str, evidence: list[dict[str, Any]]) -> str:
    """Mark each evidence span as [[span]] so agents see what drove the detection."""
    out, pos = [], 0
    for ev in sorted(evidence, key=lambda e: (e["start"], -e["end"])):
        start, end = int(ev["start"]), int(ev["end"])
        if start < pos or end > len(text) or ev.get("where", "text") != "text":  # subject spans are not in text
            continue
        out += [text[pos:start], click.style(f"[[{text[start:end]}]]", bold=True, fg="red")]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _highlight_items(body: str, open_items: list[checklist.Item]) -> str:
    """The draft with each open checklist marker in bold reverse video, so none is missed."""
    out, pos = [], 0
    for i in open_items:
        out += [body[pos:i.start], click.style(body[i.start:i.end], bold=True, reverse=True)]
        pos = i.end
    out.append(body[pos:])
    return "".join(out)


def _print_asks(echo: Any, asks: list[dict[str, Any]], deadline: str) -> None:
    """The customer's asks, one a line, with the rule that found each (and a flag when there is one)."""
    if not asks and not deadline:
        return
    echo("\nAsks:")
    for ask in asks:
        extra = "".join(f"  {k}: {ask[k]}" for k in ("when", "detail") if ask.get(k) and ask[k] != ask["text"])
        where = " (subject)" if ask.get("where") == "subject" else ""
        echo(f"  - {ask['kind']}: {ask['text']!r}{where}  {ask['rule']}{extra}")
        if ask.get("flag"):
            echo(f"    ! {ask['flag']}")
    if deadline:
        echo(f"  - their deadline: {deadline}")


def local(stamp: str, tz: Any) -> str:
    """An ISO timestamp as "YYYY-MM-DD HH:MM" in the policy's time zone (UTC for a naive one)."""
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _print_show(draft: Draft, message: StoredMessage | None, detection: Any, case: Case | None,
                history: list[Case], tz: Any = timezone.utc) -> None:
    echo = click.echo
    echo(f"Draft {draft.id} · case {draft.case_id} · {draft.status} · template {draft.template}")
    if message:
        echo(f"\nFrom:    {message.sender_name} <{message.sender}>")
        echo(f"Subject: {message.subject}")
        echo(f"Date:    {local(message.date, tz) if message.date else '-'}\n")
        text = message.text
        echo(_highlight(text, detection["evidence"]) if detection else text)
    if detection:
        arch = ", ".join(f"{a['name']} ({a['rule']})" for a in detection["archetypes"]) or "none"
        echo(
            f"\nDetection: {detection['level']} (score {detection['score']:.2f}), "
            f"complaint: {'yes' if detection['complaint'] else 'no'}, archetypes: {arch}"
        )
        for ev in detection["evidence"]:
            echo(f"  - {ev['text']!r}  {ev['rule']}  weight {ev['weight']:+.2f}")
        _print_asks(echo, detection.get("asks", []), detection.get("facts", {}).get("deadline", ""))
    earlier = history
    if earlier:
        echo("\nEarlier cases:")
        for c in earlier:
            echo(f"  #{c.id} {local(c.opened_at, tz)[:10]} {c.status:<9} {c.level:<8} {c.subject}")
    cc = f"Cc: {', '.join(draft.cc)}\n" if draft.cc else ""
    echo(f"\nTo: {draft.to_address}\n{cc}Subject: {draft.subject}\n")
    open_items = checklist.items(draft.body)
    echo(_highlight_items(draft.body, open_items))
    if open_items:
        echo(f"\nChecklist: {len(open_items)} open (approve refuses until none is left):")
        for i in open_items:
            todo = (f"do it, then: triage confirm {draft.id} {i.number}" if i.kind == "confirm"
                    else f"write the answer in its place: triage edit {draft.id}")
            echo(f"  {i.number}. {click.style(i.kind, bold=True)} {i.text!r}  ({todo})")
    if draft.lint:
        echo("\nTone findings:")
        for f in draft.lint:
            echo(f"  - {f['text']!r}: {f['reason']} Try: {f['suggestion']}")
    else:
        echo("\nTone: no findings.")




# -- setup: init and demo -----------------------------------------------------


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Write a starter triage.toml, rules/ and templates/ into DIRECTORY.

    Existing files are left alone.

    Example: triage init ~/support
    """
    from triage.setup import init_dir

    for line in init_dir(directory):
        click.echo(line)


@cli.command()
@click.option("--dir", "directory", default="demo", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def demo(ctx: click.Context, directory: Path) -> None:
    """Poll the bundled demo inbox into DIR and print the review queue.

    Afterwards `triage --config DIR/triage.toml queue` works on the same data.

    Example: triage demo --dir /tmp/triage-demo
    """
    from triage import config
    from triage.setup import write_demo_config

    path = write_demo_config(directory)
    settings = config.load(path)
    summary = _poll(settings, show_progress=sys.stderr.isatty())
    click.echo(f"Demo inbox polled into {settings.store_path}: {summary.line()}\n")
    with open_store(settings) as store:
        print_queue(store.queue(), as_json=False)
    click.echo(f"\nNext: {_me()} --config {path} show ID")


def _me() -> str:
    """How to run triage again: `triage` when it is on PATH, else the path it was run by."""
    import shutil

    if shutil.which("triage"):
        return "triage"
    return sys.argv[0] if sys.argv and Path(sys.argv[0]).name == "triage" else "python -m triage"
