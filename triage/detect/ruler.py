"""spaCy's EntityRuler with a leaner ``set_annotations`` (imported by ``nlp.build`` only: it imports spaCy).

triage's pipeline is ``spacy.blank("en")`` plus this ruler and nothing else, so a
Doc reaches it without entities and the ruler always overwrites. spaCy's own
``set_annotations`` then still slices the Doc and makes a Token for every word of
every match to look for earlier entities, and filters a list per match; this one
only makes the Spans it sets as ``doc.ents``. The choice is the same: the matches
come longest first (ties: the earlier one), and a match overlapping a kept one is
dropped. Its ``match`` skips the empty token Matcher when the ruler holds phrases only.
"""

from __future__ import annotations

from typing import Any

from spacy.language import Language
from spacy.pipeline import EntityRuler
from spacy.tokens import Doc, Span

FACTORY = "triage_entity_ruler"


class LeanEntityRuler(EntityRuler):
    def match(self, doc: Doc) -> list[tuple[int, int, int]]:
        """spaCy's matches, in its order; without token patterns only the phrase matcher runs (spaCy
        also runs the empty Matcher, inside a warnings filter made anew for every text)."""
        if len(self.matcher) or not len(self.phrase_matcher):
            return super().match(doc)  # type: ignore[no-any-return]
        matches = {(m_id, start, end) for m_id, start, end in self.phrase_matcher(doc) if start != end}
        return sorted(matches, key=lambda m: (m[2] - m[1], -m[1]), reverse=True)

    def set_annotations(self, doc: Doc, matches: list[tuple[int, int, int]]) -> None:
        spans: list[Span] = []
        seen: set[int] = set()
        for match_id, start, end in matches:
            if start in seen or end - 1 in seen:  # a longer (or earlier) match holds these tokens
                continue
            label, ent_id = self._ent_ids.get(match_id) or (match_id, "")
            spans.append(Span(doc, start, end, label=label, span_id=ent_id))
            seen.update(range(start, end))
        doc.ents = spans


@Language.factory(
    FACTORY, default_config={"phrase_matcher_attr": "LOWER", "validate": True, "ent_id_sep": "||"}
)
def make_ruler(nlp: Language, name: str, phrase_matcher_attr: Any, validate: bool, ent_id_sep: str) -> LeanEntityRuler:
    return LeanEntityRuler(
        nlp, name, phrase_matcher_attr=phrase_matcher_attr, validate=validate, overwrite_ents=True, ent_id_sep=ent_id_sep
    )
