"""Which parts of a rule set already passed their checks, remembered on disk by the files' hashes.

Loading the rules checks them as ``triage rules check`` does: every token
pattern compiled alone and run on a probe text, every template rendered with
about forty sample contexts and its samples linted. On an unchanged rule set
that work finds nothing new, and it is most of what a poll with one new
message spends loading rules (about 1.5 s of 4). So once a part (``detector``,
``linter``, ``drafter``) has been built with every check passing, its name is
written down under the rule set's *fingerprint*; a later run with the same
fingerprint builds that part without the checks, to the same result.

The fingerprint is a SHA-256 of: every file under the rules and templates
folders (names and bytes; dot-files and dot-folders left out), the shipped
``asks.toml`` and ``policy.toml`` when the rules folder has none (the loaders
read them instead), the ``[support]`` settings (the templates' samples are
rendered with them), triage's version and the modification times of its
modules, and the versions of Python, spaCy, spacy-lookups-data and Jinja.
Any change to any of them is a new fingerprint: nothing is skipped until the
part has passed again.

The bytes hashed are the bytes the parts are built from: a ``RuleSet`` reads
the files once into a ``rulefile.Snapshot``, fingerprints that, and its
loaders parse what it holds. An owner's edit while a run loads its rules is
not loaded by that run (nor recorded as checked), and the next run, seeing a
new fingerprint, checks it. A part that read a file the snapshot does not
cover (a lexicon outside the rules folder) is never recorded.

The file (JSON: ``{"fingerprint": ..., "parts": [...]}``) lives beside the
store (``triage.db.rules-checked``). It is written to a temporary file and
renamed into place, so a reader sees the old file or the new one, never half
of one; a file that cannot be read or parsed, or names another fingerprint,
counts as nothing checked; a folder that cannot be written only means the
checks run again next time. ``triage rules check`` never reads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path

from triage.config import SupportSettings
from triage.rulefile import Snapshot, files_under

log = logging.getLogger(__name__)

FORMAT = 1
PARTS = ("detector", "linter", "drafter")
_DISTRIBUTIONS = ("spacy", "spacy-lookups-data", "jinja2")
_PACKAGE = Path(__file__).resolve().parent


def _versions() -> list[str]:
    from importlib import metadata

    from triage import __version__

    found = [f"python {sys.version}", f"triage {__version__}"]
    for name in _DISTRIBUTIONS:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} -")
    return found


def _code_stamp() -> list[str]:
    """triage's own modules by mtime and size: a checkout changed in place is a new fingerprint."""
    out = []
    for path in files_under(_PACKAGE):
        if path.suffix == ".py":
            try:
                st = path.stat()
            except OSError:
                continue
            out.append(f"{path.relative_to(_PACKAGE)} {st.st_mtime_ns} {st.st_size}")
    return out


def snapshot(rules_dir: Path, templates_dir: Path) -> Snapshot:
    """Every file the rule set's parts may read, read once, now: both folders, and the shipped
    asks.toml and policy.toml when the rules folder has none (the loaders fall back on them)."""
    from triage.config import shipped_dir

    extra = {}
    for name, label in (("asks.toml", "shipped asks"), ("policy.toml", "shipped policy")):
        if not (Path(rules_dir) / name).is_file():
            extra[label] = shipped_dir("rules") / name
    return Snapshot({"rules": Path(rules_dir), "templates": Path(templates_dir)}, extra)


def digest(files: Snapshot, support: SupportSettings) -> str:
    """The fingerprint of ``files`` as the checks see them (see the module doc); "" when one
    could not be read."""
    if not files.complete:
        log.debug("rule set not fingerprinted: %s", "; ".join(map(str, files.errors.values())))
        return ""
    hashed = hashlib.sha256()

    def add(text: str) -> None:
        hashed.update(text.encode("utf-8", "surrogateescape") + b"\0")

    add(f"format {FORMAT}")
    for line in (*_versions(), *_code_stamp(), repr(support)):
        add(line)
    for label, listed in files.listed.items():
        add(f"{label} {len(listed)}")
        for name, key in listed:
            data = files.data[key]
            add(f"{name} {len(data)}")
            hashed.update(data)
    return hashed.hexdigest()


def fingerprint(rules_dir: Path, templates_dir: Path, support: SupportSettings) -> str:
    """The rule set as it is on disk now (see ``digest``)."""
    return digest(snapshot(rules_dir, templates_dir), support)


class Checked:
    """The parts of one rule set known to pass their checks, read from and written to ``path``.

    ``files`` is the snapshot the parts are built from: the fingerprint is of its bytes, so a
    part recorded as passed is exactly what was checked, whatever changed on disk meanwhile.
    """

    def __init__(self, path: Path | None, files: Snapshot, support: SupportSettings):
        self.path = path
        self._lock = threading.Lock()
        self.fingerprint = digest(files, support) if path is not None else ""
        self.parts: set[str] = self._read() if self.fingerprint else set()

    def __contains__(self, part: str) -> bool:
        return part in self.parts

    def _read(self) -> set[str]:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return set()
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            log.debug("%s ignored: %s", self.path, exc)
            return set()
        if not isinstance(data, dict) or data.get("fingerprint") != self.fingerprint:
            return set()
        parts = data.get("parts")
        return {p for p in parts if p in PARTS} if isinstance(parts, list) else set()

    def passed(self, part: str) -> None:
        """``part`` was just built from the snapshot with every check passing: remember it."""
        if self.path is None or not self.fingerprint or part in self.parts:
            return
        with self._lock:
            self.parts |= {part} | self._read()  # and what another run recorded meanwhile
            body = json.dumps({"fingerprint": self.fingerprint, "parts": sorted(self.parts)})
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as out:
                        out.write(body)
                    os.replace(tmp, self.path)
                except BaseException:
                    os.unlink(tmp)
                    raise
            except OSError as exc:
                log.debug("%s not written: %s", self.path, exc)
