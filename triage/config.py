"""triage.toml -> frozen settings.

The file is found by ``--config PATH``, then ``$TRIAGE_CONFIG``, then
``./triage.toml``. Every problem is collected and raised together as a
``ConfigError`` whose lines name the file, the key and what was expected.
Secrets never live in the file: ``password_env`` names an environment
variable, ``password_cmd`` a command that prints the password, and
``token_cmd`` a command that prints an OAuth2 access token (XOAUTH2).
Relative paths are resolved against the config file's directory.
"""

from __future__ import annotations

import difflib
import os
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from triage.errors import ConfigError, Problem

SHIPPED = Path(__file__).parent / "_shipped"
SOURCE_ROOT = Path(__file__).parent.parent


def shipped_dir(name: str) -> Path:
    """Where a shipped folder (rules, templates, examples) lives in this install."""
    inside = SHIPPED / name
    return inside if inside.exists() else SOURCE_ROOT / name


SECURITY = ("tls", "starttls", "none")


@dataclass(frozen=True)
class Credentials:
    """How to obtain a secret at connect time; never the secret itself."""

    username: str = ""
    password_env: str = ""
    password_cmd: str = ""
    token_cmd: str = ""
    source: str = ""  # "file: section" for messages

    @property
    def xoauth2(self) -> bool:
        return bool(self.token_cmd)

    def secret(self) -> str:
        """The password (or access token for XOAUTH2); ConfigError if unobtainable."""
        if self.token_cmd:
            return _run_secret_cmd(self.token_cmd, f"{self.source}.token_cmd")
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"{self.source}.password_env: environment variable "
                    f"{self.password_env} is not set"
                )
            return value
        if self.password_cmd:
            return _run_secret_cmd(self.password_cmd, f"{self.source}.password_cmd")
        return ""


