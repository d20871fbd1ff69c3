"""Detection rule files: the shipped ones load cleanly; broken ones fail with file, key and line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from triage.detect.engine import Detector
from triage.errors import RulesError

RULES = Path(__file__).resolve().parent.parent / "rules"


def test_shipped_rules_load_without_problems() -> None:
    detector = Detector.load(RULES)
    assert re.fullmatch(r"[0-9a-f]{12}", detector.rules_version)
    assert len(detector.rules.archetypes.precedence) == 6


def test_shipped_rules_readme_documents_every_file() -> None:
    readme = (RULES / "README.md").read_text(encoding="utf-8")
    for path in RULES.iterdir():
        if path.suffix in (".toml", ".csv") and path.name in {
            "anger.toml",
            "complaint.toml",
            "archetypes.toml",
            "facts.toml",
            "customers.csv",
        }:
            assert path.name in readme


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    return copy


def edit(rules: Path, name: str, old: str | None, new: str) -> int:
    """Replace ``old`` (or append when None) in a rule file; returns the line ``new`` starts on."""
    path = rules / name
    text = path.read_text(encoding="utf-8")
    if old is None:
        text = text.rstrip("\n") + "\n" + new
        at = len(text) - len(new)
    else:
        assert old in text, old
        at = text.index(old)
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return text.count("\n", 0, at) + 1


# (file, text to replace (None = append), replacement, expected fragments of the error, line offset or None)
BROKEN = [
    pytest.param(
        "anger.toml",
        "emphasis_amplifies = 1.0\n",
        "emphasis_amplifies = 9\n",
        ["anger.toml", "scoring.emphasis_amplifies"],
        None,
        id="emphasis-out-of-range",
    ),
    pytest.param(
        "anger.toml",
        "[levels]\n",
        "colour = 1\n\n[levels]\n",
        ["anger.toml", "key 'colour'", "unknown key"],
        0,
        id="unknown-top-key",
    ),
    pytest.param(
        "anger.toml",
        'id = "rage"\nweight = 1.2\n',
        'id = "rage"\nweight = 1.2\nwieght = 2\n',
        ["anger.toml", "key 'phrases[rage].wieght'", "unknown key"],
        2,
        id="unknown-entry-key",
    ),
    pytest.param(
        "anger.toml",
        'id = "rage"\nweight = 1.2\n',
        'id = "rage"\nweight = "high"\n',
        ["anger.toml", "key 'phrases[rage].weight'", "expected a number"],
        1,
        id="weight-wrong-type",
    ),
    pytest.param(
        "anger.toml",
        'id = "rage"\nweight = 1.2\n',
        'id = "rage"\nweight = 7\n',
        ["key 'phrases[rage].weight'", "from -3.0 to 3.0"],
        1,
        id="weight-out-of-range",
    ),
    pytest.param(
        "anger.toml",
        'id = "hate"\nweight = 0.6\nterms = [',
        'id = "hate"\nweight = 0.6\nterms = "hate"\nx = [',
        [
            "anger.toml",
            "phrases[hate]",
        ],
        None,
        id="terms-wrong-type",
    ),
    pytest.param(
        "anger.toml",
        None,
        '[[patterns]]\nid = "typo"\nweight = 0.5\npattern = [{LOWERR = "still"}]\n',
        ["anger.toml", "key 'patterns[typo].pattern'", "invalid token pattern", "LOWERR"],
        3,
        id="invalid-token-pattern",
    ),
    pytest.param(
        "anger.toml",
        None,
        '[[patterns]]\nid = "pos"\nweight = 0.5\npattern = [{POS = "VERB"}]\n',
        ["anger.toml", "key 'patterns[pos].pattern'", "blank spaCy pipeline", "POS"],
        3,
        id="pos-in-blank-pipeline",
    ),
    pytest.param(
        "anger.toml",
        None,
        '[[patterns]]\nid = "lemma"\nweight = 0.5\npattern = [{LEMMA = 3}]\n',
        ["anger.toml", "key 'patterns[lemma].pattern'", "LEMMA must be a word"],
        3,
        id="lemma-not-a-word",
    ),
    pytest.param(
        "complaint.toml",
        None,
        '[[patterns]]\nid = "pos"\nweight = 0.5\npattern = [{POS = "VERB"}, {LOWER = "late"}]\n',
        ["complaint.toml", "key 'patterns[pos].pattern'", "blank spaCy pipeline", "POS"],
        3,
        id="pos-in-blank-pipeline",
    ),
    pytest.param(
        "anger.toml",
        "regex = '!{2,}'",
        "regex = '!{2,}[a-'",
        ["anger.toml", "key 'regex[exclamations].regex'", "not a valid regular expression"],
        0,
        id="bad-regex",
    ),
    pytest.param(
        "facts.toml",
        None,
        "[[orders]]\nid = \"empty\"\nregex = 'x*'\n",
        ["facts.toml", "key 'orders[empty].regex'", "matches the empty string"],
        2,
        id="regex-matches-empty",
    ),
    pytest.param(
        "anger.toml",
        "annoyed = 0.42",
        "annoyed = 0.9",
        ["anger.toml", "key 'levels'", "out of order", "annoyed < angry < furious"],
        None,
        id="thresholds-out-of-order",
    ),
    pytest.param(
        "archetypes.toml",
        None,
        "[grumpy]\nmin_score = 1.0\n",
        ["archetypes.toml", "key 'grumpy'", "unknown archetype"],
        0,
        id="unknown-archetype-table",
    ),
    pytest.param(
        "archetypes.toml",
        '"chronic", "meek"]',
        '"chronic", "meek", "grumpy"]',
        ["archetypes.toml", "key 'precedence[6]'", "unknown archetype 'grumpy'"],
        None,
        id="unknown-archetype-precedence",
    ),
    pytest.param(
        "archetypes.toml",
        'excludes = ["aggressive"]',
        'excludes = ["agressive"]',
        ["archetypes.toml", "key 'meek.excludes'", "unknown archetype 'agressive'"],
        None,
        id="unknown-archetype-excludes",
    ),
    pytest.param(
        "archetypes.toml",
        'max_level = "annoyed"',
        'max_level = "cross"',
        ["archetypes.toml", "key 'meek.max_level'", "expected one of calm, annoyed, angry, furious"],
        0,
        id="unknown-level",
    ),
    pytest.param(
        "archetypes.toml",
        'history = { counts = "complaint"',
        "history = { counts = 3",
        ["archetypes.toml", "key 'chronic.history.counts'", "expected a non-empty string"],
        None,
        id="history-wrong-type",
    ),
    pytest.param(
        "archetypes.toml",
        'file = "customers.csv"',
        'file = "vip.csv"',
        ["archetypes.toml", "key 'high_roller.customers.file'", "not found"],
        None,
        id="missing-customer-file",
    ),
    pytest.param(
        "customers.csv",
        None,
        "just-one-column\n",
        ["customers.csv", "key 'row", "expected two columns"],
        0,
        id="customers-bad-row",
    ),
    pytest.param(
        "facts.toml",
        "[products]",
        "[products]\ntoaster-oven = 3",
        ["facts.toml", "key 'products.toaster-oven'", "list of non-empty strings"],
        1,
        id="product-wrong-type",
    ),
    pytest.param(
        "facts.toml",
        "[products]\n",
        '[products]\ngadget = ["gadgets", [{LOWERR = "gizmo"}]]\n',
        ["facts.toml", "key 'products.gadget[1]'", "invalid token pattern", "LOWERR"],
        1,
        id="product-invalid-token-pattern",
    ),
    pytest.param(
        "facts.toml",
        "[products]\n",
        '[products]\ngadget = [[{LEMMA = "gizmo"}]]\n',
        ["facts.toml", "key 'products.gadget[0]'", "blank spaCy pipeline", "LEMMA"],
        1,
        id="product-pattern-lemma",
    ),
    pytest.param(
        "facts.toml",
        "[products]\n",
        '[products]\ngrinder2 = [[{TEXT = {REGEX = "^BG-(\\\\d+$"}}]]\n',
        ["facts.toml", "key 'products.grinder2[0]'", "invalid token pattern", "not a valid regular expression"],
        1,
        id="product-pattern-bad-regex",
    ),
    pytest.param(
        "facts.toml",
        "[products]\n",
        '[products]\ngadget = ["gadgets", 3]\n',
        ["facts.toml", "key 'products.gadget[1]'", "a phrase", "token pattern"],
        1,
        id="product-item-wrong-type",
    ),
    pytest.param(
        "facts.toml",
        'exclude = ["kettle & crumb"]',
        "exclude = []",
        ["facts.toml", "key 'products.exclude'", "non-empty list"],
        0,
        id="product-exclude-empty",
    ),
    pytest.param(
        "facts.toml",
        None,
        '[[orders]]\nid = "kc"\npattern = [{SHAPE = 3}]\n',
        ["facts.toml", "key 'orders[kc].pattern'", "invalid token pattern", "SHAPE"],
        2,
        id="order-invalid-token-pattern",
    ),
    pytest.param(
        "facts.toml",
        None,
        '[[orders]]\nid = "kc"\npattern = "KC-"\n',
        ["facts.toml", "key 'orders[kc].pattern'", "spaCy token pattern"],
        2,
        id="order-pattern-wrong-type",
    ),
    pytest.param(
        "facts.toml",
        None,
        '[[orders]]\nid = "kc"\nregex = \'kc-\\d+\'\npattern = [{SHAPE = "XX-dddd"}]\n',
        ["facts.toml", "key 'orders[kc]'", "either regex or pattern"],
        3,
        id="order-regex-and-pattern",
    ),
    pytest.param(
        "facts.toml",
        None,
        '[[amounts]]\nid = "tokens"\npattern = [{LIKE_NUM = true}]\n',
        ["facts.toml", "key 'amounts[tokens].pattern'", "unknown key"],
        None,
        id="amount-pattern-not-supported",
    ),
    pytest.param(
        "complaint.toml",
        "threshold = 0.3",
        "threshold = 0.3 0.6",
        ["complaint.toml", "not valid TOML"],
        None,
        id="toml-syntax",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "expected", "line_offset"), BROKEN)
def test_broken_rule_file(
    rules: Path, name: str, old: str | None, new: str, expected: list[str], line_offset: int | None
) -> None:
    line = edit(rules, name, old, new)
    with pytest.raises(RulesError) as caught:
        Detector.load(rules)
    message = str(caught.value)
    relevant = [str(p) for p in caught.value.problems if name in p.file]
    assert relevant, message
    hit = [p for p in relevant if all(fragment in p for fragment in expected)]
    assert hit, f"{expected} not in:\n{message}"
    if line_offset is not None:
        assert f"{name}:{line + line_offset}:" in hit[0], hit[0]


def test_every_problem_is_reported_at_once(rules: Path) -> None:
    edit(rules, "anger.toml", "[levels]\n", "colour = 1\n\n[levels]\n")
    edit(rules, "archetypes.toml", None, "[grumpy]\nmin_score = 1.0\n")
    edit(rules, "facts.toml", None, "[[dates]]\nid = \"bad\"\nregex = '(('\n")
    with pytest.raises(RulesError) as caught:
        Detector.load(rules)
    files = {Path(p.file).name for p in caught.value.problems}
    assert files == {"anger.toml", "archetypes.toml", "facts.toml"}


def test_missing_rule_file(rules: Path) -> None:
    (rules / "complaint.toml").unlink()
    with pytest.raises(RulesError, match=r"complaint\.toml: .*missing detection rule file"):
        Detector.load(rules)
