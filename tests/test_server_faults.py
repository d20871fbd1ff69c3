"""Server faults: Dovecot gone mid-poll, a connection cut during a large FETCH, a folder
recreated with a new UIDVALIDITY, an SMTP server that refuses, vanishes or hangs up.

Each ends with nothing lost, nothing duplicated, one clear line, and the
documented exit code (0 finished, 2 configuration, 3 a server failed: retry).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
from typing import Any

import psutil
import pytest
from conftest import PASSWORD, Workspace, email_bytes, fault_numbers, smtp_config
from servers import Dovecot, SmtpServer, _Handler
from test_crash_poll import child_env, fill, mixed_mail, poll_cmd, server_state, store_rows, wait_for_progress

from triage import config, pipeline
from triage.errors import ServerError
from triage.mailbox.imap import ImapSource, connect
from triage.store import Store


def assert_each_once(dovecot: Dovecot, workspace: Workspace, folder: str = "INBOX") -> int:
    uidvalidity, flags = server_state(dovecot, folder)
    rows = store_rows(workspace.db)
    stored = sorted((v, uid) for _, _, v, uid, _, _ in rows["messages"] if v == uidvalidity)
    assert stored == sorted((uidvalidity, uid) for uid in flags)
    assert all(not (f - {"\\Recent"}) for f in flags.values())
    return len(flags)


def test_dovecot_stopped_mid_poll_then_restarted(dovecot: Dovecot, workspace: Workspace) -> None:
    import random

    fill(dovecot, mixed_mail(300, random.Random(7)))
    workspace.imap_config(dovecot)
    workspace.write_config(workspace.config.read_text().replace("batch_size = 50", "batch_size = 10"))
    child = subprocess.Popen(poll_cmd(workspace), env=child_env(), cwd=workspace.dir,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_progress(workspace.db, 0, child)
    # Dovecot's master lets sessions live for seconds after `doveadm stop`: end ours now, as a
    # crash or a restart with shutdown_clients would (its imap processes, found by parent pid)
    for proc in psutil.Process(dovecot._proc.pid).children(recursive=True):  # type: ignore[union-attr]
        if proc.name() == "imap":
            proc.send_signal(signal.SIGKILL)
    dovecot.stop(keep_dir=True)
    _, err = child.communicate(timeout=60)
    stopped_at = len(store_rows(workspace.db)["messages"])
    assert child.returncode == 3, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: IMAP"), err
    assert 0 < stopped_at < 300

    dovecot.start()
    assert workspace.run_json("poll")["fetched"] == 300 - stopped_at
    checked = assert_each_once(dovecot, workspace)
    with Store(workspace.db) as store:
        runs = store.runs_of("poll")
    assert [r["ok"] for r in runs[:2]] == [1, 0] and "IMAP" in runs[1]["summary"]["error"]
    fault_numbers("server_faults", dovecot_stopped_mid_poll_messages=checked, stored_before_stop=stopped_at)


class _CuttingFile:
    """imaplib's socket file: once ``after`` bytes of the response are read, the socket is shut down."""

    def __init__(self, file: Any, sock: socket.socket, after: int, cut: threading.Event) -> None:
        self.file, self.sock, self.after, self.cut, self.seen = file, sock, after, cut, 0

    def _count(self, data: bytes) -> bytes:
        self.seen += len(data)
        if self.seen > self.after and not self.cut.is_set():
            self.sock.shutdown(socket.SHUT_RDWR)
            self.cut.set()
        return data

    def read(self, size: int = -1) -> bytes:
        return self._count(self.file.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._count(self.file.readline(size))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


class _CutDuringFetch:
    """The real imapclient connection; the 2nd FETCH loses its socket after 5 MB of the response."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.fetches = 0
        self.cut = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def fetch(self, *args: Any, **kwargs: Any) -> Any:
        self.fetches += 1
        if self.fetches == 2:
            imap = self._client._imap
            imap.file = _CuttingFile(imap.file, self._client.socket(), 5_000_000, self.cut)
        return self._client.fetch(*args, **kwargs)


def test_connection_cut_during_a_large_fetch(dovecot: Dovecot, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    small = [email_bytes(message_id=f"<small{i}@customer.test>", sender=f"S{i} <s{i}@customer.test>") for i in range(10)]
    big = [
        email_bytes(message_id=f"<big{i}@customer.test>", sender=f"B{i} <b{i}@customer.test>",
                    body="My order arrived broken. I want a refund.\n" + ("padding line of a long message\n" * 60_000))
        for i in range(12)
    ]
    fill(dovecot, small + big)
    workspace.imap_config(dovecot)
    workspace.write_config(workspace.config.read_text().replace("batch_size = 50", "batch_size = 10"))
    settings = config.load(workspace.config)
    monkeypatch.setenv("TRIAGE_TEST_PW", PASSWORD)
    client = _CutDuringFetch(connect(settings.mailbox))
    source = ImapSource(settings.mailbox, client)
    with Store(settings.store_path) as store:
        with pytest.raises(ServerError, match=r"IMAP fetch from 'INBOX' failed"):
            pipeline.poll(settings, store, source)
        assert client.cut.is_set()
        assert len(store_rows(workspace.db)["messages"]) == 10  # the first batch, committed with its checkpoint
        assert store.checkpoint(settings.mailbox.name, "INBOX")[1] == 10  # type: ignore[index]
    source.close()
    assert workspace.run_json("poll")["fetched"] == 12
    fault_numbers("server_faults", fetch_cut_messages=assert_each_once(dovecot, workspace))


def test_folder_deleted_and_recreated_gets_a_new_uidvalidity(dovecot: Dovecot, workspace: Workspace) -> None:
    dovecot.create_folder("Support")
    raws = [email_bytes(message_id=f"<r{i}@customer.test>", sender=f"R{i} <r{i}@customer.test>") for i in range(5)]
    for raw in raws:
        dovecot.append("Support", raw)
    dovecot.append("Support", b"\x00broken\n\n")  # quarantined: deduplicated by its bytes
    workspace.imap_config(dovecot)
    workspace.write_config(workspace.config.read_text().replace("batch_size = 50", 'batch_size = 50\nfolders = ["Support"]'))
    assert workspace.run("poll").returncode == 0
    before = store_rows(workspace.db)

    dovecot.delete_folder("Support")
    dovecot.create_folder("Support")
    for raw in [email_bytes(message_id="<new@customer.test>"), *reversed(raws), b"\x00broken\n\n"]:
        dovecot.append("Support", raw)
    done = workspace.run("poll", "--json")
    assert done.returncode == 0, done.stderr
    assert "UIDVALIDITY changed" in done.stderr and "rescanning" in done.stderr
    summary = json.loads(done.stdout)
    assert (summary["fetched"], summary["duplicates"], summary["triaged"]) == (7, 6, 1)
    after = store_rows(workspace.db)
    assert len(after["messages"]) == len(before["messages"]) + 1
    assert len(after["drafts"]) == len(before["drafts"]) + 1  # no second draft for old mail
    assert assert_each_once(dovecot, workspace, "Support") == 7
    assert workspace.run("poll", "--json").stdout.count('"fetched": 0') == 1


class _HangUpAfterData(_Handler):
    """Takes the message, then drops the connection before answering (the reply is lost)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if self.server.hang_up:  # type: ignore[attr-defined]
            server.transport.abort()
        return reply


def _smtp_setup(dovecot: Dovecot, smtp: SmtpServer, workspace: Workspace, n: int = 1) -> list[int]:
    for i in range(n):
        dovecot.append("INBOX", email_bytes(message_id=f"<s{i}@customer.test>", sender=f"C{i} <c{i}@customer.test>"))
    workspace.imap_config(
        dovecot, extra=smtp_config(smtp, timeout=5))
    assert workspace.run("poll").returncode == 0
    return [int(r["id"]) for r in workspace.run_json("queue")]


def test_smtp_refusing_unreachable_then_accepting(dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace) -> None:
    first, second, third = _smtp_setup(dovecot, smtp_server, workspace, 3)
    smtp_server.refuse_rcpt = {"c0@customer.test", "c1@customer.test", "c2@customer.test"}
    refused = workspace.run("approve", str(first))
    assert refused.returncode == 3 and "550" in refused.stderr and "Traceback" not in refused.stderr
    smtp_server.refuse_rcpt = set()
    smtp_server.refuse_all = "421 4.3.2 shutting down"
    assert workspace.run("approve", str(second)).returncode == 3
    smtp_server.refuse_all = None
    smtp_server.stop()
    down = workspace.run("approve", str(third))
    assert down.returncode == 3 and "cannot reach SMTP server" in down.stderr and "connection refused" in down.stderr
    assert smtp_server.messages == []
    smtp_server.start()
    assert sorted(workspace.run_json("send-pending")["sent"]) == [first, second, third]
    ids = [str(m.message["Message-ID"]) for m in smtp_server.messages]
    assert len(ids) == 3 == len(set(ids)) and len(dovecot.messages("Sent")) == 3
    assert workspace.run("send-pending", "--json").returncode == 0 and len(smtp_server.messages) == 3


def test_smtp_connection_lost_after_data_holds_the_draft_instead_of_sending_twice(
    dovecot: Dovecot, workspace: Workspace
) -> None:
    smtp = SmtpServer()
    smtp.hang_up = True  # type: ignore[attr-defined]
    smtp._handler = _HangUpAfterData(smtp)
    with smtp:
        [did] = _smtp_setup(dovecot, smtp, workspace)
        lost = workspace.run("approve", str(did))
        assert lost.returncode == 3 and "may have been delivered" in lost.stderr, lost.stderr
        assert len(smtp.messages) == 1
        again = workspace.run("send-pending", "--json")  # cron: it must not send it again by itself
        assert again.returncode == 0 and str(did) in json.loads(again.stdout)["held"]
        assert "is held for an agent" in again.stderr
        assert len(smtp.messages) == 1
        [row] = workspace.run_json("queue")
        assert row["status"] == "approved" and "held" in row["error"]
        smtp.hang_up = False  # type: ignore[attr-defined]
        resent = workspace.run("approve", str(did), "--agent", "dana")  # an agent checked: send it
        assert resent.returncode == 0, resent.stderr
        assert len(smtp.messages) == 2 and len(dovecot.messages("Sent")) == 1


@pytest.mark.parametrize(("config_text", "code", "line"), [
    ('[mailbox]\nsource = "imap"\nhost = "127.0.0.1"\nport = 1\nsecurity = "none"\nusername = "u"\n'
     'password_env = "TRIAGE_TEST_PW"\ntimeout = 3\n', 3, "cannot reach IMAP server"),
    # a plaintext connection builds no TLS context, but a ca_file that cannot be read is still an error
    ('[mailbox]\nsource = "imap"\nhost = "127.0.0.1"\nport = 1\nsecurity = "none"\nusername = "u"\n'
     'password_env = "TRIAGE_TEST_PW"\nca_file = "/nonexistent/ca.pem"\n', 2, "ca_file: cannot load"),
    ('[mailbox]\nsource = "imap"\nhots = "x"\n', 2, "unknown key"),
    ('[mailbox]\nsource = "maildir"\npath = "/nonexistent/Maildir"\n', 2, "does not exist"),
])
def test_exit_codes_follow_the_documented_scheme(workspace: Workspace, config_text: str, code: int, line: str) -> None:
    workspace.write_config(config_text)
    done = workspace.run("poll")
    assert done.returncode == code and line in done.stderr and "Traceback" not in done.stderr, done.stderr
