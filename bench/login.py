"""Benchmark password guessing against the review page: login attempts per second accepted.

Starts the real ``triage serve`` on a loopback port over a new store with one
agent, then 4 threads (``--threads``) try wrong passwords, each thread from
its own session (it fetches /login for the CSRF token, as a browser would),
until ``--attempts`` attempts in all have been made or ``--seconds`` have
passed: it always stops by itself. An attempt is *accepted* when the server
checked the password (the page says "wrong password"), *refused* when it
answered 429 without checking it (backoff or lockout). ``--names N`` spreads
the guesses over N agent names (password spraying) instead of one.

    .venv/bin/python bench/login.py [--attempts N] [--threads N] [--seconds S] [--names N] [--json]

JSON: ``attempts``, ``accepted``, ``refused``, ``seconds``, ``accepted_per_s``,
``attempts_per_s``, ``guesses_per_day`` (accepted_per_s over a day).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(directory: Path, port: int, names: int) -> subprocess.Popen[bytes]:
    (directory / "triage.toml").write_text('[store]\npath = "triage.db"\n', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_PW": PASSWORD}
    base = [sys.executable, "-m", "triage", "--config", str(directory / "triage.toml")]
    for i in range(names):
        subprocess.run([*base, "agent", "add", f"agent{i}", "--password-env", "BENCH_PW"], env=env,
                       check=True, capture_output=True)
    server = subprocess.Popen([*base, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"triage serve did not start on port {port}")


def _guesser(port: int, names: int, budget: list[int], stop_at: float, counts: dict[str, int],
             lock: threading.Lock, seed: int) -> None:
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    n = seed
    while time.monotonic() < stop_at:
        with lock:
            if budget[0] <= 0:
                return
            budget[0] -= 1
        n += 1
        try:
            with opener.open(f"{base}/login", timeout=30) as page:
                token = TOKEN.search(page.read().decode())
            data = urllib.parse.urlencode({
                "csrf_token": token.group(1) if token else "", "name": f"agent{n % names}",
                "password": f"guess-{n:08d}",
            }).encode()
            with opener.open(f"{base}/login", data=data, timeout=30) as answer:
                body = answer.read().decode()
            kind = "accepted" if "wrong password" in body else "other"
        except urllib.error.HTTPError as exc:
            kind = "refused" if exc.code == 429 else f"http-{exc.code}"
        with lock:
            counts[kind] = counts.get(kind, 0) + 1


def run(attempts: int, threads: int, seconds: float, names: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="triage-login-bench-") as tmp:
        port = _free_port()
        server = _serve(Path(tmp), port, names)
        try:
            counts: dict[str, int] = {}
            lock = threading.Lock()
            budget = [attempts]
            started = time.monotonic()
            workers = [
                threading.Thread(target=_guesser, args=(port, names, budget, started + seconds, counts, lock, i * 10**6))
                for i in range(threads)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            elapsed = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(timeout=10)
    accepted = counts.get("accepted", 0)
    made = sum(counts.values())
    return {
        "attempts": made,
        "accepted": accepted,
        "refused": counts.get("refused", 0),
        "other": made - accepted - counts.get("refused", 0),
        "seconds": round(elapsed, 2),
        "attempts_per_s": round(made / elapsed, 2),
        "accepted_per_s": round(accepted / elapsed, 3),
        "guesses_per_day": round(accepted / elapsed * 86400),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=400, help="attempts in all (default 400)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0, help="stop after this long whatever the count")
    parser.add_argument("--names", type=int, default=1, help="spread guesses over this many agent names")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.attempts, args.threads, args.seconds, max(1, args.names))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>16}  {value}")


if __name__ == "__main__":
    main()
