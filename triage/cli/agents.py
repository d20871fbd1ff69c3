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
@click.option("--cc", metavar="ADDRESSES", help='Set the reply\'s Cc instead of editing the text: "a@x, b@y" ("" for none).')
@agent_option
@click.pass_context
def edit(ctx: click.Context, draft_id: int, cc: str | None, agent: str | None) -> None:
    """Open a pending draft in $EDITOR, save it as text and re-lint it; or, with --cc, set its Cc.

    Example: EDITOR=nano triage edit 12
    Example: triage edit 12 --cc "finance@customer.example, ops@customer.example"
    """
    from triage import review

    settings = settings_from(ctx)
    with open_store(settings) as store:
        who = _agent(agent, store)  # before the editor: nobody types a reply that cannot be saved
        if cc is not None:
            kept = review.set_cc(store, draft_id, cc, who)
            click.echo(f"Draft {draft_id}: Cc {', '.join(kept) if kept else '(none)'}.")
            return
        draft = store.draft(draft_id)
        if draft is None:
            raise NotFound(f"no draft {draft_id}")
        body = click.edit(draft.body, extension=".txt", require_save=True)
        if body is None:
            click.echo("No change.")
            return
        findings = review.edit(settings, store, draft_id, body.rstrip("\n") + "\n", who)
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
        review.reject(store, draft_id, _agent(agent, store), reason)
    click.echo(f"Draft {draft_id} rejected.")


@cli.command()
@click.argument("draft_id", type=int)
@click.option("--template", metavar="NAME", help="Render this template (a file in templates/, without .j2).")
@click.option("--scratch", is_flag=True, help="An empty reply with the greeting and sign-off, to write yourself.")
@agent_option
@click.pass_context
def redraft(ctx: click.Context, draft_id: int, template: str | None, scratch: bool, agent: str | None) -> None:
    """Make a fresh draft for the case of DRAFT_ID (after a reject, or to start over).

    It answers the case's latest customer message; a pending draft of the case
    is superseded.

    Example: triage redraft 19 --template aggressive
    """
    from triage import review

    if scratch and template:
        raise click.UsageError("--scratch and --template exclude each other")
    settings = settings_from(ctx)
    with open_store(settings) as store:
        new_id = review.redraft(settings, store, draft_id, _agent(agent, store), template=template, scratch=scratch)
        draft = store.draft(new_id)
    assert draft is not None
    click.echo(f"Draft {new_id} made for case {draft.case_id} ({draft.template}).")
    _print_findings_only(draft.lint)
    click.echo(f"Next: triage show {new_id}, then triage edit {new_id} or triage approve {new_id}")


def _print_findings_only(findings: list[dict[str, Any]]) -> None:
    for f in findings:
        click.echo(f"  tone: {f['text']!r}: {f['reason']} Try: {f['suggestion']}")


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
        report = review.approve(settings, store, draft_id, _agent(agent, store), override_tone)
    _finish_send(report, as_json)


@cli.command()
@click.argument("case_id", type=int)
@click.argument("to", metavar="AGENT")
@agent_option
@click.pass_context
def assign(ctx: click.Context, case_id: int, to: str, agent: str | None) -> None:
    """Make AGENT (a review-page agent) the owner of a case, as the page's "Reassign" does.

    Recorded as a case-assigned event; exit 2 for an unknown agent or case.

    Example: triage assign 19 dana
    """
    from triage import agents

    settings = settings_from(ctx)
    with open_store(settings) as store:
        agents.assign(store, case_id, to, _agent(agent, store))
    click.echo(f"Case {case_id} assigned to {to}.")


@cli.command("send-pending")
@json_option
@click.pass_context
def send_pending(ctx: click.Context, as_json: bool) -> None:
    """Send approved drafts that are not sent yet (run by cron).

    Example: triage send-pending --json
    """
    from triage import review

    report = review.send_pending_run(settings_from(ctx))
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
@click.option("--display-name", default="", metavar="TEXT", help="The name replies this agent approves are signed with.")
@click.option("--email", default="", metavar="ADDRESS", help="The agent's own address.")
@click.option("--password-env", metavar="VAR", help="Read the password from this environment variable instead of a prompt.")
@click.pass_context
def agent_add(ctx: click.Context, name: str, display_name: str, email: str, password_env: str | None) -> None:
    """Add an agent: who may act (--agent NAME) and log in to the review page (password hashed).

    --display-name is the sign-off of the replies they approve (without it, the
    configured [support] agent). Without --password-env the password is asked
    for twice, hidden.

    Example: TRIAGE_AGENT_PW=… triage agent add dana --display-name "Dana Smith" --email dana@example.com --password-env TRIAGE_AGENT_PW
    """
    from triage import agents

    agents.check_display_name(display_name), agents.check_email(email)  # before asking for a password
    password = _new_password(password_env)
    settings = settings_from(ctx)
    with open_store(settings) as store:
        agents.create(store, name, password, display_name=display_name, email=email)
    click.echo(f"Agent {name} added.")


