"""Owner-edited TOML files, read and validated one way: ``TomlFile`` and its typed getters.

Every file an owner edits -- ``triage.toml`` and each file in ``rules/`` --
is read by a ``TomlFile``. Its getters (``string``, ``integer``, ``number``,
``boolean``, ``str_list``, ``choice``, ``table``, ``tables``) each check one
value and, when it is wrong, record a ``Problem`` naming the file, the dotted
key and the line, then return a default, so that a loader reads the whole
file and reports every problem at once. Unknown keys and unknown names get a
"did you mean" when one is close.

Every loader reads owner files through ``read_text``, ``read_bytes``,
``is_file`` and ``listing``. Inside ``Snapshot.reading()`` those answer from
the snapshot: every file under the rules and templates folders read once,
when the snapshot was taken. So what a rule set's parts are built from is
exactly what its fingerprint hashed (``triage.rulecache``), however the
owner edits the files meanwhile; outside one, they read the disk.

This module knows nothing about what the files mean: it imports nothing of
triage but ``errors``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from triage.errors import Problem, RulesError


def did_you_mean(word: str, choices: Iterable[str], show: Callable[[str], str] = "'{}'".format) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {show(close[0])}?" if close else ""


def _listed(allowed: Collection[str]) -> str:
    """The allowed names for a message: a set sorted, an ordered collection as given."""
    names = sorted(allowed) if isinstance(allowed, (set, frozenset)) else list(allowed)
    return ", ".join(names)


def dotted(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


_MISSING = object()


class TomlFile:
    """One parsed owner file and the problems found in it so far.

    ``problems`` starts with the file's own trouble (cannot be read, not
    valid TOML); ``readable`` says whether ``data`` holds what the file says.
    """

    def __init__(self, path: Path, *, data: dict[str, Any] | None = None, text: str = "", what: str = ""):
        self.path = path
        self.problems: list[Problem] = []
        self.data: dict[str, Any] = {}
        self.text = text
        self._split: tuple[str, list[str]] | None = None
        self._ids: tuple[str, dict[str, int]] | None = None
        if data is not None:  # already parsed (``config.from_dict``): no text, so no lines
            self.data = data
            self.readable = True
            return
        self.readable = False
        try:
            self.text = read_text(path)
        except OSError as exc:
            self.problems.append(Problem(str(path), "", f"cannot read{what and ' ' + what}: {exc.strerror}"))
            return
        except UnicodeDecodeError as exc:
            self.problems.append(Problem(str(path), "", f"cannot read{what and ' ' + what}: not UTF-8 text ({exc.reason})"))
            return
        try:
            self.data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"at line (\d+)", str(exc))  # TOMLDecodeError has .lineno only from 3.14
            line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
            self.problems.append(Problem(str(path), "", f"not valid TOML: {exc}", line))
            return
        self.readable = True

    # -- where --------------------------------------------------------------

    def line_of(self, key: str) -> int | None:
        """Best-effort line of a dotted key: inside its table's section when one is found.

        ``a.b.c`` is looked for as ``c = ...`` under a ``[a.b]`` (then ``[a]``)
        header; a key not written there gives the header's line. Without such a
        header, the first line that writes the key's last part anywhere.
        """
        parts = [p.split("[")[0] for p in key.split(".")]
        last = parts[-1]
        if not last:
            return None
        lines = self._lines()
        for cut in range(len(parts) - 1, 0, -1):
            headers = _header_lines(lines, ".".join(parts[:cut]))
            if not headers:
                continue
            # the rest of the key as written (``b.c = 1``), else its last part (``a.ID.c``: an entry's id)
            for rest in dict.fromkeys((".".join(parts[cut:]), last)):
                key_re = re.compile(rf"^\s*[\"']?{re.escape(rest)}[\"']?\s*=")
                for start in headers:
                    for j in range(start + 1, len(lines)):
                        if _HEADER.match(lines[j]):
                            break
                        if key_re.match(lines[j]):
                            return j + 1
            return headers[0] + 1
        pattern = re.compile(rf"^\s*(\[+\s*)?[\"']?{re.escape(last)}[\"']?\s*(=|\]|\.)", re.M)
        match = pattern.search(self.text)
        return self.text.count("\n", 0, match.start()) + 1 if match else None

    def _lines(self) -> list[str]:
        """``text`` split into lines, once (``text`` does not change after reading)."""
        if self._split is None or self._split[0] is not self.text:
            self._split = (self.text, self.text.splitlines())
        return self._split[1]

    def _id_lines(self) -> dict[str, int]:
        """id -> index of the first line writing ``id = "it"``, for ids without quotes (one pass)."""
        if self._ids is None or self._ids[0] is not self.text:
            first: dict[str, int] = {}
            for i, text in enumerate(self._lines()):
                found = _ID_LINE.match(text)
                if found:
                    first.setdefault(found.group(1), i)
            self._ids = (self.text, first)
        return self._ids[1]

    def entry_line(self, section: str, rule_id: str, key: str = "") -> int | None:
        """Line of ``key`` inside the ``[[section]]`` entry whose ``id`` is ``rule_id``."""
        lines = self._lines()
        if "'" in rule_id or '"' in rule_id:  # not what the id index holds: look line by line
            id_re = re.compile(rf"^\s*id\s*=\s*[\"']{re.escape(rule_id)}[\"']")
            found = next((i for i, text in enumerate(lines) if id_re.match(text)), None)
        else:
            found = self._id_lines().get(rule_id)
        if found is None:
            return self.line_of(section)
        i = found
        if not key:
            return i + 1
        key_re = re.compile(rf"^\s*{re.escape(key)}\s*=")
        first = i
        while first > 0 and not lines[first].lstrip().startswith("["):
            first -= 1  # keys may come before the id: start at the entry's [[header]]
        for j in range(first, len(lines)):
            if j > first and lines[j].lstrip().startswith("["):
                break
            if key_re.match(lines[j]):
                return j + 1
        return i + 1

    # -- problems -------------------------------------------------------------

    def problem(self, key: str, message: str, line: int | None = None) -> None:
        """Record a problem at ``key``; ``line`` defaults to ``line_of(key)``."""
        self.problems.append(Problem(str(self.path), key, message, line if line is not None else self.line_of(key)))

    def unknown(self, key: str, name: str, allowed: Collection[str], what: str = "key",
                line: int | None = None, show: Callable[[str], str] = "'{}'".format) -> None:
        """``key`` names ``name``, which is not one of ``allowed``: say so, with a close match."""
        self.problem(key, f"unknown {what}{did_you_mean(name, allowed, show)} (expected one of: {_listed(allowed)})",
                     line)

    def unknown_keys(self, table: dict[str, Any], allowed: Collection[str], prefix: str,
                     line: Callable[[str], int | None] | None = None, what: str = "key",
                     show: Callable[[str], str] = "'{}'".format) -> None:
        """A problem for each key of ``table`` not in ``allowed`` (``line(key)`` places it)."""
        for key in table:
            if key not in allowed:
                self.unknown(dotted(prefix, key), key, allowed, what, line(key) if line else None, show)

    def raise_if_problems(self) -> None:
        if self.problems:
            raise RulesError(self.problems)

    # -- typed getters ----------------------------------------------------------
    # Each reads table[key] (``prefix`` is the table's dotted path, for messages),
    # records a problem when it is missing-but-required or wrong, and returns
    # ``default`` then.

    def table(self, parent: dict[str, Any], name: str, prefix: str = "", *,
              allowed: Collection[str] | None = None, expected: str | None = None) -> dict[str, Any]:
        """``parent[name]`` as a table (``{}`` when absent); unknown keys checked against ``allowed``."""
        key = dotted(prefix, name)
        value = parent.get(name, {})
        if not isinstance(value, dict):
            self.problem(key, f"expected {expected or f'a table [{key}]'}")
            return {}
        if allowed is not None:
            self.unknown_keys(value, allowed, key)
        return value

    def tables(self, parent: dict[str, Any], name: str, prefix: str = "") -> list[dict[str, Any]]:
        """``parent[name]`` as an array of tables (``[[name]]``); ``[]`` when absent."""
        key = dotted(prefix, name)
        value = parent.get(name, [])
        if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
            self.problem(key, f"expected [[{key}]] tables")
            return []
        return value

    def _get(self, table: dict[str, Any], key: str, prefix: str, required: bool, expected: str,
             line: int | None) -> Any:
        if key in table:
            return table[key]
        if required:
            self.problem(dotted(prefix, key), f"missing (expected {expected})", line)
        return _MISSING

    def string(self, table: dict[str, Any], key: str, prefix: str = "", default: Any = None, *,
               required: bool = False, empty: bool = False, expected: str | None = None,
               line: int | None = None) -> Any:
        """A string (non-blank unless ``empty``)."""
        want = expected or ("a string" if empty else "a non-empty string")
        value = self._get(table, key, prefix, required, "a string", line)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or not (empty or value.strip()):
            self.problem(dotted(prefix, key), f"expected {want}, got {value!r}", line)
            return default
        return value

    def integer(self, table: dict[str, Any], key: str, prefix: str = "", default: Any = None, *,
                lo: int | None = None, hi: int | None = None, required: bool = False,
                expected: str | None = None, line: int | None = None) -> Any:
        """A whole number (never a bool) within ``lo``..``hi`` when given."""
        value = self._get(table, key, prefix, required, expected or "an integer", line)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(dotted(prefix, key), f"expected {expected or 'an integer'}, got {value!r}", line)
            return default
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            if expected is None:
                expected = ("a positive integer" if lo == 1 and hi is None else
                            f"an integer from {lo} to {hi}" if lo is not None and hi is not None else
                            f"an integer of at least {lo}" if lo is not None else f"an integer of at most {hi}")
            self.problem(dotted(prefix, key), f"expected {expected}, got {value!r}", line)
            return default
        return value

    def number(self, table: dict[str, Any], key: str, prefix: str = "", default: Any = None, *,
               lo: float | None = None, hi: float | None = None, above: float | None = None,
               also: Collection[float] = (), required: bool = False, expected: str | None = None,
               line: int | None = None) -> Any:
        """An int or float (never a bool) as a float: within ``lo``..``hi``, greater than
        ``above``, or exactly one of ``also`` (a sentinel such as -1 for "never")."""
        value = self._get(table, key, prefix, required, "a number", line)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(dotted(prefix, key), f"expected {expected or 'a number'}, got {value!r}", line)
            return default
        inside = ((lo is None or value >= lo) and (hi is None or value <= hi)
                  and (above is None or value > above))
        if not inside and value not in also:
            if expected is None:
                expected = (f"a number from {lo} to {hi}" if lo is not None and hi is not None else
                            f"a number above {above}" if above is not None else
                            f"a number of at least {lo}" if lo is not None else f"a number of at most {hi}")
            self.problem(dotted(prefix, key), f"expected {expected}, got {value!r}", line)
            return default
        return float(value)

    def boolean(self, table: dict[str, Any], key: str, prefix: str = "", default: Any = None, *,
                line: int | None = None) -> Any:
        """true or false."""
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(dotted(prefix, key), f"expected true or false, got {value!r}", line)
            return default
        return value

    def str_list(self, table: dict[str, Any], key: str, prefix: str = "", *, required: bool = False,
                 empty: bool = False, allowed: Collection[str] = (), what: str = "value",
                 line: int | None = None) -> tuple[str, ...]:
        """A list of strings (each non-blank and stripped unless ``empty``) as a tuple.

        With ``allowed``, each item must be one of them (``what`` names what an item is).
        """
        want = "a list of strings" if empty else "a list of non-empty strings"
        value = self._get(table, key, prefix, required, want, line)
        if value is _MISSING:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and (empty or v.strip()) for v in value):
            self.problem(dotted(prefix, key), f"expected {want}, got {value!r}", line)
            return ()
        for v in value:
            if allowed and v not in allowed:
                self.problem(dotted(prefix, key), f"unknown {what} {v!r}{did_you_mean(v, allowed)} "
                             f"(expected one of: {_listed(allowed)})", line)
        return tuple(value if empty else (v.strip() for v in value))

    def choice(self, table: dict[str, Any], key: str, prefix: str, allowed: Collection[str],
               default: str, *, invalid: str | None = None, line: int | None = None) -> str:
        """One of ``allowed``: ``default`` when absent, ``invalid`` (else ``default``) when wrong."""
        if key not in table:
            return default
        value = table[key]
        if value not in allowed:
            hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
            self.problem(dotted(prefix, key), f"expected one of {', '.join(allowed)}, got {value!r}{hint}", line)
            return default if invalid is None else invalid
        return str(value)


_ID_LINE = re.compile(r"^\s*id\s*=\s*[\"']([^\"']*)[\"']")  # what entry_line looks for, any id
_HEADER = re.compile(r"^\s*\[\[?\s*[\w\"'. -]+\s*\]\]?\s*(#.*)?$")


def _header_lines(lines: list[str], name: str) -> list[int]:
    """Indexes of the ``[name]`` / ``[[name]]`` header lines."""
    header = re.compile(rf"^\s*\[\[?\s*[\"']?{re.escape(name)}[\"']?\s*\]\]?")
    return [i for i, text in enumerate(lines) if header.match(text)]


# -- one read of the owner's files ------------------------------------------


def files_under(folder: Path) -> list[Path]:
    """Every file under ``folder``, dot-files and dot-folders (``.git``) left out, sorted."""
    out: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(Path(root, n) for n in names if not n.startswith("."))
    return sorted(out)


def _key(path: Path | str) -> str:
    return os.path.abspath(path)


class Snapshot:
    """The files under some folders (and a few single files), each read once, now.

    ``files`` maps a label (``rules``, ``templates``) to its folder, ``extra``
    a label to one file (a shipped file a loader falls back on). While
    ``reading()`` is active, the module's readers answer from here: a file in
    a folder is what it was when the snapshot was taken (one added since is
    not there, one removed since still is); one that could not be read
    raises what reading it raised. A file outside every folder is read from
    the disk and named in the ``Reads`` that ``reading()`` yields: the
    snapshot does not cover it.
    """

    def __init__(self, folders: dict[str, Path], extra: dict[str, Path] | None = None):
        self.folders = {label: Path(folder) for label, folder in folders.items()}
        self.roots = [_key(f) for f in self.folders.values()]
        # label -> [(name shown in the fingerprint, absolute path)], in a stable order
        self.listed: dict[str, list[tuple[str, str]]] = {}
        self.data: dict[str, bytes] = {}
        self.errors: dict[str, OSError] = {}
        for label, folder in self.folders.items():
            self.listed[label] = [(str(p.relative_to(folder)), self._take(p)) for p in files_under(folder)]
        for label, path in (extra or {}).items():
            self.roots.append(_key(path))
            self.listed[label] = [(Path(path).name, self._take(Path(path)))]

    def _take(self, path: Path) -> str:
        key = _key(path)
        try:
            self.data[key] = path.read_bytes()
        except OSError as exc:
            self.errors[key] = exc
        return key

    @property
    def complete(self) -> bool:
        """Every file listed was read (none raised)."""
        return not self.errors

    def covers(self, path: Path | str) -> bool:
        key = _key(path)
        return any(key == root or key.startswith(root + os.sep) for root in self.roots)

    def get(self, path: Path | str) -> bytes:
        key = _key(path)
        if key in self.errors:
            exc = self.errors[key]
            raise type(exc)(exc.errno, exc.strerror, exc.filename)
        if key not in self.data:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return self.data[key]

    @contextmanager
    def reading(self) -> Iterator[Reads]:
        """Make this snapshot what the readers read, in this thread, until the block ends."""
        reads = Reads(self)
        token = _ACTIVE.set(reads)
        try:
            yield reads
        finally:
            _ACTIVE.reset(token)


class Reads:
    """One ``Snapshot.reading()`` block: the snapshot, and the files read that it did not cover."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        self.outside: list[str] = []

    def covers(self, path: Path | str) -> bool:
        if self.snapshot.covers(path):
            return True
        self.outside.append(_key(path))
        return False


