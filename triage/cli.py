"""The ``triage`` command line: parse arguments, call a service, print.

Only this module prints, exits or configures logging. Exit codes:
0 the run finished (quarantined messages included), 2 bad configuration or
rules, 3 a server could not be reached or refused the login.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from triage import __version__
from triage.errors import LockedError, NotFound, RulesError, TriageError

log = logging.getLogger("triage")


class TriageGroup(click.Group):
    """Turns triage's own errors into one line and an exit code (traceback with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LockedError as exc:
            click.echo(str(exc), err=True)
            ctx.exit(0)
        except TriageError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            for line in str(exc).splitlines() or [type(exc).__name__]:
                click.echo(f"error: {line}", err=True)
            ctx.exit(exc.exit_code)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.group(cls=TriageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", help="triage.toml to use (else $TRIAGE_CONFIG, else ./triage.toml).")
@click.option("--debug", is_flag=True, help="Verbose logging and full tracebacks.")
@click.version_option(__version__, prog_name="triage")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """Complaint triage for a support inbox: poll, detect, draft, review.

    Example: triage --config ~/support/triage.toml poll
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:  # mail-parser warns about every odd MIME part; defects are stored instead
        logging.getLogger("mailparser").setLevel(logging.ERROR)
    ctx.obj = {"config_path": config_path, "debug": debug}


def settings_from(ctx: click.Context) -> Any:
    from triage import config

    return config.load(config.find_config(ctx.obj["config_path"]))


def open_store(settings: Any) -> Any:
    from triage.store import Store

    return Store(settings.store_path)


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
    summary = run_poll(settings, since=_date(since), show_progress=not as_json and sys.stderr.isatty())
    if as_json:
        emit_json(summary.as_dict())
    else:
        click.echo(summary.line())


def _date(value: str | None) -> Any:
    if not value:
        return None
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date like 2026-11-01, got {value!r}") from None


def run_poll(settings: Any, since: Any = None, show_progress: bool = False) -> Any:
    from triage import pipeline
    from triage.lock import run_lock
    from triage.mailbox import open_source
    from triage.store import utcnow

    started = utcnow()
    with run_lock(settings.lock_path, "poll"), open_store(settings) as store:
        try:
            source = open_source(settings.mailbox, since=since)
        except TriageError as exc:
            store.record_run("poll", started, False, {"error": str(exc)})
            raise
        bar = _Progress() if show_progress else None
        try:
            summary = pipeline.poll(settings, store, source, progress=bar)
        except TriageError as exc:
            store.record_run("poll", started, False, {"error": str(exc)})
            raise
        finally:
            source.close()
            if bar:
                bar.close()
        store.record_run("poll", started, True, summary.as_dict())
        return summary


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


def _age(created: str, now: datetime) -> str:
    seconds = (now - datetime.fromisoformat(created)).total_seconds()
    return _span(seconds)


def _span(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 3600:
        return f"{sign}{int(seconds // 60)}m"
    if seconds < 86400 * 2:
        return f"{sign}{int(seconds // 3600)}h"
    return f"{sign}{int(seconds // 86400)}d"


@cli.command()
@json_option
@click.option("--quarantined", is_flag=True, help="List quarantined messages (with their errors) instead.")
@click.pass_context
def queue(ctx: click.Context, as_json: bool, quarantined: bool) -> None:
    """List drafts waiting for an agent, most urgent first.

    Example: triage queue --json
    """
    settings = settings_from(ctx)
    with open_store(settings) as store:
        rows = store.quarantined() if quarantined else store.queue()
    if quarantined:
        print_quarantined(rows, as_json)
    else:
        print_queue(rows, as_json)


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
    from triage import pipeline
    from triage.lock import run_lock

    if not ids and not retry_all:
        raise click.UsageError("give message ids or --all")
    settings = settings_from(ctx)
    with run_lock(settings.lock_path, "retry"), open_store(settings) as store:
        summary = pipeline.retry(settings, store, None if retry_all else list(ids))
    if as_json:
        emit_json(summary.as_dict())
    else:
        click.echo(summary.line().replace("fetched", "retried", 1))


def print_queue(rows: list[dict[str, Any]], as_json: bool) -> None:
    now = datetime.now(timezone.utc)
    if as_json:
        emit_json(
            [
                {
                    "id": r["id"],
                    "case": r["case"],
                    "customer": r["customer"],
                    "customer_name": r["customer_name"],
                    "subject": r["subject"],
                    "level": r["level"],
                    "archetypes": r["archetypes"],
                    "template": r["template"],
                    "status": r["status"],
                    "created_at": r["created_at"],
                    "due": r["due"],
                    "error": r["error"],
                }
                for r in rows
            ]
        )
        return
    if not rows:
        click.echo("The queue is empty.")
        return
    click.echo(f"{'ID':>4}  {'CUSTOMER':<28} {'SUBJECT':<38} {'LEVEL':<8} {'ARCHETYPE':<12} {'AGE':>4} {'DUE':>5}")
    for r in rows:
        due = _span((datetime.fromisoformat(r["due"]) - now).total_seconds()) if r["due"] else "-"
        arch = ",".join(r["archetypes"]) or "-"
        click.echo(
            f"{r['id']:>4}  {_cut(r['customer'], 28):<28} {_cut(r['subject'], 38):<38} "
            f"{r['level']:<8} {_cut(arch, 12):<12} {_age(r['created_at'], now):>4} {due:>5}"
        )
    click.echo(f"{len(rows)} draft(s) waiting for review.")


def _cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())
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
        message = store.message(draft["message_id"]) if draft["message_id"] else None
        detection = store.detection_for(draft["message_id"]) if draft["message_id"] else None
        case = store.case(draft["case_id"])
        history = store.customer_cases(case["customer_id"]) if case else []
    if as_json:
        emit_json(
            {
                "id": draft["id"],
                "case": draft["case_id"],
                "status": draft["status"],
                "to": draft["to_address"],
                "subject": draft["subject"],
                "body": draft["body"],
                "template": draft["template"],
                "lint": draft["lint"],
                "outgoing_message_id": draft["outgoing_message_id"],
                "message": _message_json(message),
                "detection": detection,
                "history": [
                    {k: c[k] for k in ("id", "subject", "status", "level", "opened_at", "outcome")}
                    for c in history
                    if c["id"] != draft["case_id"]
                ],
            }
        )
        return
    _print_show(draft, message, detection, case, history)


def _message_json(message: dict[str, Any] | None) -> dict[str, Any] | None:
    if message is None:
        return None
    keys = ("id", "message_id", "sender", "sender_name", "subject", "date", "text", "full_text", "status")
    return {k: message[k] for k in keys}


def _highlight(text: str, evidence: list[dict[str, Any]]) -> str:
    """Mark each evidence span as [[span]] so agents see what drove the detection."""
    out, pos = [], 0
    for ev in sorted(evidence, key=lambda e: (e["start"], -e["end"])):
        start, end = int(ev["start"]), int(ev["end"])
        if start < pos or end > len(text):
            continue
        out += [text[pos:start], click.style(f"[[{text[start:end]}]]", bold=True, fg="red")]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _print_show(draft: dict[str, Any], message: Any, detection: Any, case: Any, history: list[dict[str, Any]]) -> None:
    echo = click.echo
    echo(f"Draft {draft['id']} · case {draft['case_id']} · {draft['status']} · template {draft['template']}")
    if message:
        echo(f"\nFrom:    {message['sender_name']} <{message['sender']}>")
        echo(f"Subject: {message['subject']}")
        echo(f"Date:    {message['date']}\n")
        text = message["text"]
        echo(_highlight(text, detection["evidence"]) if detection else text)
    if detection:
        arch = ", ".join(f"{a['name']} ({a['rule']})" for a in detection["archetypes"]) or "none"
        echo(
            f"\nDetection: {detection['level']} (score {detection['score']:.2f}), "
            f"complaint: {'yes' if detection['complaint'] else 'no'}, archetypes: {arch}"
        )
        for ev in detection["evidence"]:
            echo(f"  - {ev['text']!r}  {ev['rule']}  weight {ev['weight']:+.2f}")
    earlier = [c for c in history if case and c["id"] != case["id"]]
    if earlier:
        echo("\nEarlier cases:")
        for c in earlier:
            echo(f"  #{c['id']} {c['opened_at'][:10]} {c['status']:<9} {c['level']:<8} {c['subject']}")
    echo(f"\nTo: {draft['to_address']}\nSubject: {draft['subject']}\n")
    echo(draft["body"])
    if draft["lint"]:
        echo("\nTone findings:")
        for f in draft["lint"]:
            echo(f"  - {f['text']!r}: {f['reason']} Try: {f['suggestion']}")
    else:
        echo("\nTone: no findings.")


# -- agents: edit, reject, approve, send-pending -------------------------------


def _agent(agent: str | None) -> str:
    import getpass

    return agent or getpass.getuser()


agent_option = click.option("--agent", metavar="NAME", help="Who is acting (default: your login name).")


@cli.command()
@click.argument("draft_id", type=int)
@agent_option
@click.pass_context
def edit(ctx: click.Context, draft_id: int, agent: str | None) -> None:
    """Open a pending draft in $EDITOR, save it as text and re-lint it.

    Example: EDITOR=nano triage edit 12
    """
    from triage import review

    settings = settings_from(ctx)
    with open_store(settings) as store:
        draft = store.draft(draft_id)
        if draft is None:
            raise NotFound(f"no draft {draft_id}")
        body = click.edit(draft["body"], extension=".txt", require_save=True)
        if body is None:
            click.echo("No change.")
            return
        findings = review.edit(settings, store, draft_id, body.rstrip("\n") + "\n", _agent(agent))
    _print_findings(findings)


def _print_findings(findings: list[dict[str, Any]]) -> None:
    if not findings:
        click.echo("Saved. Tone: no findings.")
        return
    click.echo(f"Saved with {len(findings)} tone finding(s):")
    for f in findings:
        click.echo(f"  - {f['text']!r} ({f['start']}-{f['end']}): {f['reason']} Try: {f['suggestion']}")


@cli.command()
@click.argument("draft_id", type=int)
@click.option("--reason", required=True, help="Why the draft is set aside.")
@agent_option
@click.pass_context
def reject(ctx: click.Context, draft_id: int, reason: str, agent: str | None) -> None:
    """Set a draft aside without sending it.

    Example: triage reject 12 --reason "answered by phone"
    """
    from triage import review

    settings = settings_from(ctx)
    with open_store(settings) as store:
        review.reject(store, draft_id, _agent(agent), reason)
    click.echo(f"Draft {draft_id} rejected.")


@cli.command()
@click.argument("draft_id", type=int)
@agent_option
@click.option("--override-tone", metavar="REASON", help="Approve despite tone findings; the reason is recorded.")
@json_option
@click.pass_context
def approve(ctx: click.Context, draft_id: int, agent: str | None, override_tone: str | None, as_json: bool) -> None:
    """Approve a draft and send it (exit 3 if the server did not take it; send-pending retries).

    Example: triage approve 12 --agent dana
    """
    from triage import review

    settings = settings_from(ctx)
    with open_store(settings) as store:
        report = review.approve(settings, store, draft_id, _agent(agent), override_tone)
    _finish_send(report, as_json)


@cli.command("send-pending")
@json_option
@click.pass_context
def send_pending(ctx: click.Context, as_json: bool) -> None:
    """Send approved drafts that are not sent yet (run by cron).

    Example: triage send-pending --json
    """
    from triage import review

    settings = settings_from(ctx)
    with open_store(settings) as store:
        report = review.send_pending(settings, store)
    _finish_send(report, as_json)


def _finish_send(report: Any, as_json: bool) -> None:
    if as_json:
        emit_json(report.as_dict())
    else:
        for draft_id in report.sent:
            click.echo(f"Draft {draft_id} sent.")
        for draft_id in report.recovered:
            click.echo(f"Draft {draft_id} was already in Sent: recorded as sent, not sent again.")
        for draft_id, error in report.failed.items():
            click.echo(f"error: draft {draft_id} approved but not sent: {error}", err=True)
    if report.failed:
        sys.exit(3)


# -- review page: serve and agent accounts ------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless told otherwise).")
@click.option("--port", default=8025, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the review page: agents log in, edit, approve and reject drafts.

    Sessions are signed with $TRIAGE_WEB_SECRET, else a secret kept next to
    the store (STORE.secret, mode 0600). Plain HTTP: put it behind a TLS
    proxy before listening beyond loopback.

    Example: triage serve --port 8025
    """
    from triage import web

    settings = settings_from(ctx)
    try:
        server = web.make_server(settings, host=host, port=port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    with open_store(settings) as store:
        if not store.agent_names():
            click.echo("No agents yet: add one with `triage agent add NAME`.", err=True)
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"warning: listening on {host}, beyond loopback, over plain HTTP", err=True)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Review page on http://{shown}:{port}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@cli.group()
def agent() -> None:
    """Agent accounts for the review page."""


@agent.command("add")
@click.argument("name")
@click.option("--password-env", metavar="VAR", help="Read the password from this environment variable instead of a prompt.")
@click.pass_context
def agent_add(ctx: click.Context, name: str, password_env: str | None) -> None:
    """Add an agent who can log in to the review page (password hashed, never stored in clear).

    Without --password-env the password is asked for twice, hidden.

    Example: TRIAGE_AGENT_PW=… triage agent add dana --password-env TRIAGE_AGENT_PW
    """
    import os

    from triage import agents

    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise click.UsageError(f"environment variable {password_env} is not set or empty")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = settings_from(ctx)
    with open_store(settings) as store:
        agents.create(store, name, password)
    click.echo(f"Agent {name} added.")


# -- follow-ups: promise, kept, resolve, wait, remind, status, report ----------------


def _now(value: str | None) -> datetime:
    """--now: an ISO time (UTC unless it has an offset); the real clock when not given."""
    if not value:
        return datetime.now(timezone.utc)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a time like 2026-11-20T10:01, got {value!r}", param_hint="--now") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


now_option = click.option("--now", "now_text", metavar="ISO", hidden=True, help="Act as if it were this time (tests).")


def _policy(settings: Any) -> Any:
    from triage.followup import load_policy

    return load_policy(settings.rules_dir)


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
    from triage import deadlines

    settings = settings_from(ctx)
    with open_store(settings) as store:
        made = deadlines.promise(store, _policy(settings), case_id, by, what, _agent(agent), _now(now_text))
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
    from triage import deadlines

    settings = settings_from(ctx)
    with open_store(settings) as store:
        ids = deadlines.kept(store, case_id, _agent(agent), _now(now_text), promise_id)
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
    from triage import deadlines

    settings = settings_from(ctx)
    with open_store(settings) as store:
        done = deadlines.resolve(store, _policy(settings), case_id, _agent(agent), _now(now_text), root_cause, outcome)
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
    from triage import deadlines

    settings = settings_from(ctx)
    with open_store(settings) as store:
        if resume:
            ids = deadlines.resume(store, _policy(settings), case_id, _agent(agent), _now(now_text))
            click.echo(f"Case {case_id} no longer waits; {len(ids)} deadline(s) restarted.")
        else:
            ids = deadlines.wait(store, case_id, _agent(agent), _now(now_text))
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
    from triage import remind as remind_mod
    from triage.lock import run_lock
    from triage.store import utcnow

    settings = settings_from(ctx)
    policy = _policy(settings)
    now = _now(now_text)
    started = utcnow()
    with run_lock(settings.lock_path, "remind"), open_store(settings) as store:
        try:
            out = remind_mod.run(settings, store, policy, now, dry_run=dry_run)
        except TriageError as exc:
            if not dry_run:
                store.record_run("remind", started, False, {"error": str(exc), "now": now.isoformat()})
            raise
        if not dry_run:
            store.record_run("remind", started, True, {k: len(v) if isinstance(v, list) else v
                                                       for k, v in out.as_dict().items()})
    if as_json:
        emit_json(out.as_dict())
        return
    prefix = "would " if dry_run else ""
    click.echo(f"{prefix}remind {len(out.reminded)} item(s) to {len(out.digests)} agent(s), "
               f"{prefix}draft {len(out.drafted)} check-in(s), {prefix}escalate {len(out.escalated)}, "
               f"cancel {len(out.cancelled)} check-in(s){'; poll failure alert to the owner' if out.poll_alert else ''}")
    items = out.reminded + out.escalated
    for item in items[:20]:
        click.echo(f"  case {item['case']} {item['kind']} due {item['due']}: {item['command']}")
    if len(items) > 20:
        click.echo(f"  … and {len(items) - 20} more (--json lists them all)")
    for warning in out.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.command()
@now_option
@json_option
@click.pass_context
def status(ctx: click.Context, now_text: str | None, as_json: bool) -> None:
    """Worker health: last successful poll, failures, quarantine, pending drafts, overdue items.

    Example: triage status --json
    """
    from triage import remind as remind_mod

    settings = settings_from(ctx)
    with open_store(settings) as store:
        st = remind_mod.status(store, _now(now_text))
    if as_json:
        emit_json(st)
        return
    age = st["last_poll_age_minutes"]
    click.echo(f"last successful poll: {st['last_poll'] or 'never'}" + (f" ({_span(age * 60)} ago)" if age is not None else ""))
    click.echo(f"consecutive poll failures: {st['consecutive_failures']}" + (f" ({st['last_error']})" if st["last_error"] else ""))
    click.echo(f"quarantined messages: {st['quarantined']}  pending drafts: {st['pending_drafts']}  "
               f"cases waiting on the customer: {st['waiting_cases']}")
    click.echo(f"overdue items: {st['overdue']}")
    for item in st["overdue_items"]:
        click.echo(f"  case {item['case']} {item['kind']} due {item['due']}: {item['command']}")


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
    from triage import report as report_mod

    settings = settings_from(ctx)
    policy = _policy(settings)
    with open_store(settings) as store:
        data = report_mod.build(store, policy, _date(since), _date(until), _now(now_text))
    if html_path:
        from triage.report_html import render

        html_path.write_text(render(data, settings.support.name), encoding="utf-8")
    if as_json:
        emit_json(data)
    else:
        click.echo(report_mod.text(data))
        if html_path:
            click.echo(f"\nHTML report written to {html_path}")


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
    summary = run_poll(settings, show_progress=sys.stderr.isatty())
    click.echo(f"Demo inbox polled into {settings.store_path}: {summary.line()}\n")
    with open_store(settings) as store:
        print_queue(store.queue(), as_json=False)
    click.echo(f"\nNext: triage --config {path} show ID")


# -- rules --------------------------------------------------------------------


@cli.group()
def rules() -> None:
    """Owner tools for rule files and templates."""


@rules.command("check")
@click.pass_context
def rules_check(ctx: click.Context) -> None:
    """Validate every rule file and template; exit 2 naming file and key on error.

    Example: triage rules check
    """
    from triage import rules as rules_mod

    settings = settings_from(ctx)
    problems = rules_mod.check(settings.rules_dir, settings.templates_dir)
    if problems:
        raise RulesError(problems)
    click.echo(f"rules ok: {settings.rules_dir} and {settings.templates_dir}")


def owner_rules_dir(ctx: click.Context) -> Path:
    """The configured rules folder, or the shipped one when no triage.toml is found."""
    from triage import config
    from triage.errors import ConfigError

    try:
        path = config.find_config(ctx.obj["config_path"])
    except ConfigError:
        return config.shipped_dir("rules")
    return config.load(path).rules_dir


def _read_input(source: str | None) -> bytes:
    if source in (None, "-"):
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {source}: {exc.strerror}") from None


@cli.command()
@click.argument("source", required=False, metavar="[FILE|-]")
@click.option("--text", help="Classify this plain text instead of a message.")
@click.option("--sender", default="", help="With --text: the sender's address (for customer lists).")
@json_option
@click.pass_context
def classify(ctx: click.Context, source: str | None, text: str | None, sender: str, as_json: bool) -> None:
    """Detect anger, complaint and archetypes in one message, with the evidence.

    Reads a raw RFC 5322 message from FILE or standard input; only the
    customer's new words count (quotes and signature are removed).

    Example: triage classify --text "This is the SECOND time it broke!!!" --json
    """
    from triage.detect.engine import Detector, classify_text
    from triage.message import ParseError, parse

    detector = Detector.load(owner_rules_dir(ctx))
    if text is None:
        try:
            message = parse(_read_input(source))
        except ParseError as exc:
            raise click.BadParameter(f"not a readable message: {exc}") from None
        text, sender = message.text, sender or message.sender_address
    detection = classify_text(detector, text, sender)
    if as_json:
        emit_json(detection.to_dict())
        return
    arch = ", ".join(f"{a.name} ({a.rule})" for a in detection.archetypes) or "none"
    click.echo(f"level: {detection.level}  score: {detection.score:.2f}  angry: {'yes' if detection.angry else 'no'}  "
               f"complaint: {'yes' if detection.complaint else 'no'}")
    click.echo(f"archetypes: {arch}")
    if detection.topic:
        click.echo(f"topic: {detection.topic}")
    click.echo("evidence:")
    for ev in detection.evidence:
        click.echo(f"  {ev.start:>5}-{ev.end:<5} {ev.text!r:<40} {ev.rule}  {ev.weight:+.2f}")
    if not detection.evidence:
        click.echo("  (none)")


@cli.command("eval")
@click.argument("csv_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--labels", "use_labels", is_flag=True, help="Evaluate on agents' corrections stored by `triage label`.")
@json_option
@click.pass_context
def eval_cmd(ctx: click.Context, csv_file: Path | None, use_labels: bool, as_json: bool) -> None:
    """Measure the rules on labelled data (precision, recall, F1, correlations).

    The CSV has a header with `text` and any of `angry` (0/1), `intensity`
    (0-1), `complaint` (0/1), `archetype` (a name, or empty).

    Example: triage eval labelled.csv --json
    """
    from triage import evaluate
    from triage.detect.engine import Detector

    if (csv_file is None) == (not use_labels):
        raise click.UsageError("give a CSV file or --labels (one of them)")
    if use_labels:
        settings = settings_from(ctx)
        detector = Detector.load(settings.rules_dir)
        with open_store(settings) as store:
            report = evaluate.evaluate_labels(store.labelled_messages(), detector)
    else:
        assert csv_file is not None
        report = evaluate.evaluate_csv(csv_file, Detector.load(owner_rules_dir(ctx)))
    if as_json:
        emit_json(report)
        return
    click.echo(f"{report['n']} labelled text(s), rules version {report.get('rules_version', '?')}")
    for name in ("angry", "complaint"):
        if name in report:
            m = report[name]
            extra = f"  macro-F1 {m['macro_f1']:.3f}" if "macro_f1" in m else ""
            click.echo(f"{name:<10} precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}{extra}  (n={m['n']})")
    if "intensity" in report:
        m = report["intensity"]
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        click.echo(f"intensity  Pearson {fmt(m['pearson'])}  Spearman {fmt(m['spearman'])}  (n={m['n']})")
    if "archetype" in report:
        m = report["archetype"]
        click.echo(f"archetype  accuracy {m['accuracy']:.3f}  (n={m['n']})")
        for gold, row in m["confusion"].items():
            click.echo(f"  {gold:<12} " + "  ".join(f"{p}:{c}" for p, c in row.items() if c))


@cli.command()
@click.argument("message_id", type=int, metavar="MESSAGE")
@click.option("--angry", type=click.Choice(["yes", "no"]), help="Was the message angry?")
@click.option("--archetype", help="The right archetype, or 'none'.")
@agent_option
@click.pass_context
def label(ctx: click.Context, message_id: int, angry: str | None, archetype: str | None, agent: str | None) -> None:
    """Record an agent's correction of a detection (used by `triage eval --labels`).

    MESSAGE is the stored message's id (shown by `triage show ID --json`).

    Example: triage label 42 --angry no --archetype meek
    """
    from triage.detect import ARCHETYPES
    from triage.store import utcnow

    if angry is None and archetype is None:
        raise click.UsageError("give --angry and/or --archetype")
    if archetype is not None and archetype not in (*ARCHETYPES, "none"):
        raise click.BadParameter(f"expected one of {', '.join(ARCHETYPES)}, none", param_hint="--archetype")
    settings = settings_from(ctx)
    with open_store(settings) as store:
        if store.message(message_id) is None:
            raise NotFound(f"no message {message_id}")
        with store.write():
            store.add_label(message_id, None if angry is None else angry == "yes", archetype, _agent(agent), utcnow())
    click.echo(f"Label recorded for message {message_id}.")


@cli.command()
@click.argument("source", required=False, metavar="[FILE|-]")
@json_option
@click.pass_context
def lint(ctx: click.Context, source: str | None, as_json: bool) -> None:
    """Check a text for passive-aggressive or dismissive phrasing (rules/tone.toml).

    Exits 1 when there are findings, so scripts can use it as a check.

    Example: echo "As per my last email, calm down." | triage lint - --json
    """
    from triage.tone import lint_text

    text = _read_input(source).decode("utf-8", errors="replace")
    result = lint_text(text, owner_rules_dir(ctx))
    if as_json:
        emit_json(result)
    else:
        for f in result["findings"]:
            click.echo(f"{f['start']}-{f['end']} {f['text']!r}: {f['reason']} Try: {f['suggestion']}")
        click.echo(f"{len(result['findings'])} finding(s).")
    if result["findings"]:
        sys.exit(1)


def main() -> None:
    cli(prog_name="triage")

