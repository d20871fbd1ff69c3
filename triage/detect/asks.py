"""Asks: what the customer asks for, each with its evidence (span, rule id), from rules/asks.toml.

Contract (documented for owners in rules/README.md):

* Words are compared as lemmas (spaCy's English lookup table, the one
  ``spacy-lookups-data`` ships): a term ``refund`` matches "refund", "refunds",
  "refunded"; ``cancel`` matches "cancelled" and "canceling". A term is a list of
  words separated by spaces; a word may list alternatives with ``|``
  (``speak|talk``), and ``*`` stands for up to four words of anything
  (``close * account`` = "close my online account").
* A sentence is read as a unit (it ends at . ! ? or a blank line). A term of a
  ``request`` ask counts when something makes it a request: a request frame
  before it in the sentence ("I want", "could you", "please", "I'd like"), a
  frame just after it ("a prepaid label would be great", "refund please"),
  the imperative (the term opens the sentence or a clause: "Cancel my
  subscription."), or the question form ("Can I get a refund?"). A ``question``
  ask counts in a question or after an inquiry frame ("let me know when it
  will arrive"); a ``none`` ask counts wherever its words are.
* Negation cancels it: a negation within three words before the frame, or
  right before the term ("I don't want a refund", "no refund needed") -- unless
  a contrast word comes between ("I don't want a refund, just a replacement":
  the replacement counts).
* A past form opening a term is a report, not a request ("you cancelled my
  order", "I spoke to your manager"), unless a request frame comes before it
  ("I want it replaced"); after its subject or a past "be" it is one whatever
  comes before ("I sent it back", "it was returned"), and so is any form after
  "already". What someone else told the customer (``[frames] reported``: "they
  told me to call back") or what they only suppose (``[frames] hypothetical``:
  "if I cancel", "should I cancel?") governs a term in its clause: no ask.
* A request no ask kind names is an ``information`` ask, its ``detail`` what
  is asked: ``asks.request`` (``[frames] direct`` or an imperative acting on
  the customer's things, then a verb: "Stop asking me to size-check my bag"),
  ``asks.wish`` (``[frames] wish``: "I'd like a Visa card", only where nothing
  else is asked); never one opening with a ``[frames] vague`` word ("please help").
* A ``status`` question that names nothing of theirs ("How long does an
  international transfer take?") carries the question as its ``detail``.
* Where asks' spans overlap the one of the rule listed first in the file wins
  (so ``close_account`` before ``cancel``: "cancel my account" is one ask).
  Where a ``status`` ask is found in a sentence, another ask of that sentence
  whose term follows "my"/"the" is about something already on its way and is
  dropped ("Where is my refund?" is status, "Can I get a refund?" is refund).
* ``information``: a question (by its form) with no other ask in it, three
  words or more and not rhetorical (``[frames] rhetorical``, "?!", anger in it);
  its text is the question.
* ``when``: the first ``[[times]]`` match in the ask's sentence (cancel from
  when, callback at what time, the customer's deadline); ``detail``: for
  ``callback`` a phone number in the sentence, for ``cancel`` and
  ``close_account`` what follows the verb ("my bean box subscription"), for
  ``information`` the question.
* The customer's deadline (``deadline``): the first ``[[times]]`` match marked
  ``deadline = true`` in a sentence that holds an ask or a threat.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import re
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from triage.detect import Ask, Evidence
from triage.detect.fastregex import FastRegex, lowered
from triage.rulefile import TomlFile

ASK_KINDS = (
    "refund", "replacement", "repair", "return", "cancel", "close_account", "delete_data", "compensation",
    "callback", "escalate", "status", "information", "apology", "fix", "change", "suggestion",
)
FRAMES = ("request", "question", "none")
GAP = 4  # words a ``*`` in a term may stand for
WINDOW = 16  # how far before its term a request frame may be
AFTER = 3  # how far after its term a following frame may be
NEG_REACH = 3
_ASKING = ("request", "inquiry")  # the frames read with the terms (see ``compile_asks``)
_FRAME_KEYS = ("request", "after", "inquiry", "openers", "negation", "contrast", "question_openers", "rhetorical",
               "owned", "chased", "theirs", "next_step", "reported", "relay", "hypothetical", "direct", "wish",
               "vague", "aside")
# a remedy the customer already asked for, or was promised, is chased: a status ask about it
_CHASEABLE = frozenset({"refund", "replacement", "repair"})
_REMEDY_NOUNS = frozenset({"refund", "replacement", "repair", "reimbursement"})  # "my refund", not "that money back"
_ASK_KEYS = {"id", "kind", "terms", "frame", "flag", "exclude"}
_TIME_KEYS = {"id", "regex", "deadline", "ignore_case"}
# irregular past forms: "I spoke to your manager" is a report, not a request
_IRREGULAR_PAST = frozenset(
    ["spoke", "spoken", "sent", "gave", "given", "got", "gotten", "took", "taken", "made", "told", "said", "rang", "rung", "came", "went", "gone", "wrote", "written", "put", "paid", "bought", "brought", "sold", "left", "lost", "found", "heard", "kept"]
)
_BACK_REFERENCE = re.compile(r"^\W*(?:how|can|could|what)\b[^?]{0,20}\b(?:do|does)\s+(?:that|this|it)\s*\?", re.I)
# the end of what a request asks: its stop, and a closing "please" ("Send me the receipt please.")
_TRAILING_PLEASE = re.compile(r"(?:[\s,]+(?:please|pls|plz|thanks|thank\s+you))*[\s.!;,]*$", re.I)
_PHONE = re.compile(r"(?<![\w#])\+?\d[\d ().-]{6,}\d(?!\w)")
_SENTENCE_END = frozenset({".", "!", "?", "…", ";"})
_STOPS = _SENTENCE_END | {""}  # "" marks a blank line
_CLOSING = _SENTENCE_END | {'"', ")", "'", "”"}  # what a sentence's end takes in after it
_COORDINATING = frozenset({"and", "then", "also", "or"})
_GENERAL = frozenset({"usually", "normally", "typically", "generally", "average", "standard"})
_WH = frozenset({"what", "where", "when", "how", "why", "which", "who"})
_AUXILIARY = frozenset({"do", "can", "could", "should", "shall", "may", "must", "will", "would"})
_PRONOUNS = frozenset({"i", "you", "we", "it", "my", "the", "this", "they", "there", "he", "she", "someone", "anyone"})
# who did a thing: "I sent it back", "they cancelled it" (a past form after one is what happened)
_SUBJECTS = frozenset({"i", "we", "you", "they", "he", "she"})
# what may come between a subject and its verb: "I have already sent", "we'd just returned"
_BETWEEN = frozenset({"have", "'ve", "had", "'d", "already", "just", "also", "even", "finally", "recently", "then",
                      "actually", "since", "both", "all", "did", "do", "has", "never", "truly", "really", "successfully",
                      "eventually", "duly", "properly"})
# a past participle after one of these is what was done to it: "it was returned", "they were sent back"
_PASSIVE = frozenset({"was", "were", "been"})
# someone else as the one who says: "they tell me to call back" (a base form after "I" is mine)
_OTHERS = frozenset({"they", "he", "she", "who", "it", "people", "everyone", "everybody", "someone", "somebody"})
# what an imperative's verb acts on, right after it: "send ME", "fix MY", "cancel THE"
_ACTED_ON = frozenset({"me", "us", "my", "our", "the", "a", "an", "this", "that", "it", "them", "these", "those",
                       "all", "any", "everything", "someone", "somebody", "back"})
# words that point back at what was said before: "I need it ASAP" wants what another sentence asks
_POINTING = frozenset({"it", "this", "that", "them", "these", "those", "one", "so"})
# a thing named by its kind, not one of theirs: "how long does AN international transfer take?"
_INDEFINITE = frozenset({"a", "an"})
# what a chaser asks after, right after "any": "Any update?", "any news on a delivery date?" ask
# where their own case stands, never how things work
_CHASING = frozenset({"update", "updates", "news", "progress", "word", "info", "information", "luck", "response",
                      "reply", "answer", "feedback", "change", "changes", "movement", "idea"})
# words that open a clause of another (never an imperative, whatever the lemma table says: "While
# transferring money, ...")
_SUBORDINATING = frozenset({"while", "when", "since", "as", "after", "before", "until", "till", "unless", "once",
                            "though", "although", "because", "if", "whether", "like", "so", "whilst"})
# the conditions a ``hypothetical`` frame may open with: only where they open a clause
_CONDITIONS = frozenset({"if", "unless", "once", "when", "before", "whether"})
# a thing of theirs named in a question: "how long will MY transfer take" is status; "how long
# does AN international transfer take" asks how things work (information)
_THEIRS = frozenset({"my", "our", "mine", "ours", "me", "i", "we", "us", "it", "its", "the", "this", "that", "these",
                     "those", "they", "them", "i'm", "i've", "we're", "we've"})


@dataclass(frozen=True)
class AskRule:
    rule: str  # asks.<id>
    kind: str
    terms: tuple[str, ...]
    frame: str = "request"
    flag: str = ""  # shown to the agent with the ask: "legal obligation: ..."
    line: int | None = None
    exclude: tuple[str, ...] = ()  # terms that are not this ask where they overlap one ("tax return")


@dataclass(frozen=True)
class TimeRule:
    rule: str  # asks.times.<id>
    regex: re.Pattern[str]
    deadline: bool
    fast: FastRegex = field(init=False, repr=False, compare=False)  # how it is searched for (fastregex.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fast", FastRegex.of(self.regex))


@dataclass(frozen=True)
class AskRules:
    asks: tuple[AskRule, ...] = ()
    frames: dict[str, tuple[str, ...]] | None = None
    times: tuple[TimeRule, ...] = ()


# ---------------------------------------------------------------- lemmas


@functools.cache
def _lookup() -> dict[str, str]:
    from triage.detect.lexicon import lemma_table  # read once per process, for the lexicon too

    return {k.lower(): v.lower() for k, v in lemma_table().items()}


@functools.cache
def _known() -> frozenset[str]:
    """Every word the lemma table knows, as a form or as a lemma."""
    table = _lookup()
    return frozenset(table) | frozenset(table.values())


def _one_edit(word: str) -> set[str]:
    """Every string one edit from ``word``: a letter dropped, added, changed, or two swapped."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return ({a + b[1:] for a, b in splits if b}
            | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
            | {a + c + b[1:] for a, b in splits if b for c in letters}
            | {a + c + b for a, b in splits for c in letters})


