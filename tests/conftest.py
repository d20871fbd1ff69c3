"""Fixtures: real Dovecot and SMTP servers, real SQLite files, the real CLI.

A missing Dovecot is a test failure, never a skip: `make test` installs it
(as root) or says what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from servers import Dovecot, SmtpServer, TokenEndpoint, free_port

ROOT = Path(__file__).parent.parent
USER, PASSWORD = "support@example.com", "secret"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with Dovecot({USER: PASSWORD, "other@example.com": "other"}) as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def token_endpoint() -> Iterator[TokenEndpoint]:
    """The OAuth2 introspection endpoint both OAuth2 servers below ask."""
    with TokenEndpoint() as endpoint:
        yield endpoint


@pytest.fixture
def oauth_dovecot(token_endpoint: TokenEndpoint) -> Iterator[Dovecot]:
    """Dovecot offering AUTH=OAUTHBEARER and AUTH=XOAUTH2 (oauth2 passdb), passwords too."""
    with Dovecot({USER: PASSWORD, "other@example.com": "other"}, oauth2=token_endpoint) as server:
        yield server


@pytest.fixture
def oauth_smtp(token_endpoint: TokenEndpoint) -> Iterator[SmtpServer]:
    """An SMTP server that takes only AUTH XOAUTH2 / OAUTHBEARER with a token the endpoint knows."""
    with SmtpServer(oauth2=token_endpoint) as server:
        yield server


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shipped rules and templates folders, for a test to edit: (rules, templates)."""
    rules, templates = tmp_path / "rules", tmp_path / "templates"
    shutil.copytree(ROOT / "rules", rules)
    shutil.copytree(ROOT / "templates", templates)
    return rules, templates


@dataclass
class TokenCmd:
    """A token helper for ``token_cmd``: prints the token in its file, counts its runs.

    ``script`` replaces what it does (shell), e.g. ``exit 1`` or ``sleep 30``.
    """

    dir: Path
    name: str = "token"

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.script("cat " + str(self.dir / f"{self.name}.txt"))

    @property
    def path(self) -> Path:
        return self.dir / f"{self.name}.sh"

    @property
    def command(self) -> str:
        return str(self.path)

    def script(self, body: str) -> None:
        self.path.write_text(f"#!/bin/sh\necho run >> {self.dir / (self.name + '.calls')}\n{body}\n")
        self.path.chmod(0o755)

    def set(self, token: str) -> str:
        (self.dir / f"{self.name}.txt").write_text(token + "\n")
        return token

    @property
    def calls(self) -> int:
        calls = self.dir / f"{self.name}.calls"
        return len(calls.read_text().splitlines()) if calls.exists() else 0


def email_bytes(
    subject: str = "Order #123 arrived broken",
    body: str = "My blender arrived broken. This is unacceptable, I want a refund.",
    sender: str = "Ann Lee <ann@customer.test>",
    message_id: str | None = None,
    date: datetime | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A well-formed customer email as raw bytes."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = USER
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc))
    msg["Message-ID"] = message_id or make_msgid(domain="customer.test")
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes()


#: Agents every workspace knows (``Workspace.add_agents``): commands that act as an agent need a known one.
AGENTS = ("dana", "sam")
AGENT_PASSWORD = "correct horse battery"  # their review-page password
#: Commands that act as an agent (``--agent``, or its default).
ACTING = frozenset({"approve", "edit", "reject", "redraft", "confirm", "clear-loop", "assign", "promise", "kept",
                    "resolve", "wait", "label", "link", "unlink", "forget"})
_AGENT_HASH: list[str] = []  # hashed once per test process


def smtp_config(server: SmtpServer, timeout: int | None = 10, host: str | None = None, security: str = "none",
                **keys: str) -> str:
    """The ``[smtp]`` table that sends through ``server``, for a config's ``extra``; ``timeout=None``
    leaves the default, ``keys`` add string keys (e.g. ``username=USER, password_env="SMTP_PW"``)."""
    lines = [f'host = "{host or server.host}"', f"port = {server.port}", f'security = "{security}"']
    lines += [f'{key} = "{value}"' for key, value in keys.items()]
    if timeout is not None:
        lines.append(f"timeout = {timeout}")
    return "[smtp]\n" + "\n".join(lines) + "\n"


