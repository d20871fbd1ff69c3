"""``triage report``: what the owner needs to see (docs/handling.md step 9, "Evaluate").

``build`` turns the store into one plain dict (what ``--json`` prints and
``report_html`` draws); ``text`` formats it for a terminal. Definitions:

- a case belongs to the period when its first customer message arrived in
  it (``--since`` 00:00 to the end of ``--until``, in the policy's time zone);
- time to first response: first message received -> first reply sent;
  time to resolution: first message received -> resolved (``triage resolve``);
  hours, median and 90th percentile by linear interpolation between the
  closest ranks (numpy's default);
- SLA breach rate: first-response deadlines of the period's cases that were
  met late or are still open past their due time, over those met or due;
- promises and check-ins: those falling due in the period; a promise is kept
  on time when it was marked kept (or its case resolved) by its due time;
- anger drivers: among the period's messages that were annoyed or worse,
  the products they named (facts) and the words that drove the score
  (evidence spans), counted once per message;
- chronic customers: two or more cases in the period.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

from triage.detect import LEVELS
from triage.followups.policy import Policy
from triage.store import CaseStatus, DeadlineClosed, DeadlineKind, DraftKind, DraftStatus, Store, iso

TOP = 10


def quantile(values: list[float], q: float) -> float | None:
    """The q-quantile by linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _hours(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() / 3600


def _summary(values: list[float]) -> dict[str, Any]:
    median = statistics.median(values) if values else None
    p90 = quantile(values, 0.9)
    return {"count": len(values), "median_hours": None if median is None else round(median, 2),
            "p90_hours": None if p90 is None else round(p90, 2)}


def _top(counter: Counter[str], key: str) -> list[dict[str, Any]]:
    return [{key: k, "count": n} for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]


def build(store: Store, policy: Policy, since: date | None, until: date | None, now: datetime) -> dict[str, Any]:
    """Every figure of the report for the days ``since``..``until`` (both included)."""
    today = policy.local(now).date()
    until = until or today
    since = since or until - timedelta(days=29)
    start = datetime.combine(since, time(0), policy.tz)
    end = datetime.combine(until + timedelta(days=1), time(0), policy.tz)
    lo, hi = iso(start) or "", iso(end) or ""
    cases = store.report_cases(start, end)
    ids = {c["id"] for c in cases}

    by_day: dict[str, Counter[str]] = {}
    for offset in range((until - since).days + 1):
        by_day[(since + timedelta(days=offset)).isoformat()] = Counter()
    by_level: Counter[str] = Counter()
    by_archetype: Counter[str] = Counter()
    for c in cases:
        day = policy.local(datetime.fromisoformat(c["started_at"])).date().isoformat()
        by_day.setdefault(day, Counter())[c["level"]] += 1
        by_level[c["level"]] += 1
        for name in c["archetypes"] or ["none"]:
            by_archetype[name] += 1

    response = [h for c in cases if (h := _hours(c["started_at"], c["first_response_at"])) is not None]
    resolution = [h for c in cases if (h := _hours(c["started_at"], c["resolved_at"])) is not None]

    deadlines = store.report_deadlines(DeadlineKind)
    first = [d for d in deadlines if d.kind == DeadlineKind.FIRST_RESPONSE and d.case_id in ids]
    decided = [d for d in first if d.done_at or d.due <= iso(now)]
    breached = [d for d in decided if (d.done_at or iso(now)) > d.due and d.closed != DeadlineClosed.CANCELLED]
    promises = [d for d in deadlines if d.kind == DeadlineKind.PROMISE and lo <= d.due < hi]
    kept = [d for d in promises if d.done_at and d.closed in (DeadlineClosed.KEPT, DeadlineClosed.RESOLVED, "done")]
    on_time = [d for d in kept if d.done_at is not None and d.done_at <= d.due]
    checkins = [d for d in deadlines if d.kind == DeadlineKind.FOLLOW_UP and lo <= d.due < hi]
    sent_for = {int(m.group(1)) for d in store.report_drafts(DraftKind.CHECK_IN)
                if d.status == DraftStatus.SENT and (m := re.search(r"\.f(\d+)@", d.outgoing_message_id))}
    sent = [d for d in checkins if d.id in sent_for]

    detections = store.report_detections(start, end)
    products: Counter[str] = Counter()
    phrases: Counter[str] = Counter()
    topics: Counter[str] = Counter()
    for d in detections:
        if d["level"] == "calm":
            continue
        if d["topic"]:
            topics[d["topic"]] += 1
        products.update({" ".join(str(p).lower().split()) for p in d["facts"].get("products", [])})
        phrases.update({" ".join(str(e.get("text", "")).lower().split()) for e in d["evidence"]
                        if e.get("weight", 0) > 0 and e.get("kind") not in ("negation",)} - {""})

    per_customer: dict[str, dict[str, Any]] = {}
    for c in cases:
        entry = per_customer.setdefault(c["customer"], {"customer": c["customer"], "name": c["customer_name"],
                                                        "cases": 0, "angry_cases": 0, "chronic_flag": False})
        entry["cases"] += 1
        entry["angry_cases"] += c["level"] in ("angry", "furious")
        entry["chronic_flag"] |= "chronic" in c["archetypes"]
    chronic = sorted((e for e in per_customer.values() if e["cases"] >= 2),
                     key=lambda e: (-e["cases"], e["customer"]))[:TOP]

    outcomes = Counter(c["outcome"] or (c["status"] if CaseStatus(c["status"]).finished else "open")
                       for c in cases)
    causes = Counter(" ".join(c["root_cause"].split()).lower() for c in cases if c["root_cause"])
    return {
        "period": {"since": since.isoformat(), "until": until.isoformat(), "timezone": policy.zone,
                   "generated_at": iso(now)},
        "volume": {
            "cases": len(cases),
            "by_level": {lvl: by_level.get(lvl, 0) for lvl in LEVELS},
            "by_archetype": dict(sorted(by_archetype.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_day": [{"day": day, "cases": sum(cnt.values()), **{lvl: cnt.get(lvl, 0) for lvl in LEVELS}}
                       for day, cnt in sorted(by_day.items())],
        },
        "first_response": {**_summary(response), "hours": [round(h, 2) for h in sorted(response)]},
        "resolution": _summary(resolution),
        "sla": {"deadlines": len(decided), "breached": len(breached),
                "breach_rate": round(len(breached) / len(decided), 4) if decided else None},
        "promises": {"due": len(promises), "kept": len(kept), "kept_on_time": len(on_time),
                     "open": len([d for d in promises if not d.done_at]),
                     "on_time_rate": round(len(on_time) / len(promises), 4) if promises else None},
        "check_ins": {"due": len(checkins), "drafted": len([d for d in checkins if d.closed == DeadlineClosed.DRAFTED]),
                      "sent": len(sent), "cancelled": len([d for d in checkins if d.closed == DeadlineClosed.CANCELLED]),
                      "pending": len([d for d in checkins if not d.done_at])},
        "outcomes": dict(sorted(outcomes.items())),
        "root_causes": _top(causes, "cause"),
        "anger_drivers": {"topics": _top(topics, "topic"), "products": _top(products, "product"),
                          "phrases": _top(phrases, "phrase")},
        "chronic_customers": chronic,
    }


def _fmt(hours: float | None) -> str:
    if hours is None:
        return "-"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def text(data: dict[str, Any]) -> str:
    """The report for a terminal."""
    v, p = data["volume"], data["period"]
    out = [f"Report {p['since']} to {p['until']} ({p['timezone']})", "",
           f"Cases: {v['cases']}   by level: " + ", ".join(f"{k} {n}" for k, n in v["by_level"].items()),
           "By archetype: " + (", ".join(f"{k} {n}" for k, n in v["by_archetype"].items()) or "-")]
    busiest = sorted(v["by_day"], key=lambda d: -d["cases"])[:3]
    if busiest and busiest[0]["cases"]:
        out.append("Busiest days: " + ", ".join(f"{d['day']} ({d['cases']})" for d in busiest if d["cases"]))
    fr, rs, sla = data["first_response"], data["resolution"], data["sla"]
    out += ["",
            (f"Time to first response: median {_fmt(fr['median_hours'])}, "
             f"90th percentile {_fmt(fr['p90_hours'])} ({fr['count']} answered)"),
            (f"Time to resolution:     median {_fmt(rs['median_hours'])}, "
             f"90th percentile {_fmt(rs['p90_hours'])} ({rs['count']} resolved)"),
            f"First-response SLA: {sla['breached']} of {sla['deadlines']} breached ({_pct(sla['breach_rate'])})"]
    pr, ci = data["promises"], data["check_ins"]
    out.append(f"Promises due: {pr['due']}, kept on time {pr['kept_on_time']} ({_pct(pr['on_time_rate'])}), "
               f"kept late {pr['kept'] - pr['kept_on_time']}, still open {pr['open']}")
    out.append(f"Check-ins due: {ci['due']}, drafted {ci['drafted']}, sent {ci['sent']}, "
               f"cancelled (customer wrote first) {ci['cancelled']}, not yet drafted {ci['pending']}")
    out.append("Outcomes: " + (", ".join(f"{k} {n}" for k, n in data["outcomes"].items()) or "-"))
    for title, rows, key in (("Top root causes", data["root_causes"], "cause"),
                             ("Topics drawing anger", data["anger_drivers"]["topics"], "topic"),
                             ("Products drawing anger", data["anger_drivers"]["products"], "product"),
                             ("Phrases driving anger", data["anger_drivers"]["phrases"], "phrase")):
        out += ["", f"{title}:"] + ([f"  {r['count']:>4}  {r[key]}" for r in rows] or ["     -"])
    out += ["", "Chronic customers (2+ cases):"]
    out += [f"  {c['cases']:>4}  {c['customer']}{' (flagged chronic)' if c['chronic_flag'] else ''}"
            for c in data["chronic_customers"]] or ["     -"]
    return "\n".join(out)
