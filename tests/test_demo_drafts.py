"""Every demo draft's text, with a fixed clock, is exactly the text we expect.

This pins the drafting behaviour: a restructure must leave every byte as it
was, and a change that means to alter drafts updates ``demo_drafts.json``
on purpose (``TRIAGE_UPDATE_GOLDEN=1 pytest tests/test_demo_drafts.py``) so
the diff shows what changed for every demo message.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from conftest import ROOT, Workspace

from triage import config, pipeline
from triage.mailbox import open_source
from triage.store import Store

GOLDEN = Path(__file__).parent / "data" / "demo_drafts.json"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def demo_drafts(workspace: Workspace) -> list[dict[str, str]]:
    workspace.write_config(
        f"""
[mailbox]
source = "maildir"
path = "{ROOT / 'examples' / 'inbox'}"

[support]
address = "support@example-shop.test"
name = "Kettle & Crumb"
agent = "Sam"

[store]
path = "triage.db"
"""
    )
    settings = config.load(workspace.config)
    with Store(settings.store_path) as store:
        source = open_source(settings.mailbox)
        try:
            pipeline.poll(settings, store, source, now=lambda: NOW)
        finally:
            source.close()
    with sqlite3.connect(settings.store_path) as db:
        rows = db.execute(
            "SELECT m.source_key, d.template, d.subject, d.body FROM drafts d "
            "JOIN messages m ON m.id = d.message_id ORDER BY m.source_key, d.id"
        ).fetchall()
    return [{"message": r[0], "template": r[1], "subject": r[2], "body": r[3]} for r in rows]


def test_demo_drafts_are_byte_identical(workspace: Workspace) -> None:
    drafts = demo_drafts(workspace)
    if os.environ.get("TRIAGE_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(drafts, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert [d["message"] for d in drafts] == [d["message"] for d in expected]
    for got, want in zip(drafts, expected, strict=True):
        assert got == want, f"draft for {want['message']} changed"


def test_every_demo_draft_passes_the_tone_linter() -> None:
    from triage.drafting.tone import Linter

    linter = Linter.load(ROOT / "rules")
    drafts = json.loads(GOLDEN.read_text(encoding="utf-8"))
    found = {d["message"]: [f.text for f in linter.lint(d["body"])] for d in drafts}
    assert {k: v for k, v in found.items() if v} == {}
    chirpy = ("What else may I help you with", "sorry this wasn't clearer", "I'm checking the exact answer")
    assert [d["message"] for d in drafts if any(c in d["body"] for c in chirpy)] == []
