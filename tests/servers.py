"""Real mail servers for tests: a throw-away Dovecot IMAP server and an aiosmtpd SMTP server.

Nothing here is a mock. :class:`Dovecot` runs the Debian ``dovecot`` binary with its own
config in a private temp dir on a free loopback port; :class:`SmtpServer` runs aiosmtpd's
``Controller`` in a background thread and records what it receives. Both are plain
classes (start/stop + context manager) so ``conftest.py`` can wrap them in fixtures of
any scope.

Contract shared by both classes:

* ``start()`` returns only once the server answers on its port(s); otherwise it raises
  :class:`ServerStartError` (with the tail of the server log) or, when the software is
  not installed, :class:`ServerUnavailable`. Callers must not turn these into skips.
* ``stop()`` is idempotent and leaves no processes or listening sockets behind.
* Only loopback (``127.0.0.1``) is used; ports come from :func:`free_port`.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import email
import email.policy
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

import imapclient

__all__ = [
    "Dovecot",
    "RecordedMail",
    "ServerStartError",
    "ServerUnavailable",
    "SmtpServer",
    "TokenEndpoint",
    "free_port",
    "make_self_signed",
]

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class ServerUnavailable(RuntimeError):
    """Software a real-server helper needs (dovecot, openssl, ...) is not installed."""


class ServerStartError(RuntimeError):
    """A server was installed but did not come up (or go down) in time; message has its log."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that was free a moment ago (bind to port 0, then close).

    There is an unavoidable small race with other processes; fine for tests.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _which(name: str) -> str | None:
    """``shutil.which`` that also looks in the sbin dirs (not on a normal user's PATH)."""
    extra = os.pathsep.join(["/usr/sbin", "/usr/local/sbin", "/sbin"])
    return shutil.which(name) or shutil.which(name, path=extra)


_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = v3
prompt = no

[dn]
CN = localhost