def _run_secret_cmd(cmd: str, where: str) -> str:
    try:
        done = subprocess.run(
            shlex.split(cmd), capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{where}: could not run the command: {exc}") from None
    if done.returncode != 0:
        raise ConfigError(f"{where}: the command exited {done.returncode}")
    value = done.stdout.strip()
    if not value:
        raise ConfigError(f"{where}: the command printed nothing")
    return value


@dataclass(frozen=True)
class MailboxSettings:
    source: str = "maildir"
    path: Path | None = None
    host: str = ""
    port: int = 0
    security: str = "tls"
    ca_file: Path | None = None
    folders: tuple[str, ...] = ("INBOX",)
    since: date | None = None
    timeout: float = 30.0
    batch_size: int = 200
    credentials: Credentials = field(default_factory=Credentials)

    @property
    def name(self) -> str:
        """A stable identifier of this mailbox for checkpoints and messages."""
        if self.source == "imap":
            return f"imap://{self.credentials.username}@{self.host}"
        return f"{self.source}://{self.path}"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    port: int = 0
    security: str = "tls"
    ca_file: Path | None = None
    timeout: float = 30.0
    sent_folder: str = ""
    append_sent: bool = True
    credentials: Credentials = field(default_factory=Credentials)


@dataclass(frozen=True)
class SupportSettings:
    address: str = "support@example.com"
    name: str = "Support"
    agent: str = "The support team"


@dataclass(frozen=True)
class PollSettings:
    rate_limit: int = 10
    rate_window_minutes: int = 60


@dataclass(frozen=True)
class ReminderSettings:
    """Who ``triage remind`` writes to: agents' digests, the owner's escalations and poll alerts."""

    to: tuple[str, ...] = ()
    owner: str = ""
    failure_threshold: int = 3  # consecutive failed polls before the owner is told (daily)


@dataclass(frozen=True)
class Settings:
    file: Path | None
    mailbox: MailboxSettings
    smtp: SmtpSettings
    store_path: Path
    rules_dir: Path
    templates_dir: Path
    support: SupportSettings
    poll: PollSettings
    reminders: ReminderSettings

    @property
    def lock_path(self) -> Path:
        return self.store_path.with_name(self.store_path.name + ".lock")


def find_config(explicit: str | None) -> Path:
    """The config path by precedence: --config, $TRIAGE_CONFIG, ./triage.toml."""
    for candidate in (explicit, os.environ.get("TRIAGE_CONFIG"), "triage.toml"):
        if candidate:
            path = Path(candidate)
            if candidate == "triage.toml" and not path.exists():
                break
            return path
    raise ConfigError(
        "no configuration found: pass --config PATH, set TRIAGE_CONFIG, "
        "or create ./triage.toml (`triage init DIR` writes a starter one)"
    )


# key -> (type, what is expected) per section. A type of tuple means "one of".
_STR = (str, "a string")
_INT = (int, "an integer")
_BOOL = (bool, "true or false")
_NUM = ((int, float), "a number")
_LIST = (list, "a list of strings")
_CREDS = {
    "username": _STR,
    "password_env": _STR,
    "password_cmd": _STR,
    "token_cmd": _STR,
}
SCHEMA: dict[str, dict[str, tuple[Any, str]]] = {
    "mailbox": {
        "source": _STR,
        "path": _STR,
        "host": _STR,
        "port": _INT,
        "security": _STR,
        "ca_file": _STR,
        "folders": _LIST,
        "since": ((str, date), "a date like 2026-11-01"),
        "timeout": _NUM,
        "batch_size": _INT,
        **_CREDS,
    },
    "smtp": {
        "host": _STR,
        "port": _INT,
        "security": _STR,
        "ca_file": _STR,
        "timeout": _NUM,
        "sent_folder": _STR,
        "append_sent": _BOOL,
        **_CREDS,
    },
    "store": {"path": _STR},
    "paths": {"rules": _STR, "templates": _STR},
    "support": {"address": _STR, "name": _STR, "agent": _STR},
    "poll": {"rate_limit": _INT, "rate_window_minutes": _INT},
    "reminders": {"to": _LIST, "owner": _STR, "failure_threshold": _INT},
}


class _Reader:
    """Collects problems while reading sections, so all are reported together."""

    def __init__(self, file: Path, data: dict[str, Any]):
        self.file = file
        self.data = data
        self.problems: list[Problem] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(str(self.file), key, message))

    def section(self, name: str) -> dict[str, Any]:
        raw = self.data.get(name, {})
        if not isinstance(raw, dict):
            self.problem(name, "expected a table like [" + name + "]")
            return {}
        schema = SCHEMA[name]
        good: dict[str, Any] = {}
        for key, value in raw.items():
            dotted = f"{name}.{key}"
            if key == "password":
                self.problem(
                    dotted,
                    "secrets are never stored in the file: use password_env "
                    "(an environment variable) or password_cmd (a command that prints it)",
                )
                continue
            if key not in schema:
                close = difflib.get_close_matches(key, schema, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                self.problem(dotted, f"unknown key{hint} (known: {', '.join(schema)})")
                continue
            kind, expected = schema[key]
            if isinstance(value, bool) and kind is not bool and kind != _BOOL[0]:
                self.problem(dotted, f"expected {expected}, got {value!r}")
                continue
            if not isinstance(value, kind):
                self.problem(dotted, f"expected {expected}, got {value!r}")
                continue
            if kind is list and not all(isinstance(v, str) for v in value):
                self.problem(dotted, f"expected {expected}, got {value!r}")
                continue
            good[key] = value
        return good

    def path(self, value: str | None) -> Path | None:
        if not value:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.file.parent / path)

    def one_of(self, section: str, key: str, value: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            self.problem(f"{section}.{key}", f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    def credentials(self, section: str, raw: dict[str, Any]) -> Credentials:
        given = [k for k in ("password_env", "password_cmd", "token_cmd") if raw.get(k)]
        if len(given) > 1:
            self.problem(f"{section}.{given[1]}", f"give only one of {', '.join(given)}")
        return Credentials(
            username=raw.get("username", ""),
            password_env=raw.get("password_env", ""),
            password_cmd=raw.get("password_cmd", ""),
            token_cmd=raw.get("token_cmd", ""),
            source=f"{self.file}: {section}",
        )



def load(path: Path) -> Settings:
    """Read and validate ``path``; raise ConfigError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_dict(data, path)


def from_dict(data: dict[str, Any], path: Path) -> Settings:
    path = path.resolve()
    r = _Reader(path, data)
    for name in data:
        if name not in SCHEMA:
            close = difflib.get_close_matches(name, SCHEMA, n=1)
            hint = f"; did you mean '[{close[0]}]'?" if close else ""
            r.problem(name, f"unknown section{hint} (known: {', '.join(SCHEMA)})")

    mb = r.section("mailbox")
    source = r.one_of("mailbox", "source", mb.get("source", "imap"), ("imap", "maildir", "mbox"))
    security = r.one_of("mailbox", "security", mb.get("security", "tls"), SECURITY)
    since = mb.get("since")
    if isinstance(since, str):
        try:
            since = date.fromisoformat(since)
        except ValueError:
            r.problem("mailbox.since", f"expected a date like 2026-11-01, got {since!r}")
            since = None
    if "mailbox" not in data:
        source = "none"  # owner tools (classify, lint, eval) need no mailbox; poll says what is missing
    elif source == "imap":
        if not mb.get("host"):
            r.problem("mailbox.host", "required for source = \"imap\"")
        if not mb.get("username"):
            r.problem("mailbox.username", "required for source = \"imap\"")
    elif not mb.get("path") and source in ("maildir", "mbox"):
        r.problem("mailbox.path", f"required for source = \"{source}\"")
    default_port = {"tls": 993, "starttls": 143, "none": 143}.get(security, 993)
    if mb.get("batch_size", 1) < 1:
        r.problem("mailbox.batch_size", "expected a positive integer")
    mailbox = MailboxSettings(
        source=source,
        path=r.path(mb.get("path")),
        host=mb.get("host", ""),
        port=mb.get("port", default_port),
        security=security,
        ca_file=r.path(mb.get("ca_file")),
        folders=tuple(mb.get("folders", ["INBOX"])),
        since=since,
        timeout=float(mb.get("timeout", 30)),
        batch_size=mb.get("batch_size", 200),
        credentials=r.credentials("mailbox", mb),
    )

    sm = r.section("smtp")
    smtp_security = r.one_of("smtp", "security", sm.get("security", "tls"), SECURITY)
    smtp = SmtpSettings(
        host=sm.get("host", ""),
        port=sm.get("port", {"tls": 465, "starttls": 587}.get(smtp_security, 25)),
        security=smtp_security,
        ca_file=r.path(sm.get("ca_file")),
        timeout=float(sm.get("timeout", 30)),
        sent_folder=sm.get("sent_folder", ""),
        append_sent=sm.get("append_sent", True),
        credentials=r.credentials("smtp", sm),
    )

    st = r.section("store")
    paths = r.section("paths")
    sp = r.section("support")
    if "address" in sp and "@" not in sp["address"]:
        r.problem("support.address", f"expected an email address, got {sp['address']!r}")
    pl = r.section("poll")
    for key in ("rate_limit", "rate_window_minutes"):
        if key in pl and pl[key] < 1:
            r.problem(f"poll.{key}", "expected a positive integer")
    rm = r.section("reminders")
    for i, address in enumerate(rm.get("to", [])):
        if "@" not in address:
            r.problem(f"reminders.to[{i}]", f"expected an email address, got {address!r}")
    if rm.get("owner") and "@" not in rm["owner"]:
        r.problem("reminders.owner", f"expected an email address, got {rm['owner']!r}")
    if rm.get("failure_threshold", 1) < 1:
        r.problem("reminders.failure_threshold", "expected a positive integer")

    if r.problems:
        raise ConfigError("\n".join(str(p) for p in r.problems))
    return Settings(
        file=path,
        mailbox=mailbox,
        smtp=smtp,
        store_path=r.path(st.get("path", "triage.db")) or path.parent / "triage.db",
        rules_dir=r.path(paths.get("rules")) or shipped_dir("rules"),
        templates_dir=r.path(paths.get("templates")) or shipped_dir("templates"),
        support=SupportSettings(**sp),
        poll=PollSettings(**pl),
        reminders=ReminderSettings(
            to=tuple(rm.get("to", ())), owner=rm.get("owner", ""), failure_threshold=rm.get("failure_threshold", 3)
        ),
    )
