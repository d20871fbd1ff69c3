"""triage.rulefile: one reader for every owner file, with file, key, line and "did you mean"."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from triage import config
from triage.errors import ConfigError, Problem, RulesError
from triage.rulefile import TomlFile

ROOT = Path(__file__).resolve().parent.parent


def toml(tmp_path: Path, text: str) -> TomlFile:
    path = tmp_path / "x.toml"
    path.write_text(text, encoding="utf-8")
    return TomlFile(path)


def test_line_of_looks_inside_the_keys_table(tmp_path: Path) -> None:
    tf = toml(tmp_path, '[smtp]\nport = 1\n\n[mailbox]\nhost = "h"\nport = 2\n\n[[avoid]]\nid = "a"\n'
                        '[[avoid]]\nid = "b"\nsugestion = "s"\n')
    assert tf.line_of("mailbox.port") == 6  # not smtp's port on line 2
    assert tf.line_of("mailbox.username") == 4  # not written: the table's header
    assert tf.line_of("avoid.b.sugestion") == 12  # an entry's id in the middle of the key
    assert tf.line_of("smtp") == 1



def test_entry_line_finds_the_entry_by_its_id(tmp_path: Path) -> None:
    tf = toml(tmp_path, '[[asks]]\nkind = "refund"\nid = "a"\nterms = ["x"]\n\n[[asks]]\nid = \'b\'\nterms = ["y"]\n'
                        '[[asks]]\nid = "a"\nflag = "dup"\n[[asks]]\nid = "it\'s"\nterms = ["z"]\n')
    assert tf.entry_line("asks", "a") == 3
    assert tf.entry_line("asks", "a", "kind") == 2  # a key written before the id
    assert tf.entry_line("asks", "b", "terms") == 8  # single quotes; not a's terms
    assert tf.entry_line("asks", "a", "flag") == 3  # the first entry with that id, which has no flag
    assert tf.entry_line("asks", "it's", "terms") == 14  # a quote in the id
    assert tf.entry_line("asks", "nobody") == 1  # no such entry: the section's first header
    assert tf.entry_line("asks", "") == 1


@pytest.mark.parametrize(("text", "get", "message"), [
    ("n = true\n", lambda tf, d: tf.number(d, "n", lo=0, hi=1), "key 'n': expected a number, got True"),
    ("n = 7\n", lambda tf, d: tf.number(d, "n", lo=0, hi=1), "expected a number from 0 to 1, got 7"),
    ("[t]\nn = 0\n", lambda tf, d: tf.integer(d["t"], "n", "t", lo=1), "x.toml:2: key 't.n': expected a positive integer"),
    ("s = ''\n", lambda tf, d: tf.string(d, "s"), "expected a non-empty string, got ''"),
    ("", lambda tf, d: tf.string(d, "s", required=True), "key 's': missing (expected a string)"),
    ("b = 1\n", lambda tf, d: tf.boolean(d, "b", default=False), "expected true or false, got 1"),
    ("l = ['a', 1]\n", lambda tf, d: tf.str_list(d, "l"), "expected a list of non-empty strings"),
    ("l = ['angyr']\n", lambda tf, d: tf.str_list(d, "l", allowed=("angry",), what="level"),
     "unknown level 'angyr'; did you mean 'angry'?"),
    ("c = 'furius'\n", lambda tf, d: tf.choice(d, "c", "", ("calm", "furious"), "calm"),
     "expected one of calm, furious, got 'furius'; did you mean 'furious'?"),
    ("t = 3\n", lambda tf, d: tf.table(d, "t"), "key 't': expected a table [t]"),
    ("t = 3\n", lambda tf, d: tf.tables(d, "t"), "key 't': expected [[t]] tables"),
    ("[t]\nwieght = 1\n", lambda tf, d: tf.table(d, "t", allowed={"weight"}),
     "x.toml:2: key 't.wieght': unknown key; did you mean 'weight'? (expected one of: weight)"),
])
def test_getters_record_file_key_line_and_what_was_expected(tmp_path: Path, text: str, get, message: str) -> None:  # type: ignore[no-untyped-def]
    tf = toml(tmp_path, text)
    get(tf, tf.data)
    assert [message in str(p) for p in tf.problems] == [True], tf.problems
    with pytest.raises(RulesError):
        tf.raise_if_problems()


def test_a_file_that_does_not_parse_says_where(tmp_path: Path) -> None:
    tf = toml(tmp_path, "a = 1\nb = \n")
    assert not tf.readable
    assert tf.problems == [Problem(str(tmp_path / "x.toml"), "", tf.problems[0].message, 2)]
    assert "not valid TOML" in tf.problems[0].message


# Every owner file: a misspelt key gets "did you mean", with the file and the line.
# (file, text to replace: None appends, "^" prepends; the replacement; the problem expected)
TYPOS = [
    ("anger.toml", "[scoring]\n", "[scoring]\nscael = 1\n", "key 'scoring.scael': unknown key; did you mean 'scale'?"),
    ("complaint.toml", "^", "threshhold = 0.5\n", "key 'threshhold': unknown key; did you mean 'threshold'?"),
    ("archetypes.toml", None, "\n[agressive]\nmin_score = 1\n", "key 'agressive': unknown archetype; did you mean 'aggressive'?"),
    ("facts.toml", None, "\n[topic]\n", "key 'topic': unknown key; did you mean 'topics'?"),
    ("tone.toml", None, "\n[[avoid]]\nid = \"t\"\nphrases = [\"x\"]\nreason = \"r\"\nsugestion = \"s\"\n",
     "key 'avoid.t.sugestion': unknown key; did you mean 'suggestion'?"),
    ("replies.toml", None, "\n[no_replies]\n", "key 'no_replies': unknown key; did you mean 'no_reply'?"),
    ("followup.toml", None, "\n[check_ins]\n", "key 'check_ins': unknown key; did you mean 'check_in'?"),
]


@pytest.mark.parametrize(("name", "old", "new", "expected"), TYPOS, ids=[t[0] for t in TYPOS])
def test_every_owner_file_suggests_the_key_meant(tmp_path: Path, name: str, old: str | None, new: str,
                                                  expected: str) -> None:
    from triage.config import SupportSettings
    from triage.detect.engine import Detector
    from triage.drafting.drafter import Drafter
    from triage.followups.policy import load_policy

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    path = rules / name
    text = path.read_text(encoding="utf-8")
    text = new + text if old == "^" else text.replace(old, new, 1) if old else text + new
    path.write_text(text, encoding="utf-8")
    load = {"tone.toml": lambda: Drafter.load(rules, ROOT / "templates", SupportSettings()),
            "replies.toml": lambda: Drafter.load(rules, ROOT / "templates", SupportSettings()),
            "followup.toml": lambda: load_policy(rules)}.get(name, lambda: Detector.load(rules))
    with pytest.raises(RulesError) as caught:
        load()
    hits = [p for p in caught.value.problems if expected in str(p)]
    assert hits, str(caught.value)
    assert hits[0].file == str(path) and hits[0].line is not None


def test_triage_toml_problems_carry_lines(tmp_path: Path) -> None:
    path = tmp_path / "triage.toml"
    path.write_text('[mailbox]\nsource = "maildir"\npath = "m"\n\n[smtp]\nhots = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert f"{path.resolve()}:6: key 'smtp.hots': unknown key; did you mean 'host'?" in str(caught.value)
