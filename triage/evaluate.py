"""Metrics for ``triage eval``: how well the detection rules agree with labelled data.

Pure code: ``evaluate_pairs`` compares Detections with labels; ``evaluate_csv``
reads a labelled CSV (the only I/O here) and runs a Detector over it.

CSV format: a header with ``text`` and any of

* ``angry``      0/1 (also true/false, yes/no) -- compared with ``Detection.angry``
* ``intensity``  a number from 0 to 1          -- compared with ``Detection.score``
* ``complaint``  0/1                           -- compared with ``Detection.complaint``
* ``archetype``  an archetype name, empty = none -- compared with the primary archetype
* ``asks``       the kinds asked for, '|'-separated (``refund|return``), empty = none,
                 ``-`` = not judged -- compared with ``Detection.ask_kinds``
* ``sender``     optional: the From address (customer lists need it)
* ``subject``    optional: the subject line, read as a line of the message

A cell left empty is not counted for that label (except ``archetype``, where
empty means "none"). The result has one key per label present::

    {"n": rows,
     "angry": {"precision", "recall", "f1", "n"},
     "intensity": {"pearson", "spearman", "n"},
     "complaint": {"precision", "recall", "f1", "macro_f1", "n"},
     "archetype": {"accuracy", "n", "confusion": {gold: {predicted: count}},
                   "per_class": {name: {"precision", "recall", "f1", "n"}}},
     "asks": {"precision", "recall", "f1", "n", "exact",
              "per_kind": {kind: {"precision", "recall", "f1", "support", "tp", "fp", "fn"}}}}

For ``asks`` each row's kinds are a set: precision and recall are micro-averaged
over every (row, kind) pair, ``exact`` is the share of rows whose set is right, and
``support`` is how many rows ask for that kind.

Undefined figures (no positives, constant input) are reported as 0.0 for
precision/recall/F1 and ``None`` for correlations.

With ``errors=N`` the report also has ``"errors"``: for each label, the N worst
false positives and false negatives (the most confident mistakes first), each
``{"text", "gold", "predicted", "score", "rules"}`` where ``rules`` lists the
rule ids that fired with a non-zero weight -- what an owner would change.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triage.detect import ARCHETYPES, Context, Detection
from triage.detect.asks import ASK_KINDS
from triage.errors import TriageError

if TYPE_CHECKING:
    from triage.detect.engine import Detector

NONE = "none"  # the archetype class of a message that matches none
LABELS = ("angry", "intensity", "complaint", "archetype", "asks")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


class EvalDataError(TriageError):
    """The labelled file cannot be read or has an invalid value (exit 2, like bad rules)."""

    exit_code = 2


# ---------------------------------------------------------------- metrics


def prf(gold: Sequence[bool], pred: Sequence[bool]) -> dict[str, float | int]:
    """Precision, recall and F1 of the positive class; 0.0 where undefined."""
    tp = sum(1 for g, p in zip(gold, pred, strict=True) if g and p)
    fp = sum(1 for g, p in zip(gold, pred, strict=True) if p and not g)
    fn = sum(1 for g, p in zip(gold, pred, strict=True) if g and not p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "n": len(gold)}


def macro_f1(gold: Sequence[bool], pred: Sequence[bool]) -> float:
    """Mean F1 of the positive and the negative class."""
    pos = prf(gold, pred)["f1"]
    neg = prf([not g for g in gold], [not p for p in pred])["f1"]
    return round((pos + neg) / 2, 4)


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r; None for fewer than two pairs or a constant series."""
    n = len(x)
    if n < 2 or n != len(y):
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return round(sxy / math.sqrt(sxx * syy), 4)


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mean_rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            out[order[k]] = mean_rank
        i = j + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson's r of the (tie-averaged) ranks."""
    if len(x) < 2 or len(x) != len(y):
        return None
    return pearson(ranks(x), ranks(y))


def confusion(gold: Sequence[str], pred: Sequence[str]) -> dict[str, dict[str, int]]:
    """{gold class: {predicted class: count}}, classes in a stable order."""
    classes = _classes(gold, pred)
    table = {g: {p: 0 for p in classes} for g in classes}
    for g, p in zip(gold, pred, strict=True):
        table[g][p] += 1
    return table