[v3]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def make_self_signed(directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Create a self-signed certificate and key for ``localhost`` / ``127.0.0.1`` in ``directory``.

    Uses the ``openssl`` CLI with its own config (independent of the system openssl.cnf).
    The certificate is its own CA (``CA:TRUE``), so its path works as ``cafile=`` for
    ``ssl.create_default_context``. Returns ``(cert_path, key_path)``; files are
    ``cert.pem`` (0644) and ``key.pem`` (0600). Raises :class:`ServerUnavailable` if
    ``openssl`` is missing and :class:`ServerStartError` if it fails.
    """
    openssl = _which("openssl")
    if openssl is None:
        raise ServerUnavailable("openssl not installed: apt-get install -y openssl")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cnf, cert, key = d / "openssl.cnf", d / "cert.pem", d / "key.pem"
    cnf.write_text(_OPENSSL_CONFIG)
    cmd = [
        openssl, "req", "-x509", "-config", str(cnf),
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "7",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServerStartError(f"openssl failed ({done.returncode}): {done.stderr.strip()}")
    cert.chmod(0o644)
    key.chmod(0o600)
    return cert, key


def _wait_imap_greeting(host: str, port: int, context: ssl.SSLContext | None, timeout: float) -> None:
    """Connect once and read the ``* OK`` greeting (optionally over implicit TLS)."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        if context is None:
            greeting = raw.recv(1024)
        else:
            with context.wrap_socket(raw) as tls:
                greeting = tls.recv(1024)
    if not greeting.startswith(b"* OK"):
        raise OSError(f"unexpected greeting {greeting!r}")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _live_group_members(pgid: int) -> list[int]:
    """PIDs in process group ``pgid`` that are still running (zombies do not count).

    Orphaned dovecot children become zombies until init reaps them, and ``killpg(pgid, 0)``
    would report those as alive, so on Linux we read ``/proc/*/stat`` instead.
    """
    if not os.path.exists("/proc/self/stat"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


class TokenEndpoint:
    """A loopback OAuth2 token-introspection endpoint (RFC 7662) that knows which tokens are good.

    Dovecot's ``oauth2`` passdb POSTs ``token=...`` to :attr:`url` and gets
    ``{"active": true, "username": USER}`` for a granted token, ``{"active": false}``
    for an expired or unknown one; :class:`SmtpServer` asks :meth:`user_for` in-process,
    so both servers judge tokens from the same set. :attr:`asked` lists every token
    checked, in order (by either server), so a test can see that a fresh token was
    fetched for each connection.
    """

    host: str = LOOPBACK

    def __init__(self) -> None:
        self.port = 0
        self._tokens: dict[str, tuple[str, bool]] = {}
        self._asked: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/introspect"

    @property
    def asked(self) -> list[str]:
        with self._lock:
            return list(self._asked)

    def grant(self, token: str, user: str) -> str:
        """Make ``token`` a valid access token for ``user``; returns the token."""
        with self._lock:
            self._tokens[token] = (user, True)
        return token

    def expire(self, token: str) -> None:
        """The token is known but no longer active (what a provider says after an hour)."""
        with self._lock:
            user, _active = self._tokens[token]
            self._tokens[token] = (user, False)

    def user_for(self, token: str) -> str | None:
        """The user an active token was granted for, else None; records the question."""
        with self._lock:
            self._asked.append(token)
            user, active = self._tokens.get(token, ("", False))
        return user if active else None

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's hook name
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
                token = (form.get("token") or [""])[0]
                user = endpoint.user_for(token)
                answer = {"active": True, "username": user} if user else {"active": False}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("TokenEndpoint is already running")
        self._server = ThreadingHTTPServer((self.host, self.port), self._make_handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="token-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# Every running Dovecot is stopped at interpreter exit, even if a test run is aborted.
_RUNNING: weakref.WeakSet[Dovecot] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):  # best effort at exit
            server.stop()


class Dovecot:
    """A real Dovecot IMAP server in a short-named private temp dir on a free loopback port.

    ``users`` maps login -> password (``passwd-file`` with ``{PLAIN}``); mail is stored as
    Maildir under ``<dir>/mail/<login>``. Every user's namespace has INBOX plus ``Sent``
    (auto-created, ``\\Sent`` special-use). Plain-text LOGIN/AUTH PLAIN is allowed on the
    plain port.

    With ``ssl=True`` a self-signed cert for localhost/127.0.0.1 is generated; the server
    offers STARTTLS on :attr:`port` and implicit TLS (imaps) on :attr:`tls_port`, and
    :attr:`ca_file` is the cert to trust. ``extra_config`` is appended verbatim to the
    generated ``dovecot.conf`` (later settings win).

    With ``oauth2=TokenEndpoint(...)`` (started) the server also offers the SASL mechanisms
    in ``oauth2_mechanisms`` (default ``AUTH=OAUTHBEARER`` and ``AUTH=XOAUTH2``), checked by
    Dovecot's ``oauth2`` passdb against that endpoint; passwords keep working for PLAIN/LOGIN.

    Lifecycle: :meth:`start` (waits for the greeting, ~10 s deadline), :meth:`stop`
    (``doveadm stop``, waits for the port to close, kills leftovers, removes the dir unless
    ``keep_dir=True``), :meth:`restart` (same port, same mail). Runs as root (processes
    drop to Debian's ``dovenull``/``dovecot``) or as an ordinary user (everything runs as
    that user).

    The convenience helpers (:meth:`client`, :meth:`append`, :meth:`messages`, ...) each
    open their own short imapclient connection, so they work across restarts and never
    share state with the code under test. Flags are returned as ``frozenset[str]``, e.g.
    ``frozenset({"\\\\Seen"})``.
    """

    host: str = LOOPBACK

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        ssl: bool = False,
        *,
        extra_config: str = "",
        oauth2: TokenEndpoint | None = None,
        oauth2_mechanisms: tuple[str, ...] = ("oauthbearer", "xoauth2"),
    ) -> None:
        default = {"support@example.com": "secret"}
        self.users: dict[str, str] = dict(users if users is not None else default)
        if not self.users:
            raise ValueError("Dovecot needs at least one user")
        for login, password in self.users.items():
            if any(c in login + password for c in ":\n\r"):
                raise ValueError(f"login/password for {login!r} may not contain ':' or newlines")
        self.ssl = ssl
        self.extra_config = extra_config
        self.oauth2 = oauth2
        self.oauth2_mechanisms = tuple(oauth2_mechanisms) if oauth2 is not None else ()
        self.port: int = 0
        self.tls_port: int | None = None
        self.ca_file: Path | None = None
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # ----------------------------------------------------------------- paths
    @property
    def dir(self) -> Path:
        """The private directory (config, users, mail, log, run); exists from start to stop."""
        if self._dir is None:
            raise RuntimeError("Dovecot has not been started")
        return self._dir

    @property
    def config_file(self) -> Path:
        return self.dir / "dovecot.conf"

    @property
    def mail_dir(self) -> Path:
        """Root of all users' Maildirs (``<mail_dir>/<login>``)."""
        return self.dir / "mail"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """Dovecot's log file plus anything the master printed to stdout/stderr (empty if none)."""
        parts = []
        for name in ("dovecot.log", "master.out"):
            p = self.dir / name
            if p.exists():
                parts.append(p.read_text(errors="replace"))
        return "".join(parts)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log().splitlines()[-lines:]) or "(log is empty)"
        except (OSError, RuntimeError):
            return "(no log)"

    # -------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        """Write config, run ``dovecot -F -c FILE``, wait until it greets; return ``self``.

        Raises :class:`ServerUnavailable` if dovecot is not installed and
        :class:`ServerStartError` (with the log tail) if it does not come up in ~10 s.
        Calling it on a running server is an error.
        """
        if self.running:
            raise RuntimeError("Dovecot is already running")
        dovecot = _which("dovecot")
        if dovecot is None:
            raise ServerUnavailable("dovecot not installed: apt-get install -y dovecot-imapd")
        if self._dir is None:
            # Short path: dovecot's unix sockets live under it (sun_path is ~108 bytes).
            self._dir = Path(tempfile.mkdtemp(prefix="dv", dir="/tmp"))
        if not self.port:
            self.port = free_port()
        if self.ssl and not self.tls_port:
            self.tls_port = free_port()
        self._prepare_dir()

        with open(self.dir / "master.out", "ab") as out:
            self._proc = subprocess.Popen(
                [dovecot, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: lets stop() kill leftovers
            )
        _RUNNING.add(self)
        try:
            self._wait_ready()
        except BaseException:
            if self._proc.poll() is None:
                self._proc.terminate()
            self._kill_group()
            self._proc = None
            _RUNNING.discard(self)
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        no_verify = ssl.create_default_context()
        no_verify.check_hostname = False
        no_verify.verify_mode = ssl.CERT_NONE
        checks: list[tuple[int, ssl.SSLContext | None]] = [(self.port, None)]
        if self.tls_port:
            checks.append((self.tls_port, no_verify))
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise ServerStartError(
                    f"dovecot exited with code {code} during startup (dir {self.dir}); "
                    f"log tail:\n{self._log_tail()}"
                )
            try:
                for port, context in checks:
                    _wait_imap_greeting(self.host, port, context, timeout=2.0)
                return
            except OSError as exc:  # ssl.SSLError is an OSError
                last_error = exc
                time.sleep(0.05)
        raise ServerStartError(
            f"dovecot did not answer on {self.host}:{self.port} within {START_TIMEOUT:.0f}s "
            f"({last_error!r}; dir {self.dir}); log tail:\n{self._log_tail()}"
        )

    def stop(self, *, keep_dir: bool = False) -> None:
        """Stop the server; idempotent.

        Runs ``doveadm -c FILE stop``, waits for the master to exit and the port(s) to close
        (~10 s), then SIGKILLs anything left in its process group. Unless ``keep_dir`` is
        true the private directory (mail included) is removed afterwards; pass
        ``keep_dir=True`` to stop temporarily and :meth:`start` again on the same port
        with the same mail (that is what :meth:`restart` does).
        """
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                self._doveadm_stop(proc)
            self._kill_group()
            self._proc = None
            _RUNNING.discard(self)
            deadline = time.monotonic() + STOP_TIMEOUT
            ports = [p for p in (self.port, self.tls_port) if p]
            while any(_port_open(self.host, p) for p in ports):
                if time.monotonic() > deadline:
                    raise ServerStartError(f"dovecot port(s) {ports} still open after stop")
                time.sleep(0.05)
        if not keep_dir and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self.ca_file = None

    def _doveadm_stop(self, proc: subprocess.Popen[bytes]) -> None:
        """``doveadm -c FILE stop`` while reaping the master, falling back to SIGTERM.

        doveadm polls ``kill(pid, 0)`` until the master is gone, and a zombie still
        counts as alive: the master must be reaped *while* doveadm waits, or every stop
        costs doveadm's full 3 s timeout.
        """
        doveadm = _which("doveadm")
        admin = None
        if doveadm is not None:
            admin = subprocess.Popen(
                [doveadm, "-c", str(self.config_file), "stop"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        else:
            proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.terminate()
        if admin is not None:
            try:
                admin.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                admin.kill()
                admin.wait()

    def _kill_group(self) -> None:
        """Wait briefly for the master's process group to exit, then SIGKILL what is left."""
        if self._proc is None:
            return
        pgid = self._proc.pid  # start_new_session=True: pgid == master pid
        deadline = time.monotonic() + 3.0
        while members := _live_group_members(pgid):
            if time.monotonic() > deadline:
                for pid in members:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self._proc.poll()  # reap the master if it has exited
            time.sleep(0.02)
        try:
            self._proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def restart(self) -> Self:
        """Stop and start again on the same port(s) with the same mail dir and cert."""
        self.stop(keep_dir=True)
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Dovecot {self.host}:{self.port} tls_port={self.tls_port} {state} dir={self._dir}>"

    # ----------------------------------------------------------------- config
    def _prepare_dir(self) -> None:
        d = self.dir
        as_root = os.geteuid() == 0
        if as_root:
            login_user, internal_user, internal_group = "dovenull", "dovecot", "dovecot"
            first_valid_uid = 1
        else:
            login_user = internal_user = pwd.getpwuid(os.geteuid()).pw_name
            internal_group = grp.getgrgid(os.getegid()).gr_name
            first_valid_uid = os.geteuid()
        d.chmod(0o755)  # dovenull/dovecot must traverse it
        for sub in ("run", "state"):
            (d / sub).mkdir(exist_ok=True)
        self.mail_dir.mkdir(exist_ok=True)
        self.mail_dir.chmod(0o700)
        if as_root:
            pw = pwd.getpwnam(internal_user)
            os.chown(self.mail_dir, pw.pw_uid, pw.pw_gid)

        users = d / "users"
        users.write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items()))
        users.chmod(0o644)  # read by the auth process (runs as the internal user)

        ssl_block = "ssl = no\n"
        if self.ssl:
            tls_dir = d / "tls"
            cert, key = (
                (tls_dir / "cert.pem", tls_dir / "key.pem")
                if (tls_dir / "cert.pem").exists()
                else make_self_signed(tls_dir)
            )
            self.ca_file = cert
            ssl_block = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"

        oauth2_passdb = ""
        if self.oauth2 is not None:
            if not self.oauth2.port:
                raise RuntimeError("start the TokenEndpoint before the Dovecot that asks it")
            oauth2_conf = d / "dovecot-oauth2.conf.ext"
            oauth2_conf.write_text(
                "introspection_mode = post\n"
                f"introspection_url = {self.oauth2.url}\n"
                "force_introspection = yes\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
            )
            oauth2_conf.chmod(0o644)
            mechs = " ".join(self.oauth2_mechanisms)
            oauth2_passdb = f"""passdb {{
  driver = oauth2
  mechanisms = {mechs}
  args = {oauth2_conf}
}}
"""

        config = f"""\
# generated by tests/servers.py
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = {self.host}
{ssl_block}disable_plaintext_auth = no
auth_mechanisms = plain login {" ".join(self.oauth2_mechanisms)}
auth_verbose = yes
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {first_valid_uid}
mail_location = maildir:{self.mail_dir}/%u
{oauth2_passdb}passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={internal_user} gid={internal_group} home={self.mail_dir}/%u
}}
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.tls_port or 0}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
  # no per-IP auth penalty: every test client is 127.0.0.1, so one wrong-password test
  # would otherwise slow all later logins by 2-15 s
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
{self.extra_config}
"""
        self.config_file.write_text(config)
        self.config_file.chmod(0o644)

    # ---------------------------------------------------------------- clients
    def _user(self, user: str | None) -> str:
        return user if user is not None else next(iter(self.users))

    def client(
        self,
        user: str | None = None,
        *,
        tls: bool = False,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> imapclient.IMAPClient:
        """A logged-in :class:`imapclient.IMAPClient` for ``user`` (default: first user).

        ``tls=True`` connects to the imaps port, ``starttls=True`` upgrades the plain port;
        both verify against :attr:`ca_file`. The caller logs out (or uses ``with``).
        """
        login = self._user(user)
        if (tls or starttls) and self.ca_file is None:
            raise RuntimeError("TLS requested but Dovecot was started with ssl=False")
        context = ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None
        if tls:
            assert self.tls_port is not None
            c = imapclient.IMAPClient(
                self.host, port=self.tls_port, ssl=True, ssl_context=context, timeout=timeout
            )
        else:
            c = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
            if starttls:
                c.starttls(context)
        try:
            c.login(login, self.users[login])
        except BaseException:
            c.shutdown()
            raise
        return c

    def append(
        self,
        folder: str,
        raw: bytes,
        flags: Iterable[str | bytes] = (),
        user: str | None = None,
    ) -> int:
        """APPEND ``raw`` to ``folder`` with ``flags``; return its UID (from UIDPLUS APPENDUID)."""
        with self.client(user) as c:
            response = c.append(folder, raw, flags=tuple(flags))
        match = re.search(rb"APPENDUID \d+ (\d+)", response)
        if match is None:
            raise RuntimeError(f"no APPENDUID in APPEND response {response!r}")
        return int(match.group(1))

    def create_folder(self, folder: str, user: str | None = None) -> None:
        """CREATE ``folder``."""
        with self.client(user) as c:
            c.create_folder(folder)

    def delete_folder(self, folder: str, user: str | None = None) -> None:
        """DELETE ``folder`` (with its messages)."""
        with self.client(user) as c:
            c.delete_folder(folder)

    def folders(self, user: str | None = None) -> dict[str, frozenset[str]]:
        """All folders of ``user``: name -> LIST flags (``"Sent"`` has ``"\\\\Sent"``)."""
        with self.client(user) as c:
            return {name: _str_flags(flags) for flags, _sep, name in c.list_folders()}

    def flags(self, folder: str, uid: int, user: str | None = None) -> frozenset[str]:
        """Flags of message ``uid`` in ``folder``; raises ``KeyError`` if there is no such UID."""
        with self.client(user) as c:
            c.select_folder(folder, readonly=True)
            data = c.fetch([uid], ["FLAGS"])
        if uid not in data:
            raise KeyError(f"no UID {uid} in {folder!r}")
        return _str_flags(data[uid][b"FLAGS"])

    def messages(self, folder: str, user: str | None = None) -> list[tuple[int, bytes, frozenset[str]]]:
        """Every message in ``folder`` as ``(uid, raw bytes, flags)``, by UID; never sets \\Seen."""
        with self.client(user) as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            data = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
        return [(uid, data[uid][b"BODY[]"], _str_flags(data[uid][b"FLAGS"])) for uid in sorted(data)]

    def uidvalidity(self, folder: str, user: str | None = None) -> int:
        """UIDVALIDITY of ``folder`` (via STATUS)."""
        with self.client(user) as c:
            return int(c.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])


