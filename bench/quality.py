"""Detection quality on public development sets, beside VADER on the same rows, in one run.

Usage (every set is optional; give the ones you have)::

    .venv/bin/python bench/quality.py \\
        --goemotions /work/shared/corpus/goemotions/dev.tsv \\
        --airline /work/shared/corpus/airline/airline-dev.csv \\
        --banking /work/shared/corpus/intents/banking77-train.csv \\
        --enron /work/shared/corpus/business-mail/enron-dev \\
        [--rules rules] [--json]

The project never depends on these files: they are arguments, read in place and
never copied into the repository.

* ``--goemotions``: GoEmotions' ``dev.tsv`` (text, label ids, id) or a derived
  ``*-angry.csv`` (``text,angry``). Anger-or-annoyance (ids 2, 3) is ``angry``;
  from the TSV, intensity is graded 1.0 for anger, 0.5 for annoyance alone, 0
  otherwise, and compared with the anger score (Pearson); the same on the
  angry rows alone (``goemotions (angry rows)``) says whether anger ranks above
  annoyance, without the calm rows that dominate the first figure.
* ``--airline``: ``text,complaint`` (short messages to airlines).
* ``--banking``: BANKING77 with ``complaint`` (empty rows not scored),
  ``archetype`` and ``intent``. The set's ``archetype`` calls both closing an
  account and asking for a refund ``cancelling``; in docs/handling.md cancelling
  means the customer is *leaving*, and a refund request is an ask (asks.py finds
  it), not leaving. So cancelling is scored against the intents that mean
  leaving (``LEAVING_INTENTS``: ``terminate_account``) -- the figure that says
  whether the archetype does its job -- and, beside it, against the set's own
  label; and the ``refund`` ask's recall on the ``request_refund`` rows (a
  refund request is found as an ask). The set files a request to cancel a purchase
  under ``request_refund``; the project agrees that cancelling one order, purchase or
  payment is an ask (``cancel``), not leaving, so those rows are not cancelling.
* ``--enron``: a folder of raw ``.eml`` files with ``labels.csv``
  (``file,angry``): copied into a temporary Maildir's ``new/`` and polled with
  the real pipeline (``triage poll``), then the stored detections are counted:
  the share flagged angry (any level above calm), how many are furious, how many
  complaints, and anger's precision/recall/F1 against the labels.

Every CSV set is also reported on its *held-back half* (``held`` rows: the
first byte of the SHA-256 of the text is odd), the half left out while the
rules were tuned on the other; GoEmotions is tuned on ``train.tsv`` and
reported on ``dev.tsv``, so it is not split.

The CSV sets go through ``triage eval`` (one call, several files) from this
checkout. VADER (``pip install .[bench]``) scores the same rows: a compound
score of -0.05 or lower (VADER's documented cut-off for negative) is angry and a
complaint; ``max(0, -compound)`` is its intensity; it has no notion of intents.
On the Enron mail it reads the same stored text (the new words) the rules read.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from triage.evaluate import macro_f1, pearson, prf, read_labelled_csv  # noqa: E402

VADER_NEGATIVE = -0.05
LEAVING_INTENTS = frozenset({"terminate_account"})  # BANKING77 intents that mean the customer is leaving


def held_back(text: str) -> bool:
    """The half of a set left out while tuning: the first byte of the text's SHA-256 is odd."""
    return bool(hashlib.sha256(text.encode("utf-8")).digest()[0] & 1)


def held_half(source: Path, out: Path) -> Path:
    """The held-back rows of a ``text,...`` CSV."""
    with open(source, newline="", encoding="utf-8") as handle, open(out, "w", newline="", encoding="utf-8") as dest:
        reader = csv.DictReader(handle)
        writer = csv.DictWriter(dest, fieldnames=list(reader.fieldnames or ()))
        writer.writeheader()
        writer.writerows(row for row in reader if held_back(row["text"]))
    return out


def banking_csvs(source: Path, work: Path) -> dict[str, Path]:
    """BANKING77 as three eval CSVs: cancelling as leaving (all rows, held half), and the
    set's own cancelling label, with the refund ask judged on its refund requests (all rows)."""
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out: dict[str, Path] = {}
    for name, keep in (("banking77", lambda r: True), ("banking77 (held half)", lambda r: held_back(r["text"]))):
        path = work / f"{name.split()[0]}-{'held' if 'held' in name else 'all'}-leaving.csv"
        with open(path, "w", newline="", encoding="utf-8") as dest:
            writer = csv.writer(dest)
            writer.writerow(["text", "complaint", "archetype"])
            for r in rows:
                if keep(r):
                    writer.writerow([r["text"], r["complaint"], "cancelling" if r["intent"] in LEAVING_INTENTS else ""])
        out[name] = path
    path = work / "banking77-label.csv"
    with open(path, "w", newline="", encoding="utf-8") as dest:
        writer = csv.writer(dest)
        writer.writerow(["text", "archetype", "asks"])
        for r in rows:
            # asks are judged on the refund requests only: recall of the refund ask there
            refund = "refund" if r["intent"] == "request_refund" else "-"
            writer.writerow([r["text"], "cancelling" if r["archetype"].strip() == "cancelling" else "", refund])
    out["banking77 (set's label)"] = path
    return out