#: The ``[support]`` and ``[store]`` tables every workspace config below has.
_SUPPORT_AND_STORE = """[support]
address = "support@example.com"
name = "Example Shop"
agent = "Sam"

[store]
path = "triage.db"
"""


@dataclass
class Workspace:
    """A folder with a triage.toml, for running the real CLI against it.

    ``run`` adds the agents in ``AGENTS`` to the store (no display name, so replies keep the
    configured sign-off) before the first command that acts as an agent, and acts as ``dana``
    unless ``--agent`` or ``TRIAGE_AGENT`` says otherwise.
    """

    dir: Path
    agents_added: bool = False
    rule_checks: RuleChecks | None = None  # placed beside the store before the first command (see RuleChecks)

    def add_agents(self, *names: str) -> None:
        """Add ``names`` (default ``AGENTS``) to the configured store as agents, skipping existing ones."""
        from werkzeug.security import generate_password_hash

        from triage import config
        from triage.store import Store, utcnow

        if not _AGENT_HASH:
            _AGENT_HASH.append(generate_password_hash(AGENT_PASSWORD))
        from triage.errors import ConfigError

        try:
            path = config.load(self.config).store_path
        except ConfigError:  # the command will say what is wrong with the file
            return
        with Store(path) as store, store.write():
            for name in names or AGENTS:
                if store.agent(name) is None:
                    store.add_agent(name, _AGENT_HASH[0], utcnow())
        self.agents_added = True

    @property
    def config(self) -> Path:
        return self.dir / "triage.toml"

    @property
    def db(self) -> Path:
        return self.dir / "triage.db"

    def write_config(self, text: str) -> Path:
        self.config.write_text(text, encoding="utf-8")
        return self.config

    def imap_config(self, server: Dovecot, extra: str = "", password_env: str = "TRIAGE_TEST_PW") -> Path:
        return self.write_config(
            f"""
[mailbox]
source = "imap"
host = "{server.host}"
port = {server.port}
security = "none"
username = "{USER}"
password_env = "{password_env}"
timeout = 10
batch_size = 50

{_SUPPORT_AND_STORE}{extra}
"""
        )

    def maildir_config(self, maildir: Path, extra: str = "") -> Path:
        return self.write_config(
            f"""
[mailbox]
source = "maildir"
path = "{maildir}"

{_SUPPORT_AND_STORE}{extra}
"""
        )

    def oauth_config(
        self, imap: Dovecot, smtp: SmtpServer | None, imap_token: TokenCmd, smtp_token: TokenCmd | None = None,
        extra: str = "",
    ) -> Path:
        """IMAP (and SMTP) logging in with token_cmd; ``extra`` is appended."""
        smtp_part = ""
        if smtp is not None:
            smtp_part = smtp_config(smtp, username=USER, token_cmd=(smtp_token or imap_token).command)
        return self.write_config(
            f"""
[mailbox]
source = "imap"
host = "{imap.host}"
port = {imap.port}
security = "none"
username = "{USER}"
token_cmd = "{imap_token.command}"
timeout = 10

{_SUPPORT_AND_STORE}{smtp_part}{extra}
"""
        )

    def run_json(self, *args: str, env: dict[str, str] | None = None, code: int = 0) -> Any:
        """Run ``ARGS... --json``, which must exit ``code``; its parsed output."""
        import json

        done = self.run(*args, "--json", env=env)
        assert done.returncode == code, done.stderr
        return json.loads(done.stdout)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `python -m triage --config CONFIG ARGS...` as cron would (as agent dana, see the class)."""
        if self.rule_checks is not None and self.config.exists():
            self.rule_checks.place(self)
            self.rule_checks = None
        if not self.agents_added and ACTING.intersection(args[:2]) and self.config.exists():
            self.add_agents()
        full_env = {**os.environ, "TRIAGE_TEST_PW": PASSWORD, "TRIAGE_AGENT": "dana", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "triage", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            cwd=self.dir,
        )


class RuleChecks:
    """The record of the shipped rules' passed checks (``triage.rulecache``), made once per test session.

    Every workspace's first poll would otherwise run the same checks on the same files again
    (a few seconds each). The record is made by a real poll with the shipped rules and the
    workspaces' ``[support]`` table; ``place`` copies it beside a workspace's store before its
    first command, unless a record (or anything by that name) is there already. A workspace
    whose rules, templates or ``[support]`` differ has another fingerprint: its first run checks
    them as before. Tests about the record itself are marked ``cold_rule_checks`` and get none.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._record: bytes | None = None
        self._made = False

    def record(self) -> bytes | None:
        if not self._made:
            self._made = True
            import mailbox

            from triage import config
            from triage.ruleset import checked_file

            box = mailbox.Maildir(str(self.folder / "Maildir"), create=True)
            box.add(email_bytes())
            box.close()
            seed = Workspace(self.folder)
            seed.maildir_config(self.folder / "Maildir")
            done = seed.run("poll")
            assert done.returncode == 0, done.stderr
            path = checked_file(config.load(seed.config))
            self._record = path.read_bytes() if path.is_file() else None  # none written: nothing to place
        return self._record

    def place(self, workspace: Workspace) -> None:
        from triage import config
        from triage.errors import ConfigError
        from triage.ruleset import checked_file

        try:
            settings = config.load(workspace.config)
        except ConfigError:  # the command will say what is wrong with the file
            return
        path = checked_file(settings)
        if settings.store_path.exists() or path.exists() or path.is_symlink() or not path.parent.is_dir():
            return
        record = self.record()
        if record is not None:
            path.write_bytes(record)


