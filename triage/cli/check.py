"""``triage check-mailbox``: the command an owner runs before the first cron job."""

from __future__ import annotations

import sys

import click

from triage.cli.common import cli, emit_json, json_option, settings_from


@cli.command("check-mailbox")
@json_option
@click.pass_context
def check_mailbox(ctx: click.Context, as_json: bool) -> None:
    """Log in to IMAP and SMTP as configured; list the folders and the Sent folder found.

    Nothing is fetched, sent or recorded. A Maildir or mbox source has no
    server: its path is checked. Exit 0 when all is well, 2 for configuration
    to fix, 3 when a server or a login failed.

    Example: triage check-mailbox
    """
    from triage.mailbox.check import check

    report = check(settings_from(ctx))
    if as_json:
        emit_json(report.as_dict())
    else:
        for line in report.lines:
            click.echo(line)
    for line in report.failures + report.problems:  # also with --json: cron mail shows it
        click.echo(f"error: {line}", err=True)
    if not as_json and report.exit_code == 0:
        click.echo("OK: triage can poll" + (" and send." if report.smtp.get("configured") else "."))
    sys.exit(report.exit_code)
