"""The exception root of triage, and what each subclass means to the CLI.

Library code raises these; only the CLI turns them into exit codes:
``ConfigError`` and ``RulesError`` exit 2, ``ServerError`` and
``StorageError`` exit 3.
"""

from __future__ import annotations

from dataclasses import dataclass


class TriageError(Exception):
    """Root of every error triage raises on purpose."""

    exit_code = 1


class ConfigError(TriageError):
    """triage.toml is missing, unreadable or invalid."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an owner-edited file: where, which key, what was expected."""

    file: str
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" key '{self.key}'" if self.key else ""
        return f"{where}:{key}: {self.message}" if key else f"{where}: {self.message}"


class RulesError(TriageError):
    """One or more rule or template files are invalid; holds every problem found."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DraftError(TriageError):
    """A draft could not be made (a template failed at render time, or bad extra context)."""


class ServerError(TriageError):
    """A mail server is unreachable, refused the login, or failed mid-run (temporary)."""

    exit_code = 3


class StorageError(TriageError):
    """The database (or a file beside it) cannot be written: disk full, read-only, locked too long."""

    exit_code = 3


class LockedError(TriageError):
    """Another run holds the lock; the caller should exit quietly."""

    exit_code = 0


class NotFound(TriageError):
    """An argument names a draft, case or message that does not exist (usage error)."""

    exit_code = 2