@agent.command("set")
@click.argument("name")
@click.option("--display-name", metavar="TEXT", help="The name replies this agent approves are signed with (\"\" clears it).")
@click.option("--email", metavar="ADDRESS", help="The agent's own address (\"\" clears it).")
@click.pass_context
def agent_set(ctx: click.Context, name: str, display_name: str | None, email: str | None) -> None:
    """Change an agent's display name or address (an audit event). Exit 2 if there is no such agent.

    Example: triage agent set dana --display-name "Dana Smith" --email dana@example.com
    """
    from triage import agents

    if display_name is None and email is None:
        raise click.UsageError("give --display-name and/or --email")
    settings = settings_from(ctx)
    with open_store(settings) as store:
        agents.set_profile(store, name, display_name, email)
    click.echo(f"Agent {name} changed.")


def _new_password(password_env: str | None) -> str:
    """The password from ``$password_env``, else asked twice (hidden on a terminal)."""
    import os

    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise click.UsageError(f"environment variable {password_env} is not set or empty")
        return password
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@agent.command("passwd")
@click.argument("name")
@click.option("--password-env", metavar="VAR", help="Read the new password from this environment variable instead of a prompt.")
@click.pass_context
def agent_passwd(ctx: click.Context, name: str, password_env: str | None) -> None:
    """Give an agent a new password; every session they have open is logged out, a lock is cleared.

    Without --password-env the password is asked for twice, hidden.
    Exit 2 if there is no such agent.

    Example: TRIAGE_AGENT_PW=… triage agent passwd dana --password-env TRIAGE_AGENT_PW
    """
    from triage import agents

    settings = settings_from(ctx)
    with open_store(settings) as store:
        if store.agent(name) is None:  # before asking for a password nobody can use
            raise NotFound(f"no agent named {name!r}")
        password = _new_password(password_env)
        ended = agents.set_password(store, name, password)
    click.echo(f"Password of {name} changed; {ended} session(s) logged out.")


@agent.command("list")
@json_option
@click.pass_context
def agent_list(ctx: click.Context, as_json: bool) -> None:
    """List agents: created, last login, failed logins, locked, open sessions.

    --json: a list of objects with name, display_name, email, created_at, last_login_at,
    password_changed_at, disabled, locked, locked_at, failed_logins, sessions.

    Example: triage agent list --json
    """
    from triage import agents

    settings = settings_from(ctx)
    with open_store(settings) as store:
        rows = agents.listing(store, settings.web)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("No agents yet: add one with `triage agent add NAME`.")
        return
    click.echo(f"{'NAME':<16} {'SIGNS AS':<20} {'CREATED':<17} {'LAST LOGIN':<17} {'LOCKED':<7} FAILED  SESSIONS")
    for r in rows:
        state = "yes" if r["locked"] else "no"
        if r["disabled"]:
            state = "disabled"
        click.echo(f"{r['name']:<16} {(r['display_name'] or '-')[:20]:<20} {_day(r['created_at']):<17} "
                   f"{_day(r['last_login_at']) or 'never':<17} {state:<7} {r['failed_logins']:>6}  {r['sessions']:>8}")


def _day(stamp: str | None) -> str:
    return (stamp or "")[:16].replace("T", " ")


@agent.command("unlock")
@click.argument("name", required=False)
@click.option("--client", metavar="ADDRESS", help="Also (or only) clear this client address's login backoff.")
@click.pass_context
def agent_unlock(ctx: click.Context, name: str | None, client: str | None) -> None:
    """Unlock an agent locked out by failed logins (and clear its failure count).

    The review page locks an account after 10 failed logins in a row, and
    slows a client address down after 5; --client ADDRESS clears that.
    Exit 2 if there is no such agent.

    Example: triage agent unlock dana
    """
    from triage import agents

    if name is None and client is None:
        raise click.UsageError("give an agent NAME or --client ADDRESS")
    settings = settings_from(ctx)
    with open_store(settings) as store:
        cleared = agents.unlock(store, name, client)
    what = " and ".join(x for x in (name and f"agent {name}", client and f"client {client}") if x)
    click.echo(f"Unlocked {what}." if cleared else f"Nothing to unlock for {what}.")
