"""triage.toml -> frozen settings.

The file is found by ``--config PATH``, then ``$TRIAGE_CONFIG``, then
``./triage.toml``. Every problem is collected and raised together as a
``ConfigError`` whose lines name the file, the key and what was expected.
Secrets never live in the file: ``password_env`` names an environment
variable, ``password_cmd`` a command that prints the password, and
``token_cmd`` a command that prints an OAuth2 access token (OAUTHBEARER or
XOAUTH2, run once per connection: triage.mailbox.oauth).
Relative paths are resolved against the config file's directory.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from triage.errors import ConfigError
from triage.rulefile import TomlFile

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
    section: str = ""  # "mailbox" or "smtp"
    timeout: float = 30.0  # the section's timeout, also for token_cmd

    @property
    def oauth2(self) -> bool:
        """Log in with an OAuth2 access token from ``token_cmd`` (OAUTHBEARER or XOAUTH2)."""
        return bool(self.token_cmd)

    def secret(self) -> str:
        """The password; ConfigError if unobtainable.

        OAuth2 credentials (``token_cmd``) have no password: the mail clients get a
        fresh access token from ``triage.mailbox.oauth.fetch_token`` instead (config
        sits below mailbox, so it does not call into it).
        """
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
    max_message_mb: int = 25  # larger mail is stored by its headers and size, quarantined as too large
    credentials: Credentials = field(default_factory=Credentials)

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mb * 1024 * 1024

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
    aliases: tuple[str, ...] = ()  # other addresses of ours: never kept as a reply's Cc
    mailbox_address: str = ""  # the polled mailbox's login, when it is an address (ours too)

    @property
    def own_addresses(self) -> frozenset[str]:
        """Every address of ours, lower-cased: the support address, the aliases, the mailbox's."""
        return frozenset(a.strip().lower() for a in (self.address, *self.aliases, self.mailbox_address)
                         if "@" in a)


MAX_WORKERS = 4  # the default's cap: more seldom pays on the small machines triage runs on


def default_workers() -> int:
    """The default ``[poll] workers``: the cores this process may use, at most MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


@dataclass(frozen=True)
class PollSettings:
    rate_limit: int = 10
    rate_window_minutes: int = 60
    workers: int = field(default_factory=default_workers)  # processes for parse/detect/draft (triage.workers)


@dataclass(frozen=True)
class CaseSettings:
    """Which case a customer's message joins: the same customer's recent case, and (when on) colleagues' threads."""

    join_days: int = 30  # a follow-up naming the same order/invoice, or a Re:/Fwd: of its subject, this recent
    join_same_domain: bool = False  # a business customer's colleagues (same customers.csv domain) may join


@dataclass(frozen=True)
class ReminderSettings:
    """Who ``triage remind`` writes to: agents' digests, the owner's escalations and poll alerts."""

    to: tuple[str, ...] = ()
    owner: str = ""
    failure_threshold: int = 3  # consecutive failed polls before the owner is told (daily)


@dataclass(frozen=True)
class WebSettings:
    """The review page: how long a login lasts."""

    session_idle_minutes: int = 60  # a session unused this long is ended
    session_max_hours: int = 12  # and none outlives this, however busy


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
    web: WebSettings = field(default_factory=WebSettings)
    #: ``[store] retention_days``: resolved cases older than this are purged by ``remind`` (None: kept).
    retention_days: int | None = None
    store_timeout: float = 30.0  # seconds a write waits for another connection's lock (SQLite busy timeout)
    cases: CaseSettings = field(default_factory=CaseSettings)
    #: ``[agents]``: OS login name -> agent name, the default ``--agent`` for that login.
    os_agents: dict[str, str] = field(default_factory=dict)

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


# key -> getter per section: each reads one value with TomlFile's typed getters.
Getter = Callable[[TomlFile, dict[str, Any], str, str], Any]


def _str(tf: TomlFile, t: dict[str, Any], k: str, p: str) -> Any:
    return tf.string(t, k, p, empty=True)


def _int(tf: TomlFile, t: dict[str, Any], k: str, p: str) -> Any:
    return tf.integer(t, k, p)


def _positive(tf: TomlFile, t: dict[str, Any], k: str, p: str) -> Any:
    return tf.integer(t, k, p, lo=1)


def _workers(tf: TomlFile, t: dict[str, Any], k: str, p: str) -> Any:
    return tf.integer(t, k, p, lo=1, hi=64)


def _bool(tf: TomlFile, t: dict[str, Any], k: str, p: str) -> Any:
    return tf.boolean(t, k, p)


