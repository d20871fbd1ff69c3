"""spaCy, loaded once per process and as little of it as triage needs.

* ``import_spacy()`` imports spaCy without its command line. ``spacy/__init__``
  imports ``spacy.cli.info`` for ``spacy.info`` alone, and that pulls in every
  ``spacy`` command and what they use (weasel, typer, rich, httpx, requests and
  a YAML file read at import): about a third of spaCy's import time, paid by a
  poll with one new message. While spaCy is imported, ``spacy.cli`` and
  ``spacy.cli.info`` are placeholders, removed again at once, so a later
  ``import spacy.cli`` loads the real package; ``spacy.info`` imports it when
  called. A spaCy whose ``__init__`` wants more of its command line is
  imported whole.
* ``blank()`` is the process's one ``spacy.blank("en")``: its tokenizer (regular
  expressions and about 1,300 special cases) costs about 0.3 s to build. The
  tone linter tokenizes with it; the detector's pipelines share its vocabulary
  and tokenizer (``pipeline()``), so a poll builds one tokenizer, not two.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

_IMPORT_LOCK = threading.Lock()


def _spacy_info(*args: Any, **kwargs: Any) -> Any:
    """``spacy.info``: spaCy's own, imported when asked for."""
    from spacy.cli.info import info

    return info(*args, **kwargs)


def import_spacy() -> ModuleType:
    """The ``spacy`` module, imported without ``spacy.cli`` (see the module doc)."""
    with _IMPORT_LOCK:
        loaded = sys.modules.get("spacy")
        if loaded is not None:
            return loaded
        cli = ModuleType("spacy.cli")
        cli.__path__ = []  # a package, so that "spacy.cli.info" is looked up in sys.modules
        info = ModuleType("spacy.cli.info")
        setattr(info, "info", _spacy_info)  # noqa: B010 (a ModuleType has no declared attributes)
        placeholders = {name: module for name, module in (("spacy.cli", cli), ("spacy.cli.info", info))
                        if name not in sys.modules}
        sys.modules.update(placeholders)
        try:
            import spacy

            return spacy
        except ImportError as exc:
            log.debug("spaCy imported with its command line: %s", exc)
        finally:
            for name, module in placeholders.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]
        import spacy

        return spacy


@functools.cache
def blank() -> Any:
    """The process's blank English pipeline (``spacy.blank("en")``), built on first use."""
    return import_spacy().blank("en")


def pipeline() -> Any:
    """A new, empty English pipeline on ``blank()``'s vocabulary and tokenizer, for pipes to be added to."""
    base = blank()
    from spacy.lang.en import English

    return English(vocab=base.vocab, create_tokenizer=lambda _nlp: base.tokenizer)
