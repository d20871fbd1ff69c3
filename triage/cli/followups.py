"""Follow-up commands: promise, kept, resolve, wait, remind, status, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from triage.cli.common import (
    _agent,
    _date,
    _now,
    _policy,
    agent_option,
    cli,
    emit_json,
    json_option,
    now_option,
    open_store,
    settings_from,
)
from triage.timetext import span


@cli.command()
@click.argument("case_id", type=int)
@click.option("--by", "by", required=True, metavar="DATE", help="When: 2026-11-24, 2026-11-24T15:00, 2d, 4h, today, friday.")
@click.option("--what", required=True, metavar="TEXT", help="What was promised to the customer.")
@agent_option
@now_option
@json_option
@click.pass_context
def promise(ctx: click.Context, case_id: int, by: str, what: str, agent: str | None, now_text: str | None, as_json: bool) -> None:
    """Record a promise made to the customer; remind chases it until it is kept.

    Example: triage promise 7 --by friday --what "a replacement blender"
    """
    from triage.followups import deadlines

    settings = settings_from(ctx)
    with open_store(settings) as store:
        made = deadlines.promise(store, _policy(settings), case_id, by, what, _agent(agent, store), _now(now_text))
    if as_json:
        emit_json(made)
    else:
        click.echo(f"Promise {made['id']} on case {case_id}: {what}, due {made['due']}.")


@cli.command()
@click.argument("case_id", type=int)
@click.option("--promise", "promise_id", type=int, metavar="ID", help="Only this promise (default: every open one).")
@agent_option
@now_option
@click.pass_context
def kept(ctx: click.Context, case_id: int, promise_id: int | None, agent: str | None, now_text: str | None) -> None:
    """Mark a case's open promise(s) kept.

    Example: triage kept 7
    """
    from triage.followups import deadlines

    settings = settings_from(ctx)
    with open_store(settings) as store:
        ids = deadlines.kept(store, case_id, _agent(agent, store), _now(now_text), promise_id)
    click.echo(f"Promise(s) {', '.join(map(str, ids))} on case {case_id} kept.")


@cli.command()
@click.argument("case_id", type=int)
@click.option("--root-cause", metavar="TEXT", help="What caused it: product, logistics, miscommunication, service...")
@click.option("--outcome", type=click.Choice(["resolved", "unresolvable"]), default="resolved", show_default=True)
@agent_option
@now_option
@json_option
@click.pass_context
def resolve(ctx: click.Context, case_id: int, root_cause: str | None, outcome: str, agent: str | None,
            now_text: str | None, as_json: bool) -> None:
    """Resolve a case and schedule its check-in (outcome "resolved" only).

    Example: triage resolve 7 --root-cause "courier damage"
    """
    from triage.followups import deadlines

    settings = settings_from(ctx)
    with open_store(settings) as store:
        done = deadlines.resolve(store, _policy(settings), case_id, _agent(agent, store), _now(now_text), root_cause, outcome)
    if as_json:
        emit_json(done)
    else:
        after = f"; check-in due {done['check_in_due']}" if done["check_in_due"] else ""
        click.echo(f"Case {case_id} {outcome}{after}.")


@cli.command()
@click.argument("case_id", type=int)
@click.option("--resume", is_flag=True, help="Stop waiting (the customer's next message also does).")
@agent_option
@now_option
@click.pass_context
def wait(ctx: click.Context, case_id: int, resume: bool, agent: str | None, now_text: str | None) -> None:
    """The case waits on the customer (we asked a question): its clocks pause until they write.

    Example: triage wait 7
    """
    from triage.followups import deadlines

    settings = settings_from(ctx)
    with open_store(settings) as store:
        if resume:
            ids = deadlines.resume(store, _policy(settings), case_id, _agent(agent, store), _now(now_text))
            click.echo(f"Case {case_id} no longer waits; {len(ids)} deadline(s) restarted.")
        else:
            ids = deadlines.wait(store, case_id, _agent(agent, store), _now(now_text))
            click.echo(f"Case {case_id} waits on the customer; {len(ids)} deadline(s) paused.")


@cli.command()
@click.option("--now", "now_text", metavar="ISO", help="Act as if it were this time (default: now; UTC unless an offset is given).")
@click.option("--dry-run", is_flag=True, help="Print what would be done; send and record nothing.")
@json_option
@click.pass_context
def remind(ctx: click.Context, now_text: str | None, dry_run: bool, as_json: bool) -> None:
    """Email agents a digest of what is due, draft check-ins, escalate to the owner (run by cron).

    Exit 3 if SMTP fails (nothing is recorded as reminded; the next run retries).

    Example: triage remind --json
    """
    from triage.followups import remind as remind_mod

    settings = settings_from(ctx)
    out = remind_mod.run_locked(settings, _policy(settings), _now(now_text), dry_run=dry_run)
    if as_json:
        emit_json(out.as_dict())
        return
    prefix = "would " if dry_run else ""
    loops = f" and {len(out.loops)} possible auto-responder loop(s)" if out.loops else ""
    click.echo(f"{prefix}remind {len(out.reminded)} item(s){loops} to {len(out.digests)} agent(s), "
               f"{prefix}draft {len(out.drafted)} check-in(s), {prefix}escalate {len(out.escalated)}, "
               f"cancel {len(out.cancelled)} check-in(s){'; poll failure alert to the owner' if out.poll_alert else ''}"
               + (f"; {len(out.batch_failures)} whole-batch poll failure(s) {prefix}told to the owner"
                  if out.batch_failures else ""))
    tz = _policy(settings).tz
    for title, items in (("Reminded", out.reminded), ("Check-ins drafted", out.drafted),
                         ("Escalated to the owner", out.escalated), ("Check-ins cancelled", out.cancelled)):
        if not items:
            continue
        click.echo(f"{title} ({len(items)}{', dry run' if dry_run else ''}):")
        for item in items[:20]:
            click.echo(f"  case {item['case']} {item['kind']} due {_local(item.get('due'), tz)}: {item.get('command', '')}")
        if len(items) > 20:
            click.echo(f"  … and {len(items) - 20} more (--json lists them all)")
    if out.loops:
        click.echo(f"Possible auto-responder loops ({len(out.loops)}{', dry run' if dry_run else ''}):")
        for loop in out.loops:
            click.echo(f"  case {loop['case']} {loop['held']} held since {_local(loop['since'], tz)}: "
                       f"{loop['command']} (not a loop: triage clear-loop {loop['case']})")
    if out.purged is not None:
        click.echo(f"Retention: purged {out.purged['cases']} resolved case(s) older than "
                   f"{settings.retention_days} days, {out.purged['messages']} message(s), "
                   f"{out.purged['customers']} customer(s) left with nothing")
    for warning in out.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.command()
@click.argument("address")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@agent_option
@now_option
@json_option
@click.pass_context
def forget(ctx: click.Context, address: str, yes: bool, agent: str | None, now_text: str | None,
           as_json: bool) -> None:
    """Erase a customer: their messages (raw bytes too), cases, drafts, detections and labels.

    Leaves one audit event with the counts and no personal data. Delete the
    mail from the mailbox as well: triage does not touch the mailbox.
    Exit 2 when nothing is stored for ADDRESS.

    Example: triage forget ann@customer.test --yes
    """
    from triage.errors import NotFound

    settings = settings_from(ctx)
    if not yes and not as_json:
        click.confirm(f"Erase everything stored about {address}? This cannot be undone", abort=True)
    with open_store(settings) as store, store.write():
        erased = store.forget_customer(address, _agent(agent, store), _now(now_text))
        if erased.nothing:
            raise NotFound(f"nothing stored for {address}")
    if as_json:
        emit_json(erased.as_dict())
        return
    click.echo(f"Forgot {address}: " + ", ".join(f"{v} {k}" for k, v in erased.as_dict().items() if v)
               + ". Delete the mail from the mailbox too.")


@cli.command()
@now_option
@json_option
@click.pass_context
def status(ctx: click.Context, now_text: str | None, as_json: bool) -> None:
    """Worker health: last successful poll, failures, quarantine, pending drafts, overdue items.

    Example: triage status --json
    """
    from triage.errors import StorageError
    from triage.followups import remind as remind_mod
    from triage.runs import storage_failures

    settings = settings_from(ctx)
    try:
        with storage_failures(settings.store_path, "", settings.store_timeout), open_store(settings) as store:
            st = remind_mod.status(store, _now(now_text))
    except StorageError as exc:  # the database cannot be opened: tell what is noted beside it, exit 3
        down = remind_mod.status_unopened(settings.store_path, _now(now_text), str(exc))
        if as_json:
            emit_json(down)
        else:
            click.echo(f"consecutive poll failures: {down['consecutive_failures']}"
                       + (f" ({down['last_error']})" if down["last_error"] else ""))
            _print_unrecorded(down["unrecorded_failures"])
        raise
    if as_json:
        emit_json(st)
        return
    age = st["last_poll_age_minutes"]
    click.echo(f"last successful poll: {st['last_poll'] or 'never'}" + (f" ({span(age * 60)} ago)" if age is not None else ""))
    click.echo(f"consecutive poll failures: {st['consecutive_failures']}" + (f" ({st['last_error']})" if st["last_error"] else ""))
    click.echo(f"quarantined messages: {st['quarantined']}  pending drafts: {st['pending_drafts']}  "
               f"cases waiting on the customer: {st['waiting_cases']}")
    click.echo(f"possible auto-responder loops: {st['loops']}" + ("  (triage queue --loops)" if st["loops"] else ""))
    click.echo(f"overdue items: {st['overdue']}")
    tz = _policy(settings).tz
    for item in st["overdue_items"]:
        click.echo(f"  case {item['case']} {item['kind']} due {_local(item.get('due'), tz)}: {item.get('command', '')}")
    _print_unrecorded(st["unrecorded_failures"])


def _local(stamp: str | None, tz: object) -> str:
    """A due time in the policy's time zone ("-" when there is none)."""
    from triage.cli.mail import local

    return local(stamp, tz) if stamp else "-"