def goemotions_csvs(source: Path, work: Path) -> dict[str, Path]:
    """``source`` as triage eval's CSVs: the derived CSV itself, or from the TSV every row with angry
    and intensity, and beside it the angry rows alone, where intensity's Pearson says only whether
    anger ranks above annoyance (the ordering a queue sorted by intensity needs)."""
    if source.suffix != ".tsv":
        return {"goemotions": source}
    paths = {"goemotions": work / "goemotions.csv", "goemotions (angry rows)": work / "goemotions-angry.csv"}
    with (open(source, encoding="utf-8") as handle, open(paths["goemotions"], "w", newline="", encoding="utf-8") as
          every, open(paths["goemotions (angry rows)"], "w", newline="", encoding="utf-8") as angry):
        writers = csv.writer(every), csv.writer(angry)
        for writer in writers:
            writer.writerow(["text", "angry", "intensity"])
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            ids = {int(i) for i in parts[1].split(",") if i.strip().isdigit()}
            grade = 1.0 if 2 in ids else 0.5 if 3 in ids else 0.0
            for writer in writers if grade else writers[:1]:
                writer.writerow([parts[0], int(grade > 0), grade])
    return paths


def write_config(directory: Path, rules: Path, maildir: Path | None = None) -> Path:
    mailbox = f'[mailbox]\nsource = "maildir"\npath = "{maildir}"\n' if maildir else ""
    config = directory / "triage.toml"
    config.write_text(
        f"{mailbox}"
        '[support]\naddress = "support@example.com"\nname = "Bench Shop"\nagent = "Sam"\n'
        f'[store]\npath = "{directory / "triage.db"}"\n'
        f'[paths]\nrules = "{rules}"\n'
        "[poll]\nrate_limit = 1000000\n",
        encoding="utf-8",
    )
    return config