def _str_flags(flags: Iterable[bytes | str]) -> frozenset[str]:
    return frozenset(f.decode() if isinstance(f, bytes) else f for f in flags)


# ----------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class RecordedMail:
    """One message the :class:`SmtpServer` accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    auth_user: str | None = None
    tls: bool = False


@dataclass
class _Handler:
    """aiosmtpd handler: applies the server's refusal knobs and records accepted mail."""

    server: SmtpServer
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(  # aiosmtpd hook names are upper-case
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        # AUTH is enforced here rather than with aiosmtpd's auth_required=True, which
        # warns on every connection when combined with auth_require_tls=False.
        if (self.server.auth is not None or self.server.oauth2 is not None) and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refused = {a.lower() for a in self.server.refuse_rcpt}
        if address.lower() in refused:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refuse = self.server.refuse_all
        if refuse:
            return refuse
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        record = RecordedMail(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            message=message,
            auth_user=session.auth_data if isinstance(session.auth_data, str) else None,
            tls=session.ssl is not None,
        )
        with self.lock:
            self.server._messages.append(record)
        return "250 2.0.0 Message accepted for delivery"


_OAUTH2_ERROR = base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"mail"}').decode()


def parse_sasl_oauth(mechanism: str, blob: bytes) -> tuple[str, str]:
    """(user, token) from an XOAUTH2 or OAUTHBEARER (RFC 7628) initial response; ValueError if malformed."""
    text = blob.decode("utf-8")
    parts = text.split("\x01")
    if mechanism == "OAUTHBEARER":
        gs2, *kv = parts
        fields = gs2.split(",")
        if len(fields) < 2 or fields[0] not in ("n", "y"):
            raise ValueError("bad GS2 header")
        user = fields[1][2:].replace("=2C", ",").replace("=3D", "=") if fields[1].startswith("a=") else ""
    else:
        kv = parts
        user = ""
    values = dict(p.split("=", 1) for p in kv if "=" in p)
    user = values.get("user", user)
    auth = values.get("auth", "")
    if not auth.startswith("Bearer ") or not user:
        raise ValueError("no user or no bearer token")
    return user, auth[len("Bearer ") :]


