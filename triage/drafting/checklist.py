"""The agent's checklist inside a draft: ``[[KIND: text]]`` markers no customer ever sees.

One mechanism, two kinds of item, both written by templates (or by an agent):

* ``[[confirm: I've cancelled subscription KC-SUB-2291 from 30 November.]]`` --
  an action only an agent can take (a refund issued, a cancellation done, a
  label sent, data deleted, a hand-off made). The agent does it, then
  confirms it (``triage confirm``, or Confirm on the review page): who
  confirmed what is an audit event and the marker becomes its plain text.
* ``[[answer: Do you ship to Canada?]]`` -- a customer's question with no
  saved answer. The agent writes the answer in place of the whole marker (or
  inserts a saved answer there); the question itself is never sent.

A draft holding any open item cannot be approved, whatever the override, so
a marker can never reach a customer. Items are numbered from 1 in the order
they appear in the draft, across both kinds, as ``show`` and the page list them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: kind -> what the agent does to close an item of that kind
KINDS = {
    "confirm": "do it, then confirm it: the marker becomes its text",
    "answer": "write the answer in place of the whole marker (or insert a saved answer)",
}
MARK = re.compile(r"\[\[(?P<kind>" + "|".join(KINDS) + r"):\s*(?P<text>[^\]]*)\]\]")


@dataclass(frozen=True)
class Item:
    """One open checklist item: its number (from 1), kind, text and span in the draft."""

    number: int
    kind: str
    text: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "kind": self.kind, "text": self.text, "start": self.start, "end": self.end}


def items(body: str, kind: str | None = None) -> list[Item]:
    """Every open item of ``body`` (numbered across kinds), or only those of ``kind``."""
    found = [Item(n, m.group("kind"), m.group("text").strip(), m.start(), m.end())
             for n, m in enumerate(MARK.finditer(body), 1)]
    return [i for i in found if kind is None or i.kind == kind]


def replace(body: str, item: Item, text: str) -> str:
    """``body`` with ``item``'s whole marker replaced by ``text``."""
    return body[:item.start] + text + body[item.end:]


def summary(open_items: list[Item]) -> str:
    """The items as one line for a refusal: ``1. confirm 'I've refunded ...'; 2. answer '...'``."""
    return "; ".join(f"{i.number}. {i.kind} {i.text!r}" for i in open_items)
