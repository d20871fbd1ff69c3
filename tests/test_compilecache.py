"""triage.compilecache: the regexes and dataclass methods compiled while the rules load, kept beside the store.

What comes out of the file must be exactly what ``re`` and ``exec`` compile
(``re.Pattern`` objects compare equal only when their code is; code objects
compare by their bytecode, constants and names), an edited rule must be read from
what it says now, and the file is only ever a shortcut: a damaged one, one made by
another Python, an entry ``_sre`` rejects and a folder that cannot be written each
mean compiling again, never an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
import re
import threading
from pathlib import Path

import pytest
from conftest import Workspace, email_bytes

from triage import compilecache, ruleset
from triage.compilecache import MAGIC, CompileCache
from triage.config import SupportSettings

pytestmark = pytest.mark.skipif(not compilecache._SUPPORTED, reason="the cache is off on this Python")

PATTERNS = [
    (r"(?P<order>#?\d{3,})\s*(?:was|is)\b", 0),
    (r"^\s*(?:re|fwd?)\s*:", re.I | re.M),
    (r"[\w.+-]+@[\w-]+\.[\w.]+", re.ASCII),
    (r"(?x) a  b # spaced out\n c", 0),
    (rb"\r\n\r\n", 0),
    (r"(?<=\S)\n(?=[ \t]*\S)", 0),
    (r"caf\u00e9|na\u00efve", re.I),
]


def compile_all(cache: CompileCache, patterns: list[tuple[str | bytes, int]]) -> list[re.Pattern]:  # type: ignore[type-arg]
    re.purge()  # re's own memory would answer before the cache is asked
    with cache.active():
        return [re.compile(p, f) for p, f in patterns]


def write_raw(path: Path, data: object) -> None:
    body = marshal.dumps(data)
    path.write_bytes(MAGIC + hashlib.sha256(body).digest() + body)


def test_patterns_from_the_file_are_the_patterns_re_compiles(tmp_path: Path) -> None:
    path = tmp_path / "triage.db.compiled"
    first = CompileCache(path)
    made = compile_all(first, PATTERNS)  # written when the block ends
    assert (first.regexes.compiled, first.regexes.reused) == (len(PATTERNS), 0)
    written = path.stat().st_mtime_ns
    again = CompileCache(path)
    reused = compile_all(again, PATTERNS)
    assert (again.regexes.compiled, again.regexes.reused) == (0, len(PATTERNS))
    re.purge()
    fresh = [re.compile(p, f) for p, f in PATTERNS]
    assert reused == fresh == made  # equal code, flags and text
    for got, want in zip(reused, fresh, strict=True):
        assert (got.groups, got.groupindex, got.flags) == (want.groups, want.groupindex, want.flags)
    assert reused[0].search("Order #1234 was late").group("order") == "#1234"
    assert reused[1].match("FWD: hello") and not reused[1].match("forward: hello")
    assert path.stat().st_mtime_ns == written  # nothing new: not written again


def test_a_bad_pattern_raises_as_always_and_is_never_kept(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path / "triage.db.compiled")
    with pytest.raises(re.error):
        compile_all(cache, [("(unclosed", 0)])
    with pytest.raises(re.error):
        compile_all(cache, [(r"fine\d", 0), ("(unclosed", 0)])
    cache.save()
    assert list(CompileCache(cache.path).regexes.entries) == [(r"fine\d", 0)]


def test_only_the_thread_in_the_block_uses_the_cache(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path / "triage.db.compiled")
    re.purge()
    compiled_elsewhere: list[re.Pattern] = []  # type: ignore[type-arg]
    with cache.active():
        thread = threading.Thread(target=lambda: compiled_elsewhere.append(re.compile(r"elsewhere\d+")))
        thread.start()
        thread.join()
    assert compiled_elsewhere and cache.regexes.compiled == 0
    re.purge()
    re.compile(r"after\d+")  # and nothing once the block is over
    assert cache.regexes.compiled == 0


@pytest.mark.parametrize("damage", ["garbage", "flipped", "truncated", "other_python", "not_a_dict", "empty"])
def test_a_damaged_or_foreign_file_is_ignored_and_replaced(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "triage.db.compiled"
    compile_all(CompileCache(path), PATTERNS)
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00\xff not a cache at all")
    elif damage == "flipped":  # one byte of the body changed: the checksum no longer matches
        at = len(raw) - 10
        path.write_bytes(raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:])
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "other_python":
        data = marshal.loads(raw[len(MAGIC) + 32:])
        write_raw(path, {**data, "build": "3.0.0 some other Python"})
    elif damage == "not_a_dict":
        write_raw(path, ["build", "regexes", "code"])
    else:
        path.write_bytes(b"")
    cache = CompileCache(path)
    assert compile_all(cache, PATTERNS) == [re.compile(p, f) for p, f in PATTERNS]
    assert (cache.regexes.compiled, cache.regexes.reused) == (len(PATTERNS), 0)  # nothing taken from the file
    body = path.read_bytes()
    assert body.startswith(MAGIC) and marshal.loads(body[len(MAGIC) + 32:]) == marshal.loads(raw[len(MAGIC) + 32:])


def test_an_entry_sre_rejects_is_compiled_again_from_its_text(tmp_path: Path) -> None:
    """A file with a valid checksum whose code is not valid SRE code (made here on purpose):
    ``_sre.compile`` refuses it, and the pattern is compiled from what it says."""
    path = tmp_path / "triage.db.compiled"
    compile_all(CompileCache(path), PATTERNS[:1])
    data = marshal.loads(path.read_bytes()[len(MAGIC) + 32:])
    key = next(iter(data["regexes"]))
    pattern, flags, code, groups, groupindex, indexgroup = data["regexes"][key]
    data["regexes"][key] = (pattern, flags, [9999, *code[1:]], groups, groupindex, indexgroup)
    write_raw(path, data)
    cache = CompileCache(path)
    got = compile_all(cache, PATTERNS[:1])
    assert got == [re.compile(*PATTERNS[0])] and (cache.regexes.compiled, cache.regexes.reused) == (1, 0)


def test_a_file_that_cannot_be_read_or_written_only_means_compiling_again(tmp_path: Path) -> None:
    in_a_file = tmp_path / "a-file"
    in_a_file.write_text("not a folder\n", encoding="utf-8")
    cache = CompileCache(in_a_file / "triage.db.compiled")  # its folder is a file
    assert compile_all(cache, PATTERNS) == [re.compile(p, f) for p, f in PATTERNS]
    a_folder = tmp_path / "triage.db.compiled"
    a_folder.mkdir()  # unreadable and unreplaceable
    cache = CompileCache(a_folder)
    assert compile_all(cache, PATTERNS) == [re.compile(p, f) for p, f in PATTERNS]
    assert a_folder.is_dir() and not list(a_folder.iterdir())
    assert not list(tmp_path.glob(".triage.db.compiled.*"))  # no temporary file left behind


def make_classes(cache: CompileCache) -> tuple[type, type]:
    """Two dataclasses, made while ``cache`` is active, as a module being imported makes them."""
    with cache.active():
        @dataclasses.dataclass(frozen=True)
        class Order:
            number: str
            items: tuple[str, ...] = ()
            total: float = 0.0

        @dataclasses.dataclass(order=True)
        class Line:
            sku: str
            quantity: int = 1
            notes: list[str] = dataclasses.field(default_factory=list)

    return Order, Line


def test_dataclass_methods_from_the_file_are_the_methods_exec_compiles(tmp_path: Path) -> None:
    path = tmp_path / "triage.db.compiled"
    first = CompileCache(path)
    made = make_classes(first)
    assert first.methods.compiled >= 8 and first.methods.reused == 0 and path.is_file()
    again = CompileCache(path)
    order, line = make_classes(again)
    assert again.methods.compiled == 0 and again.methods.reused == first.methods.compiled
    for cached, fresh in zip((order, line), made, strict=True):
        for name in ("__init__", "__repr__", "__eq__"):
            assert getattr(cached, name).__code__ == getattr(fresh, name).__code__, name
        # compiled with dataclasses' own flags: the annotations are objects, not the strings
        # ``from __future__ import annotations`` (in force in the cache's module) would make
        assert cached.__init__.__annotations__ == fresh.__init__.__annotations__
        assert cached.__init__.__annotations__["return"] is None
    a = order("#123", ("kettle",), 39.5)
    assert a == order("#123", ("kettle",), 39.5) and hash(a) == hash(order("#123", ("kettle",), 39.5))
    assert repr(a).endswith(".Order(number='#123', items=('kettle',), total=39.5)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.number = "#124"  # type: ignore[misc]
    assert line("a") < line("b") and line("a").notes is not line("a").notes


def test_outside_a_block_dataclasses_compile_as_always(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path / "triage.db.compiled")
    make_classes(cache)  # installs the hooks
    before = dict(cache.methods.entries)

    @dataclasses.dataclass
    class Elsewhere:
        x: int = 0
        y: str = "not in any class above"

    assert Elsewhere(3) == Elsewhere(3) and cache.methods.entries == before


def test_past_the_limit_only_the_patterns_used_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compilecache, "MAX_ENTRIES", 3)
    path = tmp_path / "triage.db.compiled"
    compile_all(CompileCache(path), PATTERNS[:3])
    compile_all(CompileCache(path), PATTERNS[3:5])
    kept = marshal.loads(path.read_bytes()[len(MAGIC) + 32:])["regexes"]
    assert sorted(kept, key=repr) == sorted(PATTERNS[3:5], key=repr)


def test_an_edited_regex_rule_is_read_from_its_new_text(folders, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules, templates = folders
    record = tmp_path / "triage.db.rules-checked"
    text = "Where is my parcel!! I ordered it weeks ago."

    def shouts() -> list[str]:
        re.purge()
        detector = ruleset.RuleSet(rules, templates, SupportSettings(), checked_file=record).detector
        return [e.rule for e in detector.detect([text], [])[0].evidence if e.rule.endswith("exclamations")]

    assert shouts() == ["anger.exclamations"]
    assert ruleset.compiled_file(record).is_file()
    anger = rules / "anger.toml"
    anger.write_text(anger.read_text(encoding="utf-8").replace("regex = '!{2,}'", "regex = '!{3,}'"),
                     encoding="utf-8")
    assert shouts() == []  # "!!" is no longer enough: the new text was compiled, not the old code
    anger.write_text(anger.read_text(encoding="utf-8").replace("regex = '!{3,}'", "regex = '!{2,}'"),
                     encoding="utf-8")
    assert shouts() == ["anger.exclamations"]


def test_the_rules_load_through_the_file_beside_the_store(folders, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules, templates = folders
    record = tmp_path / "triage.db.rules-checked"
    re.purge()
    first = ruleset.RuleSet(rules, templates, SupportSettings(), checked_file=record)
    first.detector, first.linter, first.drafter, first.automatic, first.policy  # noqa: B018
    assert first.compiled.path == tmp_path / "triage.db.compiled" and first.compiled.path.is_file()
    assert first.compiled.regexes.compiled > 20
    re.purge()
    second = ruleset.RuleSet(rules, templates, SupportSettings(), checked_file=record)
    second.detector, second.linter, second.drafter, second.automatic, second.policy  # noqa: B018
    assert second.compiled.regexes.compiled == 0 and second.compiled.regexes.reused > 20
    assert ruleset.RuleSet(rules, templates, SupportSettings()).compiled.path is None  # `rules check`: none


def test_a_poll_keeps_the_file_and_runs_without_one_it_cannot_write(workspace: Workspace, maildir) -> None:  # type: ignore[no-untyped-def]
    box = maildir([email_bytes()])
    workspace.maildir_config(box)
    cache = workspace.db.with_name("triage.db.compiled")
    cache.mkdir()  # cannot be read, nor replaced
    assert workspace.run_json("poll")["drafts"] == 1
    cache.rmdir()
    maildir([email_bytes(subject="Still broken", body="Nobody answered me. Where is my refund?")], path=box)
    assert workspace.run_json("poll")["drafts"] == 1
    assert cache.read_bytes().startswith(MAGIC)
    cache.write_bytes(MAGIC + b"\x00" * 40)  # damaged: ignored and replaced
    maildir([email_bytes(subject="Third time", body="The kettle is broken again. I want a refund.")], path=box)
    assert workspace.run_json("poll")["drafts"] == 1
    assert len(cache.read_bytes()) > 1000
