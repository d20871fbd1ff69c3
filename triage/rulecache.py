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
``asks.toml`` when the rules folder has none (the detector reads it instead),
the ``[support]`` settings (the templates' samples are rendered with them),
triage's version and the modification times of its modules, and the versions
of Python, spaCy, spacy-lookups-data and Jinja. Any change to any of them is
a new fingerprint: nothing is skipped until the part has passed again.

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


def _files(folder: Path) -> list[Path]:
    """Every file under ``folder``, dot-files and dot-folders (``.git``) left out, sorted."""
    out: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(Path(root, n) for n in names if not n.startswith("."))
    return sorted(out)


def _code_stamp() -> list[str]:
    """triage's own modules by mtime and size: a checkout changed in place is a new fingerprint."""
    out = []
    for path in _files(_PACKAGE):
        if path.suffix == ".py":
            try:
                st = path.stat()
            except OSError:
                continue
            out.append(f"{path.relative_to(_PACKAGE)} {st.st_mtime_ns} {st.st_size}")
    return out


def fingerprint(rules_dir: Path, templates_dir: Path, support: SupportSettings) -> str:
    """The rule set as the checks see it (see the module doc); "" when a file cannot be read."""
    from triage.config import shipped_dir

    digest = hashlib.sha256()

    def add(text: str) -> None:
        digest.update(text.encode("utf-8", "surrogateescape") + b"\0")

    add(f"format {FORMAT}")
    for line in (*_versions(), *_code_stamp(), repr(support)):
        add(line)
    folders = [("rules", Path(rules_dir)), ("templates", Path(templates_dir))]
    if not (Path(rules_dir) / "asks.toml").is_file():
        folders.append(("shipped asks", shipped_dir("rules") / "asks.toml"))
    try:
        for label, folder in folders:
            files = [folder] if folder.is_file() else _files(folder)
            add(f"{label} {len(files)}")
            for path in files:
                data = path.read_bytes()
                add(f"{path.relative_to(folder) if path != folder else path.name} {len(data)}")
                digest.update(data)
    except OSError as exc:
        log.debug("rule set not fingerprinted: %s", exc)
        return ""
    return digest.hexdigest()


class Checked:
    """The parts of one rule set known to pass their checks, read from and written to ``path``."""

    def __init__(self, path: Path | None, rules_dir: Path, templates_dir: Path, support: SupportSettings):
        self.path = path
        self._where = (Path(rules_dir), Path(templates_dir), support)
        self._lock = threading.Lock()
        self.fingerprint = fingerprint(*self._where) if path is not None else ""
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
        """``part`` was just built with every check passing: remember it, if the files are as they were."""
        if self.path is None or not self.fingerprint or part in self.parts:
            return
        with self._lock:
            if fingerprint(*self._where) != self.fingerprint:
                return  # a file changed while the part was built: what passed is not what is fingerprinted
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
