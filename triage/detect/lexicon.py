"""Word-level data for detection: lemmas, ordinary English words, the valence lexicon.

* **Lemmas.** An owner writes ``{LEMMA = "cancel"}`` (or ``{LEMMA = {IN = [...]}}``)
  in a token pattern, and it matches "cancel", "cancelled", "cancelling",
  "cancels". The forms come from spaCy's English lookup lemmatizer table
  (``en_lemma_lookup`` of Explosion's ``spacy-lookups-data``, the table
  ``spacy.blank("en")`` uses with ``nlp.add_pipe("lemmatizer", config={"mode":
  "lookup"})``). Rather than lemmatise every token of every message (a Python
  call per token: too slow for the poll), ``expand_lemmas`` turns each LEMMA
  test into the equivalent LOWER test over every form the table maps to that
  lemma, once, when the rules are compiled; the matches are the same for every
  word the table knows.
* **Ordinary words** (``is_ordinary_word``): the table's forms and lemmas, the
  WordNet word lists of the same package (``en_lemma_index``) and spaCy's
  English stop words. Shouting counts capitalised ordinary words only, so
  ``CPUC``, ``CNBC`` or ``ENRON`` (acronyms and names) are not shouting.
* **Valence** (``read_valence``): a word list with a graded valence per word,
  ``word<TAB>valence`` (VADER's lexicon format: -4 very negative .. +4 very
  positive; further columns are ignored, ``#`` starts a comment line).

Loaded on first use and kept for the process (the tables never change).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from triage.rulefile import read_text


def _read_table(name: str) -> Any:
    from importlib.resources import files

    return json.loads(gzip.decompress((files("spacy_lookups_data") / "data" / name).read_bytes()))


@cache
def lemma_table() -> dict[str, str]:
    """The lookup table as shipped: form -> lemma (read once per process)."""
    return _read_table("en_lemma_lookup.json.gz")  # type: ignore[no-any-return]


@cache
def _lemma_index() -> dict[str, list[str]]:
    """The WordNet word lists (read only when ordinary words are asked about)."""
    return _read_table("en_lemma_index.json.gz")  # type: ignore[no-any-return]


def forms_for(lemmas: Iterable[str]) -> dict[str, list[str]]:
    """lemma -> every form of it, sorted (the lemma itself included; just the word itself when the
    table does not know it), for the lower-cased ``lemmas``: one pass over the table for all of
    them, rather than inverting the whole table for the few lemmas rules name."""
    wanted = {lemma.lower() for lemma in lemmas}
    forms: dict[str, set[str]] = {lemma: {lemma} for lemma in wanted}
    for form, lemma in lemma_table().items():
        lower = lemma.lower()
        if lower in wanted:
            forms[lower].add(form.lower())
    return {lemma: sorted(f) for lemma, f in forms.items()}


def forms_of(lemma: str) -> list[str]:
    """Every form of ``lemma`` (sorted; just the word itself when the table does not know it)."""
    return forms_for([lemma])[lemma.lower()]


@cache
def ordinary_words() -> frozenset[str]:
    from triage.detect.spacyload import import_spacy

    import_spacy()  # (already loaded by the pipeline) without its command line
    from spacy.lang.en.stop_words import STOP_WORDS

    lookup, index = lemma_table(), _lemma_index()
    words = set(lookup) | set(lookup.values()) | set(STOP_WORDS)
    for listed in index.values():
        words.update(w for w in listed if "_" not in w)
    return frozenset(w.lower() for w in words)


def is_ordinary_word(lower: str) -> bool:
    return lower in ordinary_words()


def lemma_words(pattern: tuple[dict[str, Any], ...]) -> list[str]:
    """The words the LEMMA tests of ``pattern`` name (what ``expand_lemmas`` needs the forms of)."""
    words: list[str] = []
    for token in pattern:
        for key, value in token.items():
            if key.upper() != "LEMMA":
                continue
            if isinstance(value, str):
                words.append(value)
            elif isinstance(value, dict):
                for listed in value.values():
                    if isinstance(listed, list):
                        words.extend(w for w in listed if isinstance(w, str))
    return words


def expand_lemmas(
    pattern: tuple[dict[str, Any], ...], forms: Mapping[str, list[str]] | None = None,
) -> tuple[tuple[dict[str, Any], ...], str]:
    """``pattern`` with each LEMMA test written as a LOWER test over its forms, and "" --
    or the pattern unchanged and what is wrong (a LEMMA beside LOWER, a value that is not a
    word or an IN/NOT_IN list of words).

    ``forms``: ``forms_for`` of (at least) the pattern's ``lemma_words``, when the caller has
    looked up the words of many patterns in one pass; else they are looked up here."""
    known = forms_for(lemma_words(pattern)) if forms is None else forms
    out: list[dict[str, Any]] = []
    changed = False
    for token in pattern:
        keys = {k.upper(): k for k in token}
        if "LEMMA" not in keys:
            out.append(token)
            continue
        if "LOWER" in keys or "NORM" in keys:
            return pattern, "LEMMA and LOWER in one pattern token: use one of them"
        value = token[keys["LEMMA"]]
        if isinstance(value, str):
            test: Any = {"IN": list(known[value.lower()])}
        elif isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("IN", "NOT_IN"):
            how, words = next(iter(value.items()))
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                return pattern, f"LEMMA {how} must be a list of words"
            test = {how: sorted({f for w in words for f in known[w.lower()]})}
        else:
            return pattern, 'LEMMA must be a word or {IN = [words]} / {NOT_IN = [words]}'
        new = {k: v for k, v in token.items() if k.upper() != "LEMMA"}
        new["LOWER"] = test
        out.append(new)
        changed = True
    return (tuple(out) if changed else pattern), ""


def read_valence(path: Path) -> tuple[dict[str, float], list[tuple[int, str]]]:
    """``word -> valence`` from a lexicon file, and the (line, problem) pairs found in it."""
    lexicon: dict[str, float] = {}
    problems: list[tuple[int, str]] = []
    try:
        text = read_text(Path(path))
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [(0, f"cannot read: {exc}")]
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            problems.append((number, "expected: word<TAB>valence"))
            continue
        try:
            value = float(parts[1])
        except ValueError:
            problems.append((number, f"valence must be a number from -4 to 4, got {parts[1]!r}"))
            continue
        if not -4.0 <= value <= 4.0:
            problems.append((number, f"valence must be a number from -4 to 4, got {parts[1]!r}"))
            continue
        lexicon[parts[0].strip().lower()] = value
    return lexicon, problems
