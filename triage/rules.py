"""Owner-edited rule files: shared loading helpers and the all-files check.

Each rule file is owned by the module that uses it (detection, drafting,
tone, follow-up); this module gives them one way to read TOML and report
problems as ``file: key 'x.y': what was expected`` with a line number where
one can be found, and ``check`` runs every loader so that all problems are
reported together (``triage rules check``).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from triage.errors import Problem, RulesError


class TomlFile:
    """A parsed TOML rule file that collects problems as it is validated."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[Problem] = []
        self.data: dict[str, Any] = {}
        try:
            self.text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.text = ""
            self.problems.append(Problem(str(path), "", f"cannot read: {exc.strerror}"))
            return
        try:
            self.data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            line = getattr(exc, "lineno", None)
            self.problems.append(Problem(str(path), "", f"not valid TOML: {exc}", line))

    def line_of(self, key: str) -> int | None:
        """Best-effort line of the last component of a dotted key."""
        last = key.split(".")[-1].split("[")[0]
        if not last:
            return None
        pattern = re.compile(rf"^\s*(\[+\s*)?[\"']?{re.escape(last)}[\"']?\s*(=|\]|\.)", re.M)
        match = pattern.search(self.text)
        return self.text.count("\n", 0, match.start()) + 1 if match else None

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(str(self.path), key, message, self.line_of(key)))

    def unknown_keys(self, table: dict[str, Any], allowed: set[str] | dict[str, Any], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                dotted = f"{prefix}.{key}" if prefix else key
                self.problem(dotted, f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def raise_if_problems(self) -> None:
        if self.problems:
            raise RulesError(self.problems)


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
