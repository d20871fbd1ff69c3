"""Steady-state benchmark: the cron `triage poll` that finds no new mail.

With N messages (default 20,000) already triaged from a real Dovecot, times
the whole `triage poll` process, interpreter start included: first with no
new mail (median of several runs), then with one new message.

Usage: python bench/idle.py [--messages 20000] [--runs 7] [--json]
Targets: idle under 0.5 s (django-helpdesk: 0.54 s); one new message under 3 s.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from backlog import PASSWORD, USER, fill, timed_poll, write_config  # noqa: E402
from corpus import message, messages  # noqa: E402
from servers import Dovecot  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with Dovecot({USER: PASSWORD}) as server, tempfile.TemporaryDirectory() as tmp:
        fill(server, messages(args.messages))
        config = write_config(server, Path(tmp))
        backlog_s, first = timed_poll(config)
        idle = [timed_poll(config)[0] for _ in range(args.runs)]
        server.append("INBOX", message(args.messages + 1, random.Random(99)))
        one_new_s, summary = timed_poll(config)
    result = {
        "messages": args.messages,
        "idle_wall_s": round(statistics.median(idle), 3),
        "idle_runs_s": [round(t, 3) for t in idle],
        "one_new_wall_s": round(one_new_s, 3),
        "one_new_fetched": summary["fetched"],
        "backlog_wall_s": round(backlog_s, 1),
        "backlog_fetched": first["fetched"],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'triaged beforehand':<26}{first['fetched']:>10} messages ({backlog_s:.1f} s)")
    print(f"{'idle poll (median)':<26}{result['idle_wall_s']:>10.3f} s   runs: {result['idle_runs_s']}")
    print(f"{'poll with one new message':<26}{result['one_new_wall_s']:>10.3f} s")


if __name__ == "__main__":
    main()
