"""Backlog benchmark: a first `triage poll` over N realistic messages in a real Dovecot.

Measured in the same run, against the same server and the same corpus
(bench/corpus.py: 1-3 KB bodies, 12 % quoting replies, 20 %
multipart/alternative, 10 % non-ASCII, 5 % automatic), alternating
``--repeat`` times:
  (a) the floor: a process that fetches every message's raw bytes over IMAP
      (imapclient, BODY.PEEK[] in batches of 200) and parses each with
      mail-parser, nothing else;
  (b) a full `triage poll --json` (a subprocess, as cron runs it) into a fresh store;
  (c) with ``--peer``: django-helpdesk's ``get_email`` (bench/peer.py) on a
      copy of the same corpus in a second mailbox of the same Dovecot.
Each process's wall time, CPU (user + system, its reaped workers included,
from wait4) and peak RSS (the largest process, from wait4, and the whole
process tree's sum sampled every 50 ms) are recorded. Prints msgs/s median
(min-max), the ratio of the medians to the floor, CPU ms per message and
peak RSS.

Usage: python bench/backlog.py [--messages 2000] [--repeat 3] [--peer] [--json]
Targets (2-core machine, N = 2,000 and 20,000): poll >= 0.5 x floor;
peak RSS < 400 MB and flat in N.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from corpus import messages  # noqa: E402
from servers import Dovecot  # noqa: E402

USER, PASSWORD = "support@example.com", "secret"
PEER_USER = "peer@example.com"  # a second mailbox of the same server, refilled before each peer run


def fill(server: Dovecot, raws: list[bytes], user: str = USER) -> None:
    """Write the messages straight into the user's Maildir (much faster than APPEND)."""
    box = server.mail_dir / user
    if box.exists():
        shutil.rmtree(box)
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    for i, raw in enumerate(raws):
        (box / "new" / f"{1790000000 + i}.M{i}P1.bench").write_bytes(raw.replace(b"\n", b"\r\n"))
    if os.geteuid() == 0:
        dv = pwd.getpwnam("dovecot")
        for path in [box, *box.rglob("*")]:
            os.chown(path, dv.pw_uid, dv.pw_gid)
    with server.client(user) as c:
        # Let Dovecot index the folder before anything is timed. A read-write SELECT also moves
        # the files from new/ to cur/, as any mail client that has opened the mailbox does;
        # never opened, Dovecot rescans new/ on every EXAMINE (see README, Performance).
        c.select_folder("INBOX", readonly=os.environ.get("BENCH_KEEP_NEW") == "1")
        c.search("ALL")


