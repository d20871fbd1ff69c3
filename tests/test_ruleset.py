"""triage.ruleset: every owner file loaded once, cached by the files' mtimes, parts built on first use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Workspace, email_bytes

from triage import ruleset
from triage.config import SupportSettings
from triage.errors import RulesError


def bump(path: Path, text: str) -> None:
    """Rewrite ``path`` and move its mtime on, as an owner's editor would."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_the_same_ruleset_until_a_file_changes(folders: tuple[Path, Path]) -> None:
    rules, templates = folders
    first = ruleset.for_dirs(rules, templates)
    assert ruleset.for_dirs(rules, templates) is first
    assert first.policy is first.policy and first.linter is first.linter
    bump(rules / "followup.toml", "[check_in]\nafter_days = 3\n")
    second = ruleset.for_dirs(rules, templates)
    assert second is not first and second.policy.check_in_days == 3.0
    (templates / "extra.j2").write_text("Hello.\n", encoding="utf-8")  # a new file counts too
    assert ruleset.for_dirs(rules, templates) is not second
    with pytest.raises(AttributeError):
        second.rules_dir = rules  # type: ignore[misc]  # frozen


def test_a_broken_part_raises_each_time_and_the_others_still_load(folders: tuple[Path, Path]) -> None:
    rules, templates = folders
    bump(rules / "tone.toml", "[[avoid]\n")
    rs = ruleset.for_dirs(rules, templates, SupportSettings())
    for _ in range(2):
        with pytest.raises(RulesError, match="tone.toml"):
            rs.linter  # noqa: B018 - the access is the test
    assert rs.policy.check_in_days > 0


def test_check_collects_every_file_once(folders: tuple[Path, Path]) -> None:
    rules, templates = folders
    assert ruleset.check(rules, templates) == []
    bump(rules / "tone.toml", (rules / "tone.toml").read_text() + "\nextra = 1\n")
    bump(rules / "anger.toml", "colour = 1\n" + (rules / "anger.toml").read_text())
    bump(rules / "followup.toml", "[check_in]\nafter_days = 0\n")
    (templates / "bad.j2").write_text("{{ shoe_size }}\n", encoding="utf-8")
    problems = ruleset.check(rules, templates)
    files = [Path(p.file).name for p in problems]
    assert set(files) == {"anger.toml", "tone.toml", "bad.j2", "followup.toml"}
    assert files.count("tone.toml") == 1  # the linter's and the drafter's load report it once
    assert ruleset.check(rules / "nowhere", templates)[0].message == "rules folder not found"


def test_an_idle_poll_never_imports_spacy_or_jinja(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    """The cron poll with no new mail must stay cheap: no detector, no drafter, no spaCy import."""
    box = maildir([email_bytes()])
    workspace.maildir_config(box)
    assert workspace.run("poll").returncode == 0  # the first poll triages (and loads spaCy)
    code = ("import sys, runpy; sys.argv = ['triage', '--config', sys.argv[1], 'poll']\n"
            "try:\n    runpy.run_module('triage', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('loaded:', [m for m in ('spacy', 'jinja2') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code, str(workspace.config)], capture_output=True, text=True,
                          timeout=120, check=True)
    assert "fetched 0" in done.stdout, done.stdout + done.stderr
    assert "loaded: []" in done.stdout, done.stdout


def test_spacy_is_loaded_without_its_command_line_which_still_imports_when_asked() -> None:
    """spacy.cli (weasel, typer, rich, httpx: a third of spaCy's import) is left out until someone asks."""
    code = ("import sys\nfrom triage.detect.spacyload import blank, import_spacy\n"
            "blank().make_doc('hello there')\n"
            "print('cli:', sorted(m for m in ('spacy.cli', 'weasel', 'typer', 'httpx') if m in sys.modules))\n"
            "import spacy.cli\nfrom spacy.cli.info import info\n"
            "print('later:', spacy.cli.info is info and hasattr(spacy.cli, 'download'), import_spacy() is spacy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "cli: []" in done.stdout, done.stdout + done.stderr
    assert "later: True True" in done.stdout, done.stdout + done.stderr
