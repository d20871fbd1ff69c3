"""What Python compiles while the rules load, remembered on disk between runs.

Loading the rule set compiles two kinds of thing that Python's own bytecode
cache (``__pycache__``) does not keep:

* **regular expressions**, a few hundred: spaCy's own when it is imported, its
  tokenizer's prefixes, suffixes and infixes, the asks', the facts', the tone
  linter's and the drafter's phrases. ``re`` keeps compiled patterns in memory
  only, and parsing them is pure Python;
* **dataclass methods**: each ``@dataclass`` writes its ``__init__``,
  ``__repr__``, ``__eq__`` and ``__hash__`` as source text and compiles it with
  ``exec`` when its module is imported (the detection and drafting modules, and
  pydantic's and thinc's under spaCy, are imported while the rules load).

Together about 0.2 s of CPU in every poll that finds new mail (measured
against the same code with the cache off), the same work each time.

What ``re`` compiles a pattern into is plain data: ``re._compiler.compile``
parses it and hands ``_sre.compile`` the pattern, its flags, a list of ints
(the code) and its group names. A dataclass method's source text compiles to a
code object, as a module's does into its ``.pyc``. While ``CompileCache.active()``
is in force (in the thread that entered it: a ``ContextVar``):

* a pattern not in ``re``'s memory is looked up by (pattern, flags): found,
  its arguments go to ``_sre.compile`` directly; not found, it is compiled as
  ``re`` does and its arguments are kept. A pattern that does not compile
  raises as it always does, and is never kept. The result is the same
  ``re.Pattern`` (two patterns compare equal only when their code is equal;
  the tests check that);
* the text ``dataclasses`` hands ``exec`` is looked up by the whole text:
  found, its code object runs; not found, it is compiled as ``exec`` would
  (with ``dataclasses``' own compiler flags, none) and kept.

The file (``triage.db.compiled``, beside the store and the ``rules-checked``
record) is ``MAGIC``, a SHA-256 of the rest, then ``marshal`` data naming the
Python build it was made by (code objects are read back only by that build,
as a ``.pyc`` is). It is only a shortcut, never trusted:

* a file that cannot be read, fails its checksum or was made by another
  Python (or another ``_sre``) counts as empty, and is replaced when the run
  compiles anything;
* a regex entry ``_sre.compile`` rejects (it validates the code it is given)
  is dropped and the pattern compiled again from its text;
* the keys are whole texts, so an edited rule is a new key: a changed file is
  compiled from what it says now, whatever the cache holds;
* a folder that cannot be written only means compiling again next time.

It is written (to a temporary file, renamed into place) only when a run
compiled something the file lacked; with more than ``MAX_ENTRIES`` of a kind,
the entries of that kind this run did not use are dropped. Only Pythons whose
``re._compiler.compile`` and ``dataclasses`` are known to work as described
(3.11 to 3.13) use it; on any other it does nothing.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import logging
import marshal
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import CodeType
from typing import Any

log = logging.getLogger(__name__)

MAGIC = b"triage compiled 1\n"
MAX_ENTRIES = 4096
_DIGEST = 32  # bytes of SHA-256
RegexKey = tuple[str | bytes, int]

try:  # the internals relied on (see the module doc); without them the cache is off
    import _sre
    from importlib.util import MAGIC_NUMBER
    from re import _compiler, _parser  # type: ignore[attr-defined]  # (not in the stubs)

    _SUPPORTED = (3, 11) <= sys.version_info[:2] <= (3, 13) and all(
        callable(getattr(m, name, None))
        for m, name in ((_sre, "compile"), (_compiler, "compile"), (_compiler, "_code"), (_parser, "parse"),
                        (dataclasses, "_create_fn"))
    )
except ImportError:  # pragma: no cover - CPython always has them
    _SUPPORTED = False

_BUILD = (f"{sys.version} {sys.implementation.cache_tag} {MAGIC_NUMBER.hex()} sre {_sre.MAGIC}"
          if _SUPPORTED else "-")
_ACTIVE: ContextVar[CompileCache | None] = ContextVar("triage_compile_cache", default=None)
_HOOK_LOCK = threading.Lock()
_original_compile: Any = None


def _hooked_compile(p: Any, flags: int = 0) -> Any:
    """``re._compiler.compile``, answered from the active cache when there is one."""
    cache = _ACTIVE.get()
    if cache is None or not isinstance(p, (str, bytes)) or flags & _compiler.SRE_FLAG_DEBUG:
        return _original_compile(p, flags)
    return cache.regex(p, int(flags))


def _dataclasses_exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    """``exec`` as ``dataclasses`` sees it: its methods' code from the active cache when there is one."""
    cache = _ACTIVE.get()
    if cache is None or not isinstance(source, str):
        builtins.exec(source, globals, locals)
        return
    builtins.exec(cache.code(source), globals, locals)


def _install() -> None:
    """Put the hooks in place (once per process; outside an ``active()`` block they pass every
    call through unchanged): ``re._compiler.compile``, and ``exec`` in ``dataclasses``' globals."""
    global _original_compile
    with _HOOK_LOCK:
        if _original_compile is None:
            _original_compile = _compiler.compile
            _compiler.compile = _hooked_compile
            dataclasses.exec = _dataclasses_exec  # type: ignore[attr-defined]  # shadows the builtin there only


