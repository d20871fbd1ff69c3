"""Metrics of ``triage eval``: hand-checked values and the report shape."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from triage.detect import ArchetypeHit, Detection
from triage.detect.engine import Detector
from triage.evaluate import (
    EvalDataError,
    confusion,
    evaluate_csv,
    evaluate_pairs,
    macro_f1,
    pearson,
    prf,
    ranks,
    spearman,
)

RULES = Path(__file__).resolve().parent.parent / "rules"


def test_prf_hand_checked() -> None:
    gold = [True, True, True, False, False, False]
    pred = [True, True, False, True, False, False]
    assert prf(gold, pred) == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "n": 6}
    assert prf([False, False], [False, False]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n": 2}


def test_macro_f1_averages_both_classes() -> None:
    gold = [True, True, False, False]
    pred = [True, False, False, False]
    # positive: P 1, R .5, F1 .6667; negative: P .6667, R 1, F1 .8
    assert macro_f1(gold, pred) == pytest.approx(0.7333, abs=1e-4)


def test_pearson_and_spearman() -> None:
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == 1.0
    assert pearson([1, 2, 3], [3, 2, 1]) == -1.0
    assert pearson([1, 1, 1], [1, 2, 3]) is None
    assert pearson([1], [1]) is None
    # monotone but not linear: Spearman 1, Pearson below 1
    x, y = [1, 2, 3, 4, 5], [1, 4, 9, 16, 100]
    assert spearman(x, y) == 1.0
    assert pearson(x, y) is not None and pearson(x, y) < 0.9  # type: ignore[operator]
    assert ranks([10, 20, 20, 30]) == [1.0, 2.5, 2.5, 4.0]
    # scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]) = 0.9486832980505138
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9487, abs=1e-4)


def test_confusion() -> None:
    table = confusion(["meek", "none", "meek"], ["meek", "meek", "none"])
    assert table == {"meek": {"meek": 1, "none": 1}, "none": {"meek": 1, "none": 0}}


def det(score: float, level: str, complaint: bool, *archetypes: str) -> Detection:
    return Detection(score, level, complaint, tuple(ArchetypeHit(a, f"{a}.x") for a in archetypes))


def test_evaluate_pairs_shape_and_missing_labels() -> None:
    detections = [det(0.9, "angry", True, "aggressive"), det(0.1, "calm", False), det(0.5, "annoyed", True, "meek")]
    labels = [
        {"angry": True, "intensity": 0.8, "complaint": True, "archetype": "aggressive"},
        {"angry": False, "intensity": 0.0, "complaint": None, "archetype": None},
        {"angry": None, "intensity": 0.3, "complaint": False, "archetype": "barnacle"},
    ]
    report = evaluate_pairs(detections, labels)
    assert report["angry"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "n": 2}
    assert report["intensity"]["n"] == 3 and report["intensity"]["spearman"] == 1.0
    assert report["complaint"]["n"] == 2 and set(report["complaint"]) == {"precision", "recall", "f1", "macro_f1", "n"}
    arche = report["archetype"]
    assert arche["accuracy"] == pytest.approx(0.6667, abs=1e-4) and arche["n"] == 3
    assert arche["confusion"]["barnacle"]["meek"] == 1
    assert arche["per_class"]["aggressive"]["f1"] == 1.0
    json.dumps(report)
    assert "angry" not in evaluate_pairs([det(0, "calm", False)], [{"complaint": True}])


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load(RULES)


def test_evaluate_csv_all_labels(tmp_path: Path, detector: Detector) -> None:
    long_text = "The kettle is fine. " * 10_000  # 200 KB field: beyond csv's default limit
    path = write_csv(
        tmp_path / "labelled.csv",
        ["text", "angry", "intensity", "complaint", "archetype", "sender"],
        [
            ["This is unacceptable, I am furious!", "1", "0.9", "1", "", ""],
            ["Do you ship to Norway?", "0", "0", "0", "", ""],
            ["Please close my account.", "0", "0.1", "0", "cancelling", ""],
            ["Our order arrived late.", "", "", "1", "high_roller", "buyer@bigcorp.test"],
            [long_text, "0", "0", "0", "none", ""],
        ],
    )
    report = evaluate_csv(path, detector)
    assert set(report) >= {"angry", "intensity", "complaint", "archetype"}
    assert report["angry"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "n": 4}
    assert report["archetype"]["accuracy"] == 1.0
    assert report["intensity"]["pearson"] > 0.8
    json.dumps(report)


def test_evaluate_csv_only_angry(tmp_path: Path, detector: Detector) -> None:
    path = write_csv(tmp_path / "a.csv", ["text", "angry"], [["I hate this so much", "1"], ["lovely", "0"]])
    report = evaluate_csv(path, detector)
    assert set(report) == {"n", "angry", "file", "rules_version"}


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        (["body", "angry"], ["x", "1"], "'text' column"),
        (["text", "mood"], ["x", "1"], "no label column"),
        (["text", "angry"], ["x", "maybe"], "column 'angry': expected 0 or 1"),
        (["text", "intensity"], ["x", "7"], "from 0 to 1"),
        (["text", "archetype"], ["x", "grumpy"], "unknown archetype 'grumpy'"),
    ],
)
def test_evaluate_csv_bad_data(
    tmp_path: Path, detector: Detector, header: list[str], row: list[str], message: str
) -> None:
    path = write_csv(tmp_path / "bad.csv", header, [row])
    with pytest.raises(EvalDataError, match=message):
        evaluate_csv(path, detector)


def test_evaluate_csv_missing_file(tmp_path: Path, detector: Detector) -> None:
    with pytest.raises(EvalDataError, match="cannot read"):
        evaluate_csv(tmp_path / "nope.csv", detector)
