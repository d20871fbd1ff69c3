"""Crash safety of ``triage poll``: SIGKILL at random moments, then one run that finishes.

A Dovecot folder is filled with a few hundred messages (Maildir files written
straight into the user's ``new/``, as bench/backlog.py does); ``triage poll``
runs as a subprocess, as cron runs it, and is killed with SIGKILL after a
random delay, again and again: the poll itself, or (with ``[poll] workers =
2``) one of its worker processes, after which the poll fails on its own with
exit 3. After a kill of the poll, none of its workers outlives it by more
than a few seconds. After every kill: the checkpoint never points
past an uncommitted message, and nothing is stored twice. After a final poll
that finishes: every message on the server is in the store exactly once,
nothing on the server was flagged, moved or deleted, and the store holds
exactly what one clean, uninterrupted, single-process poll of the same folder
gives (the oracle for "every message that needs a draft has exactly one
pending draft").

Replay a failure with ``TRIAGE_FAULT_SEED=<seed printed in the summary>``.
"""

from __future__ import annotations

import os
import pwd
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import psutil
import pytest
from conftest import PASSWORD, USER, Workspace, fault_numbers
from servers import Dovecot

# -- helpers shared by the fault-injection tests -------------------------------------


def fault_seed() -> int:
    """TRIAGE_FAULT_SEED replays a run; otherwise a fresh seed (printed with the numbers)."""
    value = os.environ.get("TRIAGE_FAULT_SEED")
    return int(value) if value else random.SystemRandom().randrange(1 << 31)


COMPLAINTS = [
    "My {p} (order #{o}) arrived broken. This is unacceptable, I want a refund.",
    "This is the SECOND time the {p} stopped working!!! I want my money back TODAY.",
    "I was charged twice for order #{o}. Please fix this now or I will file a chargeback.",
    "Sorry to bother you, but the {p} from order #{o} seems a bit loud. Is that normal?",
    "Where is order #{o}? I have waited three weeks and nobody answers.",
    "Can I change the delivery address for order #{o}?",
]
PRODUCTS = ["blender", "kettle", "toaster", "coffee grinder", "knife set"]