def _num(tf: TomlFile, t: dict[str, Any], k: str, p: str) -> Any:
    return tf.number(t, k, p)


def _positive_num(tf: TomlFile, t: dict[str, Any], k: str, p: str) -> Any:
    return tf.number(t, k, p, above=0, expected="a number of seconds above 0")


def _list(tf: TomlFile, t: dict[str, Any], k: str, p: str) -> Any:
    return tf.str_list(t, k, p, empty=True)


def _date(tf: TomlFile, t: dict[str, Any], k: str, p: str) -> Any:
    value = t[k]
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    tf.problem(f"{p}.{k}", f"expected a date like 2026-11-01, got {value!r}")
    return None


_CREDS: dict[str, Getter] = {"username": _str, "password_env": _str, "password_cmd": _str, "token_cmd": _str}
SCHEMA: dict[str, dict[str, Getter]] = {
    "mailbox": {
        "source": _str,
        "path": _str,
        "host": _str,
        "port": _int,
        "security": _str,
        "ca_file": _str,
        "folders": _list,
        "since": _date,
        "timeout": _num,
        "batch_size": _positive,
        "max_message_mb": _positive,
        **_CREDS,
    },
    "smtp": {
        "host": _str,
        "port": _int,
        "security": _str,
        "ca_file": _str,
        "timeout": _num,
        "sent_folder": _str,
        "append_sent": _bool,
        **_CREDS,
    },
    "store": {"path": _str, "retention_days": _positive, "busy_timeout": _positive_num},
    "paths": {"rules": _str, "templates": _str},
    "support": {"address": _str, "name": _str, "agent": _str, "aliases": _list},
    "agents": {},  # OS login -> agent name, any keys (read by _os_agents)
    "poll": {"rate_limit": _positive, "rate_window_minutes": _positive, "workers": _workers},
    "reminders": {"to": _list, "owner": _str, "failure_threshold": _positive},
    "web": {"session_idle_minutes": _positive, "session_max_hours": _positive},
    "cases": {"join_days": _positive, "join_same_domain": _bool},
}


def _section(tf: TomlFile, name: str) -> dict[str, Any]:
    """The valid keys of ``[name]``; every wrong or unknown one is recorded as a problem."""
    raw = tf.table(tf.data, name, expected=f"a table like [{name}]")
    schema = SCHEMA[name]
    good: dict[str, Any] = {}
    for key in raw:
        dotted = f"{name}.{key}"
        if key == "password":
            tf.problem(
                dotted,
                "secrets are never stored in the file: use password_env "
                "(an environment variable) or password_cmd (a command that prints it)",
            )
        elif key not in schema:
            tf.unknown(dotted, key, schema)
        elif (value := schema[key](tf, raw, key, name)) is not None:
            good[key] = value
    return good


