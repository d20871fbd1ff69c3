"""Options, helpers and the click group shared by the command modules."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from triage import __version__
from triage.errors import LockedError, TriageError

if TYPE_CHECKING:  # imported lazily at run time: an idle cron poll loads as little as it can
    from triage.config import Settings
    from triage.store import Store

log = logging.getLogger("triage")


class TriageGroup(click.Group):
    """Turns triage's own errors into one line and an exit code (traceback with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LockedError as exc:
            click.echo(str(exc), err=True)
            ctx.exit(0)
        except KeyboardInterrupt:
            # Every batch commits with its checkpoint, so stopping loses nothing.
            click.echo("interrupted: what was stored so far is kept; the next run resumes from there", err=True)
            ctx.exit(130)
        except TriageError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            for line in str(exc).splitlines() or [type(exc).__name__]:
                click.echo(f"error: {line}", err=True)
            ctx.exit(exc.exit_code)
        except sqlite3.Error as exc:  # any other command on a database it cannot use: one line, exit 3
            if ctx.obj and ctx.obj.get("debug"):
                raise
            from triage.runs import describe_sqlite

            where = (ctx.obj or {}).get("store_path") or "the database"
            click.echo(f"error: {where}: {describe_sqlite(exc)}", err=True)
            ctx.exit(3)


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


def settings_from(ctx: click.Context) -> Settings:
    from triage import config

    settings = config.load(config.find_config(ctx.obj["config_path"]))
    ctx.obj["store_path"] = settings.store_path  # named by a database error's one line
    ctx.obj["settings"] = settings  # for _agent's [agents] table
    return settings


def open_store(settings: Settings) -> Store:
    from triage.store import Store

    return Store(settings.store_path, timeout=settings.store_timeout)



# -- options and helpers shared by the command modules ----------------------


def _agent(agent: str | None, store: Store) -> str:
    """Who is acting: --agent, else $TRIAGE_AGENT, else [agents] for the OS login, else the login;
    a known agent, or exit 1 saying how to add one (triage.agents.acting)."""
    import getpass
    import os

    from triage.agents import acting

    settings = (click.get_current_context().obj or {}).get("settings")
    return acting(store, agent, settings.os_agents if settings else {}, dict(os.environ), getpass.getuser())


agent_option = click.option(
    "--agent", metavar="NAME",
    help="Who is acting, a known agent (default: $TRIAGE_AGENT, else [agents] for your login, else your login name).",
)


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
    from triage import ruleset

    return ruleset.load(settings).policy






def _date(value: str | None) -> Any:
    if not value:
        return None
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date like 2026-11-01, got {value!r}") from None
