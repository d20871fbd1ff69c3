"""``triage rules check``: run every owner-file loader and report all problems together."""

from __future__ import annotations

from pathlib import Path

from triage.errors import Problem, RulesError


def check(rules_dir: Path, templates_dir: Path) -> list[Problem]:
    """Load every rule file and template; return every problem found (empty when all is well)."""
    from triage.config import SupportSettings
    from triage.detect.engine import Detector
    from triage.drafting.drafter import Drafter
    from triage.followups.policy import load_policy

    problems: list[Problem] = []
    if not rules_dir.is_dir():
        return [Problem(str(rules_dir), "", "rules folder not found")]
    for load in (
        lambda: Detector.load(rules_dir),
        lambda: Drafter.load(rules_dir, templates_dir, SupportSettings()),
        lambda: load_policy(rules_dir),
    ):
        try:
            load()
        except RulesError as exc:
            problems.extend(exc.problems)
    return problems
