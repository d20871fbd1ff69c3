"""Signals judged over the whole message rather than matched phrase by phrase.

* ``shouting``: runs of capitalised *ordinary* words (lexicon.is_ordinary_word),
  never acronyms or names the word lists do not know (``CPUC``, ``ENRON``), codes
  with digits or symbols (``KETTLE&CRUMB*SHOP``, ``BG-200``), entities the
  EntityRuler found (products, orders, invoices), a one-letter word ("I"), or the
  owner's ``[shouting] ignore`` words. Each run is one Evidence (counted once,
  not once per word plus once for the run); fewer than ``min_words`` such words,
  or a few in a long text (under 5 % of its words), is emphasis, not shouting:
  there only runs of three or more count. ``[IMAGE]``-style placeholders never count.
* ``valence``: every word of the valence lexicon not already inside a phrase or
  pattern match, graded by the lexicon, flipped and halved after a negation
  within three words ("not bad"), raised by 30 % after an intensifier; a word left
  milder than 1 point counts 0 ("hard", "pay"). Negative
  words add complaint (half as much in a question: "does vinegar damage it?") and, at or
  below ``below``, anger evidence; positive
  words take complaint weight off, except in a sentence that also reports a
  problem: "Great job, the kettle broke again" is not praise.
* ``strongest_stretch``: the anger or complaint sum of the strongest stretch of
  ``window`` characters, so that a long newsletter with one sharp word per
  paragraph does not add up to fury.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable
from typing import Any

from triage.detect import Evidence
from triage.detect.lexicon import is_ordinary_word
from triage.detect.matcher import COLUMNS as MATCHER_COLUMNS
from triage.detect.rulefiles import Shouting, Valence

NEGATORS = frozenset(
    ["not", "n't", "n’t", "no", "never", "nothing", "nobody", "none", "neither", "nor", "without", "hardly", "barely", "cannot"]
)
INTENSIFIERS = frozenset(
    ["very", "so", "really", "extremely", "incredibly", "absolutely", "totally", "utterly", "completely", "truly", "super", "highly", "most"]
)
NEGATION_SCALE = -0.5  # "not good" is mildly negative, "not bad" mildly positive
INTENSIFIER_SCALE = 1.3
QUESTION_SCALE = 0.5  # a negative word in a question weighs half
MIN_VALENCE = 1.0  # words graded milder than this (after negation and intensifiers) count 0
_CLAUSE_END = re.compile(r"[.!?\n]")
SARCASM_FAILURE = 0.5  # a problem this strong beside praise makes the praise sarcasm ("replacement" is not)
MIN_SHARE = 0.05  # capitalised ordinary words under this share of a text's words, with no run of 3, are emphasis


# Columns of the token array ``token_array`` returns, shared by shouting, valence, the anchored
# matcher (its COLUMNS come first, in its order) and the asks (ASKS_COLUMNS).
COLUMNS = (*MATCHER_COLUMNS, "IS_UPPER", "LENGTH", "IDX")
_LOWER, _UPPER, _ALPHA, _LENGTH, _PUNCT, _SPACE, _IDX = (
    COLUMNS.index(n) for n in ("LOWER", "IS_UPPER", "IS_ALPHA", "LENGTH", "IS_PUNCT", "IS_SPACE", "IDX")
)
ASKS_COLUMNS = [COLUMNS.index(n) for n in ("IS_SPACE", "IDX", "LENGTH", "ORTH")]  # the order asks._prepare reads


def token_array(doc: Any) -> Any:
    """One numpy array of the token attributes in COLUMNS (one C call per text, read by every part)."""
    import spacy.attrs  # spaCy is loaded whenever there is a doc

    return doc.to_array([getattr(spacy.attrs, n) for n in COLUMNS])


def token_spans(rows: Any) -> tuple[list[int], list[int]]:
    """Each token's start and end character offsets, from ``token_array``'s rows."""
    idx = rows[:, _IDX]
    return idx.tolist(), (idx + rows[:, _LENGTH]).tolist()


def shouting(doc: Any, text: str, rules: Shouting, skip: set[int], rows: Any) -> list[Evidence]:
    """One Evidence per run of capitalised ordinary words, when the message shouts."""
    import numpy

    mask = (rows[:, _UPPER] == 1) & (rows[:, _ALPHA] == 1) & (rows[:, _LENGTH] >= 2)
    candidates = numpy.flatnonzero(mask).tolist()
    if len(candidates) < rules.min_words:  # the common case: decided without looking at a token
        return []
    runs: list[list[int]] = []
    current: list[int] = []
    words = int(rows[:, _ALPHA].sum())
    shouted = set(candidates)
    alpha = rows[:, _ALPHA].tolist()
    length = rows[:, _LENGTH].tolist()
    space = rows[:, _SPACE].tolist()
    for i in range(candidates[0], candidates[-1] + 1):
        if not alpha[i]:
            if space[i] and current and "\n" in doc[i].text:  # a line ends a run
                runs.append(current)
                current = []
            continue
        if length[i] < 2:  # "I", "A": neither breaks nor makes a run
            continue
        if i in shouted and i not in skip:
            lower = doc[i].lower_
            if lower not in rules.ignore and is_ordinary_word(lower):
                current.append(i)
                continue
        if current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    # "[IMAGE]", "[LINK]": a mail client's placeholder for what it dropped, not a word
    runs = [[i for i in r if not _bracketed(doc, i)] for r in runs]
    runs = [r for r in runs if r]
    total = sum(len(r) for r in runs)
    if total < rules.min_words:
        return []
    if total < MIN_SHARE * words:
        # a few capitals in a long text: only a run of three or more is shouting there,
        # never the acronyms scattered around it ("LA", "SD")
        runs = [r for r in runs if len(r) >= 3]
        if not runs:
            return []
    out: list[Evidence] = []
    left = rules.max_weight
    for run in runs:
        weight = min(rules.run_weight, rules.weight * len(run), left)
        if weight <= 0:
            break
        left -= weight
        a, last = doc[run[0]].idx, doc[run[-1]]
        b = last.idx + len(last)
        out.append(Evidence(a, b, text[a:b], "anger.shouting", round(weight, 4), "shout"))
    return out


def _bracketed(doc: Any, i: int) -> bool:
    return 0 < i < len(doc) - 1 and doc[i - 1].text.endswith("[") and doc[i + 1].text.startswith("]")


def valence(
    doc: Any, text: str, lexicon: tuple[dict[int, float], Any], covered: set[int], anger: Valence,
    complaint: Valence, modifiers: dict[int, float], rows: Any, covered_complaint: set[int] | None = None,
) -> tuple[list[Evidence], list[Evidence]]:
    """(anger evidence, complaint evidence) from the valence lexicon, for words no rule matched.

    ``covered`` are the tokens any phrase or pattern matched: no anger valence there.
    ``covered_complaint`` (default: ``covered``) are the tokens a complaint or archetype
    rule matched: no complaint valence there. A word an anger phrase matched still
    grades the complaint ("the service was terrible" reports a problem, whatever
    anger "terrible" adds) when it is negative; negated ("not angry") it is no praise.

    ``lexicon`` is (valence by LOWER hash, a sorted numpy array of those hashes);
    ``modifiers`` maps a LOWER hash to the factor of a negator (``NEGATION_SCALE``)
    or an intensifier (``INTENSIFIER_SCALE``).
    """
    angry: list[Evidence] = []
    other: list[Evidence] = []
    graded, keys = lexicon
    if not graded:
        return angry, other
    lowers = rows[:, _LOWER]
    # the lexicon's words among the tokens, looked up in its sorted keys at C speed
    at = keys.searchsorted(lowers).clip(0, len(keys) - 1)
    hits = (keys[at] == lowers).nonzero()[0].tolist()
    if not hits:
        return angry, other
    column = lowers.tolist()
    punct = rows[:, _PUNCT].tolist()
    starts, lengths = rows[hits, _IDX].tolist(), rows[hits, _LENGTH].tolist()
    if covered_complaint is None:
        covered_complaint = covered
    for i, a, length in zip(hits, starts, lengths, strict=True):
        if i in covered and i in covered_complaint:
            continue
        value = graded[column[i]]
        for k in range(i - 1, max(-1, i - 4), -1):
            if modifiers.get(column[k]) == NEGATION_SCALE:
                value *= NEGATION_SCALE
                break
            if punct[k]:
                break
        if i > 0 and modifiers.get(column[i - 1]) == INTENSIFIER_SCALE:
            value *= INTENSIFIER_SCALE
        if abs(value) < MIN_VALENCE:  # "hard", "pay": mild words describe more often than they judge
            continue
        b = a + length
        if value < 0:
            # "or does vinegar damage it?" asks about a problem; it does not report one
            end = _CLAUSE_END.search(text, b)
            if end is not None and end.group() == "?":
                value *= QUESTION_SCALE
            if complaint.negative and i not in covered_complaint:
                weight = round(-value * complaint.negative, 4)
                other.append(Evidence(a, b, text[a:b], "complaint.valence", weight, "complaint"))
            if anger.negative and value <= anger.below and i not in covered:
                angry.append(Evidence(a, b, text[a:b], "anger.valence", round(-value * anger.negative, 4), "anger"))
        elif value > 0 and i not in covered:  # "not angry" is no praise
            if complaint.positive:
                other.append(Evidence(a, b, text[a:b], "complaint.valence", round(-value * complaint.positive, 4), "not_complaint"))
            if anger.positive:  # praise in the same stretch calms: "looks really fucking fun"
                angry.append(Evidence(a, b, text[a:b], "anger.valence", round(-value * anger.positive, 4), "calm"))
    return angry, other


def valence_keys(lexicon: dict[str, float], string_id: Any) -> tuple[tuple[dict[int, float], Any], dict[int, float]]:
    """The lexicon and the negators/intensifiers keyed by LOWER hash (``string_id`` is ``vocab.strings.add``).

    Negators and intensifiers modify the word after them and have no valence of their own here.
    """
    modifiers = {string_id(w): NEGATION_SCALE for w in NEGATORS}
    modifiers.update({string_id(w): INTENSIFIER_SCALE for w in INTENSIFIERS})
    import numpy

    keyed = {string_id(w): v for w, v in lexicon.items() if w not in NEGATORS and w not in INTENSIFIERS}
    return (keyed, numpy.array(sorted(keyed), dtype=numpy.uint64)), modifiers


# A sentence ends after a run of . ! ? followed by a space or the end, and at a line break:
# SENTENCE_END_PLAIN, written to start with a class, which re scans for in C (the plain
# form it tries at every character); tests/test_sentence_patterns.py pins that they match alike.
SENTENCE_END_PLAIN = r"[.!?]+(?=\s|$)|\n"
_SENTENCE_END = re.compile(r"[.!?\n](?:(?<=\n)|[.!?]*(?=\s|$))")


def _graded_praise(e: Evidence) -> bool:
    return e.rule == "anger.valence" and e.kind == "calm"


def sarcastic_praise(text: str, evidence: list[Evidence], problems_in: list[Evidence] | None = None) -> list[Evidence]:
    """Praise in a sentence that also reports a problem counts 0 ("Great job, it broke again").

    That is complaint praise (kind ``not_complaint``); the calm a positive word takes off the
    anger sum (``anger.valence``, kind ``calm``) counts 0 in a message that reports a problem
    anywhere ("Great, just great. The kettle broke again."): praise calms excitement, never a
    complaint. The problems are read from ``problems_in`` (default: ``evidence``)."""
    if not any(e.kind == "not_complaint" or _graded_praise(e) for e in evidence):
        return evidence
    problems = [e.start for e in (evidence if problems_in is None else problems_in)
                if e.kind == "complaint" and e.weight >= SARCASM_FAILURE]
    if not problems:
        return evidence
    ends = _sentence_ends(text)
    out = []
    for e in evidence:
        if _graded_praise(e):
            continue
        if e.kind == "not_complaint":
            lo, hi = _bounds(ends, e.start)
            if any(lo <= p < hi for p in problems):
                continue
            # a verdict alone in its sentence ("Brilliant.", "Just great.") comments on the sentence
            # before it: after a problem, and with no "but" or "though" turning it, it is sarcasm
            if lo and _verdict_alone(text, lo, hi) and any(_bounds(ends, lo - 1)[0] <= p < lo for p in problems):
                continue
        out.append(e)
    return out


_WORDS = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")


def _verdict_alone(text: str, lo: int, hi: int) -> bool:
    """The sentence text[lo:hi] is a verdict of three words at most, with no contrast in it."""
    sentence = text[lo:hi]
    return len(_WORDS.findall(sentence)) <= 3 and not _CONTRAST.search(sentence)


# a thank-you, as the customer writes one: "Thanks!", "Thank you so much", "Cheers"
_THANKS = re.compile(r"\b(?:thanks|thank\s+(?:you|u)|thx|cheers|much\s+appreciated)\b", re.I)
_ASKING = re.compile(r"\?|\b(?:please|pls|kindly)\b|\b(?:can|could|would|will)\s+(?:you|u|someone|i|we)\b"
                     r"|\b(?:i|we)\s+(?:want|need|expect|demand|would\s+like)\b|\b(?:i|we)['’]d\s+like\b", re.I)
_CONTRAST = re.compile(r"\b(?:but|though|although|however|yet|still)\b", re.I)
SARCASTIC_THANKS = "complaint.sarcastic_thanks"


def sarcastic_thanks(text: str, evidence: list[Evidence], weight: float, body_at: int = 0) -> list[Evidence]:
    """A thank-you closing a message that reports a failure or a hardship is sarcasm, a complaint
    ("...drove 9 hours round trip to rescue my daughter. Thanks!"): a problem (kind ``complaint``,
    any weight, graded valence too) outside the thanks' sentences, and no turn to the good after
    it (praise, ``complaint.praise`` and the like, or a good word after "but": "delayed, but the
    crew were lovely. Thank you!"). The thanks' own praise then counts 0, and evidence
    ``complaint.sarcastic_thanks`` at the thanks, of ``weight`` (the complaint threshold), is added.
    Not after a question or a request in the body: that thanks is in advance.
    Only the body is read (from ``body_at``): a subject names the case ("Broken kettle"), and a
    thank-you under it is for how it went."""
    thanks = list(_THANKS.finditer(text, body_at))
    if not thanks or _ASKING.search(text, body_at):
        return evidence  # thanks after a question or a request is thanks in advance, a courtesy
    ends = _sentence_ends(text)
    # the thanks' sentences by index (the sentence holding offset ``at`` is bisect_right(ends, at)):
    # one lookup per evidence, however many thank-yous the text holds
    closing = {bisect.bisect_right(ends, m.start()) for m in thanks}

    def outside(e: Evidence) -> bool:
        return bisect.bisect_right(ends, e.start) not in closing

    problems = [e for e in evidence if e.kind == "complaint" and e.weight > 0 and e.start >= body_at and outside(e)]
    # a problem a rule names, or graded bad words as strong as a failure: one mild word ("sorry for
    # the confusion, I found it") is no ordeal
    if not any(not e.rule.endswith(".valence") for e in problems) and sum(e.weight for e in problems) < SARCASM_FAILURE:
        return evidence
    last_thanks = _bounds(ends, thanks[-1].start())[0]
    if not any(p.end <= last_thanks for p in problems):
        return evidence  # the thanks comes before what went wrong: not a closing one
    problem_ends = sorted(p.end for p in problems)
    last_end = problem_ends[-1]
    for good in (e for e in evidence if e.kind == "not_complaint" and e.weight < 0 and outside(e)):
        k = bisect.bisect_right(problem_ends, good.start)
        if not k:
            continue  # praise before anything went wrong
        if _strong(good) or _CONTRAST.search(text, problem_ends[k - 1], good.start):
            return evidence  # it turned out well, or they say what went right: the thanks is meant
        if good.start >= last_end and _CLAUSE_BREAK.search(text, last_end, good.start):
            return evidence  # after the last problem, in a clause of its own: "...and the staff were wonderful"
    if _resolved_after(text, last_end, last_thanks):
        return evidence  # what went wrong was put right: "delayed, arrived today. Thanks!"
    first = thanks[-1]
    kept = [e for e in evidence if outside(e) or e.kind != "not_complaint"]
    return [*kept, Evidence(first.start(), first.end(), first.group(0), SARCASTIC_THANKS, weight, "complaint")]


# what went wrong was put right: the closing phrases of a thank-you that needs no reply ("arrived
# today", "works now", "sorted", rules/replies.toml [no_reply] closing) and the past or present of
# come/arrive/work/fix/refund/sort/resolve, in a clause that does not deny or only expect it
_RESOLVED = re.compile(
    r"\b(?:arrived|arrives|came|comes|turned\s+up|showed\s+up|worked|works|working|fixed|refunded|"
    r"sorted|resolved|solved|(?:got|received)\s+it|all\s+(?:good|set))\b", re.I)
_UNRESOLVED = re.compile(
    r"\b(?:not|never|no|nothing|yet|still|should|supposed|meant|expected|hope|hoped|hoping|would|if|until|unless)\b"
    r"|n[\'\u2019]t\b", re.I)
# where a clause ends: a stop, a comma or semicolon, or a word that joins a clause of its own
_CLAUSE_BREAK = re.compile(r"[,;:.!?\n]|\b(?:and|but|then|so|though|although|however|yet|now)\b", re.I)


def _resolved_after(text: str, start: int, stop: int) -> bool:
    """A resolution between ``start`` and ``stop`` whose clause (from the break before it) holds no denial."""
    for m in _RESOLVED.finditer(text, start, stop):
        breaks = [b.end() for b in _CLAUSE_BREAK.finditer(text, start, m.start())
                  if not _UNRESOLVED.fullmatch(b.group(0))]
        lo = breaks[-1] if breaks else start
        after = _CLAUSE_BREAK.search(text, m.end(), stop)
        hi = after.start() if after else stop
        if not _UNRESOLVED.search(text, lo, hi):
            return True
    return False


def _strong(e: Evidence) -> bool:
    """Praise a rule names ("works perfectly", "brilliant"), not only a graded good word ("rescue")."""
    return e.weight <= -0.3


@functools.lru_cache(maxsize=2)  # the engine asks about each text several times in turn
def _sentence_ends(text: str) -> tuple[int, ...]:
    return tuple(m.end() for m in _SENTENCE_END.finditer(text))


def _bounds(ends: tuple[int, ...], at: int) -> tuple[int, int]:
    """The sentence holding offset ``at``: from the end before it to the first end after it."""
    k = bisect.bisect_right(ends, at)
    return (ends[k - 1] if k else 0), (ends[k] if k < len(ends) else 1 << 30)


def strongest_stretch(evidence: Iterable[Evidence], kinds: frozenset[str], window: int) -> float:
    """The largest sum of weights of ``kinds`` starting within any ``window`` characters (0: all)."""
    hits = sorted((e.start, e.weight) for e in evidence if e.kind in kinds)
    if not window or not hits or hits[-1][0] - hits[0][0] <= window:  # all in one stretch: every weight counts
        return sum(w for _, w in hits)
    best, total, lo = 0.0, 0.0, 0
    for start, weight in hits:
        total += weight
        while hits[lo][0] < start - window:
            total -= hits[lo][1]
            lo += 1
        best = max(best, total)
    return best
