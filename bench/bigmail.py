"""Big-mail benchmark: peak RSS of `triage poll` over N messages of M MB in a real Dovecot.

The messages (a short complaint with an incompressible photo attached) are
APPENDed over IMAP. Two polls run as cron runs them, each a subprocess into a
fresh store, and each one's own peak RSS is read from wait4():
  (a) the default limit (max_message_mb = 25): every message is over it, so it
      is stored by its headers and size and quarantined as too large;
  (b) the limit raised above M: every message is fetched whole, in batches
      whose bodies stay under triage.mailbox.BATCH_BYTES, parsed and triaged.

Usage: python bench/bigmail.py [--messages 40] [--mb 30] [--json]
Target: peak RSS under 600 MB for both polls (it grew by ~96 MB per message
before fetches were bounded by bytes).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))

from servers import Dovecot  # noqa: E402

USER, PASSWORD = "support@example.com", "secret"


def big_message(i: int, mb: int) -> bytes:
    """A customer's complaint with a photo attached, ``mb`` MB in all (random bytes: no compression helps)."""
    photo = base64.encodebytes(os.urandom(mb * 1024 * 1024 * 3 // 4))
    head = (
        f"From: Customer {i} <customer{i}@example.net>\r\nTo: {USER}\r\n"
        f"Subject: Photos of the broken blender, order #{48000 + i}\r\n"
        f"Date: Fri, 20 Nov 2026 09:{i % 60:02d}:00 +0000\r\nMessage-ID: <bigmail.{i}.{time.time_ns()}@example.net>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "My blender arrived broken and nobody answers. This is unacceptable, I want a refund. Photos attached.\r\n"
        "--b\r\nContent-Type: image/jpeg; name=\"broken.jpg\"\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=\"broken.jpg\"\r\n\r\n"
    ).encode()
    return head + photo.replace(b"\n", b"\r\n") + b"\r\n--b--\r\n"


def fill(server: Dovecot, count: int, mb: int) -> float:
    """APPEND ``count`` messages over one IMAP connection; seconds taken."""
    start = time.perf_counter()
    with server.client() as c:
        for i in range(count):
            c.append("INBOX", big_message(i, mb))
    return time.perf_counter() - start


def polled(server: Dovecot, work: Path, limit_mb: int | None) -> dict[str, object]:
    """`triage poll --json` into a fresh store in ``work``: its summary, seconds and own peak RSS."""
    work.mkdir()
    limit = f"max_message_mb = {limit_mb}\n" if limit_mb else ""
    config = work / "triage.toml"
    config.write_text(
        f'[mailbox]\nsource = "imap"\nhost = "{server.host}"\nport = {server.port}\nsecurity = "none"\n'
        f'username = "{USER}"\npassword_env = "BENCH_PW"\ntimeout = 120\n{limit}[store]\npath = "triage.db"\n'
    )
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "triage", "--config", str(config), "poll", "--json"],
            stdout=out, stderr=err, env={**os.environ, "BENCH_PW": PASSWORD},
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"triage poll failed ({proc.returncode}): {stderr}")
    return {
        "max_message_mb": limit_mb or 25,
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "summary": json.loads(stdout),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--mb", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with Dovecot({USER: PASSWORD}) as server, tempfile.TemporaryDirectory() as tmp:
        append_s = fill(server, args.messages, args.mb)
        default = polled(server, Path(tmp) / "default", None)
        raised = polled(server, Path(tmp) / "raised", args.mb + 10)
    result = {"messages": args.messages, "mb": args.mb, "append_seconds": round(append_s, 1),
              "default_limit": default, "raised_limit": raised}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.messages} messages of {args.mb} MB appended in {append_s:.0f} s")
    for name, run in (("default limit", default), ("limit raised", raised)):
        print(f"poll, {name} (max_message_mb = {run['max_message_mb']}): peak RSS {run['peak_rss_mb']:.0f} MB, "
              f"{run['seconds']:.0f} s; {run['summary']}")


if __name__ == "__main__":
    main()