@dataclass
class Measured:
    """One process: how long, how much CPU, how much memory, how many messages."""

    count: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float  # the largest single process (wait4)
    tree_rss_mb: float  # the process and its children together, sampled
    output: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.wall_s

    @property
    def cpu_ms_per_msg(self) -> float:
        return 1000 * self.cpu_s / max(self.count, 1)


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], env: dict[str, str] | None = None, count_from=None) -> Measured:  # type: ignore[no-untyped-def]
    """Run ``cmd`` to the end; its figures. ``count_from(stdout)`` gives the message count."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss(proc.pid))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}… failed ({proc.returncode}): {stderr[-2000:]}")
    count = count_from(stdout) if count_from else int(stdout.split()[0])
    return Measured(count, elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, peak[0] / 2**20, stdout)


def floor_main(host: str, port: int, user: str, password: str) -> None:
    """The floor process: fetch everything in batches of 200 and parse it; print the count."""
    import imapclient
    import mailparser

    count = 0
    with imapclient.IMAPClient(host, port=port, ssl=False) as c:
        c.login(user, password)
        c.select_folder("INBOX", readonly=True)
        uids = sorted(c.search("ALL"))
        for i in range(0, len(uids), 200):
            for item in c.fetch(uids[i : i + 200], ["BODY.PEEK[]"]).values():
                mailparser.parse_from_bytes(item[b"BODY[]"])
                count += 1
    print(count)


def floor(server: Dovecot) -> Measured:
    return measure([sys.executable, __file__, "--floor-only", server.host, str(server.port), USER, PASSWORD])


def write_config(server: Dovecot, work: Path, extra: str = "") -> Path:
    config = work / "triage.toml"
    config.write_text(
        f'[mailbox]\nsource = "imap"\nhost = "{server.host}"\nport = {server.port}\nsecurity = "none"\n'
        f'username = "{USER}"\npassword_env = "BENCH_PW"\n[store]\npath = "triage.db"\n{extra}'
    )
    return config


def timed_poll(config: Path) -> tuple[float, dict[str, int]]:
    """Run `triage poll --json` as cron does; (wall seconds, summary)."""
    m = poll_process(config)
    return m.wall_s, json.loads(m.output)


def poll_process(config: Path, env_extra: dict[str, str] | None = None) -> Measured:
    env = {**os.environ, "BENCH_PW": PASSWORD, **(env_extra or {})}
    cmd = [sys.executable, "-m", "triage", "--config", str(config), "poll", "--json"]
    return measure(cmd, env, count_from=lambda out: json.loads(out)["fetched"])


def poll(server: Dovecot, extra: str = "") -> Measured:
    with tempfile.TemporaryDirectory() as tmp:
        return poll_process(write_config(server, Path(tmp), extra))


def summarise(runs: list[Measured], base: list[Measured] | None) -> dict[str, Any]:
    rates = [r.rate for r in runs]
    result: dict[str, Any] = {
        "msgs_per_s": round(statistics.median(rates), 1),
        "msgs_per_s_min": round(min(rates), 1),
        "msgs_per_s_max": round(max(rates), 1),
        "cpu_ms_per_msg": round(statistics.median(r.cpu_ms_per_msg for r in runs), 2),
        "peak_rss_mb": round(max(r.max_rss_mb for r in runs), 1),
        "peak_tree_rss_mb": round(max(r.tree_rss_mb for r in runs), 1),
        "messages": runs[0].count,
    }
    if base is not None:
        floor_median = statistics.median(r.rate for r in base)
        result["ratio"] = round(result["msgs_per_s"] / floor_median, 3)
        # each run against the floor run next to it: the spread of the ratio
        pairs = [r.rate / b.rate for r, b in zip(runs, base, strict=False)]
        result["ratio_min"], result["ratio_max"] = round(min(pairs), 3), round(max(pairs), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--workers", type=int, default=None, help="[poll] workers for the poll (default: unset)")
    parser.add_argument("--peer", action="store_true", help="also run django-helpdesk's get_email (bench/peer.py)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--floor-only", nargs=4, metavar=("HOST", "PORT", "USER", "PASSWORD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_only:
        host, port, user, password = args.floor_only
        floor_main(host, int(port), user, password)
        return

    raws = messages(args.messages, args.seed)
    extra = f"[poll]\nworkers = {args.workers}\n" if args.workers is not None else ""
    peer_python = None
    if args.peer:
        import peer

        peer_python = peer.ensure()  # None (and a one-line reason) when it cannot be installed
    floors: list[Measured] = []
    polls: list[Measured] = []
    peers: list[Measured] = []
    users = {USER: PASSWORD, PEER_USER: PASSWORD}
    with Dovecot(users) as server:
        fill(server, raws)
        for _ in range(args.repeat):
            floors.append(floor(server))
            polls.append(poll(server, extra))
            if peer_python is not None:
                import peer

                fill(server, raws, PEER_USER)  # get_email deletes what it takes in
                peers.append(peer.run(peer_python, server, PEER_USER, PASSWORD))
    result: dict[str, Any] = {
        "messages": args.messages,
        "repeat": args.repeat,
        "workers": args.workers,
        "floor": summarise(floors, None),
        "poll": summarise(polls, floors),
        "poll_summary": json.loads(polls[-1].output),
    }
    if peers:
        result["peer"] = summarise(peers, floors)
    elif args.peer:
        result["peer"] = None
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.messages} messages, {args.repeat} alternating rounds; median (min-max)")
    print(f"{'':<26}{'msgs/s':>22}{'x floor':>18}{'CPU ms/msg':>12}{'peak RSS MB':>13}{'tree RSS MB':>13}")
    rows = [("fetch + parse floor", result["floor"]), ("triage poll", result["poll"])]
    if result.get("peer"):
        rows.append(("django-helpdesk get_email", result["peer"]))
    for name, r in rows:
        spread = f"{r['msgs_per_s']:.0f} ({r['msgs_per_s_min']:.0f}-{r['msgs_per_s_max']:.0f})"
        ratio = f"{r['ratio']:.3f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})" if "ratio" in r else "1"
        print(f"{name:<26}{spread:>22}{ratio:>18}{r['cpu_ms_per_msg']:>12.2f}{r['peak_rss_mb']:>13.1f}"
              f"{r['peak_tree_rss_mb']:>13.1f}")
    print(f"poll summary: {result['poll_summary']}")


if __name__ == "__main__":
    main()