@pytest.fixture(scope="session")
def rule_checks(tmp_path_factory: pytest.TempPathFactory) -> RuleChecks:
    return RuleChecks(tmp_path_factory.mktemp("rule-checks"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cold_rule_checks: the workspace gets no record of passed rule checks")


@pytest.fixture
def workspace(tmp_path: Path, rule_checks: RuleChecks, request: pytest.FixtureRequest) -> Workspace:
    cold = request.node.get_closest_marker("cold_rule_checks") is not None
    return Workspace(tmp_path, rule_checks=None if cold else rule_checks)


# -- the review page, served and driven in Chromium ---------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


@contextmanager
def review_page(workspace: Workspace, **kwargs: object) -> Iterator[str]:
    """Serve the review page of ``workspace``'s config in werkzeug's threaded server on a free
    loopback port; yields its base URL. ``kwargs`` go to ``create_app`` (e.g. ``clock``)."""
    from triage import config
    from triage.web import make_server

    port = free_port()
    server = make_server(config.load(workspace.config), host="127.0.0.1", port=port, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, launched once per module: each test opens its own context (cookies, storage)."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: install Debian's with `apt-get install -y chromium` (never `playwright install`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def logged_in(browser: Any, base: str, name: str = "dana") -> tuple[Any, Any]:
    """A new browser context logged in to the review page at ``base`` as agent ``name``: (context, page)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(base + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", AGENT_PASSWORD)
    page.click("button:has-text('Log in')")
    assert page.url == base + "/"
    return context, page


@pytest.fixture
def maildir(tmp_path: Path) -> Callable[[list[bytes]], Path]:
    """Build a Maildir holding the given raw messages; returns its path."""
    import mailbox

    def build(messages: list[bytes], path: Path | None = None) -> Path:
        path = path or tmp_path / "Maildir"
        box = mailbox.Maildir(str(path), create=True)
        for raw in messages:
            box.add(raw)
        box.close()
        return path

    return build


# -- fault-injection numbers (issue 7) -------------------------------------------
# Long fault-injection tests record what they did (seeds, crashes injected, messages
# checked, duplicates, losses...) with ``fault_numbers``; the numbers are printed in
# the terminal summary, so they show in CI output without ``-s``, and written to
# tests/.fault-report.json.

FAULT_NUMBERS: dict[str, dict[str, object]] = {}


def fault_numbers(test: str, **numbers: object) -> None:
    """Record (or add to) the numbers a fault-injection test reports."""
    FAULT_NUMBERS.setdefault(test, {}).update(numbers)
    print(f"[faults] {test}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FAULT_NUMBERS:
        return
    import json

    terminalreporter.section("fault injection and robustness numbers")
    for test, numbers in FAULT_NUMBERS.items():
        terminalreporter.write_line(f"{test}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))
    try:
        (Path(__file__).parent / ".fault-report.json").write_text(json.dumps(FAULT_NUMBERS, indent=2, default=str))
    except OSError:  # a read-only checkout still shows the numbers above
        pass
