"""triage.rulecache: the parts of a rule set that passed their checks, remembered beside the store.

A part recorded under the files' fingerprint is built without its checks; any
change to a rule file or template is a new fingerprint, so the checks run (and
a broken file is reported) again. The record is only ever a shortcut: a
corrupt one is ignored and replaced, and one that cannot be written never
fails a run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import Workspace, email_bytes
from test_demo_drafts import GOLDEN, demo_drafts

from triage import ruleset
from triage.config import SupportSettings
from triage.errors import RulesError
from triage.rulecache import fingerprint

pytestmark = pytest.mark.cold_rule_checks  # these tests are about the record: no workspace starts with one

PARTS = ["detector", "drafter", "linter"]


def build_all(rules: Path, templates: Path, record: Path, support: SupportSettings | None = None) -> ruleset.RuleSet:
    rs = ruleset.RuleSet(rules, templates, support or SupportSettings(), checked_file=record)
    rs.detector, rs.linter, rs.drafter  # noqa: B018 - building them is the point
    return rs


def recorded(record: Path) -> dict[str, object]:
    data = json.loads(record.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def lint_failing_template(templates: Path) -> None:
    """A template every check rejects (a banned phrase in every sample) but Jinja compiles fine."""
    (templates / "meek.j2").write_text(
        (templates / "meek.j2").read_text(encoding="utf-8") + "\nAs I already said, calm down.\n", encoding="utf-8")


def test_parts_that_passed_are_recorded_and_their_checks_skipped_next_time(folders, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules, templates = folders
    record = tmp_path / "triage.db.rules-checked"
    first = build_all(rules, templates, record)
    assert first.checked.parts == set(PARTS)
    assert recorded(record) == {"fingerprint": fingerprint(rules, templates, SupportSettings()), "parts": PARTS}
    again = ruleset.RuleSet(rules, templates, SupportSettings(), checked_file=record)
    assert again.checked.parts == set(PARTS)  # read back: this run skips the checks
    # what a skipped check would have said is not looked for: a record that claims a template
    # nobody checked passed (forged here for the test) lets it load; the real check rejects it
    lint_failing_template(templates)
    with pytest.raises(RulesError, match="meek.j2"):
        ruleset.RuleSet(rules, templates, SupportSettings()).drafter  # noqa: B018
    forged = fingerprint(rules, templates, SupportSettings())
    record.write_text(json.dumps({"fingerprint": forged, "parts": PARTS}), encoding="utf-8")
    trusting = ruleset.RuleSet(rules, templates, SupportSettings(), checked_file=record)
    assert "meek" in trusting.drafter.templates


def test_a_changed_rule_file_is_checked_again_and_a_broken_one_reported(folders, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules, templates = folders
    record = tmp_path / "triage.db.rules-checked"
    build_all(rules, templates, record)
    before = recorded(record)["fingerprint"]
    tone = rules / "tone.toml"
    tone.write_text(tone.read_text(encoding="utf-8") + "\n# an owner's note\n", encoding="utf-8")
    changed = ruleset.RuleSet(rules, templates, SupportSettings(), checked_file=record)
    assert changed.checked.parts == set()  # a new fingerprint: nothing is taken as checked
    changed.linter  # noqa: B018
    assert recorded(record)["fingerprint"] != before and recorded(record)["parts"] == ["linter"]
    # a broken token pattern in the detector's files: the record of the old files hides nothing
    build_all(rules, templates, record)
    anger = rules / "anger.toml"
    anger.write_text(anger.read_text(encoding="utf-8")
                     + '\n[[patterns]]\nid = "tagged"\nweight = 1.0\npattern = [{POS = "VERB"}]\n',
                     encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        ruleset.RuleSet(rules, templates, SupportSettings(), checked_file=record).detector  # noqa: B018
    assert any(Path(p.file).name == "anger.toml" and "tagged" in p.key for p in caught.value.problems), \
        caught.value.problems
    assert ruleset.check(rules, templates)  # and `rules check`, which never reads the record, says so too


def test_a_file_changed_while_a_part_is_built_is_recorded_only_for_the_bytes_read_before(folders, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules, templates = folders
    record = tmp_path / "triage.db.rules-checked"
    rs = ruleset.RuleSet(rules, templates, SupportSettings(), checked_file=record)
    assert rs.checked.parts == set()  # read and fingerprinted now
    tone = rules / "tone.toml"
    tone.write_text(tone.read_text(encoding="utf-8") + "\n# edited meanwhile\n", encoding="utf-8")
    rs.linter, rs.detector  # noqa: B018 - built from the bytes read before the edit, and checked
    assert recorded(record) == {"fingerprint": rs.checked.fingerprint, "parts": ["detector", "linter"]}
    # what is recorded is those bytes: the edited file is a new fingerprint, checked again
    again = ruleset.RuleSet(rules, templates, SupportSettings(), checked_file=record)
    assert again.checked.fingerprint != rs.checked.fingerprint and again.checked.parts == set()


BROKEN_PATTERN = '\n[[patterns]]\nid = "tagged"\nweight = 1.0\npattern = [{POS = "VERB"}]\n'


def test_a_rule_edited_after_the_record_is_read_is_never_loaded_unchecked(workspace: Workspace, maildir, folders) -> None:  # type: ignore[no-untyped-def]
    """The race: the record says these files passed, then the owner saves a broken pattern
    before the detector is loaded. The run loads what it fingerprinted, and the next run
    checks the new file and stops with exit 2 naming the file and the rule."""
    from triage import config

    rules, templates = folders
    box = maildir([email_bytes()])
    workspace.maildir_config(box, f'[paths]\nrules = "{rules}"\ntemplates = "{templates}"\n')
    assert workspace.run("poll").returncode == 0
    record = workspace.db.with_name("triage.db.rules-checked")
    assert recorded(record)["parts"] == PARTS
    rs = ruleset.load(config.load(workspace.config))
    assert rs.checked.parts == set(PARTS)  # the record is read: this run skips the checks
    anger = rules / "anger.toml"
    anger.write_text(anger.read_text(encoding="utf-8") + BROKEN_PATTERN, encoding="utf-8")
    detector = rs.detector  # loaded now, after the edit
    assert "anger.tagged" not in {p.rule for p in detector.rules.anger.signals.patterns}
    assert detector.detect(["This is broken and I want a refund."], [])  # a POS pattern would raise here
    assert recorded(record)["fingerprint"] == rs.checked.fingerprint  # nothing recorded for the edit
    maildir([email_bytes(subject="Still broken", body="Nobody answered me. Where is my refund?")], path=box)
    done = workspace.run("poll")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "anger.toml" in done.stderr and "tagged" in done.stderr, done.stderr


def test_a_template_change_or_other_support_settings_are_a_new_fingerprint(folders) -> None:  # type: ignore[no-untyped-def]
    rules, templates = folders
    base = fingerprint(rules, templates, SupportSettings())
    assert fingerprint(rules, templates, SupportSettings()) == base
    assert fingerprint(rules, templates, SupportSettings(agent="Dana")) != base  # the samples are rendered with it
    (templates / "_extra.j2").write_text("Hello.\n", encoding="utf-8")
    assert fingerprint(rules, templates, SupportSettings()) != base
    (templates / "_extra.j2").unlink()
    (rules / ".git").mkdir()  # an owner who keeps the rules in git: the repository is not the rules
    (rules / ".git" / "index").write_bytes(b"\0" * 10)
    assert fingerprint(rules, templates, SupportSettings()) == base


@pytest.mark.parametrize("garbage", [b"", b"{not json", b"\xff\xfe", b'["detector"]', b'{"fingerprint": 1}'])
def test_a_corrupt_record_is_ignored_and_replaced(folders, tmp_path: Path, garbage: bytes) -> None:  # type: ignore[no-untyped-def]
    rules, templates = folders
    record = tmp_path / "triage.db.rules-checked"
    record.write_bytes(garbage)
    build_all(rules, templates, record)
    assert recorded(record) == {"fingerprint": fingerprint(rules, templates, SupportSettings()), "parts": PARTS}


def test_a_record_that_cannot_be_written_or_read_only_means_checking_again(folders, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules, templates = folders
    in_a_file = tmp_path / "a-file"
    in_a_file.write_text("not a folder\n", encoding="utf-8")
    rs = build_all(rules, templates, in_a_file / "triage.db.rules-checked")  # its folder is a file
    assert rs.checked.parts == set(PARTS)  # remembered for this run only
    a_folder = tmp_path / "triage.db.rules-checked"
    a_folder.mkdir()  # unreadable and unreplaceable
    rs = build_all(rules, templates, a_folder)
    assert a_folder.is_dir() and not list(a_folder.iterdir())
    assert not list(tmp_path.glob(".triage.db.rules-checked.*"))  # no temporary file left behind


def test_a_poll_records_the_checks_beside_the_store_and_reuses_them(workspace: Workspace, maildir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    box = maildir([email_bytes()])
    workspace.maildir_config(box)
    assert workspace.run("poll").returncode == 0
    record = workspace.db.with_name("triage.db.rules-checked")
    first = recorded(record)
    assert first["parts"] == PARTS
    maildir([email_bytes(subject="Still broken", body="Nobody answered me. Where is my refund?")], path=box)
    assert workspace.run_json("poll")["drafts"] == 1
    assert recorded(record) == first


def test_a_poll_still_runs_when_the_record_cannot_be_written(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    box = maildir([email_bytes()])
    workspace.maildir_config(box)
    workspace.db.with_name("triage.db.rules-checked").mkdir()  # cannot be read, nor replaced
    assert workspace.run_json("poll")["drafts"] == 1


def test_demo_drafts_are_byte_identical_when_the_checks_are_skipped(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from triage.detect import nlp
    from triage.drafting import drafter

    calls = {"patterns": 0, "templates": 0}

    def counted(name: str, real):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(nlp, "_check_pattern", counted("patterns", nlp._check_pattern))
    monkeypatch.setattr(drafter, "_check_template", counted("templates", drafter._check_template))
    first, second = Workspace(tmp_path / "first"), Workspace(tmp_path / "second")
    for ws in (first, second):
        ws.dir.mkdir()
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert demo_drafts(first) == golden
    assert calls["patterns"] > 20 and calls["templates"] > 10
    shutil.copy(first.db.with_name("triage.db.rules-checked"), second.db.with_name("triage.db.rules-checked"))
    calls.update(patterns=0, templates=0)
    assert demo_drafts(second) == golden
    assert calls == {"patterns": 0, "templates": 0}  # every part was taken as checked


def test_templates_are_rendered_from_the_bytes_that_were_checked(folders) -> None:  # type: ignore[no-untyped-def]
    """An included partial is looked up when a draft is rendered, long after the checks: it comes
    from the rule set's snapshot, never from a file edited since."""
    rules, templates = folders
    rs = ruleset.RuleSet(rules, templates, SupportSettings())
    env = rs.drafter.templates["meek"].environment
    checked = (templates / "_sign_off.j2").read_text(encoding="utf-8")
    (templates / "_sign_off.j2").write_text("{{ undefined_name }}\n", encoding="utf-8")
    assert env.loader is not None
    assert env.loader.get_source(env, "_sign_off.j2")[0] == checked
    assert env.get_template("_sign_off.j2").render(agent="Sam", shop="Example Shop") == \
        env.from_string(checked).render(agent="Sam", shop="Example Shop")