def _arguments(pattern: str | bytes, flags: int) -> tuple[Any, ...]:
    """What ``re._compiler.compile(pattern, flags)`` hands ``_sre.compile``, as marshal-able data."""
    parsed = _parser.parse(pattern, flags)
    code = _compiler._code(parsed, flags)
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    return (pattern, int(flags | parsed.state.flags), [int(c) for c in code], parsed.state.groups - 1,
            groupindex, tuple(indexgroup))


class _Kind:
    """One kind of entry: what the file held, what this run added and what it used."""

    def __init__(self, entries: dict[Any, Any]):
        self.entries = entries
        self.new: set[Any] = set()
        self.used: set[Any] = set()
        self.reused = 0  # answered from the file this run
        self.compiled = 0  # compiled from the text this run

    def kept(self) -> dict[Any, Any]:
        if len(self.entries) <= MAX_ENTRIES:
            return self.entries
        return {key: value for key, value in self.entries.items() if key in self.used}


class CompileCache:
    """The compiled regexes and dataclass methods kept in ``path`` (None: no file, nothing kept);
    see the module doc."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._kinds: dict[str, _Kind] | None = None  # read on first use

    @property
    def regexes(self) -> _Kind:
        return self._load()["regexes"]

    @property
    def methods(self) -> _Kind:
        return self._load()["code"]

    @contextmanager
    def active(self) -> Iterator[None]:
        """Compile through this cache in this thread until the block ends (see the module doc); the
        outermost block then saves what it compiled (``save``), unless it ended with an exception."""
        if self.path is None or not _SUPPORTED:
            yield
            return
        _install()
        outermost = _ACTIVE.get() is not self
        token = _ACTIVE.set(self)
        try:
            yield
        finally:
            _ACTIVE.reset(token)
        if outermost:
            self.save()

    def regex(self, pattern: str | bytes, flags: int) -> Any:
        key = (pattern, flags)
        with self._lock:
            kind = self.regexes
            args = kind.entries.get(key)
        if args is not None:
            try:
                compiled = _sre.compile(*args)
            except (TypeError, ValueError, RuntimeError, OverflowError) as exc:  # not what re would make
                log.debug("%s: entry for %r dropped: %s", self.path, pattern, exc)
            else:
                with self._lock:
                    kind.used.add(key)
                    kind.reused += 1
                return compiled
        args = _arguments(pattern, flags)  # raises re.error for a pattern that does not compile
        compiled = _sre.compile(*args)
        with self._lock:
            kind.entries[key] = args
            kind.new.add(key)
            kind.used.add(key)
            kind.compiled += 1
        return compiled

    def code(self, source: str) -> Any:
        """The code object of ``source`` as ``exec`` in ``dataclasses`` compiles it."""
        with self._lock:
            kind = self.methods
            found = kind.entries.get(source)
            if found is not None:
                kind.used.add(source)
                kind.reused += 1
                return found
        code = compile(source, "<string>", "exec", dont_inherit=True)  # dataclasses' own flags: none
        with self._lock:
            kind.entries[source] = code
            kind.new.add(source)
            kind.used.add(source)
            kind.compiled += 1
        return code

    def _load(self) -> dict[str, _Kind]:
        if self._kinds is None:
            self._kinds = {name: _Kind(entries) for name, entries in self._read().items()}
        return self._kinds

    def _read(self) -> dict[str, dict[Any, Any]]:
        empty: dict[str, dict[Any, Any]] = {"regexes": {}, "code": {}}
        if self.path is None:
            return empty
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return empty
        except OSError as exc:
            log.debug("%s ignored: %s", self.path, exc)
            return empty
        body = raw[len(MAGIC) + _DIGEST:]
        if not raw.startswith(MAGIC) or raw[len(MAGIC):len(MAGIC) + _DIGEST] != hashlib.sha256(body).digest():
            log.debug("%s ignored: not a compile cache, or damaged", self.path)
            return empty
        try:
            data = marshal.loads(body)
        except (EOFError, ValueError, TypeError) as exc:
            log.debug("%s ignored: %s", self.path, exc)
            return empty
        if not isinstance(data, dict) or data.get("build") != _BUILD:
            return empty
        regexes, code = data.get("regexes"), data.get("code")
        if not isinstance(regexes, dict) or not isinstance(code, dict):
            return empty
        return {
            "regexes": {key: args for key, args in regexes.items()
                        if isinstance(key, tuple) and len(key) == 2 and isinstance(args, tuple) and len(args) == 6},
            "code": {source: obj for source, obj in code.items()
                     if isinstance(source, str) and isinstance(obj, CodeType)},
        }

    def save(self) -> None:
        """Write the file if this run compiled something it lacked (see the module doc)."""
        if self.path is None:
            return
        with self._lock:
            kinds = self._kinds
            if kinds is None or not any(kind.new for kind in kinds.values()):
                return
            body = marshal.dumps({"build": _BUILD, **{name: kind.kept() for name, kind in kinds.items()}})
            for kind in kinds.values():
                kind.new = set()
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(MAGIC + hashlib.sha256(body).digest() + body)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            log.debug("%s not written: %s", self.path, exc)