def _print_unrecorded(noted: list[dict[str, Any]]) -> None:
    if noted:
        click.echo(f"failed runs that could not be written to the database: {len(noted)} "
                   f"(the next run that can write records them)")
        for entry in noted[-5:]:
            click.echo(f"  {entry.get('finished_at')} {entry.get('kind')}: {entry.get('error')}")


@cli.command()
@click.option("--since", metavar="DATE", help="First day (default: 30 days before --until).")
@click.option("--until", metavar="DATE", help="Last day, included (default: today).")
@click.option("--html", "html_path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page with charts.")
@now_option
@json_option
@click.pass_context
def report(ctx: click.Context, since: str | None, until: str | None, html_path: Path | None,
           now_text: str | None, as_json: bool) -> None:
    """For the owner: volume, response and resolution times, SLA, promises, root causes, anger drivers.

    Example: triage report --since 2026-11-01 --html report.html
    """
    from triage.followups import report as report_mod

    settings = settings_from(ctx)
    policy = _policy(settings)
    with open_store(settings) as store:
        data = report_mod.build(store, policy, _date(since), _date(until), _now(now_text))
    if html_path:
        from triage.followups.report_html import render

        html_path.write_text(render(data, settings.support.name), encoding="utf-8")
    if as_json:
        emit_json(data)
    else:
        click.echo(report_mod.text(data))
        if html_path:
            click.echo(f"\nHTML report written to {html_path}")
