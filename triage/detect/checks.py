"""Small validators for owner-edited rule files: each records a Problem (file, key, line) and returns a default.

Shared by the detection rule loaders (``rulefiles.py``, ``archetype.py``).
"""

from __future__ import annotations

import re
from typing import Any

from triage.errors import Problem
from triage.rules import TomlFile


def add_problem(tf: TomlFile, key: str, message: str, line: int | None = None) -> None:
    """Record a problem; ``line`` defaults to TomlFile's best guess for ``key``."""
    tf.problems.append(Problem(str(tf.path), key, message, line if line is not None else tf.line_of(key)))


def entry_line(tf: TomlFile, section: str, rule_id: str, key: str = "") -> int | None:
    """Line of ``key`` inside the ``[[section]]`` entry whose ``id`` is ``rule_id``."""
    lines = tf.text.splitlines()
    id_re = re.compile(rf"^\s*id\s*=\s*[\"']{re.escape(rule_id)}[\"']")
    for i, text in enumerate(lines):
        if not id_re.match(text):
            continue
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
    return tf.line_of(section)


def get_number(
    tf: TomlFile,
    table: dict[str, Any],
    key: str,
    prefix: str,
    default: float | None,
    lo: float,
    hi: float,
    line: int | None = None,
) -> float | None:
    """``table[key]`` as a float in [lo, hi]; a problem (and ``default``) otherwise."""
    dotted = f"{prefix}.{key}" if prefix else key
    if key not in table:
        if default is None:
            add_problem(tf, dotted, "missing (expected a number)", line)
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        add_problem(tf, dotted, f"expected a number, got {type(value).__name__} {value!r}", line)
        return default
    if not lo <= value <= hi:
        add_problem(tf, dotted, f"expected a number from {lo} to {hi}, got {value}", line)
        return default
    return float(value)


def get_bool(
    tf: TomlFile, table: dict[str, Any], key: str, prefix: str, default: bool, line: int | None = None
) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        add_problem(tf, f"{prefix}.{key}", f"expected true or false, got {value!r}", line)
        return default
    return value


def get_str(
    tf: TomlFile, table: dict[str, Any], key: str, prefix: str, default: str | None, line: int | None = None
) -> str | None:
    dotted = f"{prefix}.{key}" if prefix else key
    if key not in table:
        if default is None:
            add_problem(tf, dotted, "missing (expected a string)", line)
        return default
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        add_problem(tf, dotted, f"expected a non-empty string, got {value!r}", line)
        return default
    return value


def get_str_list(
    tf: TomlFile, table: dict[str, Any], key: str, prefix: str, line: int | None = None, required: bool = False
) -> tuple[str, ...]:
    dotted = f"{prefix}.{key}" if prefix else key
    value = table.get(key)
    if value is None:
        if required:
            add_problem(tf, dotted, "missing (expected a list of strings)", line)
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        add_problem(tf, dotted, "expected a list of non-empty strings", line)
        return ()
    return tuple(v.strip() for v in value)


def compile_regex(tf: TomlFile, text: Any, key: str, ignore_case: bool, line: int | None) -> re.Pattern[str] | None:
    if not isinstance(text, str) or not text:
        add_problem(tf, key, f"expected a regular expression string, got {text!r}", line)
        return None
    try:
        compiled = re.compile(text, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        add_problem(tf, key, f"not a valid regular expression: {exc}", line)
        return None
    if compiled.fullmatch(""):
        add_problem(tf, key, "regular expression matches the empty string", line)
        return None
    return compiled
