"""Benchmark the review page's server time on a large store.

Builds (once per run, in a temp dir) a store with 10,000 pending drafts and
100,000 messages, then times the queue and case pages through Flask's test
client (server time only: no network, no browser). Prints a table, or with
--json {"queue_ms_median", "case_ms_median"}. Target: under 100 ms median.

    .venv/bin/python bench/web.py [--drafts N] [--messages N] [--requests N] [--json]

``build_store`` is also used by tests/test_web.py for queue-paging checks.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from triage import config, detect  # noqa: E402
from triage.store import (  # noqa: E402
    CaseStatus,
    DeadlineKind,
    DraftKind,
    DraftStatus,
    MessageStatus,
    Store,
    iso,
)

LEVELS = tuple(reversed(detect.LEVELS))
ARCHETYPES = ("aggressive", "meek", "high_roller", "chronic", "barnacle", "cancelling")
AGENTS = ("dana", "sam", "lee")
TEXT = (
    "Hello, my order #{n} of the PowerBlend 900 arrived broken AGAIN!!! This is the second time. "
    "The jug is cracked right through the base and you people never answer. I want a refund "
    "or a replacement by Friday, otherwise I will cancel my account and tell everyone. "
    "Regards, {name}\n"
)


def build_store(path: Path, drafts: int = 10_000, messages: int = 100_000, seed: int = 7) -> dict[str, float]:
    """Fill a new store at ``path``: ``drafts`` open cases each with one pending draft,
    ``messages`` messages spread over them (0.2% quarantined), detections, deadlines
    and events. Returns seconds per phase. Written in a few big transactions.
    """
    rng = random.Random(seed)
    now = datetime.now(UTC)
    customers = max(1, drafts // 4)
    per_case = max(1, messages // drafts)
    timings: dict[str, float] = {}
    store = Store(path)
    try:
        started = time.perf_counter()
        with store.write():
            store.bulk_insert("customers", (
                {"id": i + 1, "address": f"c{i}@customer.test", "name": f"Customer {i}", "messages": per_case * 4,
                 "complaints": 4, "first_seen": iso(now - timedelta(days=400)), "last_seen": iso(now)}
                for i in range(customers)
            ))
            store.bulk_insert("cases", (
                {"id": c + 1, "customer_id": c % customers + 1, "subject": f"Order #{10000 + c}: blender broken",
                 "status": CaseStatus.OPEN, "score": round(rng.random() * 3, 2), "level": rng.choice(LEVELS),
                 "archetypes": json.dumps(rng.sample(ARCHETYPES, rng.randint(0, 2))),
                 "opened_at": iso(now - timedelta(hours=rng.randint(1, 400))), "updated_at": iso(now)}
                for c in range(drafts)
            ))
        timings["customers+cases"] = time.perf_counter() - started

        started = time.perf_counter()
        with store.write():
            store.bulk_insert("messages", _messages(rng, now, drafts, messages, per_case, customers))
            store.bulk_insert("detections", (
                {"message_id": m + 1, "score": 1.5, "level": "angry", "angry": 1, "complaint": 1,
                 "archetypes": json.dumps([{"name": "aggressive", "rule": "aggressive.caps"}]),
                 "evidence": json.dumps([
                     {"start": 47, "end": 53, "text": "broken", "rule": "complaint.failure", "weight": 0.6, "kind": "complaint"},
                     {"start": 54, "end": 62, "text": "AGAIN!!!", "rule": "anger.caps_words", "weight": 0.35, "kind": "anger"},
                 ]), "facts": "{}", "rules_version": "bench"}
                for m in range(messages) if m % 500 != 499
            ))
        timings["messages+detections"] = time.perf_counter() - started

        started = time.perf_counter()
        with store.write():
            store.bulk_insert("deadlines", (
                {"case_id": c + 1, "kind": DeadlineKind.FIRST_RESPONSE, "due": iso(now + timedelta(minutes=rng.randint(-2880, 2880))),
                 "what": "", "created_at": iso(now)}
                for c in range(drafts)
            ))
            store.bulk_insert("drafts", (
                {"id": c + 1, "case_id": c + 1, "message_id": _last_message(c, per_case, messages), "kind": DraftKind.REPLY,
                 "template": "complaint.j2", "to_address": f"c{c % customers}@customer.test",
                 "subject": f"Re: Order #{10000 + c}: blender broken",
                 "body": f"Hi Customer {c % customers},\n\nI am sorry your blender arrived broken.\n\nSam\n",
                 "lint": "[]", "status": DraftStatus.PENDING, "outgoing_message_id": f"<case{c + 1}.bench@example.com>",
                 "created_at": iso(now - timedelta(minutes=rng.randint(1, 5000))), "updated_at": iso(now)}
                for c in range(drafts)
            ))
            store.bulk_insert("events", _events(rng, now, drafts))
        timings["drafts+deadlines+events"] = time.perf_counter() - started
        store.db.execute("ANALYZE")
    finally:
        store.close()
    return timings


def _last_message(case: int, per_case: int, messages: int) -> int:
    row = case * per_case + per_case  # 1-based id of the case's last message
    return min(row, messages) if row % 500 else row - 1


def _messages(rng: random.Random, now: datetime, drafts: int, total: int, per_case: int,
              customers: int) -> Iterator[dict[str, Any]]:
    for m in range(total):
        case = min(m // per_case, drafts - 1)
        quarantined = m % 500 == 499
        customer = case % customers
        text = TEXT.format(n=10000 + case, name=f"Customer {customer}")
        yield {
            "id": m + 1, "mailbox": "bench://inbox", "folder": "INBOX", "source_key": f"k{m}",
            "message_id": f"<m{m}@customer.test>", "sender": f"c{customer}@customer.test",
            "sender_name": f"Customer {customer}", "subject": f"Order #{10000 + case}: blender broken",
            "date": iso(now - timedelta(minutes=total - m)), "received_at": iso(now - timedelta(minutes=total - m)),
            "text": text, "full_text": text + "\n> earlier quoted text\n", "raw_hash": f"h{m}",
            "status": MessageStatus.QUARANTINED if quarantined else MessageStatus.TRIAGED,
            "error": "ParseError: bad MIME boundary" if quarantined else "",
            "customer_id": None if quarantined else customer + 1,
            "case_id": None if quarantined else case + 1,
        }


def _events(rng: random.Random, now: datetime, drafts: int) -> Iterator[dict[str, Any]]:
    for c in range(drafts):
        yield {"at": iso(now), "actor": "poll", "kind": "case-opened", "case_id": c + 1, "draft_id": None,
               "message_id": None, "detail": "{}"}
        yield {"at": iso(now), "actor": "poll", "kind": "draft-created", "case_id": c + 1, "draft_id": c + 1,
               "message_id": None, "detail": "{}"}
        if c % 7 == 0:
            yield {"at": iso(now), "actor": "dana", "kind": "case-assigned", "case_id": c + 1, "draft_id": None,
                   "message_id": None, "detail": json.dumps({"to": rng.choice(AGENTS)})}


def settings_for(directory: Path) -> Any:
    """Settings for a store in ``directory`` (a Maildir source that is never polled)."""
    (directory / "Maildir").mkdir(exist_ok=True)
    path = directory / "triage.toml"
    path.write_text('[mailbox]\nsource = "maildir"\npath = "Maildir"\n[store]\npath = "triage.db"\n', encoding="utf-8")
    return config.load(path)


def measure(directory: Path, requests: int, drafts: int, seed: int = 3) -> dict[str, list[float]]:
    """Milliseconds per request for each page variant, via Flask's test client."""
    from triage import agents
    from triage.web import create_app

    settings = settings_for(directory)
    with Store(settings.store_path) as store:
        agents.create(store, "bench", "bench-password")
    app = create_app(settings, secret="b" * 48)
    client = app.test_client()
    # Log in through the form, as a browser does: the cookie then names a server-side session.
    form = client.get("/login", base_url="http://127.0.0.1:8025").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    login = client.post("/login", data={"name": "bench", "password": "bench-password",
                                        "csrf_token": token.group(1) if token else ""},
                        base_url="http://127.0.0.1:8025")
    if login.status_code != 302 or "/login" in login.headers.get("Location", ""):
        raise SystemExit(f"bench login failed: HTTP {login.status_code}")
    rng = random.Random(seed)
    variants: dict[str, Any] = {
        "queue (default)": lambda: "/",
        "queue page 50, by due desc": lambda: "/?sort=due&dir=desc&page=50",
        "queue angry+aggressive": lambda: "/?level=angry&archetype=aggressive",
        "queue overdue, by customer": lambda: "/?overdue=1&sort=customer",
        "queue by owner, desc": lambda: "/?sort=owner&dir=desc",
        "search (two words)": lambda: f"/?q=order+{rng.randint(1, drafts)}",
        "case page": lambda: f"/drafts/{rng.randint(1, drafts)}",
    }
    results: dict[str, list[float]] = {}
    for name, path in variants.items():
        client.get(path(), base_url="http://127.0.0.1:8025")  # warm caches
        times = []
        for _ in range(requests):
            url = path()
            started = time.perf_counter()
            response = client.get(url, base_url="http://127.0.0.1:8025")
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
        results[name] = times
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print only the medians as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        phases = build_store(directory / "triage.db", args.drafts, args.messages)
        built = time.perf_counter() - started
        results = measure(directory, args.requests, args.drafts)
    queue_median = statistics.median(results["queue (default)"])
    case_median = statistics.median(results["case page"])
    if args.json:
        print(json.dumps({"queue_ms_median": round(queue_median, 2), "case_ms_median": round(case_median, 2)}))
        return
    print(f"store: {args.drafts} pending drafts, {args.messages} messages, built in {built:.1f}s "
          f"({', '.join(f'{k} {v:.1f}s' for k, v in phases.items())})")
    print(f"{'page':<30} {'requests':>8} {'median ms':>10} {'min ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, times in results.items():
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        print(f"{name:<30} {len(times):>8} {statistics.median(times):>10.1f} {min(times):>8.1f} {p95:>8.1f} "
              f"{max(times):>8.1f}")
    verdict = "ok" if max(queue_median, case_median) < 100 else "OVER TARGET"
    print(f"target: median under 100 ms for the queue and a case page: {verdict}")


if __name__ == "__main__":
    main()
