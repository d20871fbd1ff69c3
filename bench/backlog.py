"""Backlog benchmark: a first `triage poll` over N messages in a real Dovecot.

Measured in the same run, against the same server:
  (a) the floor: fetch every message's raw bytes over IMAP (BODY.PEEK[], batches
      of 200) and parse each with mail-parser, nothing else;
  (b) a full `triage poll` (a subprocess, as cron runs it) into a fresh store.
Prints messages/second for both, their ratio and the poll's peak RSS.

Usage: python bench/backlog.py --messages 20000 [--json]
Targets (2-core machine, N = 20,000): poll >= 0.5 x floor and >= 1,000 msgs/s;
peak RSS < 400 MB and flat in N.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from corpus import messages  # noqa: E402
from servers import Dovecot  # noqa: E402

USER, PASSWORD = "support@example.com", "secret"


def fill(server: Dovecot, raws: list[bytes]) -> None:
    """Write the messages straight into the user's Maildir (much faster than APPEND)."""
    box = server.mail_dir / USER
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    for i, raw in enumerate(raws):
        (box / "new" / f"{1790000000 + i}.M{i}P1.bench").write_bytes(raw.replace(b"\n", b"\r\n"))
    if os.geteuid() == 0:
        dv = pwd.getpwnam("dovecot")
        for path in [box, *box.rglob("*")]:
            os.chown(path, dv.pw_uid, dv.pw_gid)
    with server.client() as c:
        # Let Dovecot index the folder before anything is timed. A read-write SELECT also moves
        # the files from new/ to cur/, as any mail client that has opened the mailbox does;
        # never opened, Dovecot rescans new/ on every EXAMINE (see README, Performance).
        c.select_folder("INBOX", readonly=os.environ.get("BENCH_KEEP_NEW") == "1")
        c.search("ALL")


def floor(server: Dovecot) -> tuple[int, float]:
    import mailparser

    start = time.perf_counter()
    count = 0
    with server.client() as c:
        c.select_folder("INBOX", readonly=True)
        uids = sorted(c.search("ALL"))
        for i in range(0, len(uids), 200):
            for item in c.fetch(uids[i : i + 200], ["BODY.PEEK[]"]).values():
                mailparser.parse_from_bytes(item[b"BODY[]"])
                count += 1
    return count, time.perf_counter() - start


def write_config(server: Dovecot, work: Path) -> Path:
    config = work / "triage.toml"
    config.write_text(
        f'[mailbox]\nsource = "imap"\nhost = "{server.host}"\nport = {server.port}\nsecurity = "none"\n'
        f'username = "{USER}"\npassword_env = "BENCH_PW"\n[store]\npath = "triage.db"\n'
    )
    return config


def timed_poll(config: Path) -> tuple[float, dict[str, int]]:
    """Run `triage poll --json` as cron does; (wall seconds, summary)."""
    env = {**os.environ, "BENCH_PW": PASSWORD}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "triage", "--config", str(config), "poll", "--json"],
        capture_output=True, text=True, env=env, check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"triage poll failed ({done.returncode}): {done.stderr}")
    return elapsed, json.loads(done.stdout)


def poll(server: Dovecot, work: Path) -> tuple[dict[str, int], float, float]:
    elapsed, summary = timed_poll(write_config(server, work))
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return summary, elapsed, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    raws = messages(args.messages, args.seed)
    with Dovecot({USER: PASSWORD}) as server, tempfile.TemporaryDirectory() as tmp:
        fill(server, raws)
        n_floor, t_floor = floor(server)
        summary, t_poll, peak = poll(server, Path(tmp))
    result = {
        "messages": args.messages,
        "floor_msgs_per_s": round(n_floor / t_floor, 1),
        "poll_msgs_per_s": round(summary["fetched"] / t_poll, 1),
        "ratio": round((summary["fetched"] / t_poll) / (n_floor / t_floor), 3),
        "peak_rss_mb": round(peak, 1),
        "poll_summary": summary,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'messages':<22}{args.messages:>12}")
    print(f"{'floor (fetch+parse)':<22}{result['floor_msgs_per_s']:>12.1f} msgs/s")
    print(f"{'triage poll':<22}{result['poll_msgs_per_s']:>12.1f} msgs/s")
    print(f"{'ratio':<22}{result['ratio']:>12.3f}")
    print(f"{'poll peak RSS':<22}{result['peak_rss_mb']:>12.1f} MB")
    print(f"poll summary: {summary}")


if __name__ == "__main__":
    main()
