"""Regular expressions compiled while the rules load, remembered on disk between runs.

Loading the rule set compiles a few hundred regular expressions: spaCy's own
when it is imported, its tokenizer's prefixes, suffixes and infixes, the asks',
the facts', the tone linter's and the drafter's phrases. Python keeps compiled
patterns only in memory, and parsing them is pure Python: about 0.2 s of CPU
in every poll that finds new mail, the same patterns each time.

What ``re`` compiles a pattern into is plain data: ``re._compiler.compile``
parses it and hands ``_sre.compile`` the pattern, its flags, a list of ints
(the code) and its group names. While ``RegexCache.active()`` is in force (in
the thread that entered it: a ``ContextVar``), a pattern not in ``re``'s
memory is looked up by (pattern, flags) here: found, its arguments go to
``_sre.compile`` directly; not found, it is compiled as ``re`` does and its
arguments are kept. A pattern that does not compile raises as it always does,
and is never kept. The result is the same ``re.Pattern``, code and all (two
patterns compare equal only when their code is equal; the tests check that).

The file (``triage.db.regexes``, beside the store and the ``rules-checked``
record) is ``MAGIC``, a SHA-256 of the rest, then ``marshal`` data naming the
Python build it was made by. It is only a shortcut, never trusted:

* a file that cannot be read, fails its checksum or was made by another
  Python (or another ``_sre``) counts as empty, and is replaced when the run
  compiles anything;
* an entry ``_sre.compile`` rejects (it validates the code it is given) is
  dropped and the pattern compiled again from its text;
* the key is the pattern's whole text, so an edited rule is a new key: a
  changed file is compiled from what it says now, whatever the cache holds;
* a folder that cannot be written only means compiling again next time.

It is written (to a temporary file, renamed into place) only when a run
compiled a pattern the file lacked; with more than ``MAX_ENTRIES`` the
entries this run did not use are dropped. Only Pythons whose
``re._compiler.compile`` is known to be the parse-then-``_sre.compile``
above (3.11 to 3.13) use it; on any other it does nothing.
"""

from __future__ import annotations

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
from typing import Any

log = logging.getLogger(__name__)

MAGIC = b"triage regexes 1\n"
MAX_ENTRIES = 4096
_DIGEST = 32  # bytes of SHA-256
Key = tuple[str | bytes, int]

try:  # the internals relied on (see the module doc); without them the cache is off
    import _sre
    from re import _compiler, _parser  # type: ignore[attr-defined]  # (not in the stubs)

    _SUPPORTED = (3, 11) <= sys.version_info[:2] <= (3, 13) and all(
        callable(getattr(m, name, None))
        for m, name in ((_sre, "compile"), (_compiler, "compile"), (_compiler, "_code"), (_parser, "parse"))
    )
except ImportError:  # pragma: no cover - CPython always has them
    _SUPPORTED = False

_BUILD = f"{sys.version} {sys.implementation.cache_tag} sre {getattr(_sre, 'MAGIC', '-') if _SUPPORTED else '-'}"
_ACTIVE: ContextVar[RegexCache | None] = ContextVar("triage_regex_cache", default=None)
_HOOK_LOCK = threading.Lock()
_original: Any = None


def _hooked(p: Any, flags: int = 0) -> Any:
    """``re._compiler.compile``, answered from the active cache when there is one."""
    cache = _ACTIVE.get()
    if cache is None or not isinstance(p, (str, bytes)) or flags & _compiler.SRE_FLAG_DEBUG:
        return _original(p, flags)
    return cache.compile(p, int(flags))


def _install() -> None:
    """Put ``_hooked`` in place of ``re._compiler.compile`` (once per process; it passes every
    call through unchanged outside an ``active()`` block)."""
    global _original
    with _HOOK_LOCK:
        if _original is None:
            _original = _compiler.compile
            _compiler.compile = _hooked


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


class RegexCache:
    """The compiled patterns kept in ``path`` (None: no file, nothing kept); see the module doc."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[Key, tuple[Any, ...]] | None = None  # read on first use
        self._new: set[Key] = set()
        self._used: set[Key] = set()
        self.reused = 0  # patterns answered from the file this run
        self.compiled = 0  # patterns compiled from their text this run

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

    def compile(self, pattern: str | bytes, flags: int) -> Any:
        key = (pattern, flags)
        with self._lock:
            entries = self._load()
            args = entries.get(key)
        if args is not None:
            try:
                compiled = _sre.compile(*args)
            except (TypeError, ValueError, RuntimeError, OverflowError) as exc:  # not what re would make
                log.debug("%s: entry for %r dropped: %s", self.path, pattern, exc)
            else:
                with self._lock:
                    self._used.add(key)
                    self.reused += 1
                return compiled
        args = _arguments(pattern, flags)  # raises re.error for a pattern that does not compile
        compiled = _sre.compile(*args)
        with self._lock:
            entries[key] = args
            self._new.add(key)
            self._used.add(key)
            self.compiled += 1
        return compiled

    def _load(self) -> dict[Key, tuple[Any, ...]]:
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def _read(self) -> dict[Key, tuple[Any, ...]]:
        assert self.path is not None
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.debug("%s ignored: %s", self.path, exc)
            return {}
        body = raw[len(MAGIC) + _DIGEST:]
        if not raw.startswith(MAGIC) or raw[len(MAGIC):len(MAGIC) + _DIGEST] != hashlib.sha256(body).digest():
            log.debug("%s ignored: not a regex cache, or damaged", self.path)
            return {}
        try:
            data = marshal.loads(body)
        except (EOFError, ValueError, TypeError) as exc:
            log.debug("%s ignored: %s", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("build") != _BUILD or not isinstance(data.get("entries"), dict):
            return {}
        return {key: args for key, args in data["entries"].items()
                if isinstance(key, tuple) and len(key) == 2 and isinstance(args, tuple) and len(args) == 6}

    def save(self) -> None:
        """Write the file if this run compiled a pattern it lacked (see the module doc)."""
        if self.path is None:
            return
        with self._lock:
            if not self._new or self._entries is None:
                return
            entries = self._entries
            if len(entries) > MAX_ENTRIES:
                entries = {key: args for key, args in entries.items() if key in self._used}
            body = marshal.dumps({"build": _BUILD, "entries": entries})
            self._new = set()
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