_ACTIVE: ContextVar[Reads | None] = ContextVar("triage_rule_reads", default=None)


def active() -> Snapshot | None:
    """The snapshot the readers answer from here, or None (they read the disk)."""
    reads = _ACTIVE.get()
    return reads.snapshot if reads is not None else None


def read_bytes(path: Path) -> bytes:
    reads = _ACTIVE.get()
    if reads is not None and reads.covers(path):
        return reads.snapshot.get(path)
    return Path(path).read_bytes()


def read_text(path: Path) -> str:
    """The file as UTF-8 text (``UnicodeDecodeError`` when it is not), newlines as ``Path.read_text``."""
    reads = _ACTIVE.get()
    if reads is not None and reads.covers(path):
        text = reads.snapshot.get(path).decode("utf-8")
        return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as open() reads
    return Path(path).read_text(encoding="utf-8")


def is_file(path: Path) -> bool:
    reads = _ACTIVE.get()
    if reads is not None and reads.covers(path):
        key = _key(path)
        return key in reads.snapshot.data or key in reads.snapshot.errors
    return Path(path).is_file()


def listing(folder: Path, suffix: str) -> list[Path]:
    """The files directly in ``folder`` whose names end with ``suffix``, sorted; [] without the folder."""
    folder = Path(folder)
    reads = _ACTIVE.get()
    if reads is not None and reads.covers(folder):
        root = _key(folder)
        names = [k[len(root) + 1:] for k in (*reads.snapshot.data, *reads.snapshot.errors)
                 if k.startswith(root + os.sep)]
        return sorted(folder / n for n in names if os.sep not in n and n.endswith(suffix))
    try:
        return sorted(p for p in folder.glob(f"*{suffix}") if p.is_file())
    except OSError:
        return []