def triage_cli(config: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "triage", "--config", str(config), *args],
        capture_output=True, text=True, env=env, cwd=config.parent,
    )
    if done.returncode != 0:
        raise SystemExit(f"triage {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def vader() -> Any:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise SystemExit("VADER is not installed: pip install '.[bench]' (vaderSentiment)") from None
    return SentimentIntensityAnalyzer()


def vader_scores(analyzer: Any, texts: list[str]) -> list[float]:
    return [float(analyzer.polarity_scores(t)["compound"]) for t in texts]


def vader_report(analyzer: Any, path: Path) -> dict[str, Any]:
    """The metrics triage eval reports, computed from VADER's compound score on the same rows."""
    texts, _, labels = read_labelled_csv(path)
    compound = vader_scores(analyzer, texts)
    out: dict[str, Any] = {"n": len(texts)}
    for name in ("angry", "complaint"):
        pairs = [(bool(lab[name]), c <= VADER_NEGATIVE) for lab, c in zip(labels, compound, strict=True)
                 if lab.get(name) is not None]
        if pairs:
            gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
            out[name] = {**prf(gold, pred), "macro_f1": macro_f1(gold, pred)}
    graded = [(float(lab["intensity"]), max(0.0, -c)) for lab, c in zip(labels, compound, strict=True)
              if lab.get("intensity") is not None]
    if graded:
        out["intensity"] = {"pearson": pearson([g for g, _ in graded], [p for _, p in graded])}
    return out


def enron(directory: Path, rules: Path, work: Path, analyzer: Any) -> dict[str, Any]:
    """Poll the folder's .eml files through a real Maildir and count what the pipeline flagged."""
    labels: dict[str, bool] = {}
    with open(directory / "labels.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            labels[row["file"]] = row["angry"].strip() == "1"
    maildir = work / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for name in labels:
        shutil.copyfile(directory / name, maildir / "new" / name)
    config = write_config(work, rules, maildir)
    summary = json.loads(triage_cli(config, "poll", "--json"))
    db = sqlite3.connect(work / "triage.db")
    rows = db.execute(
        "SELECT m.source_key, m.subject, m.text, d.level, d.complaint, d.archetypes"
        " FROM messages m JOIN detections d ON d.message_id = m.id"
    ).fetchall()
    db.close()
    detected = {key: (subject, text, level, bool(complaint), json.loads(arche))
                for key, subject, text, level, complaint, arche in rows}
    keys = [k for k in labels if k in detected]
    gold = [labels[k] for k in keys]
    angry = [detected[k][2] != "calm" for k in keys]
    compound = vader_scores(analyzer, [f"{detected[k][0]}\n\n{detected[k][1]}" for k in keys])
    v_angry = [c <= VADER_NEGATIVE for c in compound]
    n = len(keys) or 1
    return {
        "n": len(keys),
        "labelled_angry": sum(gold),
        "fetched": summary.get("fetched"),
        "triage": {
            "angry_share": round(sum(angry) / n, 4),
            "furious": sum(1 for k in keys if detected[k][2] == "furious"),
            "complaints": sum(1 for k in keys if detected[k][3]),
            "cancelling": sum(1 for k in keys if "cancelling" in detected[k][4]),
            "angry": prf(gold, angry),
        },
        "vader": {"angry_share": round(sum(v_angry) / n, 4), "angry": prf(gold, v_angry)},
    }


def _f(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table(result: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, str, Any, Any]] = []
    for name, data in result["sets"].items():
        t, v = data["triage"], data.get("vader", {})
        if name == "enron":
            rows += [
                (name, f"flagged angry (share, n={data['n']}, {data['labelled_angry']} labelled)",
                 t["angry_share"], v.get("angry_share")),
                (name, "furious (count)", t["furious"], None),
                (name, "complaints (count)", t["complaints"], None),
                (name, "cancelling (count)", t["cancelling"], None),
                (name, "angry P / R / F1", _prf(t["angry"]), _prf(v.get("angry"))),
            ]
            continue
        for label in ("angry", "complaint"):
            if label in t and not name.endswith("(angry rows)"):  # every row is angry there: only the ordering counts
                rows.append((name, f"{label} P / R / F1 (n={t[label]['n']})", _prf(t[label]), _prf(v.get(label))))
                if label == "complaint":
                    rows.append((name, "complaint macro-F1", t[label]["macro_f1"], v.get(label, {}).get("macro_f1")))
        if "intensity" in t:
            rows.append((name, "intensity Pearson", t["intensity"]["pearson"], v.get("intensity", {}).get("pearson")))
        cancel = t.get("archetype", {}).get("per_class", {}).get("cancelling")
        if cancel:
            gold = "leaving: " + ", ".join(sorted(LEAVING_INTENTS)) if name.startswith("banking77") and "label" not in name \
                else "the set's label"
            rows.append((name, f"cancelling P / R / F1 (n={cancel['n']}, {gold})", _prf(cancel), None))
        refund = t.get("asks", {}).get("per_kind", {}).get("refund")
        if refund and "label" in name:
            rows.append((name, f"refund ask recall on request_refund (n={refund['support']})", refund["recall"], None))
    head = ("set", "figure", "triage", "VADER")
    cells = [head, *((a, b, _f(c), _f(d)) for a, b, c, d in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(4)]
    return ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in cells]


def _prf(m: dict[str, Any] | None) -> str | None:
    if not m:
        return None
    return f"{m['precision']:.2f} / {m['recall']:.2f} / {m['f1']:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--goemotions", type=Path, help="GoEmotions dev.tsv (or a derived *-angry.csv)")
    parser.add_argument("--airline", type=Path, help="airline CSV with text,complaint")
    parser.add_argument("--banking", type=Path, help="BANKING77 CSV with text,complaint,archetype")
    parser.add_argument("--enron", type=Path, help="folder of .eml files with labels.csv")
    parser.add_argument("--rules", type=Path, default=ROOT / "rules", help="rules folder (default: the shipped one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not any((args.goemotions, args.airline, args.banking, args.enron)):
        parser.error("give at least one development set")
    analyzer = vader()
    result: dict[str, Any] = {"sets": {}}
    with tempfile.TemporaryDirectory(prefix="triage-quality-") as tmp:
        work = Path(tmp)
        sets: dict[str, Path] = {}
        if args.goemotions:
            sets.update(goemotions_csvs(args.goemotions, work))
        if args.airline:
            sets["airline"] = args.airline
            sets["airline (held half)"] = held_half(args.airline, work / "airline-held.csv")
        if args.banking:
            sets.update(banking_csvs(args.banking, work))
        if sets:
            config = write_config(work, args.rules.resolve())
            out = json.loads(triage_cli(config, "eval", *map(str, sets.values()), "--json"))
            reports = out.get("files", [out])
            result["rules_version"] = reports[0].get("rules_version")
            for (name, path), report in zip(sets.items(), reports, strict=True):
                result["sets"][name] = {"triage": report, "vader": vader_report(analyzer, path)}
        if args.enron:
            poll_dir = work / "enron"
            poll_dir.mkdir()
            data = enron(args.enron, args.rules.resolve(), poll_dir, analyzer)
            result["sets"]["enron"] = {"n": data["n"], "labelled_angry": data["labelled_angry"],
                                       "triage": data["triage"], "vader": data["vader"]}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"rules version {result.get('rules_version', '?')}")
        print("\n".join(table(result)))
        if any(name.startswith("banking77") for name in result["sets"]):
            print(f"banking77: cancelling means leaving ({', '.join(sorted(LEAVING_INTENTS))}), as docs/handling.md has it;"
                  " the set's label also counts refund requests, which are asks (the refund ask's recall is shown)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
