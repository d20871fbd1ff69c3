"""Asks found on BANKING77's real customer queries: intents mapped onto ask kinds, scored by ``triage eval``.

Usage::

    .venv/bin/python bench/asks.py /work/shared/corpus/intents/banking77-train.csv [--rules rules] [--errors N] [--json]

The corpus is an argument, read in place and never copied into the repository.
Each intent below maps onto the asks its queries make; rows of other intents are
left out. A query holds one intent, so the gold set has one kind: a second ask a
query really makes ("I want to return it for a refund": return as well) counts as
a false positive, which makes the precision figures a lower bound.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INTENT_ASKS = {
    "request_refund": "refund",
    "terminate_account": "close_account",
    "cancel_transfer": "cancel",
    "card_arrival": "status",
    "card_delivery_estimate": "status",
    "pending_transfer": "status",
    "Refund_not_showing_up": "status",
    # plain questions for information, whatever they are about
    "exchange_rate": "information",
    "country_support": "information",
    "age_limit": "information",
    "supported_cards_and_currencies": "information",
    "fiat_currency_support": "information",
    "visa_or_mastercard": "information",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("banking", type=Path)
    parser.add_argument("--rules", type=Path, default=ROOT / "rules")
    parser.add_argument("--errors", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from triage import evaluate
    from triage.detect.engine import Detector

    with open(args.banking, newline="", encoding="utf-8") as handle:
        rows = [(r["text"], INTENT_ASKS[r["intent"].strip()]) for r in csv.DictReader(handle)
                if r["intent"].strip() in INTENT_ASKS]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "banking77-asks.csv"
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["text", "asks"])
            writer.writerows(rows)
        report = evaluate.evaluate_csv(path, Detector.load(args.rules), errors=args.errors)
    if args.json:
        print(json.dumps(report["asks"] | ({"errors": report.get("errors")} if args.errors else {}), indent=1))
        return 0
    m = report["asks"]
    print(f"{m['n']} queries  micro precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}  "
          f"exact {m['exact']:.3f}")
    for kind, k in m["per_kind"].items():
        print(f"  {kind:<14} P {k['precision']:.3f}  R {k['recall']:.3f}  F1 {k['f1']:.3f}  "
              f"(rows {k['support']}, tp {k['tp']}, fp {k['fp']}, fn {k['fn']})")
    for label, lists in (report.get("errors") or {}).items():
        if not label.startswith("asks:"):
            continue
        for kind in ("false_positives", "false_negatives"):
            for e in lists[kind]:
                print(f"{label} {kind[:14]}: {e['text']!r}  {e['rules'][-3:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
