"""The CLI contract: demo, init, queue/show JSON keys, the lock, exit codes, help and README."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import click
import pytest
from conftest import ROOT, Workspace, email_bytes

from triage.cli import cli
from triage.lock import run_lock


def test_demo_twice_gives_the_same_queue(tmp_path: Path, workspace: Workspace) -> None:
    demo = tmp_path / "demo"
    first = workspace.run("demo", "--dir", str(demo))
    assert first.returncode == 0, first.stderr
    assert "draft(s) waiting for review" in first.stdout
    second = workspace.run("demo", "--dir", str(demo))
    assert second.returncode == 0, second.stderr
    queue = lambda out: out[out.index("ID CASE  CUSTOMER") :]
    assert queue(first.stdout) == queue(second.stdout)
    assert "fetched 0" in second.stdout

    rows = Workspace(demo).run_json("queue")
    assert rows and {"id", "case", "customer", "subject", "level", "archetypes"} <= set(rows[0])
    shown = Workspace(demo).run_json("show", str(rows[0]["id"]))
    assert {"body", "template", "lint"} <= set(shown)
    assert shown["message"]["sender"] == rows[0]["customer"]

    with sqlite3.connect(demo / "triage.db") as db:
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM messages GROUP BY status").fetchall())
    assert statuses["ignored"] >= 4  # auto-reply, bounce, newsletter, noreply
    assert statuses["quarantined"] >= 1  # the deliberately malformed message


def test_poll_with_the_lock_held_says_so_and_exits_0(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    workspace.maildir_config(maildir([email_bytes()]))
    with run_lock(workspace.dir / "triage.db.lock", "test"):
        done = workspace.run("poll")
    assert done.returncode == 0
    assert "another triage run holds" in done.stderr
    assert not workspace.db.exists() or sqlite3.connect(workspace.db).execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    assert workspace.run_json("poll")["fetched"] == 1


@pytest.mark.parametrize(
    ("config", "code", "message"),
    [
        ('[mailbox]\nsource = "maildir"\npath = "x"\npassword = "hunter2"\n', 2, "use password_env"),
        ('[mailbox]\nsorce = "maildir"\n', 2, "key 'mailbox.sorce': unknown key; did you mean 'source'?"),
        ('[mailbox]\nsource = "maildir"\npath = "/nonexistent/maildir"\n', 2, "does not exist"),
        ("not toml at all = = =", 2, "not valid TOML"),
        ('[store]\npath = "t.db"\n', 2, "[mailbox]: missing"),
    ],
)
def test_config_errors_exit_2_without_traceback(workspace: Workspace, config: str, code: int, message: str) -> None:
    workspace.write_config(config)
    done = workspace.run("poll")
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr


def test_missing_config_exits_2(tmp_path: Path) -> None:
    done = Workspace(tmp_path).run("queue")  # --config points at a file that is not there
    assert done.returncode == 2 and "cannot read the configuration" in done.stderr


def test_show_unknown_draft_exits_2(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    workspace.maildir_config(maildir([]))
    done = workspace.run("show", "999")
    assert done.returncode == 2 and "no draft 999" in done.stderr


def test_init_writes_a_working_starter_kit(tmp_path: Path) -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["init", str(tmp_path / "kit")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kit" / "rules").is_dir() and (tmp_path / "kit" / "templates").is_dir()
    text = (tmp_path / "kit" / "triage.toml").read_text()
    assert "password =" not in text.replace("password_env", "").replace("password_cmd", "")
    again = CliRunner().invoke(cli, ["init", str(tmp_path / "kit")])
    assert "kept" in again.output
    # an owner's edit is kept; a shipped file that went missing is written back
    tone = tmp_path / "kit" / "rules" / "tone.toml"
    anger = tmp_path / "kit" / "rules" / "anger.toml"
    anger.write_text(anger.read_text() + "\n# my note\n")
    tone.unlink()
    restored = CliRunner().invoke(cli, ["init", str(tmp_path / "kit")])
    assert f"wrote {tone} (missing)" in restored.output and tone.exists()
    assert anger.read_text().endswith("# my note\n")


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, command in group.commands.items():
        out.append((prefix + name, command))
        if isinstance(command, click.Group):
            out += _commands(command, prefix + name + " ")
    return out


@pytest.mark.parametrize(("name", "command"), _commands(cli))
def test_every_command_has_help_with_an_example_and_is_in_readme(name: str, command: click.Command) -> None:
    readme = (ROOT / "README.md").read_text()
    assert command.help, f"{name} has no help"
    if not isinstance(command, click.Group):
        assert "Example:" in command.help, f"{name} --help has no Example:"
    assert re.search(rf"triage( --config \S+)? {re.escape(name)}\b", readme), f"README does not mention `triage {name}`"
