"""Steady-state benchmark: the cron `triage poll` that finds no new mail, and the one that finds one.

With N messages (default 20,000) already triaged from a real Dovecot, times
the whole `triage poll` process, interpreter start included: with no new mail
(median of several runs), then with one new message each time (median of as
many runs). Each poll runs from compiled bytecode, as an installed package
does (a private ``PYTHONPYCACHEPREFIX``, whatever ``PYTHONDONTWRITEBYTECODE``
says); the backlog poll compiles it. CPU seconds (user + system, from wait4)
are printed beside the wall times: on a loaded machine they are the figure
that means something.

Usage: python bench/idle.py [--messages 20000] [--runs 7] [--json]
Targets: idle under 0.5 s (django-helpdesk: 0.54 s); one new message under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from backlog import PASSWORD, USER, Measured, fill, poll_process, write_config  # noqa: E402
from corpus import message, messages  # noqa: E402
from servers import Dovecot  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with Dovecot({USER: PASSWORD}) as server, tempfile.TemporaryDirectory() as tmp:
        env = {"PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
        fill(server, messages(args.messages))
        config = write_config(server, Path(tmp))
        backlog = poll_process(config, env)
        idle = [poll_process(config, env) for _ in range(args.runs)]
        one_new: list[Measured] = []
        for run in range(args.runs):
            server.append("INBOX", message(args.messages + 1 + run, random.Random(99 + run)))
            one_new.append(poll_process(config, env))
    fetched = [json.loads(m.output)["fetched"] for m in one_new]
    result = {
        "messages": args.messages,
        "idle_wall_s": round(statistics.median(m.wall_s for m in idle), 3),
        "idle_runs_s": [round(m.wall_s, 3) for m in idle],
        "idle_cpu_s": round(statistics.median(m.cpu_s for m in idle), 3),
        "one_new_wall_s": round(statistics.median(m.wall_s for m in one_new), 3),
        "one_new_runs_s": [round(m.wall_s, 3) for m in one_new],
        "one_new_cpu_s": round(statistics.median(m.cpu_s for m in one_new), 3),
        "one_new_fetched": fetched,
        "backlog_wall_s": round(backlog.wall_s, 1),
        "backlog_fetched": json.loads(backlog.output)["fetched"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'triaged beforehand':<26}{result['backlog_fetched']:>10} messages ({backlog.wall_s:.1f} s)")
    print(f"{'idle poll (median)':<26}{result['idle_wall_s']:>10.3f} s   CPU {result['idle_cpu_s']:.3f} s"
          f"   runs: {result['idle_runs_s']}")
    print(f"{'one new message (median)':<26}{result['one_new_wall_s']:>10.3f} s   CPU {result['one_new_cpu_s']:.3f} s"
          f"   runs: {result['one_new_runs_s']}")
    print(f"{'load average at the end':<26}{' '.join(map(str, result['load_average'])):>10}")


if __name__ == "__main__":
    main()