def _path(tf: TomlFile, value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (tf.path.parent / path)


def _credentials(tf: TomlFile, section: str, raw: dict[str, Any]) -> Credentials:
    given = [k for k in ("password_env", "password_cmd", "token_cmd") if raw.get(k)]
    if len(given) > 1:
        tf.problem(f"{section}.{given[1]}", f"give only one of {', '.join(given)}")
    for key in ("password_cmd", "token_cmd"):
        try:
            shlex.split(raw.get(key, ""))
        except ValueError as exc:
            tf.problem(f"{section}.{key}", f"cannot parse the command: {exc}")
    if raw.get("token_cmd") and not raw.get("username"):
        tf.problem(f"{section}.username", "required with token_cmd: the mailbox the token is for")
    return Credentials(
        username=raw.get("username", ""),
        password_env=raw.get("password_env", ""),
        password_cmd=raw.get("password_cmd", ""),
        token_cmd=raw.get("token_cmd", ""),
        source=f"{tf.path}: {section}",
        section=section,
        timeout=float(raw.get("timeout", 30)),
    )


def _address(tf: TomlFile, key: str, value: str) -> None:
    if "@" not in value:
        tf.problem(key, f"expected an email address, got {value!r}")


def load(path: Path) -> Settings:
    """Read and validate ``path``; raise ConfigError listing every problem."""
    tf = TomlFile(path.resolve(), what="the configuration")
    if not tf.readable:
        raise ConfigError("\n".join(str(p) for p in tf.problems))
    return _settings(tf)


def from_dict(data: dict[str, Any], path: Path) -> Settings:
    """Settings from already-parsed TOML ``data`` as if read from ``path``."""
    return _settings(TomlFile(path.resolve(), data=data))


def _settings(tf: TomlFile) -> Settings:
    path, data = tf.path, tf.data
    tf.unknown_keys(data, SCHEMA, "", what="section", show="'[{}]'".format)

    mb = _section(tf, "mailbox")
    source = tf.choice(mb, "source", "mailbox", ("imap", "maildir", "mbox"), "imap", invalid="")
    security = tf.choice(mb, "security", "mailbox", SECURITY, "tls", invalid="")
    if "mailbox" not in data:
        source = "none"  # owner tools (classify, lint, eval) need no mailbox; poll says what is missing
    elif source == "imap":
        if not mb.get("host"):
            tf.problem("mailbox.host", "required for source = \"imap\"")
        if not mb.get("username"):
            tf.problem("mailbox.username", "required for source = \"imap\"")
    elif not mb.get("path") and source in ("maildir", "mbox"):
        tf.problem("mailbox.path", f"required for source = \"{source}\"")
    default_port = {"tls": 993, "starttls": 143, "none": 143}.get(security, 993)
    mailbox = MailboxSettings(
        source=source,
        path=_path(tf, mb.get("path")),
        host=mb.get("host", ""),
        port=mb.get("port", default_port),
        security=security,
        ca_file=_path(tf, mb.get("ca_file")),
        folders=tuple(mb.get("folders", ["INBOX"])),
        since=mb.get("since"),
        timeout=float(mb.get("timeout", 30)),
        batch_size=mb.get("batch_size", 200),
        max_message_mb=mb.get("max_message_mb", 25),
        credentials=_credentials(tf, "mailbox", mb),
    )

    sm = _section(tf, "smtp")
    smtp_security = tf.choice(sm, "security", "smtp", SECURITY, "tls", invalid="")
    smtp = SmtpSettings(
        host=sm.get("host", ""),
        port=sm.get("port", {"tls": 465, "starttls": 587}.get(smtp_security, 25)),
        security=smtp_security,
        ca_file=_path(tf, sm.get("ca_file")),
        timeout=float(sm.get("timeout", 30)),
        sent_folder=sm.get("sent_folder", ""),
        append_sent=sm.get("append_sent", True),
        credentials=_credentials(tf, "smtp", sm),
    )

    st = _section(tf, "store")
    paths = _section(tf, "paths")
    sp = _section(tf, "support")
    if "address" in sp:
        _address(tf, "support.address", sp["address"])
    pl = _section(tf, "poll")
    rm = _section(tf, "reminders")
    wb = _section(tf, "web")
    cs = _section(tf, "cases")
    for i, address in enumerate(sp.get("aliases", ())):
        _address(tf, f"support.aliases[{i}]", address)
    mailbox_login = mailbox.credentials.username
    os_agents = _os_agents(tf)
    for i, address in enumerate(rm.get("to", [])):
        _address(tf, f"reminders.to[{i}]", address)
    if rm.get("owner"):
        _address(tf, "reminders.owner", rm["owner"])

    if tf.problems:
        raise ConfigError("\n".join(str(p) for p in tf.problems))
    return Settings(
        file=path,
        mailbox=mailbox,
        smtp=smtp,
        store_path=_path(tf, st.get("path", "triage.db")) or path.parent / "triage.db",
        retention_days=st.get("retention_days"),
        rules_dir=_path(tf, paths.get("rules")) or shipped_dir("rules"),
        templates_dir=_path(tf, paths.get("templates")) or shipped_dir("templates"),
        support=SupportSettings(**sp, mailbox_address=mailbox_login if "@" in mailbox_login else ""),
        poll=PollSettings(**pl),
        reminders=ReminderSettings(
            to=tuple(rm.get("to", ())), owner=rm.get("owner", ""), failure_threshold=rm.get("failure_threshold", 3)
        ),
        web=WebSettings(**wb),
        store_timeout=float(st.get("busy_timeout", 30)),
        cases=CaseSettings(**cs),
        os_agents=os_agents,
    )


_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")  # as triage.agents.NAME


def _os_agents(tf: TomlFile) -> dict[str, str]:
    """``[agents]``: each key an OS login name, each value the agent name it acts as."""
    raw = tf.table(tf.data, "agents", expected="a table like [agents] mapping OS logins to agent names")
    mapping: dict[str, str] = {}
    for login, name in raw.items():
        if isinstance(name, str) and _AGENT_NAME.match(name):
            mapping[login] = name
        else:
            tf.problem(f"agents.{login}", f"expected an agent name (as given to `triage agent add`), got {name!r}")
    return mapping
