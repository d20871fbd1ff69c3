"""Owner commands: classify, rules check, eval, label, lint (their contracts and exit codes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, Workspace, email_bytes


@pytest.fixture
def workspace(workspace: Workspace) -> Workspace:
    """Owner tools need no mailbox: a config with just a store."""
    workspace.write_config('[store]\npath = "triage.db"\n')
    return workspace


def test_classify_text_json_has_the_contract_keys(workspace: Workspace) -> None:
    data = workspace.run_json("classify", "--text", "This is the SECOND time my order broke!!! I want a refund NOW.")
    assert {"angry", "score", "level", "complaint", "archetypes", "evidence"} <= set(data)
    assert data["angry"] is True and data["complaint"] is True and 0 < data["score"] <= 1
    ev = data["evidence"][0]
    assert {"start", "end", "text", "rule", "weight"} <= set(ev)


def test_classify_negation_and_quoted_anger(workspace: Workspace, tmp_path: Path) -> None:
    calm = workspace.run_json("classify", "--text", "I'm not angry, just confused about the invoice.")
    assert calm["angry"] is False
    raw = email_bytes(
        subject="Re: my question",
        body="Thanks, that answers my question.\n\nOn Tue, 3 Mar 2026, Support <s@x.com> wrote:\n"
        "> THIS IS UNACCEPTABLE!!! You are useless idiots and I want a refund NOW!!!\n"
    )
    (tmp_path / "m.eml").write_bytes(raw)
    quoted = workspace.run_json("classify", str(tmp_path / "m.eml"))
    assert quoted["angry"] is False
    assert all(ev["text"] in "Thanks, that answers my question." for ev in quoted["evidence"])  # none from the quote


def test_classify_reads_standard_input(workspace: Workspace) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "triage", "classify", "-", "--json"],
        input=email_bytes(body="Your courier LOST my parcel and nobody answers the phone!!!"),
        capture_output=True, cwd=workspace.dir,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["angry"] is True


def test_rules_check_names_file_and_key_and_exits_2(workspace: Workspace, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    workspace.write_config(f'[mailbox]\nsource = "maildir"\npath = "{tmp_path}"\n[paths]\nrules = "{rules}"\n')
    assert workspace.run("rules", "check").returncode == 0
    tone = rules / "tone.toml"
    tone.write_text(tone.read_text() + "\n[bogus_section]\nfoo = 1\n")
    done = workspace.run("rules", "check")
    assert done.returncode == 2
    assert "tone.toml" in done.stderr and "bogus_section" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_phrase_written_as_a_regular_expression_is_refused_naming_file_and_key(workspace: Workspace,
                                                                                 tmp_path: Path) -> None:
    """"(the )?" reads as literal characters no text holds: the phrase would never match, silently."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    workspace.write_config(f'[mailbox]\nsource = "maildir"\npath = "{tmp_path}"\n[paths]\nrules = "{rules}"\n')
    policy = rules / "policy.toml"
    policy.write_text(policy.read_text() + '\n[[problems]]\nphrases = ["stuck at (the )?airport"]\n'
                      'say = "you were stuck at the airport"\n')
    done = workspace.run("rules", "check")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "policy.toml" in done.stderr and "phrases[0]" in done.stderr and "[word]" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_eval_csv_reports_each_label_present(workspace: Workspace, tmp_path: Path) -> None:
    csv = tmp_path / "labelled.csv"
    csv.write_text(
        "text,angry,complaint,intensity\n"
        '"This is UNACCEPTABLE, third time it broke!!!",1,1,0.9\n'
        '"Do you ship to Canada?",0,0,0.0\n'
        '"Not happy at all, the kettle leaks.",1,1,0.6\n'
        '"Thanks, love the blender!",0,0,0.0\n'
    )
    report = workspace.run_json("eval", str(csv))
    assert {"precision", "recall", "f1", "n"} <= set(report["angry"]) and report["angry"]["n"] == 4
    assert {"pearson", "spearman", "n"} <= set(report["intensity"])
    assert {"precision", "recall", "f1", "macro_f1", "n"} <= set(report["complaint"])
    assert "archetype" not in report


def test_label_then_eval_labels(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    workspace.maildir_config(maildir([email_bytes(body="I'm not angry, just wondering where order #12 is.")]))
    workspace.run("poll")
    assert workspace.run("label", "1", "--angry", "yes", "--archetype", "meek", "--agent", "sam").returncode == 0
    assert workspace.run("label", "99", "--angry", "no").returncode == 2
    report = workspace.run_json("eval", "--labels")
    assert report["angry"]["n"] == 1 and report["archetype"]["n"] == 1


def test_lint_json_and_exit_status(workspace: Workspace, tmp_path: Path) -> None:
    text = tmp_path / "reply.txt"
    text.write_text("Hi Ann,\nWe apologize for any inconvenience. Please calm down.\n")
    findings = workspace.run_json("lint", str(text), code=1)["findings"]
    assert [f["text"] for f in findings] == ["We apologize for any inconvenience", "calm down"]
    assert all({"start", "end", "text", "reason", "suggestion"} <= set(f) for f in findings)
    text.write_text("Hi Ann,\nI'm sorry this happened. How else can I help you today?\n")
    assert workspace.run("lint", str(text)).returncode == 0


def test_eval_several_files_one_table_and_worst_errors(workspace: Workspace, tmp_path: Path) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(
        "text,angry\n"
        '"I am furious, this is unacceptable.",1\n'
        '"What a lovely morning for a walk.",0\n'
        '"This is outrageous and I am livid about it.",0\n'
    )
    second.write_text('text,complaint\n"The lid arrived cracked.",1\n"Do you ship to Canada?",0\n')
    done = workspace.run("eval", str(first), str(second), "--errors", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("first.csv") for line in lines) and any(line.startswith("second.csv") for line in lines)
    assert "angry false positives:" in done.stdout and "outrageous" in done.stdout
    assert "rules: anger.condemn" in done.stdout
    report = workspace.run_json("eval", str(first), str(second), "--errors", "1")
    assert [Path(r["file"]).name for r in report["files"]] == ["first.csv", "second.csv"]
    fp = report["files"][0]["errors"]["angry"]["false_positives"]
    assert len(fp) == 1 and fp[0]["gold"] is False and fp[0]["predicted"] is True and "anger.rage" in fp[0]["rules"]
    assert "errors" not in workspace.run_json("eval", str(second))