def _classes(gold: Sequence[str], pred: Sequence[str]) -> list[str]:
    seen = set(gold) | set(pred)
    known = [c for c in (*ARCHETYPES, NONE) if c in seen]
    return known + sorted(seen - set(known))


def per_class(gold: Sequence[str], pred: Sequence[str]) -> dict[str, dict[str, float | int]]:
    out: dict[str, dict[str, float | int]] = {}
    for cls in _classes(gold, pred):
        scores = prf([g == cls for g in gold], [p == cls for p in pred])
        scores["n"] = sum(1 for g in gold if g == cls)
        out[cls] = scores
    return out


def ask_scores(gold: Sequence[frozenset[str]], pred: Sequence[frozenset[str]]) -> dict[str, Any]:
    """Micro precision/recall/F1 over (row, kind) pairs, exact-set accuracy, and the same per kind."""
    kinds = sorted(set().union(*gold, *pred)) if gold else []
    per_kind: dict[str, dict[str, float | int]] = {}
    total = {"tp": 0, "fp": 0, "fn": 0}
    for kind in kinds:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if kind in g and kind in p)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if kind in p and kind not in g)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if kind in g and kind not in p)
        for key, value in (("tp", tp), ("fp", fp), ("fn", fn)):
            total[key] += value
        per_kind[kind] = {**_prf_counts(tp, fp, fn), "support": tp + fn, "tp": tp, "fp": fp, "fn": fn}
    exact = sum(1 for g, p in zip(gold, pred, strict=True) if g == p)
    return {**_prf_counts(total["tp"], total["fp"], total["fn"]), "n": len(gold),
            "exact": round(exact / len(gold), 4) if gold else 0.0, "per_kind": per_kind}