class _OAuthHandler(_Handler):
    """The handler plus AUTH XOAUTH2 and OAUTHBEARER, checked against the server's TokenEndpoint."""

    async def _oauth(self, server: Any, args: list[str], mechanism: str) -> Any:
        from aiosmtpd.smtp import MISSING, AuthResult

        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Can't decode base64")
        try:
            user, token = parse_sasl_oauth(mechanism, blob)
        except ValueError:
            return AuthResult(success=False, handled=False, message="501 5.5.2 malformed OAuth2 response")
        endpoint = self.server.oauth2
        assert endpoint is not None
        ok = endpoint.user_for(token) == user
        self.server.logins.append((mechanism, user, ok))
        if ok:
            return AuthResult(success=True, auth_data=user)
        # as Gmail does: a 334 with the JSON error, the client answers empty, then 535
        answer = await server.challenge_auth(_OAUTH2_ERROR, encode_to_b64=False)
        if answer is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> Any:  # aiosmtpd hook name
        return await self._oauth(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server: Any, args: list[str]) -> Any:
        return await self._oauth(server, args, "OAUTHBEARER")


class SmtpServer:
    """A real SMTP server (aiosmtpd ``Controller``) on a free loopback port that records mail.

    * :attr:`messages` is a snapshot list of :class:`RecordedMail` in arrival order;
      :meth:`clear` empties it; :meth:`wait_for` waits for a count (for async senders).
    * :attr:`refuse_rcpt` (set of addresses, case-insensitive): RCPT TO for these gets
      ``550 5.1.1 no such user`` (so ``smtplib`` raises ``SMTPRecipientsRefused`` when all
      are refused).
    * :attr:`refuse_all` (e.g. ``"451 4.3.0 try later"``): while set, DATA is answered with
      this reply and nothing is recorded (``smtplib`` raises ``SMTPDataError``).
    * ``auth={"user": "pw"}``: AUTH LOGIN/PLAIN offered and required for MAIL (530 otherwise);
      allowed without TLS.
    * ``oauth2=TokenEndpoint(...)``: AUTH XOAUTH2 and OAUTHBEARER (those in
      ``oauth2_mechanisms``) offered and required for MAIL, the bearer token checked against
      the endpoint and its user against the one named; a refusal is answered as Gmail does
      (a ``334`` JSON error, then ``535 5.7.8``). :attr:`RecordedMail.auth_user` is that user.
    * ``starttls=True``: STARTTLS offered (not required) with a self-signed cert from
      :func:`make_self_signed`; :attr:`ca_file` is the cert to trust.

    Both knobs may be changed while the server runs; they apply to the next command.
    """

    host: str = LOOPBACK

    def __init__(
        self,
        auth: Mapping[str, str] | None = None,
        starttls: bool = False,
        *,
        oauth2: TokenEndpoint | None = None,
        oauth2_mechanisms: tuple[str, ...] = ("XOAUTH2", "OAUTHBEARER"),
    ) -> None:
        self.auth: dict[str, str] | None = dict(auth) if auth is not None else None
        self.oauth2 = oauth2
        self.oauth2_mechanisms = tuple(m.upper() for m in oauth2_mechanisms)
        self.starttls = starttls
        self.port: int = 0
        self.ca_file: Path | None = None
        self.refuse_rcpt: set[str] = set()
        self.refuse_all: str | None = None
        self.logins: list[tuple[str, str, bool]] = []  # OAuth2 AUTH attempts: (mechanism, user, accepted)
        self._messages: list[RecordedMail] = []
        self._handler = _OAuthHandler(self) if oauth2 is not None else _Handler(self)
        self._controller: Any = None
        self._tmp: Path | None = None

    @property
    def messages(self) -> list[RecordedMail]:
        with self._handler.lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget recorded messages (knobs are left as they are)."""
        with self._handler.lock:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedMail]:
        """Wait until at least ``count`` messages are recorded and return them (TimeoutError)."""
        deadline = time.monotonic() + timeout
        while len(msgs := self.messages) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} messages, got {len(msgs)}")
            time.sleep(0.02)
        return msgs

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        assert self.auth is not None
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if self.auth.get(login) == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    def start(self) -> Self:
        """Start listening; return once the server greets (ServerUnavailable without aiosmtpd)."""
        if self._controller is not None:
            raise RuntimeError("SmtpServer is already running")
        try:
            from aiosmtpd.controller import Controller
        except ImportError as exc:
            raise ServerUnavailable("aiosmtpd not installed: pip install aiosmtpd") from exc
        kwargs: dict[str, Any] = {}
        if self.auth is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if self.oauth2 is not None:
            kwargs.update(auth_require_tls=False)
            excluded = [m for m in ("XOAUTH2", "OAUTHBEARER") if m not in self.oauth2_mechanisms]
            if self.auth is None:
                excluded += ["PLAIN", "LOGIN"]  # tokens only
            kwargs.update(auth_exclude_mechanism=excluded)
        if self.starttls:
            if self._tmp is None:
                self._tmp = Path(tempfile.mkdtemp(prefix="smtp", dir="/tmp"))
                self.ca_file, _key = make_self_signed(self._tmp)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.ca_file), str(self._tmp / "key.pem"))
            kwargs.update(tls_context=context, require_starttls=False)
        if not self.port:
            self.port = free_port()
        controller = Controller(self._handler, hostname=self.host, port=self.port, **kwargs)
        try:
            controller.start()  # waits for readiness itself (ready_timeout)
        except Exception as exc:
            raise ServerStartError(f"aiosmtpd did not start on {self.host}:{self.port}: {exc!r}") from exc
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening (idempotent); recorded messages are kept, the cert dir removed."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            self.ca_file = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._controller is not None else "stopped"
        return f"<SmtpServer {self.host}:{self.port} {state} messages={len(self._messages)}>"
