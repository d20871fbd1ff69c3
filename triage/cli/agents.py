"""Agent commands: edit, reject, approve, send-pending, the review page and agent accounts."""

from __future__ import annotations

import sys
from typing import Any

import click

from triage.cli.common import (
    _agent,
    agent_option,
    cli,
    emit_json,
    json_option,
    open_store,
    settings_from,
)
from triage.errors import NotFound


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
    for draft_id, error in report.held.items():  # also with --json: cron logs show it
        click.echo(f"warning: draft {draft_id} is held for an agent: {error}", err=True)
    if report.failed:  # a held draft waits for a person; retrying cannot help, so it is not a failure
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
