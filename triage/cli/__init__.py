"""The ``triage`` command line: parse arguments, call a service, print.

The ``triage.cli`` package is the only code that prints, exits or configures
logging; its modules group the commands: ``mail`` (poll, queue, show, retry,
init, demo), ``agents`` (edit, approve, reject, send-pending, serve, agent),
``followups`` (promise, kept, resolve, wait, remind, status, report),
``check`` (check-mailbox), ``customers`` (customer link, unlink, show) and
``owner`` (rules check, classify, eval, label, lint). Exit codes:
0 the run finished (quarantined messages included), 2 bad configuration or
rules, 3 a server could not be reached or refused the login, or the database
could not be written (disk full, read-only, locked past the busy timeout).
"""

from __future__ import annotations

from triage.cli import agents, check, customers, followups, mail, owner  # noqa: F401  (each registers its commands)
from triage.cli.common import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="triage")