def customer_mail(i: int, rng: random.Random, replying_to: str | None = None, sender: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender or f"Customer {i} <c{i}@customer.test>"
    msg["To"] = USER
    msg["Subject"] = f"Order {i}: " + rng.choice(["broken", "refund", "where is it", "question"])
    msg["Date"] = format_datetime(datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(minutes=i))
    msg["Message-ID"] = f"<crash{i}.{rng.randrange(1 << 30)}@customer.test>"
    if replying_to:
        msg["In-Reply-To"] = replying_to
        msg["References"] = replying_to
    body = rng.choice(COMPLAINTS).format(p=rng.choice(PRODUCTS), o=10000 + i)
    msg.set_content(f"Hi,\n\n{body}\n\nCustomer {i}\n")
    if rng.random() < 0.04:  # a few big ones make FETCH take real time
        msg.add_attachment(rng.randbytes(300_000), maintype="image", subtype="jpeg", filename="photo.jpg")
    return msg.as_bytes()


def mixed_mail(n: int, rng: random.Random, start: int = 0) -> list[bytes]:
    """``n`` messages: customers' complaints and questions, replies on earlier threads,
    auto-replies, and unparseable ones (quarantined)."""
    out: list[bytes] = []
    threads: list[tuple[str, str]] = []
    for i in range(start, start + n):
        kind = rng.random()
        if kind < 0.05:
            out.append(
                f"From: Away <away{i}@customer.test>\nTo: {USER}\nSubject: Out of office\n"
                f"Auto-Submitted: auto-replied\nMessage-ID: <auto{i}@customer.test>\n\nI am away.\n".encode()
            )
        elif kind < 0.08:
            out.append(f"Subject: no sender {i}\nMessage-ID: <nosender{i}@x.test>\n\nwho wrote this?\n".encode())
        elif kind < 0.14 and threads:
            mid, sender = rng.choice(threads)
            out.append(customer_mail(i, rng, replying_to=mid, sender=sender))
        else:
            raw = customer_mail(i, rng)
            out.append(raw)
            head = raw.split(b"\n\n", 1)[0].decode()
            mid = next(line.split(":", 1)[1].strip() for line in head.splitlines() if line.startswith("Message-ID:"))
            threads.append((mid, f"Customer {i} <c{i}@customer.test>"))
    return out


def fill(server: Dovecot, raws: list[bytes], tag: str = "t", user: str = USER) -> None:
    """Deliver ``raws`` into the user's INBOX as Maildir files (much faster than APPEND)."""
    box = server.mail_dir / user
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    paths = []
    for i, raw in enumerate(raws):
        path = box / "new" / f"{stamp}.M{i}P{os.getpid()}{tag}.test"
        path.write_bytes(raw)
        paths.append(path)
    if os.geteuid() == 0:
        dv = pwd.getpwnam("dovecot")
        for path in [box, *(box / s for s in ("cur", "new", "tmp")), *paths]:
            os.chown(path, dv.pw_uid, dv.pw_gid)


def server_state(server: Dovecot, folder: str = "INBOX") -> tuple[int, dict[int, frozenset[str]]]:
    """(UIDVALIDITY, {uid: flags}) of ``folder``, without touching \\Seen."""
    with server.client() as c:
        info = c.select_folder(folder, readonly=True)
        uids = c.search("ALL")
        flags = c.fetch(uids, ["FLAGS"]) if uids else {}
    return int(info[b"UIDVALIDITY"]), {
        uid: frozenset(f.decode() if isinstance(f, bytes) else f for f in flags[uid][b"FLAGS"]) for uid in uids
    }


def poll_cmd(workspace: Workspace, *args: str) -> list[str]:
    return [sys.executable, "-m", "triage", "--config", str(workspace.config), "poll", *args]


def child_env() -> dict[str, str]:
    return {**os.environ, "TRIAGE_TEST_PW": PASSWORD}


def store_rows(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """What the store holds, read with a plain connection (as after a crash)."""
    empty: dict[str, list[tuple[object, ...]]] = {"messages": [], "drafts": [], "checkpoints": []}
    if not db_path.exists():
        return empty
    db = sqlite3.connect(db_path, timeout=30)
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] == 0:  # killed before the schema was made
            return empty
        return {
            "messages": db.execute(
                "SELECT id, message_id, uidvalidity, uid, status, case_id FROM messages ORDER BY id"
            ).fetchall(),
            "drafts": db.execute("SELECT id, message_id, case_id, status FROM drafts ORDER BY id").fetchall(),
            "checkpoints": db.execute("SELECT folder, uidvalidity, last_uid FROM checkpoints").fetchall(),
        }
    finally:
        db.close()


def check_no_duplicates(rows: dict[str, list[tuple[object, ...]]]) -> int:
    """Duplicates in the store: a message stored twice, a UID stored twice, a message with two drafts."""
    mids = [r[1] for r in rows["messages"]]
    uids = [(r[2], r[3]) for r in rows["messages"] if r[3] is not None]
    drafted = [r[1] for r in rows["drafts"]]
    pending_cases = [r[2] for r in rows["drafts"] if r[3] == "pending"]
    return (
        (len(mids) - len(set(mids)))
        + (len(uids) - len(set(uids)))
        + (len(drafted) - len(set(drafted)))
        + (len(pending_cases) - len(set(pending_cases)))
    )


def check_checkpoint(rows: dict[str, list[tuple[object, ...]]], uidvalidity: int, server_uids: list[int]) -> list[int]:
    """Server UIDs at or below the checkpoint that the store does not hold (must be none)."""
    points = {folder: (uv, last) for folder, uv, last in rows["checkpoints"]}
    if "INBOX" not in points:
        return []
    uv, last = points["INBOX"]
    assert uv == uidvalidity
    stored = {uid for _, _, v, uid, _, _ in rows["messages"] if v == uidvalidity}
    return [uid for uid in server_uids if uid <= int(str(last)) and uid not in stored]


def outcome(db_path: Path) -> dict[str, tuple[str, int, int]]:
    """Per Message-ID: (status, drafts, pending drafts): what a poll decided for each message."""
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute(
            "SELECT m.message_id, m.status, COUNT(d.id), COALESCE(SUM(d.status = 'pending'), 0) "
            "FROM messages m LEFT JOIN drafts d ON d.message_id = m.id GROUP BY m.id"
        ).fetchall()
    finally:
        db.close()
    return {mid: (status, int(n), int(p)) for mid, status, n, p in rows}


def stored_count(db_path: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
        try:
            return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:  # not created yet, or no schema yet
        return 0


def wait_for_progress(db_path: Path, before: int, child: subprocess.Popen[bytes], limit: float = 10.0) -> None:
    """Return once the store holds more than ``before`` messages (or the child ended)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and child.poll() is None and stored_count(db_path) <= before:
        time.sleep(0.01)


def poll_workers(pid: int) -> list[psutil.Process]:
    """The worker processes of the poll ``pid`` (spawned by multiprocessing; not its resource tracker)."""
    found = []
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def still_running(procs: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """Of ``procs``, those still running (not zombies) after waiting up to ``seconds``."""
    _, alive = psutil.wait_procs(procs, timeout=seconds)
    out = []
    for proc in alive:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


def kill_poll(child: subprocess.Popen[bytes], seconds: float = 5) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """SIGKILL the poll ``child``: (its descendants when it was killed, the resource tracker too; those of
    them still running ``seconds`` later, i.e. orphans)."""
    everyone = psutil.Process(child.pid).children(recursive=True)
    child.send_signal(signal.SIGKILL)
    return everyone, still_running(everyone, seconds)


# -- the test -------------------------------------------------------------------------------

KILLS = 30
INITIAL = 300


@pytest.mark.slow
def test_poll_killed_at_random_moments_loses_nothing_and_does_nothing_twice(
    dovecot: Dovecot, workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> None:
    seed = fault_seed()
    rng = random.Random(seed)
    workspace.imap_config(dovecot)
    workspace.write_config(workspace.config.read_text().replace("batch_size = 50", "batch_size = 10")
                           + "[poll]\nworkers = 2\n")
    delivered = INITIAL
    fill(dovecot, mixed_mail(INITIAL, rng), tag="a")

    kills = finished = progressed = worker_kills = worker_failures = orphans = 0
    checks = violations = duplicates = 0
    before = 0
    waves = 0
    while kills < KILLS:
        uidvalidity, flags = server_state(dovecot)
        rows = store_rows(workspace.db)
        if len(flags) - len(rows["messages"]) < 30:  # keep work in the folder, so kills land mid-run
            waves += 1
            fill(dovecot, mixed_mail(20, rng, start=delivered), tag=f"w{waves}")
            delivered += 20
        child = subprocess.Popen(poll_cmd(workspace, "--json"), env=child_env(), cwd=workspace.dir,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if rng.random() < 0.25:  # during start-up: connect, login, load spaCy, first fetch
            time.sleep(rng.uniform(0.05, 1.2))
        else:  # mid-run: once the first batch is committed, at a random moment of the next ones
            wait_for_progress(workspace.db, before, child, limit=90)  # start-up with workers can be slow here
            time.sleep(rng.uniform(0.0, 0.3))
        workers = poll_workers(child.pid)
        if child.poll() is not None:
            finished += 1
        elif workers and rng.random() < 0.4:  # a worker: the poll must fail by itself, storing nothing of the batch
            rng.choice(workers).send_signal(signal.SIGKILL)
            kills += 1
            worker_kills += 1
        else:
            _, left = kill_poll(child)
            kills += 1
            orphans += len(left)
            assert not left, f"seed {seed}: {[p.cmdline() for p in left]} outlived the killed poll"
        _, err = child.communicate(timeout=60)
        worker_failures += child.returncode == 3
        assert child.returncode in (0, 3, -signal.SIGKILL), (seed, child.returncode, err)
        if child.returncode == 3:
            assert b"was killed by SIGKILL" in err and err.count(b"error:") == 1, (seed, err)

        rows = store_rows(workspace.db)
        uidvalidity, flags = server_state(dovecot)
        missing = check_checkpoint(rows, uidvalidity, sorted(flags))
        dups = check_no_duplicates(rows)
        checks += 1
        violations += len(missing)
        duplicates += dups
        progressed += len(rows["messages"]) > before
        before = len(rows["messages"])
        assert not missing, f"seed {seed}: checkpoint past uncommitted UIDs {missing[:10]}"
        assert not dups, f"seed {seed}: duplicates after kill {kills}"

    final = subprocess.run(poll_cmd(workspace, "--json"), env=child_env(), cwd=workspace.dir,
                           capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, (seed, final.stderr)

    uidvalidity, flags = server_state(dovecot)
    rows = store_rows(workspace.db)
    stored = [(v, uid) for _, _, v, uid, _, _ in rows["messages"]]
    losses = [uid for uid in flags if (uidvalidity, uid) not in stored]
    duplicates += check_no_duplicates(rows)
    flagged = {uid: f - {"\\Recent"} for uid, f in flags.items() if f - {"\\Recent"}}  # \Recent is the server's

    # the oracle: one clean, uninterrupted poll of the same folder into a fresh store
    clean = Workspace(tmp_path_factory.mktemp("clean"))
    clean.write_config(workspace.config.read_text().replace("workers = 2", "workers = 1"))
    reference = clean.run("poll", "--json")
    assert reference.returncode == 0, reference.stderr
    got, want = outcome(workspace.db), outcome(clean.db)
    differing = sorted(mid for mid in set(got) | set(want) if got.get(mid) != want.get(mid))

    fault_numbers(
        "crash_poll", seed=seed, crashes_injected=kills, worker_kills=worker_kills,
        runs_failed_by_worker_kill=worker_failures, orphans_after_5s=orphans, runs_finished_before_kill=finished,
        kills_after_progress=progressed, messages_checked=len(flags), checks_after_kill=checks,
        checkpoint_violations=violations, duplicates=duplicates, losses=len(losses),
        flagged_on_server=len(flagged), differing_from_clean_run=len(differing),
    )
    assert len(flags) == delivered, f"seed {seed}: the server lost or gained messages"
    assert not flagged, f"seed {seed}: poll changed flags on the server: {list(flagged.items())[:5]}"
    assert not losses and len(stored) == len(flags), f"seed {seed}: lost UIDs {losses[:10]}"
    assert duplicates == 0
    assert worker_kills >= 3, f"seed {seed}: too few kills landed on workers ({worker_kills})"
    assert not differing, f"seed {seed}: {[(m, got.get(m), want.get(m)) for m in differing[:5]]}"
    assert sum(p for _, _, p in got.values()) > 200  # most messages needed, and have, one pending draft