def _prf_counts(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


# ---------------------------------------------------------------- labels vs detections


def primary_archetype(detection: Detection) -> str:
    return detection.archetypes[0].name if detection.archetypes else NONE


def evaluate_pairs(detections: Sequence[Detection], labels: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Compare detections with labels (parsed values: bool, float, archetype str or None).

    ``labels[i]`` belongs to ``detections[i]``; a label key that is missing or
    None is not counted. Works for CSV rows and for labels agents stored with
    ``triage label`` alike. Only labels present in at least one row are reported.
    """
    if len(detections) != len(labels):
        raise ValueError(f"{len(detections)} detections but {len(labels)} label rows")
    report: dict[str, Any] = {"n": len(detections)}
    pairs = list(zip(detections, labels, strict=True))
    angry = [(bool(lab["angry"]), det.angry) for det, lab in pairs if lab.get("angry") is not None]
    if angry:
        report["angry"] = prf([g for g, _ in angry], [p for _, p in angry])
    intensity = [(float(lab["intensity"]), det.score) for det, lab in pairs if lab.get("intensity") is not None]
    if intensity:
        gold, pred = [g for g, _ in intensity], [p for _, p in intensity]
        report["intensity"] = {"pearson": pearson(gold, pred), "spearman": spearman(gold, pred), "n": len(gold)}
    complaint = [(bool(lab["complaint"]), det.complaint) for det, lab in pairs if lab.get("complaint") is not None]
    if complaint:
        gold_c, pred_c = [g for g, _ in complaint], [p for _, p in complaint]
        report["complaint"] = {**prf(gold_c, pred_c), "macro_f1": macro_f1(gold_c, pred_c)}
    arche = [(str(lab["archetype"] or NONE), primary_archetype(det)) for det, lab in pairs if "archetype" in lab]
    if arche:
        gold_a, pred_a = [g for g, _ in arche], [p for _, p in arche]
        right = sum(1 for g, p in arche if g == p)
        report["archetype"] = {
            "accuracy": round(right / len(arche), 4),
            "n": len(arche),
            "confusion": confusion(gold_a, pred_a),
            "per_class": per_class(gold_a, pred_a),
        }
    asks = [(frozenset(lab["asks"]), frozenset(det.ask_kinds)) for det, lab in pairs if lab.get("asks") is not None]
    if asks:
        report["asks"] = ask_scores([g for g, _ in asks], [p for _, p in asks])
    return report


# ---------------------------------------------------------------- CSV


def _flag(value: str, column: str, line: int) -> bool | None:
    value = value.strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise EvalDataError(f"line {line}: column '{column}': expected 0 or 1, got {value!r}")


def _number(value: str, column: str, line: int) -> float | None:
    if not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise EvalDataError(f"line {line}: column '{column}': expected a number from 0 to 1, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise EvalDataError(f"line {line}: column '{column}': expected a number from 0 to 1, got {value!r}")
    return number


def _ask_kinds(value: str, line: int) -> frozenset[str] | None:
    """'refund|return' -> {refund, return}; "" -> none asked; "-" -> not judged."""
    value = value.strip().lower()
    if value == "-":
        return None
    kinds = frozenset(k.strip() for k in value.split("|") if k.strip())
    for kind in sorted(kinds):
        if kind not in ASK_KINDS:
            raise EvalDataError(f"line {line}: column 'asks': unknown ask kind {kind!r} "
                                f"(expected '|'-separated kinds of: {', '.join(ASK_KINDS)})")
    return kinds


def read_labelled_csv(path: Path) -> tuple[list[str], list[Context], list[dict[str, Any]]]:
    """Texts, contexts (sender) and parsed labels of a labelled CSV; EvalDataError when invalid."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    texts: list[str] = []
    contexts: list[Context] = []
    labels: list[dict[str, Any]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            if "text" not in columns:
                raise EvalDataError(f"{path}: expected a header with a 'text' column, got {columns}")
            present = [c for c in LABELS if c in columns]
            if not present:
                raise EvalDataError(f"{path}: no label column (expected any of {', '.join(LABELS)})")
            for row in reader:
                row = {(k or "").strip(): v or "" for k, v in row.items()}
                line = reader.line_num
                label: dict[str, Any] = {}
                if "angry" in present:
                    label["angry"] = _flag(row["angry"], "angry", line)
                if "intensity" in present:
                    label["intensity"] = _number(row["intensity"], "intensity", line)
                if "complaint" in present:
                    label["complaint"] = _flag(row["complaint"], "complaint", line)
                if "archetype" in present:
                    name = row["archetype"].strip().lower() or None
                    if name is not None and name not in (*ARCHETYPES, NONE):
                        raise EvalDataError(f"{path}: line {line}: column 'archetype': unknown archetype {name!r}")
                    label["archetype"] = None if name == NONE else name
                if "asks" in present:
                    label["asks"] = _ask_kinds(row["asks"], line)
                texts.append(row["text"])
                contexts.append(Context(sender_address=row.get("sender", "").strip().lower(),
                                        subject=row.get("subject", "")))
                labels.append(label)
    except OSError as exc:
        raise EvalDataError(f"{path}: cannot read: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise EvalDataError(f"{path}: not a readable CSV file: {exc}") from None
    return texts, contexts, labels


def evaluate_csv(path: Path, detector: Detector, errors: int = 0) -> dict[str, Any]:
    """Run ``detector`` over a labelled CSV and report the metrics (shape in the module docstring)."""
    texts, contexts, labels = read_labelled_csv(Path(path))
    detections = detector.detect(texts, contexts)
    report = evaluate_pairs(detections, labels)
    report["file"] = str(path)
    report["rules_version"] = detector.rules_version
    if errors > 0:
        report["errors"] = worst_errors(texts, detections, labels, errors)
    return report


# ---------------------------------------------------------------- errors, for an owner tuning rules

_ERROR_TEXT = 300  # characters of a text shown in an error listing


def _fired(detection: Detection, kinds: frozenset[str] | None = None) -> list[str]:
    """Rule ids that fired with a non-zero weight (each once, in text order)."""
    seen: dict[str, None] = {}
    for ev in detection.evidence:
        if ev.weight and (kinds is None or ev.kind in kinds):
            seen.setdefault(ev.rule, None)
    return list(seen)


def _complaint_strength(detection: Detection) -> float:
    return round(sum(e.weight for e in detection.evidence if e.kind in ("complaint", "not_complaint")) + detection.score, 4)


def worst_errors(
    texts: Sequence[str], detections: Sequence[Detection], labels: Sequence[Mapping[str, Any]], n: int
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The ``n`` most confident false positives and false negatives per label.

    Confidence is the anger score for ``angry``, the complaint evidence plus the
    anger score for ``complaint``, and for an archetype the weight of its own
    evidence; a false positive ranks higher the stronger it fired, a false
    negative the weaker. Intensity has no errors in this sense and is left out.
    """
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def add(label: str, rows: list[tuple[float, int, Any, Any]]) -> None:
        fps = sorted((r for r in rows if r[3] and not r[2]), key=lambda r: (-r[0], r[1]))[:n]
        fns = sorted((r for r in rows if r[2] and not r[3]), key=lambda r: (r[0], r[1]))[:n]
        out[label] = {
            "false_positives": [_error_row(texts[i], detections[i], g, p, s) for s, i, g, p in fps],
            "false_negatives": [_error_row(texts[i], detections[i], g, p, s) for s, i, g, p in fns],
        }

    angry = [(d.score, i, bool(lab["angry"]), d.angry) for i, (d, lab) in enumerate(zip(detections, labels, strict=True))
             if lab.get("angry") is not None]
    if angry:
        add("angry", angry)
    complaint = [(_complaint_strength(d), i, bool(lab["complaint"]), d.complaint)
                 for i, (d, lab) in enumerate(zip(detections, labels, strict=True)) if lab.get("complaint") is not None]
    if complaint:
        add("complaint", complaint)
    classes = sorted({str(lab["archetype"]) for lab in labels if lab.get("archetype")}
                     | {a for d in detections for a in d.archetype_names})
    for cls in classes:
        rows = []
        for i, (d, lab) in enumerate(zip(detections, labels, strict=True)):
            if "archetype" not in lab:
                continue
            strength = sum(e.weight for e in d.evidence if e.rule.partition(".")[0] == cls)
            rows.append((round(strength, 4), i, lab["archetype"] == cls, primary_archetype(d) == cls))
        if rows:
            add(f"archetype:{cls}", rows)
    kinds = sorted({k for lab in labels for k in (lab.get("asks") or ())} | {k for d in detections for k in d.ask_kinds})
    for kind in kinds:
        rows = [(float(len([a for a in d.asks if a.kind == kind])), i, kind in lab["asks"], kind in d.ask_kinds)
                for i, (d, lab) in enumerate(zip(detections, labels, strict=True)) if lab.get("asks") is not None]
        if rows:
            add(f"asks:{kind}", rows)
    return out


def _error_row(text: str, detection: Detection, gold: Any, predicted: Any, score: float) -> dict[str, Any]:
    short = " ".join(text.split())
    if len(short) > _ERROR_TEXT:
        short = short[: _ERROR_TEXT - 1] + "…"
    rules = _fired(detection) + list(dict.fromkeys(a.rule for a in detection.asks))
    return {"text": short, "gold": gold, "predicted": predicted, "score": score, "rules": rules}


def evaluate_labels(rows: Sequence[Mapping[str, Any]], detector: Detector) -> dict[str, Any]:
    """Metrics of the current rules on agents' stored corrections (``Store.labelled_messages``).

    A label's ``angry`` of None was not judged; an ``archetype`` of None was not
    judged, and "none" means the agent said no archetype applies.
    """
    from triage.detect import Context

    texts = [str(r["text"]) for r in rows]
    contexts = [Context(sender_address=str(r["sender"])) for r in rows]
    labels: list[dict[str, Any]] = []
    for r in rows:
        label: dict[str, Any] = {"angry": None if r["angry"] is None else bool(r["angry"])}
        if r["archetype"] is not None:
            label["archetype"] = "" if r["archetype"] == NONE else r["archetype"]
        labels.append(label)
    report = evaluate_pairs(detector.detect(texts, contexts) if texts else [], labels)
    report["rules_version"] = detector.rules_version
    return report
