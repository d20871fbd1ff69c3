"""Every owner file, loaded once into one frozen ``RuleSet``, cached by the files' mtimes and sizes.

A ``RuleSet`` is the rules and templates folders as they are now:

* ``policy``   -- rules/followup.toml (``followups.policy``; the built-in defaults when absent)
* ``linter``   -- rules/tone.toml (``drafting.tone``)
* ``drafter``  -- rules/replies.toml and templates/*.j2, linted by ``linter`` (``drafting.drafter``)
* ``detector`` -- anger, complaint, archetypes and facts .toml and the customer lists (``detect.engine``)
* ``automatic`` -- rules/automatic.toml: signs of automatic mail, the loop breaker (``automatic``)

Each part is built the first time it is asked for and then kept, so a run
that needs no detection never imports spaCy (nor Jinja, without a draft to
write): the idle cron poll stays cheap. A part whose files are broken raises
``RulesError`` every time it is asked for.

``load(settings)`` is the one cache: it returns the same ``RuleSet`` until a
file in either folder is added, removed or changed (name, mtime, size), so a
poll may ask once per run and the review page once per request.
``check(rules_dir, templates_dir)`` is ``triage rules check``: every part
built, every problem collected.

The detector, linter and drafter are built from one ``Snapshot`` of the
folders (``files``), read when the first of them is built: what they parse is
what was read then, whatever the owner edits meanwhile (the next ``load``
sees the change and builds a new RuleSet). A RuleSet given a ``checked``
file (``load`` gives the one beside the store) builds them without the
checks they passed before on the same bytes (``triage.rulecache``), and
records each part that passes. ``check`` never uses one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from triage.config import Settings, SupportSettings
from triage.errors import Problem, RulesError

if TYPE_CHECKING:
    from triage.automatic import AutoRules
    from triage.detect.engine import Detector
    from triage.drafting.drafter import Drafter
    from triage.drafting.tone import Linter
    from triage.followups.policy import Policy
    from triage.rulecache import Checked
    from triage.rulefile import Snapshot

T = TypeVar("T")
Stamp = tuple[tuple[str, int, int], ...]


def stamp(*folders: Path) -> Stamp:
    """(path, mtime_ns, size) of every file directly in ``folders``: changes when any file does."""
    out: list[tuple[str, int, int]] = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_file():
                    st = entry.stat()
                    out.append((entry.path, st.st_mtime_ns, st.st_size))
            except OSError:
                continue
    return tuple(sorted(out))


@dataclass(frozen=True)
class RuleSet:
    """The owner's rules and templates as one value; parts are built on first use (see module doc)."""

    rules_dir: Path
    templates_dir: Path
    support: SupportSettings = field(default_factory=SupportSettings)
    stamp: Stamp = ()
    checked_file: Path | None = None  # parts that passed their checks before (see the module doc)

    @cached_property
    def files(self) -> Snapshot:
        """Every file the detector, linter and drafter read, read once, when the first is built."""
        from triage.rulecache import snapshot

        return snapshot(self.rules_dir, self.templates_dir)

    @cached_property
    def checked(self) -> Checked:
        from triage.rulecache import Checked

        return Checked(self.checked_file, self.files, self.support)

    def _build(self, part: str, load: Callable[[bool], T]) -> T:
        """``load(checked)`` from the snapshot; recorded as passed when it was checked, and read
        nothing the snapshot does not cover (so nothing the fingerprint left out)."""
        checked = part in self.checked
        with self.files.reading() as reads:
            built = load(checked)
        if not checked and not reads.outside:
            self.checked.passed(part)
        return built

    @cached_property
    def policy(self) -> Policy:
        from triage.followups.policy import load_policy

        return load_policy(self.rules_dir)

    @cached_property
    def linter(self) -> Linter:
        from triage.drafting.tone import Linter

        return self._build("linter", lambda checked: Linter.load(self.rules_dir, checked=checked))

    @cached_property
    def drafter(self) -> Drafter:
        from triage.drafting.drafter import Drafter

        try:
            linter: Linter | None = self.linter
        except RulesError:
            linter = None  # the drafter loads tone.toml itself, to report it with the templates' problems
        return self._build("drafter", lambda checked: Drafter.load(
            self.rules_dir, self.templates_dir, self.support, linter=linter, checked=checked))

    @cached_property
    def detector(self) -> Detector:
        from triage.detect.engine import Detector

        return self._build("detector", lambda checked: Detector.load(self.rules_dir, checked=checked))

    @cached_property
    def automatic(self) -> AutoRules:
        from triage.automatic import AutoRules

        return AutoRules.load(self.rules_dir)

    def problems(self) -> list[Problem]:
        """Build every part; every problem found, each once (empty when all is well)."""
        if not self.rules_dir.is_dir():
            return [Problem(str(self.rules_dir), "", "rules folder not found")]
        found: list[Problem] = []
        for part in ("detector", "linter", "drafter", "policy", "automatic"):
            try:
                getattr(self, part)
            except RulesError as exc:
                found.extend(p for p in exc.problems if p not in found)
        return found


_CACHE: dict[tuple[Path, Path, SupportSettings, Path | None], RuleSet] = {}
_LOCK = threading.Lock()  # the review page asks from several threads


def for_dirs(rules_dir: Path, templates_dir: Path, support: SupportSettings | None = None,
             checked_file: Path | None = None) -> RuleSet:
    """The RuleSet for these folders as they are now: the cached one unless a file changed."""
    support = support or SupportSettings()
    key = (Path(rules_dir), Path(templates_dir), support, checked_file)
    now = stamp(key[0], key[1])
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is None or cached.stamp != now:
            cached = _CACHE[key] = RuleSet(key[0], key[1], support, now, checked_file)
    return cached


def checked_file(settings: Settings) -> Path:
    """Where the parts of ``settings``' rules that passed their checks are recorded: beside the store."""
    return settings.store_path.with_name(settings.store_path.name + ".rules-checked")


def load(settings: Settings) -> RuleSet:
    """The RuleSet of ``settings``' rules and templates folders (cached; see ``for_dirs``)."""
    return for_dirs(settings.rules_dir, settings.templates_dir, settings.support, checked_file(settings))


def check(rules_dir: Path, templates_dir: Path) -> list[Problem]:
    """``triage rules check``: every problem in every rule file and template, freshly loaded."""
    return RuleSet(Path(rules_dir), Path(templates_dir)).problems()