@functools.lru_cache(maxsize=8)
def _longest(vocabulary: frozenset[str]) -> int:
    return max(map(len, vocabulary), default=0)


def respell(lower: str, vocabulary: frozenset[str]) -> str:
    """A misspelt word ("recieve", "transcation") as the one rule word a single edit away, else itself.

    Only words of five letters or more that the lemma table does not know, and only when exactly
    one rule word is that close: customers misspell, and a rule should not care."""
    # a word two letters longer than every rule word is no edit of one (and a pasted 5,000-letter
    # blob would otherwise make some 54 x 5,000 strings of 5,000 letters)
    if len(lower) < 5 or len(lower) > _longest(vocabulary) + 1 or not lower.isalpha() or lower in _known():
        return lower
    close = _one_edit(lower) & vocabulary
    return next(iter(close)) if len(close) == 1 else lower


def lemma(lower: str) -> str:
    """The lemma of a lower-case word ("cancelled" -> "cancel"); the word itself when unknown."""
    lower = lower.replace("’", "'")
    return _lookup().get(lower, lower)


# ---------------------------------------------------------------- loading


def load_asks(tf: TomlFile) -> AskRules:
    """rules/asks.toml -> AskRules; problems recorded on ``tf`` (file, key, line)."""
    data = tf.data
    tf.unknown_keys(data, {"frames", "asks", "times"}, "")
    table = tf.table(data, "frames", allowed=_FRAME_KEYS, expected="a table of frame lists")
    frames = {name: tf.str_list(table, name, "frames") for name in _FRAME_KEYS}
    for name, patterns in frames.items():
        broken = [(t, why) for t in patterns if (why := _malformed(t))]
        for t, why in broken:
            tf.problem(f"frames.{name}", f"{why}, got {t!r}", tf.line_of(f"frames.{name}"))
        frames[name] = tuple(t for t in patterns if not _malformed(t))
    asks: list[AskRule] = []
    seen: set[str] = set()
    for n, entry in enumerate(tf.tables(data, "asks")):
        rule_id = entry.get("id")
        key = f"asks[{rule_id if isinstance(rule_id, str) else n}]"
        line = tf.entry_line("asks", rule_id) if isinstance(rule_id, str) else tf.line_of("asks")
        if not isinstance(rule_id, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", rule_id):
            tf.problem(f"asks[{n}].id", f"expected an id of letters, digits, _ or -, got {rule_id!r}", line)
            continue
        if rule_id in seen:
            tf.problem(f"{key}.id", "duplicate id", line)
            continue
        seen.add(rule_id)
        tf.unknown_keys(entry, _ASK_KEYS, key, line=functools.partial(tf.entry_line, "asks", rule_id))
        kind = entry.get("kind")
        if kind not in ASK_KINDS:
            tf.choice(entry, "kind", key, ASK_KINDS, "", line=tf.entry_line("asks", rule_id, "kind"))
            if kind is None:
                tf.problem(f"{key}.kind", f"missing (expected one of {', '.join(ASK_KINDS)})", line)
            continue
        terms = tf.str_list(entry, "terms", key, required=True, line=tf.entry_line("asks", rule_id, "terms"))
        bad = [(t, why) for t in terms if (why := _malformed(t))]
        for t, why in bad:
            tf.problem(f"{key}.terms", f"{why}, got {t!r}", tf.entry_line("asks", rule_id, "terms"))
        frame = tf.choice(entry, "frame", key, FRAMES, "request", line=tf.entry_line("asks", rule_id, "frame"))
        flag = tf.string(entry, "flag", key, "", line=tf.entry_line("asks", rule_id, "flag"))
        exclude = tf.str_list(entry, "exclude", key, line=tf.entry_line("asks", rule_id, "exclude"))
        if terms and not bad:
            asks.append(AskRule(f"asks.{rule_id}", str(kind), terms, frame, flag, line, exclude))
    times: list[TimeRule] = []
    for n, entry in enumerate(tf.tables(data, "times")):
        rule_id = entry.get("id")
        if not isinstance(rule_id, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", rule_id):
            tf.problem(f"times[{n}].id", f"expected an id of letters, digits, _ or -, got {rule_id!r}")
            continue
        key = f"times[{rule_id}]"
        line = tf.entry_line("times", rule_id, "regex")
        tf.unknown_keys(entry, _TIME_KEYS, key)
        regex_text = entry.get("regex")
        if not isinstance(regex_text, str) or not regex_text:
            tf.problem(f"{key}.regex", f"expected a regular expression string, got {regex_text!r}", line)
            continue
        try:
            flags = re.IGNORECASE if tf.boolean(entry, "ignore_case", key, True) else 0
            compiled = re.compile(regex_text, flags)
        except re.error as exc:
            tf.problem(f"{key}.regex", f"not a valid regular expression: {exc}", line)
            continue
        if compiled.fullmatch(""):
            tf.problem(f"{key}.regex", "regular expression matches the empty string", line)
            continue
        deadline = tf.boolean(entry, "deadline", key, False)
        times.append(TimeRule(f"asks.times.{rule_id}", compiled, bool(deadline)))
    return AskRules(tuple(asks), frames, tuple(times))


# ---------------------------------------------------------------- compiling terms


Slot = frozenset[str] | None  # None: the gap ``*``
# one pattern under its first word: the regular expression for the words after the first
# (None: a one-word pattern) and what a match stands for (a frame's name, an AskRule)
Entry = tuple[re.Pattern[str] | None, Any]


class Starting:
    """The patterns that start with one word, in the rules' order, and one regular expression
    that matches where any of the longer ones does (most tries fail: one try, not one each).

    Compiled the first time a text holds the word: the rules hold about a thousand of these
    expressions and a poll with one new message reads a few of them."""

    __slots__ = ("sources", "compiled", "patterns", "single", "any_longer", "going_on")

    def __init__(self, sources: list[tuple[str | None, Slot, Any]]) -> None:
        self.sources = sources  # (the regular expression for the words after the first, the second word, what)
        self.compiled = False
        self.patterns: list[Entry] = []
        self.single: tuple[Any, ...] = ()  # what the one-word patterns stand for, in order
        self.any_longer: re.Pattern[str] | None = None
        # the lemmas and "=forms" the longer patterns go on with: the next token is looked up here
        # before ``any_longer`` is tried; None when one goes on with a gap (or a word holding the
        # character a written token shows for a separator)
        self.going_on: frozenset[str] | None = frozenset()

    def compile(self) -> None:
        self.patterns = [(_compile(rest) if rest else None, what) for rest, _, what in self.sources]
        self.single = tuple(what for rest, _, what in self.sources if not rest)
        longer = list(dict.fromkeys(rest for rest, _, _ in self.sources if rest))
        self.any_longer = _compile("|".join(f"(?:{r})" for r in longer)) if longer else None
        seconds = [second for rest, second, _ in self.sources if rest]
        words = [w for second in seconds if second is not None for w in second]
        self.going_on = None if None in seconds or any("\ufffd" in w for w in words) else frozenset(words)
        self.compiled = True


_compile = functools.lru_cache(maxsize=None)(re.compile)  # one pattern starts with several words


Index = dict[str, Starting]  # first word (a lemma, or "=" + a form) -> the patterns starting with it


def _malformed(term: str) -> str:
    """Why a term or a frame phrase cannot match as written ("" when it can): an empty alternative
    ("|", "help|"), a gap written as more than one * ("**"), or a gap at either end."""
    words = term.split()
    for word in words:
        if "|" in word and not all(word.split("|")):
            return f"an alternative in {word!r} is empty (write a|b)"
        if len(word) > 1 and set(word) == {"*"}:
            return f"{word!r} is no word (a gap is one *)"
    if not words or words[0] == "*" or words[-1] == "*":
        return "a term must start and end with a word"
    return ""


def _slots(text: str, tokenize: Any) -> tuple[Slot, ...]:
    """A term as slots of lemma alternatives; ``tokenize`` splits words as the pipeline does."""
    out: list[Slot] = []
    for word in text.lower().split():
        if word == "*":
            out.append(None)
            continue
        alts = [a for a in word.split("|") if a]
        # each alternative may be several tokens ("n't", "'d"): a word with one token per alternative
        # is one slot; a word such as "don't" becomes its tokens' slots. "=sent" is that form only.
        toks = [["=" + a[1:]] if a.startswith("=") and len(a) > 1
                else [lemma(a)] if a[:1] in ("'", "\u2019") else [lemma(t) for t in tokenize(a)]  # "'m" is one token in "I'm"
                for a in alts]
        if all(len(t) == 1 for t in toks):
            out.append(frozenset(t[0] for t in toks))
        else:
            for t in toks[0]:
                out.append(frozenset([t]))
    return tuple(out)


# How a text's tokens are written for the patterns' regular expressions (see ``_prepare``): each
# token is OPEN (PUNCT for punctuation) + its lemma + FORM + the word as written + CLOSE.
OPEN, PUNCT, FORM, CLOSE = "\x1f", "\x1c", "\x1e", "\x1d"
_SEPARATORS = str.maketrans({c: "\ufffd" for c in OPEN + PUNCT + FORM + CLOSE})
# a gap: up to GAP words, none of them punctuation ("tracking – the last parcel" is two things);
# lazy, so the shortest way through is tried first, as the words are read
_GAP_RE = f"(?:{OPEN}[^{CLOSE}]*{CLOSE}){{0,{GAP}}}?"


def _slot_re(slot: Slot) -> str:
    """One slot as a regular expression over one written token: its lemma is one of the slot's
    words, or its form is one of the slot's "=form" words."""
    if slot is None:
        return _GAP_RE
    words = sorted(slot)
    lemmas = "|".join(re.escape(w) for w in words)
    forms = "|".join(re.escape(w[1:]) for w in words if w.startswith("="))
    token = f"(?:{lemmas}){FORM}[^{CLOSE}]*"
    if forms:
        token = f"(?:{token}|[^{FORM}]*{FORM}(?:{forms}))"
    return f"[{OPEN}{PUNCT}]{token}{CLOSE}"


@dataclass(frozen=True)
class Compiled:
    """Terms and frames indexed by the lemmas a match can start with."""

    rules: AskRules
    asking: Index  # every term (an AskRule), the request and inquiry frames (their names)
    framing: Index  # the other frames but question_openers (their names)
    openers: Index  # question_openers
    excludes: dict[str, Index]  # rule id -> its exclude terms
    vocabulary: frozenset[str] = frozenset()  # every word of a term or a frame, for misspellings
    read: dict[int, _Word] = field(default_factory=dict)  # a word (its ORTH) as read before (see ``_read``)
    order: dict[str, int] = field(default_factory=dict)  # rule id -> its place in the file (the first listed wins)


def compile_asks(rules: AskRules, nlp: Any) -> Compiled:
    tokens: dict[str, list[str]] = {}  # the same words recur across terms and frames

    def tokenize(text: str) -> list[str]:
        if text not in tokens:
            tokens[text] = [t.lower_ for t in nlp.make_doc(text) if not t.is_space]
        return tokens[text]

    frames = {name: [_slots(t, tokenize) for t in (rules.frames or {}).get(name, ())] for name in _FRAME_KEYS}
    terms = [(_slots(term, tokenize), rule) for rule in rules.asks for term in rule.terms]
    # a sentence is read once for what may ask (terms in the file's order, request and inquiry
    # frames), and once more for the frames that qualify an ask only where there is one
    asking = _index([(slots, name) for name in _ASKING for slots in frames[name]] + terms)
    framing = _index([(slots, name) for name in _FRAME_KEYS if name not in (*_ASKING, "question_openers")
                      for slots in frames[name]])
    excludes = {rule.rule: _index([(_slots(t, tokenize), None) for t in rule.exclude])
                for rule in rules.asks if rule.exclude}
    words = {w for slots, _ in terms for slot in slots for w in slot or ()}
    words |= {w for patterns in frames.values() for slots in patterns for slot in slots for w in slot or ()}
    vocabulary = frozenset(w for w in words if w.isalpha() and len(w) >= 4)
    openers = _index([(slots, None) for slots in frames["question_openers"]])
    order = {r.rule: i for i, r in enumerate(rules.asks)}
    return Compiled(rules, asking, framing, openers, excludes, vocabulary, order=order)


def _index(patterns: list[tuple[tuple[Slot, ...], Any]]) -> Index:
    """Patterns by the words they can start with: a token is tried only against those."""
    lists: dict[str, list[tuple[str | None, Slot, Any]]] = {}
    for slots, what in patterns:
        if not slots or slots[0] is None:
            continue
        rest = "".join(map(_slot_re, slots[1:])) if len(slots) > 1 else None
        second = slots[1] if len(slots) > 1 else None
        for word in slots[0]:
            lists.setdefault(word, []).append((rest, second, what))
    return {word: Starting(found) for word, found in lists.items()}


# ---------------------------------------------------------------- matching


class _Word(NamedTuple):
    """A word as the matcher reads it (``_read``), kept per ORTH across texts."""

    lower: str
    lemma: str
    form: str  # "=" + lower, for "=sent" slots
    written: str  # as the patterns' regular expressions read it: OPEN (PUNCT) lemma FORM lower CLOSE
    punct: bool
    asking: tuple[Starting, ...]  # the patterns of ``Compiled.asking`` it starts (by its lemma, then form)


_COLUMNS: tuple[Any, ...] = tuple(map(operator.itemgetter, range(len(_Word._fields))))  # its fields, by index
_BLANK = _Word("", "", "=", f"{PUNCT}{FORM}{CLOSE}", True, ())  # a blank line: no pattern matches it
_READ_KEPT = 1 << 16
Candidates = list[tuple[int, Starting]]  # (token, patterns starting there), in token order


@dataclass
class _Doc:
    """The tokens of one text as the matcher reads them (whitespace left out; a blank line is "")."""

    text: str
    lowers: tuple[str, ...]
    lemmas: tuple[str, ...]
    forms: tuple[str, ...]  # "=" + the word as written, for "=sent" slots
    starts: list[int]
    ends: list[int]
    punct: tuple[bool, ...]
    written: str  # the tokens as the patterns' regular expressions read them (OPEN ... CLOSE each)
    at: list[int]  # where each token starts in ``written``, and len(written) last
    asking: Candidates  # where patterns of ``Compiled.asking`` may start
    words: list[int]  # the tokens that are not punctuation


def _prepare(spacy_doc: Any, text: str, compiled: Compiled, rows: Any) -> _Doc:
    """``rows``: the doc's IS_SPACE, IDX, LENGTH, ORTH as one array the caller has made (it is changed here)."""
    space = rows[:, 0].nonzero()[0]  # whitespace is left out, but a blank line ends a sentence
    space = space[rows[space, 2] >= 2]  # (a blank line is two characters at least)
    blank = [k for k, (idx, length) in zip(space.tolist(), rows[space, 1:3].tolist(), strict=True)
             if text.count("\n", idx, idx + length) >= 2]  # the doc's text has the same blank lines
    rows[blank, 2:4] = 0  # a blank line ends where it starts; orth 0 reads as one
    keep = rows[:, 0] == 0
    keep[blank] = True
    rows = rows[keep]
    orths = rows[:, 3].tolist()
    read = compiled.read
    words = list(map(read.get, orths))
    if None in words:  # words not read before
        words = [w or read.get(orth) or _read(compiled, spacy_doc.vocab, orth) for w, orth in zip(words, orths, strict=True)]
    if not words:
        return _Doc(text, (), (), (), [], [], (), "", [0], [], [])
    # one column at a time: zip(*words) would make an iterator per token, and so many new objects
    # at once start the garbage collector every other text
    lowers, lemmas, forms, written, punct, asking = (tuple(map(column, words)) for column in _COLUMNS)
    tokens = range(len(words))
    return _Doc(text, lowers, lemmas, forms, rows[:, 1].tolist(), (rows[:, 1] + rows[:, 2]).tolist(), punct,
                "".join(written), [0, *itertools.accumulate(map(len, written))],
                [(i, s) for i in itertools.compress(tokens, asking) for s in asking[i]],
                list(itertools.compress(tokens, map(operator.not_, punct))))


def _read(compiled: Compiled, vocab: Any, orth: int) -> _Word:
    """A word not read before: its lemma (respelt, which is slow), how the patterns' regular
    expressions see it and the terms and request frames it may start; kept for the texts to come."""
    if len(compiled.read) > _READ_KEPT:
        compiled.read.clear()
    if not orth:
        compiled.read[orth] = _BLANK
        return _BLANK
    lexeme = vocab[orth]
    lower = lexeme.lower_.replace("’", "'")
    lem = lemma(respell(lower, compiled.vocabulary))
    is_punct = bool(lexeme.is_punct)
    written = f"{PUNCT if is_punct else OPEN}{lem.translate(_SEPARATORS)}{FORM}{lower.translate(_SEPARATORS)}{CLOSE}"
    form = "=" + lower
    asking = tuple(compiled.asking[w] for w in (lem, form) if w in compiled.asking)
    word = compiled.read[orth] = _Word(lower, lem, form, written, is_punct, asking)
    return word


def _find(patterns: Index, doc: _Doc, lo: int, hi: int) -> list[tuple[int, int, Any]]:
    """(start, end, what) of every match of ``patterns`` in the tokens [lo, hi)."""
    lemmas, forms = doc.lemmas, doc.forms
    candidates = [(i, patterns[w]) for i in range(lo, hi) for w in (lemmas[i], forms[i]) if w in patterns]
    return _matches(doc, hi, candidates) if candidates else []


def _found(candidates: Candidates, doc: _Doc, lo: int, hi: int) -> list[tuple[int, int, Any]]:
    """``_find`` for the index whose candidates the doc holds (``_Doc.asking``)."""
    first = bisect.bisect_left(candidates, (lo,))  # (lo,) sorts before (lo, anything)
    last = bisect.bisect_left(candidates, (hi,), first)
    return _matches(doc, hi, candidates[first:last])


def _matches(doc: _Doc, hi: int, candidates: Candidates) -> list[tuple[int, int, Any]]:
    """(start, end, what) of every match starting at a candidate and ending by token ``hi``, in the
    order of their starts (then of the index): the shortest way a gap can be read, as the words come."""
    found: list[tuple[int, int, Any]] = []
    written, at, lemmas, forms = doc.written, doc.at, doc.lemmas, doc.forms
    limit = at[hi]
    for i, starting in candidates:
        if not starting.compiled:
            starting.compile()
        going_on = starting.going_on
        if (going_on is not None and (i + 1 == hi or (lemmas[i + 1] not in going_on and forms[i + 1] not in going_on))
                or not starting.any_longer.match(written, at[i + 1], limit)):  # type: ignore[union-attr]
            for what in starting.single:  # mostly: no longer pattern goes on from here
                found.append((i, i + 1, what))
            continue
        for rest, what in starting.patterns:
            if rest is None:
                found.append((i, i + 1, what))
            elif (match := rest.match(written, at[i + 1], limit)) is not None:
                found.append((i, bisect.bisect_left(at, match.end(), i + 1), what))
    return found


def _is_past(lower: str, lem: str) -> bool:
    """A past form ("cancelled", "sent", "spoke"): what happened, not what is asked."""
    if lower == lem:
        return False
    return lower.endswith("ed") or lower in _IRREGULAR_PAST


def sentences(doc: _Doc) -> list[tuple[int, int]]:
    """Token spans of sentences: they end after . ! ? … ; or at a blank line."""
    out: list[tuple[int, int]] = []
    lowers = doc.lowers
    start = 0
    n = len(lowers)
    for i in itertools.compress(range(n), map(_STOPS.__contains__, lowers)):
        if i < start:
            continue  # a stop taken in by the sentence before ("?!")
        j = i + 1
        while j < n and lowers[j] in _CLOSING:
            j += 1
        out.append((start, i if lowers[i] == "" else j))  # a blank line is in neither sentence
        start = j
    if start < n:
        out.append((start, n))
    return [(a, b) for a, b in out if not all(doc.punct[a:b])]


def find_asks(compiled: Compiled, spacy_doc: Any, text: str, evidence: list[Evidence],
              rows: Any, body_at: int = 0) -> tuple[tuple[Ask, ...], str]:
    """The asks of one text, in text order, and the customer's deadline ("" when none).

    ``body_at``: where the message body starts in ``text`` (the subject line comes first); an
    ask in the body has offsets into the body, one in the subject ``where="subject"``. ``rows``: see ``_prepare``."""
    rules = compiled.rules
    if not rules.asks:
        return (), ""
    doc = _prepare(spacy_doc, text, compiled, rows)
    heated = sorted(e.start for e in evidence if e.kind in ("insult", "profanity", "blame") and e.weight > 0)
    threats = sorted(e.start for e in evidence if e.kind == "threat")
    order = compiled.order
    found: list[Ask] = []
    deadline = ""
    low = lowered(text)  # the [[times]] a sentence is read for: those the whole text may hold
    times = tuple(r for r in rules.times if r.fast.may_match_within(text, low))
    deadlines = tuple(r for r in times if r.deadline)  # all a sentence asking nothing is read for
    for lo, hi in sentences(doc):
        asks, requested = _sentence_asks(compiled, doc, lo, hi, heated)
        a, b = doc.starts[lo], doc.ends[hi - 1]
        threatened = bisect.bisect_left(threats, a) < bisect.bisect_left(threats, b)
        if not (asks or threatened or (requested and not deadline)):
            continue  # nothing asked here: no time to attach, and no deadline of theirs
        asks.sort(key=lambda a: (order.get(a.rule, len(order)), a.start))
        kept: list[Ask] = []
        for ask in asks:  # one ask per kind and sentence; overlapping words: the rule listed first
            if any(k.kind == ask.kind or (k.start < ask.end and ask.start < k.end) for k in kept):
                continue
            kept.append(ask)
        kept.sort(key=lambda a: a.start)
        sentence = text[a:b]
        # with nothing asked here only a deadline of theirs matters: only the deadline rules are read
        when, deadline_here = _times(times if kept else deadlines, sentence)
        if when:
            kept = [replace(k, when=when) for k in kept]
        if not deadline and deadline_here:
            deadline = deadline_here
        found.extend(_detail(k, sentence, a) for k in kept)
    if body_at:
        found = [replace(k, start=k.start - body_at, end=k.end - body_at) if k.start >= body_at
                 else replace(k, where="subject") for k in found]
    if any(k.kind != "information" for k in found):  # "How do I do that?", "What should I do?": about the other ask
        found = [k for k in found if not (k.kind == "information"
                                          and (_BACK_REFERENCE.search(k.text) or k.rule == "asks.next_step"))]
    if any(k.rule != "asks.wish" for k in found):
        # "Please cancel it. I need it done today", "I'd like to order the knife set. Will it arrive
        # by Christmas?": what they want is said by the other ask
        found = [k for k in found if k.rule != "asks.wish"]
    return _one_per_kind(found), deadline


def _one_per_kind(asks: list[Ask]) -> tuple[Ask, ...]:
    """One ask per kind (every question for ``information``): the one that says when, else the first.

    The subject line comes first in the text; it counts only when the body does not ask the same."""
    body = {a.kind for a in asks if not _in_subject(a)}
    chosen: dict[str, Ask] = {}
    questions: list[Ask] = []
    for ask in asks:
        if ask.kind in body and _in_subject(ask):
            continue
        if ask.kind == "information":
            questions.append(ask)
            continue
        have = chosen.get(ask.kind)
        if have is None:
            chosen[ask.kind] = ask
        elif not have.when and ask.when:
            chosen[ask.kind] = replace(have, when=ask.when)
        elif not have.detail and ask.detail:
            chosen[ask.kind] = replace(have, detail=ask.detail)
    return tuple(sorted([*chosen.values(), *questions], key=lambda a: a.start))


def _in_subject(ask: Ask) -> bool:
    return ask.where == "subject"


def _times(rules: tuple[TimeRule, ...], sentence: str) -> tuple[str, str]:
    """The first time expression of the sentence, and the first deadline one."""
    first: tuple[int, str] | None = None
    dead: tuple[int, str] | None = None
    lower = lowered(sentence)
    for rule in rules:
        match = next(rule.fast.finditer(sentence, lower), None)  # the first match, as regex.search finds it
        if match is None:
            continue
        got = (match.start(), " ".join(sentence[match.start():match.end()].split()))  # (it may be on ``lower``)
        if first is None or got[0] < first[0]:
            first = got
        if rule.deadline and (dead is None or got[0] < dead[0]):
            dead = got
    return (first[1] if first else ""), (dead[1] if dead else "")


_OBJECT_STOP = re.compile(r"[,.;:!?()\n]|\b(?:and|but|because|as|since|please|from|effective|starting|asap|"
                          r"immediately|now|today|if|so|or|which|that|before|after|by|at|with|as of)\b", re.I)


def _detail(ask: Ask, sentence: str, offset: int) -> Ask:
    """What the ask is about: the number to call, the thing to cancel, the question."""
    if ask.kind == "callback":
        phone = _PHONE.search(sentence)
        return replace(ask, detail=phone.group(0).strip() if phone else "")
    if ask.kind == "close_account":
        return replace(ask, detail=ask.text.partition(" ")[2] or ask.text)  # "close my account" -> "my account"
    if ask.kind == "cancel":
        rest = sentence[ask.end - offset:]
        stop = _OBJECT_STOP.search(rest)
        return replace(ask, detail=" ".join(rest[: stop.start() if stop else len(rest)].split())[:80])
    if ask.kind == "information":
        text = _LEAD_IN.sub("", ask.text, count=1) or ask.text
        if ask.rule in ("asks.request", "asks.wish"):  # the detail is what is asked: "send me the receipt"
            return replace(ask, text=text)
        return replace(ask, text=text, detail=text)
    return ask


# "Hi, how do I ..." -> "how do I ...": a greeting or a short label before the question is not part of it
_LEAD_IN = re.compile(r"^(?:(?:hi|hello|hey|dear|good\s+(?:morning|afternoon|evening))\b[^,!:?]{0,20}[,!:]\s*"
                      r"|[^,!:?]{1,25}:\s+)", re.I)


def _sentence_asks(compiled: Compiled, doc: _Doc, lo: int, hi: int, heated: list[int]) -> tuple[list[Ask], bool]:
    """Every ask found in the sentence [lo, hi) (overlaps are settled by the caller), and whether
    it has a request frame."""
    request: list[tuple[int, int]] = []
    inquiry: list[tuple[int, int]] = []
    terms: list[tuple[int, int, AskRule]] = []
    for start, end, what in _found(doc.asking, doc, lo, hi):
        if what == "request":
            request.append((start, end))
        elif what == "inquiry":
            if doc.lowers[start] == doc.lemmas[start]:  # "tell me" asks, "telling me" and "told me" tell what happened
                inquiry.append((start, end))
        else:
            terms.append((start, end, what))
    first = bisect.bisect_left(doc.words, lo)
    n_words = bisect.bisect_left(doc.words, hi, first) - first
    words = doc.words[first:first + 3]  # the sentence's first words
    # ? . and ! are always punctuation: looked for among all the sentence's tokens
    marks = doc.lowers[lo:hi]
    opener = n_words > 2 and bool(_find(compiled.openers, doc, words[0], words[0] + 1))
    question = "?" in marks or (
        opener and "." not in marks and "!" not in marks
        and (doc.lowers[words[1]] in _PRONOUNS or doc.lowers[words[0]] in _WH)
    ) or (  # "How do I formally complain about it." -- the question's form, whatever the stop
        opener and doc.lowers[words[0]] in _WH and doc.lemmas[words[1]] in _AUXILIARY
        and doc.lowers[words[2]] in ("i", "we")
    )
    if not (terms or question or inquiry or request or _imperative(doc, words, n_words)):
        return [], bool(request)  # no ask's words, and not asking to know or to have anything
    spans: dict[str, list[tuple[int, int]]] = {name: [] for name in _FRAME_KEYS}
    for start, end, name in _find(compiled.framing, doc, lo, hi):
        spans[name].append((start, end))
    a, b = doc.starts[lo], doc.ends[hi - 1]
    rhetorical = question and (
        bool(spans["rhetorical"])
        or bisect.bisect_left(heated, a) < bisect.bisect_left(heated, b)
    )
    after = spans["after"]
    negation: dict[int, int] = {}  # start -> end of each negation
    for s_, e_ in spans["negation"]:
        negation[s_] = max(negation.get(s_, 0), e_)
    contrast = {s for s, _ in spans["contrast"]}
    owned = {s for s, _ in spans["owned"]}
    chased = spans["chased"]
    theirs = {e for _, e in spans["theirs"]}
    openers = {s for s, _ in spans["openers"]}
    # what someone else told or asked of the customer ("they told me to call back", "I was asked to
    # send it back"), and what the customer only supposes ("if I cancel", "should I cancel?")
    # ...unless what they were told is to ask us ("my bank told me to ask you for a refund"): that
    # passes the request on, and the ask after it is the customer's own
    relay = [r0 for r0, _ in spans["relay"]]
    reported = [f for f in spans["reported"] if _reporting(doc, f, lo)
                and not any(f[1] <= r0 and not any(doc.punct[k] or k in contrast for k in range(f[1], r0))
                            for r0 in relay)]
    # a condition opens its clause ("If I cancel, ...", "but if I cancel"); "tell me if I can" asks whether
    hypothetical = [f for f in spans["hypothetical"] if doc.lemmas[f[0]] not in _CONDITIONS
                    or f[0] == lo or doc.punct[f[0] - 1] or doc.lowers[f[0] - 1] in _COORDINATING | {"but", "so"}]

    def inverted(k: int) -> bool:
        """A question's own verb opens a clause at ``k``: an auxiliary before its subject ("do I", "will we")."""
        return doc.lemmas[k] in _AUXILIARY and k + 1 < hi and doc.lowers[k + 1] in _SUBJECTS

    def governed(start: int, frames: list[tuple[int, int]]) -> bool:
        """A frame of ``frames`` before the term governs it: in the same clause (no punctuation or
        contrast word between), within WINDOW words, with no request frame of the customer's own
        starting after it ("they told me to wait, so please call me back")."""
        for _f0, f1 in frames:
            if f1 > start or start - f1 > WINDOW:
                continue
            # a clause ends at punctuation, a contrast word, a question word ("If I order a card when
            # does it arrive?") or a question's inverted verb ("When I cancel do I get a refund?")
            if any(doc.punct[k] or k in contrast or doc.lowers[k] in _WH or (k > f1 and inverted(k))
                   for k in range(f1, start)):
                continue
            if any(f1 < r0 < start for r0, _ in request):
                continue
            return True
        return False

    def negated(start: int, frame_start: int | None) -> bool:
        for anchor in ([frame_start] if frame_start is not None else []) + [start]:
            for k in range(anchor - 1, max(lo, anchor - NEG_REACH) - 1, -1):
                if doc.punct[k]:
                    break
                # a negation that runs into the term is part of it ("don't see a refund" is the term)
                if k in negation and negation[k] <= start and not any(c in contrast for c in range(k + 1, start)):
                    return True
        return False

    def opens_clause(start: int, end: int) -> bool:
        """An imperative: the term opens the sentence or a clause ("please" and the like may come first),
        and what follows is not a verb telling what happened ("Refund received")."""
        if end < hi and not doc.punct[end] and (_is_past(doc.lowers[end], doc.lemmas[end])
                                                 or doc.lemmas[end] in ("be", "have")):
            return False
        k = start - 1
        while k >= lo and k in openers:
            if doc.lemmas[k] in _COORDINATING and (asks or any(f[1] <= k for f in request)):
                return True  # "Close my account and delete my details": a second imperative
            k -= 1
        return k < lo or doc.punct[k]

    # a condition opening the question ("When I cancel, do I get a refund?"): its "when" is no
    # question word, and what the question asks comes after the inverted verb
    conditions = {f0 for f0, f1 in hypothetical if doc.lemmas[f0] in _CONDITIONS
                  and any(inverted(k) for k in range(f1 + 1, hi))}
    asks: list[Ask] = []
    for i, end, rule in terms:
        if _excluded(compiled, rule, doc, i, end, lo, hi):
            continue
        if rule.kind == "status" and i in conditions:
            continue  # "When I cancel do I get...": whether they get it, not where it stands
        frame_before = max((f for f in request if f[1] <= i and i - f[1] <= WINDOW), default=None)
        inquiry_before = max((f for f in inquiry if f[1] <= i and i - f[1] <= WINDOW), default=None)
        frame_after = any(f[0] >= end and f[0] - end <= AFTER for f in after)
        past = _is_past(doc.lowers[i], doc.lemmas[i])
        promised = rule.kind in _CHASEABLE and any(f[1] <= i and i - f[1] <= WINDOW for f in chased)
        if rule.frame == "request" and ((governed(i, reported) and not promised)
                                        or (governed(i, hypothetical) and not frame_after) or _done(doc, i, lo, past)):
            continue  # told, supposed or already done: not what the customer asks of us (a remedy
            # they were told they would get is chased: "the agent told me I would get a refund")
        used = frame_before
        if rule.frame == "none":
            ok = not past or frame_before is not None
        elif rule.frame == "question":
            ok = (question and not rhetorical) or inquiry_before is not None or frame_before is not None
            used = inquiry_before or frame_before
        else:
            ok = (frame_before is not None or frame_after or (question and not rhetorical)
                  or (not past and opens_clause(i, end)))
        if not ok or negated(i, used[0] if used else None):
            continue
        a, b = doc.starts[i], doc.ends[end - 1]
        kind, rule_id = rule.kind, rule.rule
        if kind in _CHASEABLE and (
            # "my refund", "the refund": it exists already (unless asked for now: "my demands: the replacement")
            (i in theirs and doc.lemmas[i] in _REMEDY_NOUNS and used is None)
            or any(f[1] <= i and i - f[1] <= WINDOW for f in chased)  # "waiting for a refund"
            or (used is not None and _is_past(doc.lowers[used[0]], doc.lemmas[used[0]]))  # "I requested a refund"
        ):
            kind, rule_id = "status", rule.rule + ".chased"
        asks.append(Ask(kind, doc.text[a:b], a, b, rule_id, flag=rule.flag))
    if question and not _GENERAL.isdisjoint(doc.lemmas[lo:hi]):  # "how long does delivery usually take"
        asks = [x for x in asks if x.kind != "status"]
    elif question and _THEIRS.isdisjoint(doc.lowers[lo:hi]) and not _INDEFINITE.isdisjoint(doc.lowers[lo:hi]) \
            and not _chaser(doc.lowers[lo:hi]):
        # "how long does an international transfer take?" names nothing of theirs, and something
        # by its kind ("an international transfer"): how things work,
        # which "I'll find out where things stand" does not answer: the question goes with the ask
        sa, sb = doc.starts[lo], doc.ends[hi - 1]
        asks = [replace(x, detail=" ".join(doc.text[sa:sb].split())) if x.kind == "status" else x for x in asks]
    if any(x.kind == "status" for x in asks):  # "where is my refund": where it is, not a new one
        asks = [x for x in asks if x.kind == "status" or not _owned(doc, x, lo, owned)]
    a, b = doc.starts[lo], doc.ends[hi - 1]  # the sentence (a term's span was read into a, b above)
    if not asks and not rhetorical and (question or inquiry) and n_words >= 3:
        text = " ".join(doc.text[a:b].split())
        next_step = bool(spans["next_step"])  # "What should I do?": about the problem
        asks.append(Ask("information", text, a, b,
                        "asks.next_step" if next_step else "asks.question" if question else "asks.inquiry"))
    elif not asks and not terms and not question and not inquiry:
        asked = _direct_request(doc, lo, hi, words, n_words, spans)
        if asked is not None:  # "Stop asking me to size-check my bag.": a request no ask kind names
            at, rule_id = asked
            asks.append(Ask("information", " ".join(doc.text[a:b].split()), a, b, rule_id,
                            detail=_TRAILING_PLEASE.sub("", " ".join(doc.text[doc.starts[at]:doc.ends[hi - 1]].split()))))
    return asks, bool(request)


def _chaser(lowers: tuple[str, ...]) -> bool:
    """"Any update", "any news...": asking after their own case (``_CHASING`` right after "any")."""
    return any(w == "any" and nxt in _CHASING for w, nxt in zip(lowers, lowers[1:], strict=False))


@functools.cache
def _verbs() -> frozenset[str]:
    """Every lemma the table gives an -ing form of: a word that can be a verb ("stop", "send")."""
    return frozenset(v for f, v in _lookup().items() if f.endswith("ing") and not v.endswith("ing"))


def _reporting(doc: _Doc, frame: tuple[int, int], lo: int) -> bool:
    """A ``reported`` frame is someone else's words: a past form in it ("told me to", "I was asked
    to"), a verb's -s or -ing form ("says to", "keep telling me to"), or a base form after someone
    else ("they tell me to"); never the customer's own base form ("I ask you to"), nor "I'm asking to"."""
    start, end = frame
    if any(_is_past(doc.lowers[k], doc.lemmas[k]) for k in range(start, end)):
        return True
    if doc.lowers[start] != doc.lemmas[start] and doc.lemmas[start] != "be":
        return True
    return start > lo and doc.lowers[start - 1] in _OTHERS


def _done(doc: _Doc, i: int, lo: int, past: bool) -> bool:
    """The customer (or someone) did it already: a past form after its subject ("I sent it back",
    "we've already returned it") or after a past "be" ("it was returned last week"), or any form
    after "already": a fact, not a request ("I want it to be returned" is one: "be", not "was")."""
    k = i - 1
    while k >= lo and doc.lowers[k] in _BETWEEN:
        if doc.lowers[k] == "already":
            return True
        k -= 1
    return past and k >= lo and (doc.lowers[k] in _SUBJECTS or doc.lowers[k] in _PASSIVE)


def _imperative(doc: _Doc, words: list[int], n_words: int) -> bool:
    """The sentence opens with a verb's base form and what it acts on: "Stop ASKING me...", "Send ME
    the receipt" (never a noun that can be a verb: "Invoice INV-0883 was charged twice")."""
    if (n_words < 3 or doc.lowers[words[0]] != doc.lemmas[words[0]] or doc.lemmas[words[0]] not in _verbs()
            or doc.lowers[words[0]] in _SUBORDINATING or doc.lowers[words[0]] in ("please", "kindly")):
        return False
    after = doc.lowers[words[1]]
    return after in _ACTED_ON or (after.endswith("ing") and doc.lemmas[words[1]] != after)


def _direct_request(doc: _Doc, lo: int, hi: int, words: list[int], n_words: int,
                    spans: dict[str, list[tuple[int, int]]]) -> tuple[int, str] | None:
    """(where what is asked starts, the rule) of a direct request no ask kind names, else None.

    ``asks.request``, asking us to act: a ``[frames] direct`` phrase ("please", "can you", "I need
    you to") or an imperative acting on the customer's things ("Stop asking ME", "Send MY
    receipt"), then a verb ("please SEND", never "please, it's urgent"). ``asks.wish``, what the
    customer wants (``[frames] wish``: "I'd like a Visa card", "I want to open an account for my
    child"). Never a vague request (``[frames] vague``: "please help", "get back to me"), a
    negated one, nor one someone else made or the customer only supposes."""
    if n_words < 3:
        return None
    at: int | None = None
    rule_id = "asks.request"
    # the last direct frame a verb follows ("Please SEND me..."): a "please" closing the sentence
    # ("Send me the receipt please.") asks nothing by itself, and the imperative before it does
    for _f0, f1 in sorted(spans["direct"], key=lambda f: f[1], reverse=True):
        k = _skip_fillers(doc, f1, hi)
        if k < hi and doc.lowers[k] == doc.lemmas[k] and doc.lemmas[k] in _verbs():
            at = f1
            break
    if at is None and _imperative(doc, words, n_words) and _acts_on_theirs(doc, words, n_words):
        at = words[0]
    elif at is None and spans["wish"]:
        at, rule_id = max(f[1] for f in spans["wish"]), "asks.wish"
    if at is None:
        return None
    at = _skip_fillers(doc, at, hi)
    if any(f0 <= at < f1 or (f0 < at and f1 == at + 1) for f0, f1 in spans["aside"]):
        return None  # "Imagine my surprise", "Please excuse my English", "I wish I had never...": a figure of speech
    wanted = at - 1 if rule_id == "asks.wish" and doc.lowers[at - 1] == "to" else at  # "you'd like TO open..."
    if at >= hi or hi - at < 2:
        return None
    if rule_id == "asks.request" and (doc.lowers[at] != doc.lemmas[at] or doc.lemmas[at] not in _verbs()):
        return None  # what is asked is an action: "please SEND me", not "please, it's urgent"
    if any(f0 <= at < f1 or f0 == at + 1 for f0, f1 in spans["vague"]) or any(
            f0 < at for f0, _ in spans["reported"] + spans["hypothetical"]):
        return None  # "please help", "I need urgent help": what the reply does anyway
    if rule_id == "asks.wish" and doc.lowers[at] in _POINTING:
        return None  # "I need it ASAP": about something said before
    at = wanted
    if any(at - NEG_REACH - 2 <= n0 <= at for n0, _ in spans["negation"]):
        return None
    return at, rule_id


def _skip_fillers(doc: _Doc, at: int, hi: int) -> int:
    """The first word from ``at`` that is not punctuation or a filler ("please", "just", "to", "you")."""
    while at < hi and (doc.punct[at] or doc.lemmas[at] in ("please", "kindly", "just", "also", "to", "you", "u")):
        at += 1
    return at


def _acts_on_theirs(doc: _Doc, words: list[int], n_words: int) -> bool:
    """The imperative's object, right after its verb, is the customer or theirs: "Send ME the
    receipt", "Fix MY booking", "Stop asking ME" (after an -ing form); never a "my" further on."""
    mine = {"me", "us", "my", "our"}
    if doc.lowers[words[1]] in mine:
        return True
    return n_words > 2 and doc.lowers[words[1]].endswith("ing") and doc.lowers[words[2]] in mine


def _excluded(compiled: Compiled, rule: AskRule, doc: _Doc, start: int, end: int, lo: int, hi: int) -> bool:
    """One of the rule's ``exclude`` terms overlaps the match ("tax return" is not a return)."""
    patterns = compiled.excludes.get(rule.rule)
    if not patterns:
        return False
    return any(s < end and start < e for s, e, _ in _find(patterns, doc, max(lo, start - 4), min(hi, end + 4)))


def _owned(doc: _Doc, ask: Ask, lo: int, owned: set[int]) -> bool:
    """The ask's term follows "my", "the"... (``[frames] owned``) within two words."""
    i = bisect.bisect_left(doc.starts, ask.start, lo)  # the tokens' starts rise
    return i < len(doc.starts) and doc.starts[i] == ask.start and any(k in owned for k in range(max(lo, i - 2), i))
