"""What went wrong, what the owner lets an agent offer, and the owner's saved answers.

Two owner files, both validated by ``triage rules check``:

* ``rules/policy.toml`` -- the *situation* (what went wrong: ``product_fault``,
  ``delivery``, ``billing``, ``service``, ``account``, ``security`` (someone else
  used their card or account), ``information``, ``thanks`` or ``general``) from
  detection's topic, the asks and the owner's signs (``[signs]``: something went
  wrong, it never arrived, it is about one of our orders); the remedy a draft
  may offer in each situation (none where none fits: no "replacement or
  refund" for a late parcel or a billing letter); what the draft says to each
  kind of ask, in the owner's terms ("refunds up to 30 days after delivery");
  the words that make a case urgent and how the customer's own deadline is
  acknowledged.
* ``rules/answers.toml`` -- saved answers: question phrases -> a paragraph the
  owner wrote. A customer's question that matches gets that paragraph; a
  question with none is marked for the agent (``[[answer: ...]]``) and the
  draft cannot be approved until the agent has written the answer.

``Reply`` is the pure decision for one message; ``build_context`` turns it into
template variables. A rules folder without policy.toml reads the shipped one;
without answers.toml there are no saved answers.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from triage.detect import Detection, Evidence
from triage.drafting import checklist
from triage.drafting.outgoing import clean_line
from triage.drafting.phrases import spans
from triage.drafting.restate import conceded, in_our_voice, lemma_of
from triage.drafting.tone import Finding, Pattern, compile_patterns
from triage.errors import Problem
from triage.message import Message
from triage.rulefile import TomlFile, is_file

POLICY_FILE = "policy.toml"
ANSWERS_FILE = "answers.toml"
SITUATIONS = ("product_fault", "delivery", "billing", "service", "account", "security", "information",
              "thanks", "general")
# the kinds detection's asks carry (triage/detect/asks.py)
ASK_KINDS = ("refund", "replacement", "repair", "return", "cancel", "close_account", "delete_data",
             "compensation", "callback", "escalate", "status", "information", "apology", "fix", "change",
             "suggestion")
REMEDY_KINDS = frozenset({"refund", "replacement", "repair", "return", "compensation"})
# the owner's [signs] in policy.toml: phrase lists decide() reads the message with
SIGNS = ("trouble", "not_delivered", "order", "security", "third_party", "charge", "hardship", "resend")
PLACEHOLDERS = ("{when}", "{order}", "{deadline}", "{specialist}")
# the placeholder of a [[problems]] sentence: what it happened to
PROBLEM_PLACEHOLDERS = ("{thing}", "{flight}", "{where}")
PROBLEMS_SAID = 3  # the most problems a restatement names


@dataclass(frozen=True)
class SavedAnswer:
    """One ``[[answer]]`` of answers.toml: question phrases and the owner's paragraph."""

    id: str
    title: str
    patterns: tuple[Pattern, ...]
    text: str
    covers: str = ""  # an ask kind whose [asks] line, when said, makes this answer redundant

    def matches(self, question: str) -> bool:
        return any(p.search(question) for p in self.patterns)


@dataclass(frozen=True)
class ProblemRule:
    """One ``[[problems]]`` entry of policy.toml: phrases that say what went wrong, and our words for it."""

    phrases: tuple[Pattern, ...]
    say: str  # in our words, about the customer: "{thing} arrived damaged"
    thing: str = "it"  # {thing} when the message names no product or order
    unless: tuple[Pattern, ...] = ()  # a sentence with one of these is not this problem
    # of the entries sharing a group, only the first found is said ("arrived broken", not also "broken")
    groups: tuple[str, ...] = ()
    # (phrase, what we call it): a thing the customer named in the problem's sentence fills {thing}
    # ("contactless" -> "your contactless card") before the entry's own word for it
    names: tuple[tuple[Pattern, str], ...] = ()
    # this going wrong cannot wait days for an answer (a traveller whose flight was cancelled): the
    # draft promises contact within [urgent] within_hours, unless its sentence has an [urgent] unless
    urgent: bool = False
    # how to say it when the customer only asks or fears it ("is my card blocked?", "what do I do if
    # the machine keeps my card?"): "whether your card has been blocked", said after "You'd like to
    # know"; "" says nothing then (a question or a hypothetical is never restated as a fact)
    asked: str = ""
    # the next step this problem gets, said after the asks' lines: an agent checklist item for what
    # only an agent can do ("[[confirm: I've passed what happened to their team lead]]"); "" for none
    step: str = ""
    # what kind of case this problem makes (one of SITUATIONS), whatever detection's topic: a missed
    # connection is a journey gone wrong ("service"), never a billing case for "who's in charge?"
    situation: str = ""


# marks an ``asked`` sentence among the problems found: what they'd like to know, not what happened
WONDERED = "?"
# ``asked`` sentences open like an indirect question
WONDER_START = re.compile(r"^(?:whether|what|how|why|when|where|which|who)\b")
# a clause that asks yes or no ("Could my card be locked?", "Is my flight cancelled?") states nothing
_YES_NO = re.compile(
    r"^(?:and\s+|so\s+|but\s+|also\s+)?(?:is|are|am|was|were|do|does|did|can|could|may|might|shall|should|will|would"
    r"|has|have|had|isn't|aren't|wasn't|doesn't|don't|didn't|hasn't|haven't|won't|can't|couldn't)\b", re.I)
# what they suppose or fear has not happened: "if the machine keeps my card", "I'm worried you'll cancel"
_SUPPOSED = re.compile(r"\b(?:if|whether|in\s+case|suppose|supposing|worried|worry|afraid|scared|concerned|fear|"
                       r"might|may\s+be|could\s+be|would\s+be|going\s+to\s+be|will\s+be"
                       # "what happens when I have no seat at check-in?": a case they ask about
                       r"|what\s+(?:happens|should\s+(?:i|we)\s+do|do\s+(?:i|we)\s+do)\s+when)\b", re.I)
_CLAUSE_STOP = re.compile(r"[,;:\u2013\u2014]|\s-\s")


# where it happened, in their words: "in Chicago", "out of Seattle", "at ORD" (a place's name or an
# airport's code after the preposition; never a day, a month or a word that opens a sentence)
_PLACE = re.compile(r"\b(?P<prep>in|at|out of)\s+(?P<place>(?:[A-Z][a-z]{2,}|[A-Z]{3})(?:\s+[A-Z][a-z]{2,})?)\b")
_NOT_PLACES = frozenset({
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march",
    "april", "june", "july", "august", "september", "october", "november", "december", "the", "this", "that",
    "customer", "service", "support", "economy", "business", "first", "premium", "terminal", "gate", "english",
    "christmas", "easter", "total", "fact", "all", "and", "but", "our", "your", "my", "any", "fail", "pain", "line",
    "hell", "hotel", "advance", "time", "person", "cash", "atm", "app", "usd", "eur", "gbp", "pin", "iban"})


def where_in(sentence: str) -> str:
    """Where the customer says it happened, as they put it ("in Chicago", "out of Philly"), or ""."""
    letters = [c for c in sentence if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) > 0.6 * len(letters):
        return ""  # shouted: every word looks like a name
    for m in _PLACE.finditer(sentence):
        place = m.group("place")
        if place.split()[0].lower() not in _NOT_PLACES:
            return f"{m.group('prep')} {place}"
    return ""


def _clause_start(sentence: str, at: int) -> int:
    """Where the clause holding ``sentence[at]`` starts: after the last ``_CLAUSE_STOP`` before it."""
    starts = [m.end() for m in _CLAUSE_STOP.finditer(sentence, 0, at)]
    return starts[-1] if starts else 0


def only_wondered(sentence: str, at: int, end: int) -> bool:
    """True when the phrase at sentence[at:end] is only asked about or feared, not said to have
    happened: its clause asks yes or no in a sentence ending "?" ("Could my card be locked?"), or a
    condition or a worry comes before it in its clause ("What do I do if I can't get my card out?")."""
    clause_start = _clause_start(sentence, at)
    stop = _CLAUSE_STOP.search(sentence, end)
    clause = sentence[clause_start:stop.start() if stop else len(sentence)].strip(" \"'\u201c(")
    if sentence.rstrip().endswith("?") and _YES_NO.match(clause):
        return True
    return bool(_SUPPOSED.search(sentence, clause_start, end))


# a problem word they deny right before it: "it wasn't a delay so much as a cancellation", "not delayed"
_DENIED = re.compile(r"(?:\bnot|n['\u2019]t|\bnever)\s+(?:(?:a|an|just|really|even|actually|technically)\s+)?$", re.I)


def denied(sentence: str, at: int) -> bool:
    """True when the customer denies the problem phrase at ``sentence[at]`` ("it wasn't a delay",
    "we were never delayed"): what they say did not happen is never said back as what did."""
    return bool(_DENIED.search(sentence, max(0, at - 40), at))


@dataclass(frozen=True)
class Journey:
    """``[urgent.journey]``: a sentence about the journey (it, or the sentence before it, names it with a
    ``travel`` word, a flight number or an airport code; an airline's code and number alone, "UA 1234",
    only beside a travel word or after "flight", never a shop's "order AB1234") told as going on now is
    urgent, and so is a request for a flight's status. Going on now: an ``ongoing`` word ("still", "right
    now"), a time of day, a wait still running ("for 40 minutes"), a cry for help, a place they are at
    (``places``, or an airport code after one of ``codes``), a present progressive ("are working", "is
    boarding": any verb but the ``telling`` lemmas, "I am writing to"), or a ``doing`` lemma told in the
    present ("are stuck", "have been held", "Sitting on the plane"). A status request: one of ``status``, or a
    numbered flight in a question with one of ``asking`` ("Flight 802: when does it board?"). Never in
    a sentence told in the past only ("we were at the gate", "we sat"), nor in one with an ``unless``
    (a trip that is over or still to come, money after the trip). ``[urgent] unless`` is not read: its
    queues and transits are payments', and at an airport they are the journey."""

    travel: tuple[Pattern, ...] = ()
    ongoing: tuple[Pattern, ...] = ()
    status: tuple[Pattern, ...] = ()
    unless: tuple[Pattern, ...] = ()
    places: tuple[Pattern, ...] = ()
    asking: tuple[Pattern, ...] = ()
    doing: frozenset[str] = frozenset()  # lemmas: "stuck", "held", "sitting" after "are", "been" or first
    telling: frozenset[str] = frozenset()  # lemmas whose progressive tells the message, not the journey
    codes: frozenset[str] = frozenset()  # "at", "in": an airport code after one is where they are
    who: frozenset[str] = frozenset()  # whose present progressive tells the journey: "we", "agents", "flight"


# a time of day ("11pm", "10:30", "at 9 am"), a wait still running ("for 40 minutes", "for 2 hours") or a
# plea ("help!", "HELP", "SOS"): told as it happens
_NOW_TIME = re.compile(r"\b(?:\d{1,2}(?:[:.]\d{2})?\s?(?:am|pm)|\d{1,2}:\d{2}|for (?:over |more than |about )?"
                       r"\d+\+? ?(?:minutes|mins|min|hours|hrs|h)\b|(?:^\W*|[,;:\-\u2013\u2014\u2026]\s*|\b(?:please|pls|plz|someone|somebody|"
                       r"anyone|anybody|send)\s+)help\b\s*(?:me|us)?\s*[!?])", re.I)
_CRY = re.compile(r"(?<!NO )(?<!ANY )(?<!OF )\b(?:HELP|SOS)\b(?! (?:FROM|WITH|AT|DESK|LINE))")
# a flight number: "flight 402", "flt #88", "UA 1234", "ZX901"
# the airline's code in capitals, not a time or a shouted word ("AM 08", "ON 12 MARCH", "IN 2019")
_FLIGHT_CODE = re.compile(r"\b(?!(?:AM|PM|ON|IN|AT|TO|BY|OF|OR|IF|IS|IT|MY|NO|SO|UP|WE|ME|BE|DO|GO|AN|AS|HE|OK)\b)"
                          r"(?:[A-Z]{2}\s?|[A-Z]\d\s)\d{2,4}\b(?![/:.]\d)")
_FLIGHT_WORD = r"(?i:\b(?:flight|flt)\.?\s*(?:no\.?|number|#)?\s*#?\s*)"
_FLIGHT_BEFORE = re.compile(_FLIGHT_WORD + r"$")
# what a shop's code stands after: "order AB1234", "tracking number RM 5566", "model TV 4500", "#ZX901"
_NOT_FLIGHT = re.compile(r"(?i:\b(?:order|orders|package|parcel|tracking|model|ref|reference|invoice|item|serial)"
                         r"\b\W*(?:(?:no|nr|number|num|id|code)\b\W*)?|#\s*)$")
_WORD = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?")
_BE_NOW = frozenset({"am", "is", "are", "i'm", "we're", "they're", "you're", "he's", "she's", "it's", "that's",
                     "there's", "isn't", "aren't", "been"})
_PAST = frozenset({"was", "were", "had", "did", "wasn't", "weren't", "hadn't", "didn't", "got", "went"})
_PRESENT = frozenset({"am", "is", "are", "isn't", "aren't", "have", "has", "haven't", "hasn't", "do", "does",
                      "don't", "doesn't", "can", "can't", "cannot", "won't", "will"})
_SUBJECTS = frozenset({"i", "we", "they", "he", "she", "you", "it"})
_NOW_WORDS = frozenset({"now", "currently"})
_WHERE = frozenset({"on", "at", "in", "inside", "outside", "here", "there", "captive", "hostage", "for", "since",
                    "without", "again", "still", "behind", "by", "near", "next", "aboard", "onboard", "around"})
# words between "are" and its verb in a question or with an adverb: "are your agents working", "is still boarding"
_BETWEEN = frozenset({"still", "now", "currently", "just", "really", "so", "all", "being", "not", "also", "literally",
                      "actually", "only", "again", "you", "your", "the", "our", "my", "these", "those"})


def _told_in_past(words: list[str]) -> bool:
    """The sentence is told in the past only: a past "was", "had", "got" or "we sat", and no verb in
    the present ("we were at the gate", "I was stuck in Denver"; not "we were told it is boarding",
    "got on at 7:50, it's 10:20 now")."""
    past = present = False
    for i, w in enumerate(words):
        if w in _PAST:
            past = True
        elif w in _PRESENT or w in _NOW_WORDS or w.endswith(("'m", "'re", "'ve")):
            present = True
        elif i and words[i - 1] in _SUBJECTS and not w.endswith(("s", "ing")) and lemma_of(w) != w:
            past = True  # "we sat", "they told"
    return past and not present


def _would_be(words: list[str]) -> bool:
    """The sentence tells what would be, not what is: "I would happily wait in the terminal", "if not
    for Otis I would be still sitting at ORD"."""
    return any(w in {"i'd", "we'd"} or w == "would" and (i and words[i - 1] in _SUBJECTS
                                                         or i + 1 < len(words) and words[i + 1] in {"be", "have"})
               for i, w in enumerate(words))


def _live_verb(journey: Journey, words: list[str]) -> bool:
    """A present progressive of a verb not in ``telling`` ("are working", "is boarding", "are your agents
    rebooking"), or a ``doing`` lemma after a present "be", "still", "now" or opening the sentence
    ("are stuck", "have been held", "Held captive on the ground")."""
    between = _BETWEEN | journey.who
    for i, w in enumerate(words):
        lemma = lemma_of(w)
        doing = lemma in journey.doing and lemma != w
        progressive = w.endswith("ing") and lemma != w and lemma not in journey.telling
        if not (doing or progressive):
            continue
        if doing and (words[i - 1] in {"still", "now", "currently", "just"} if i else
                      # opening the sentence, where it is (not "Held flight 1027 for us": what they did)
                      i + 1 < len(words) and words[i + 1] in _WHERE):
            return True
        j = i - 1
        while j >= 0 and i - j <= 4 and words[j] in between:
            j -= 1
        if j < 0 or i - j > 4 or words[j] not in _BE_NOW or j and words[j - 1] in {"had", "hadn't"}:
            continue
        if set(words[max(0, j - 2):j]) & {"when", "whenever", "if", "unless", "once"}:
            continue  # "when I'm flying first class": any time, not this journey
        if doing:
            return True
        # a progressive tells the journey when its subject is one of ``who`` ("we are boarding", "are your
        # agents working", "the flight is leaving"), not a thing ("the seats are falling apart"); what "you
        # are doing" is how the airline works ("why are you charging for bags")
        if {"you", "you're"} & set(words[max(0, j - 1):i]):
            continue
        # the subject may stand before where it is: "the staff at Heathrow are rebooking no one"
        subject = words[max(0, j - 1):i] + (words[j - 3:j - 2] if j >= 3 and words[j - 2] in _WHERE else [])
        if any(w in journey.who or w.split("'")[0] in journey.who for w in subject):
            return True
    return False


def _airport_code(journey: Journey, sentence: str, about_journey: bool, *, here: bool = False) -> bool:
    """Three capitals after one of ``codes`` written in small letters ("at ORD", not "AT THE"), in a
    message about a journey or right after a ``doing`` lemma ("Stuck at DEN since 6"). ``here``: only
    where the words before say they are there now: a ``doing`` lemma, a present "be", "still", "here"
    ("sitting at EWR", "we are in DEN", "here in ORD"; not "the agents in ABQ", "a stop in STL")."""
    for m in re.finditer(r"((?:[\w']+\s+){0,3})([a-z]+)\s+([A-Z]{3})\b(?!['\u2019]?[a-z])", sentence):
        lead = [w.lower().replace("\u2019", "'") for w in m.group(1).split()]
        doing = any(lemma_of(w) in journey.doing and lemma_of(w) != w for w in lead)
        if m.group(2) not in journey.codes or _stop_word(m.group(3).lower()):  # "at THE airport": stressed
            continue
        if doing or (not here and about_journey) or here and about_journey and set(lead) & (
                _BE_NOW | _NOW_WORDS | {"still", "here"}):
            return True
    return False


def _stop_word(lower: str) -> bool:
    from triage.detect.spacyload import import_spacy

    import_spacy()  # (loaded by detection already)
    from spacy.lang.en.stop_words import STOP_WORDS

    return lower in STOP_WORDS


def _flight_number(sentence: str, travel: bool) -> bool:
    """A flight number in ``sentence``: "flight 402", "flt 4439", "Flight US 746", or an airline's code
    and number alone ("UA 1523", "ZX901") where ``travel`` (a travel word in this sentence or the one
    before) says it is a flight, and never after what a shop numbers ("order AB1234", "tracking number
    RM 5566", "model TV 4500", "#ZX901"): a product's or an order's code is no journey."""
    if re.search(_FLIGHT_WORD + r"\d{1,4}\b", sentence):
        return True
    for m in _FLIGHT_CODE.finditer(sentence):
        lead = sentence[max(0, m.start() - 40):m.start()]
        if _FLIGHT_BEFORE.search(lead):
            return True
        if travel and not _NOT_FLIGHT.search(lead):
            return True
    return False


def journey_urgent(policy: ReplyPolicy, text: str) -> bool:
    """Whether a sentence of ``text`` tells a journey going wrong now, or asks a flight's status
    (``[urgent.journey]``), without an ``unless`` of its own or of ``[urgent]``."""
    journey = policy.journey
    if not journey.travel and not journey.status:
        return False
    text = _unquoted(text)
    # a code alone ("AB1234", "HP 2000") is no journey: the message names one with a travel word
    about_journey = any(p.search(text) for p in journey.travel)
    before = False  # the sentence before names the journey
    travel_before = False  # the sentence before has a travel word
    for s in _SENTENCE.finditer(text):
        sentence = s.group(0)
        travel = any(p.search(sentence) for p in journey.travel)
        flight = _flight_number(sentence, travel or travel_before)
        named = travel or flight or _airport_code(journey, sentence, about_journey)
        context, before, travel_before = named or before, named, travel
        if not context:
            continue
        if any(u.search(sentence) for u in journey.unless):
            before = False  # "Our flight is next week. No help!": the next sentence is not about a journey now
            continue
        words = [w.lower().replace("\u2019", "'") for w in _WORD.findall(sentence)]
        if _told_in_past(words) or _would_be(words):
            before = False  # "I flew to Boston on 3 May. ... We are still waiting": nor is the next one now
            continue
        if any(p.search(sentence) for p in journey.status):
            return True
        if (flight and sentence.rstrip().endswith("?")
                and any(p.search(sentence) for p in journey.asking)):
            return True
        # "still", "now" or a time need the journey in their own sentence ("The crew were rude. I am still
        # shocked."); a cry, a place or a verb telling where they are now may lean on the sentence before
        if named and (_NOW_TIME.search(sentence) or any(p.search(sentence) for p in journey.ongoing)):
            return True
        if (_CRY.search(sentence) or any(p.search(sentence) for p in journey.places)
                or _airport_code(journey, sentence, about_journey, here=True) or _live_verb(journey, words)):
            return True
    return False


@dataclass(frozen=True)
class ReplyPolicy:
    """rules/policy.toml and rules/answers.toml, validated."""

    topics: dict[str, str] = field(default_factory=dict)  # detection topic -> situation
    remedies: dict[str, str] = field(default_factory=dict)  # situation -> the remedy sentence, or ""
    named: tuple[Pattern, ...] = ()  # the customer names a remedy: no menu
    asks: dict[str, str] = field(default_factory=dict)  # ask kind -> what the draft says
    urgent: tuple[Pattern, ...] = ()
    deadline: str = ""  # the sentence acknowledging the customer's deadline
    thanks: tuple[Pattern, ...] = ()
    answers: tuple[SavedAnswer, ...] = ()
    ask_situations: dict[str, frozenset[str]] = field(default_factory=dict)  # kind -> where its line fits
    # kind -> (situations, signs, sentence) variants tried in order before ``asks[kind]``
    ask_variants: dict[str, tuple[tuple[frozenset[str], frozenset[str], str], ...]] = field(default_factory=dict)
    thanks_unless: tuple[Pattern, ...] = ()  # a contrast or a problem: not a thank-you
    signs: dict[str, tuple[Pattern, ...]] = field(default_factory=dict)  # [signs] name -> phrases
    urgent_hours: float = 0.0  # an urgent case promises contact within this many hours (0: the first-response time)
    problems: tuple[ProblemRule, ...] = ()  # what went wrong, in our words, for the restatement
    urgent_unless: tuple[Pattern, ...] = ()  # a sentence with one of these is not urgent
    journey: Journey = field(default_factory=Journey)  # [urgent.journey]: a journey going wrong now

    def ask_line(self, kind: str, situation: str, signs: frozenset[str] = frozenset()) -> str:
        """The owner's sentence for an ask of ``kind`` in ``situation`` ("" where none, or it does not fit):
        the first variant whose situations (if it names any) hold it and whose signs are all in ``signs``."""
        for fits, needs, text in self.ask_variants.get(kind, ()):
            if (not fits or situation in fits) and needs <= signs:
                return text
        where = self.ask_situations.get(kind)
        return self.asks.get(kind, "") if not where or situation in where else ""

    def sign(self, name: str, text: str) -> tuple[int, int] | None:
        """The span in ``text`` of the first match of the ``[signs]`` phrases called ``name``, or None."""
        return _Signs(self)(name, text)


class _Signs:
    """``ReplyPolicy.sign`` for one message: each (sign, text) read once, on the lowered text
    where that keeps the offsets (``phrases.spans``, as the linter reads its phrases)."""

    def __init__(self, policy: ReplyPolicy) -> None:
        self.policy = policy
        self.found: dict[tuple[str, str], tuple[int, int] | None] = {}
        self.lowered: dict[str, str | None] = {}

    def __call__(self, name: str, text: str) -> tuple[int, int] | None:
        key = (name, text)
        if key in self.found:
            return self.found[key]
        if text not in self.lowered:
            lower = text.lower()
            self.lowered[text] = lower if len(lower) == len(text) else None
        lowered = self.lowered[text]
        hits = [span for p in self.policy.signs.get(name, ()) if (span := next(spans(p, text, lowered), None))]
        found = self.found[key] = min(hits, key=lambda span: span[0]) if hits else None
        return found


@dataclass(frozen=True)
class Reply:
    """What one draft must cover: the situation, the remedy it may offer, each ask's line, the answers."""

    situation: str
    remedy: str
    asks: tuple[str, ...]
    ask_lines: tuple[tuple[str, str], ...]  # (kind, the owner's sentence), for each kind asked
    urgent: bool
    deadline: str
    deadline_say: str
    answers: tuple[SavedAnswer, ...]
    open_questions: tuple[str, ...]
    upset: bool
    trouble: bool = False  # something went wrong, whether or not detection called it a complaint
    trouble_span: tuple[int, int] = (0, 0)  # where in the text a sign of it is (0, 0: none)
    about_order: bool = False  # the message concerns something ordered from us
    # what went wrong in our words ([[problems]] sentences, placeholders unfilled), in the order they say it
    # (sentence, the default {thing}: what they named, else the entry's word, "" when it needs a named thing)
    problems: tuple[tuple[str, str], ...] = ()
    hardship: bool = False  # a bereavement, an illness, a hospital stay ([signs] hardship): sympathy first
    steps: tuple[str, ...] = ()  # the ``step`` of each problem said, each once, in the order they say them
    # the situation the first problem said names ([[problems]] situation), "" when none does: it
    # outranks detection's topic, and a topic's specialist is no hand-off for it
    problem_situation: str = ""


_QUESTION_START = re.compile(
    r"^(?:what|where|when|how|why|which|who|whose|is|are|was|were|do|does|did|can (?:i|we)|could (?:i|we)"
    r"|may i|should|will (?:it|they|there|i)|would (?:it|there|i)|have|has|any)\b", re.I)
_QUESTION_LEAD = re.compile(r"^(?:(?:and|also|so|but|oh|ok|okay)\b|if (?:yes|so|not)\b|p\.?s\.?)[,:]?\s*", re.I)
# a question that opens like one ("How long…", "Is it…", "Can you…"); "You can't get us there but
# our bags go tonight?" and "But both ways?" are statements with a question mark
_ASKING = re.compile(
    r"^(?:what|where|when|how|why|which|who|whom|whose|is|are|am|was|were|do|does|did|can|could|may|might"
    r"|shall|should|will|would|must|have|has|had|any|isn't|aren't|wasn't|doesn't|don't|didn't|haven't|hasn't"
    r"|won't|can't|couldn't|wouldn't|shouldn't)\b", re.I)
_DEADLINE = re.compile(r"(?:by|before|within|no later than|tonight|today|tomorrow|asap|as soon)\b", re.I)
_HOW_LONG = re.compile(r"by\s+(?:\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|twelve|several|a few)\s*\+?\s*"
                       r"(?:hours?|hrs?|minutes?|mins?|days?|weeks?)\b", re.I)
_REQUEST = re.compile(r"\b(?:can|could|would|will) you\b|\bplease\b", re.I)


def asked_text(ask: Any) -> str:
    """What an ask leaves for the agent to answer, "" for none: an ``information`` ask's question,
    a direct request no ask kind names in our words ("You asked us to stop asking you to size-check
    your bag"; ``asks.wish``: "You'd like a Visa card"), or a ``status`` question about how things
    work ("How long does an international transfer take?", detection's ``detail``)."""
    if ask.kind == "status":
        return clean_line(ask.detail, 240) if ask.detail else ""
    if ask.kind != "information":
        return ""
    if ask.rule in ("asks.request", "asks.wish") and ask.detail:
        wanted = in_our_voice(clean_line(ask.detail, 200))
        if ask.rule == "asks.request":
            return f"You asked us to {wanted[:1].lower() + wanted[1:]}."
        return f"You'd like {wanted}."
    return clean_line(ask.text, 240)


# a question with no clause in it ("Status for flight 769?", "Any news on the refund?"): it asks;
# one with a subject or a verb form ("So you lost my bag?", "Stranded us for two days?") says
_CLAUSE_WORDS = frozenset({"i", "you", "u", "we", "they", "he", "she", "it", "there", "this", "that", "is", "are",
                           "was", "were", "am", "be", "been", "being", "have", "has", "had", "do", "does", "did",
                           "can", "could", "will", "would", "should", "shall", "may", "might", "must", "i'm",
                           "it's", "you're", "they're", "we're", "that's", "there's"})


def _fragment(question: str) -> bool:
    """A question with no clause in it that asks ("Status for flight 769?"); never an echo of
    what they were given or told ("A global company?", "see a flight attendant for what?")."""
    words = [w.lower().replace("’", "'") for w in re.findall(r"[\w'’]+", question)]
    if not words or words[0] in ("a", "an") or words[-1] in _ECHO_ENDS:
        return False
    return not any(w in _CLAUSE_WORDS or w.endswith(("ed", "n't")) for w in words)


_ECHO_ENDS = frozenset({"what", "where", "when", "why", "how", "who", "which"})


def _sentences(message: Message) -> list[str]:
    text = clean_line(message.text)
    return [clean_line(s, 240) for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def _questions(message: Message, detection: Detection) -> list[str]:
    """The questions the customer asked that need an answer from us.

    Detection's ``information`` asks when it finds asks; until then (or for
    detections without them) a conservative reading of the text: a sentence
    ending in one "?" that opens like a question ("How do I...", "Do you...",
    "Is there..."), not a request ("could you...") and not rhetorical ("??").
    """
    asks = getattr(detection, "asks", None)
    if asks:
        return [q for a in asks if (q := asked_text(a))]
    found = []
    for sentence in _sentences(message):
        body = _QUESTION_LEAD.sub("", sentence)
        if (sentence.endswith("?") and not re.search(r"[?!]{2,}$", sentence) and len(body.split()) >= 3
                and _QUESTION_START.match(body) and not _REQUEST.search(body)):
            found.append(body[:1].upper() + body[1:])
    return found


_WANTS = re.compile(r"\b(?:can|could|would|will)\s+(?:you|u|someone|somebody)\b|\bplease\b|\bpls\b|\bneed\b|\bwant\b"
                    r"|\bwould\s+like\b|['\u2019]d\s+like\b|\bmust\b|\bhave\s+to\b|\bexpect\b|\basap\b"
                    r"|\beither\b|\bor\s+else\b|\botherwise\b|\bor\s+(?:i|we)(?:['\u2019]ll|\s+will)\b", re.I)


# where one clause of a sentence ends and another begins: "declined today, can you…", "charged
# twice today and I want…", "it broke this morning so please…"
_CLAUSE = re.compile(r"[,;:\u2013\u2014]\s*|\s-\s|\s(?=(?:and|but|so|because|as|since|then|yet)\s)", re.I)


def _asked_by(text: str, deadline: str) -> bool:
    """True when the sentence that holds ``deadline`` asks for something (a request frame: "please",
    "could you", "I need it"): only then is the time the customer's own deadline."""
    at = text.lower().find(deadline.lower())
    if at < 0:
        return True  # not in the text (the subject, or reworded by detection): keep detection's reading
    starts = [m.end() for m in re.finditer(r"[.!?]+(?=\s|$)|\n\s*\n", text[:at])]
    stop = re.search(r"[.!?]+(?=\s|$)|\n\s*\n", text[at:])
    sentence = text[starts[-1] if starts else 0 : at + (stop.start() if stop else len(text) - at)]
    if not (_WANTS.search(sentence) or _REQUEST.search(sentence)):
        return False
    # the ask must hold the time: in "my card was declined today, can you tell me why?" the time
    # dates what happened, and the ask is another clause; a clause that is only the time ("fix it,
    # today!") belongs to the clause before it
    clauses = _CLAUSE.split(sentence)
    held = next((i for i, c in enumerate(clauses) if deadline.lower() in c.lower()), -1)
    if held < 0:
        return True  # the time spans a clause break: keep the sentence's reading
    clause = clauses[held]
    if held and len(re.findall(r"\w+", clause)) - len(re.findall(r"\w+", deadline)) < 2:
        clause = clauses[held - 1] + " " + clause
    return bool(_WANTS.search(clause) or _REQUEST.search(clause))


# a question that asks nothing of us, only says how bad it is: "why would I bother flying with you
# again?", "do you even read these?", "how hard can it be?", "what is the point?"
_RHETORICAL = re.compile(
    r"^(?:(?:and|so|but|honestly|seriously|really)[,\s]+)*(?:"
    r"why\s+(?:would|should|do|does|did|will)\s+(?:i|we|anyone|anybody|someone|people)\s+(?:\w+\s+)?(?:bother|ever|"
    r"trust|believe|pay|choose|book|fly|use|stay|come\s+back|recommend|want)"
    r"|why\s+(?:even\s+)?bother|(?:do|does|did|can|could|will)\s+(?:you|anyone|anybody|nobody|no\s+one|your\s+\w+)"
    r"\s+(?:even|actually|ever|really|honestly)\s+(?:read|care|listen|know|bother|try|think|check|look|train|work)"
    r"|(?:is|are)\s+(?:anyone|anybody|there\s+anyone|there\s+anybody)\s+(?:even|actually|ever|really)\b"
    r"|how\s+(?:hard|difficult)\s+(?:can|could|is|was)\s+it|what(?:['\u2019]s|\s+is|\s+was)\s+the\s+point"
    r"|who\s+(?:does|would|runs|treats|thinks)\b.*\b(?:like\s+that|this\s+way|that\s+way|customers)"
    r"|(?:are|r)\s+(?:you|u)\s+(?:kidding|joking|serious|for\s+real|insane|crazy)"
    r"|how\s+(?:is|was)\s+(?:this|that)\s+(?:ok|okay|acceptable|fair|legal|allowed|possible)"
    r"|(?:is|was)\s+(?:this|that)\s+(?:a\s+joke|how\s+you\s+treat|really\s+how|some\s+kind\s+of))", re.I)


def rhetorical(question: str) -> bool:
    """True for a question that only says how bad it is ("Why would I bother flying with you
    again?", "Do you even read these?"): never read back as what they'd like to know."""
    return bool(_RHETORICAL.search(_QUESTION_LEAD.sub("", clean_line(question)).lstrip("\"'\u201c(")))


def asks_like_a_question(text: str) -> bool:
    """True when ``text`` (or its last clause: "Please help, the machine kept my card, what do I
    do?") opens like a question ("How long do transfers take?"), after a lead-in ("And", "So",
    "If not,"); False for a statement that ends in "?" ("So you lost my bag?")."""
    text = clean_line(text)
    # the last clause, after a comma or a "but" ("I know it's late, but can I still dispute it?")
    last = re.split(r"[,;:\u2013\u2014]\s*|\s-\s|\s(?=(?:but|so)\s)", text)[-1]
    return any(_ASKING.match(_QUESTION_LEAD.sub("", part).lstrip("\"'\u201c(")) for part in (text, last))


def ask_kinds(detection: Detection) -> tuple[str, ...]:
    """The kinds of ask detection found, each once, in text order ("()" before asks are detected)."""
    return tuple(dict.fromkeys(a.kind for a in getattr(detection, "asks", ()) or ()))


# asks that mean something went wrong: nobody asks for a refund or a manager about nothing
_TROUBLE_ASKS = frozenset({"refund", "replacement", "repair", "compensation", "escalate", "apology", "fix"})


def _trouble(policy: ReplyPolicy, message: Message, detection: Detection,
             kinds: tuple[str, ...], sign: _Signs, urgent: bool) -> tuple[bool, tuple[int, int]]:
    """(something went wrong, where a sign of it is): detection's complaint or anger, a complaint
    cue it found, shouting, an ask that only trouble prompts, an urgent phrase in the text
    (``urgent``), or one of the owner's ``[signs] trouble`` phrases ("has not arrived", "won't let
    me", "I want my bag")."""
    text = message.text or ""
    found = sign("trouble", text) or sign("not_delivered", text)
    if found and not _stated(text, found):
        found = None  # "What are ways to test why my card might not be working?" says nothing went wrong
    span = found or (0, 0)

    def supposed(e: Evidence) -> bool:  # a cue inside what they only ask about or suppose
        return e.where == "text" and e.end <= len(text) and not _stated(text, (e.start, e.end))

    # a complaint read only from a question about a case they suppose ("What are ways to test why my
    # card might not be working?", "what happens when I have no seat?") is a question, not trouble
    cues_of_complaint = [e for e in detection.evidence if e.kind == "complaint" and e.weight > 0]
    asked_only = bool(cues_of_complaint) and all(supposed(e) for e in cues_of_complaint)
    if (detection.complaint and not asked_only) or detection.angry or found:
        return True, span
    # a strong cue detection found but outweighed ("it has not gone through"), never one beside praise
    # ("the packaging was lovely, with no plastic")
    praised = any(e.kind == "not_complaint" and e.weight <= -0.3 for e in detection.evidence)
    cues = [e for e in detection.evidence if e.where == "text" and not praised and not supposed(e)
            and (e.kind == "shout" and e.weight >= 0.3
                 or e.kind == "complaint" and e.weight >= 0.5 and not e.rule.endswith(".valence"))]
    if cues:
        return True, (cues[0].start, cues[0].end)
    if (not kinds and "?" not in text and any(p.search(text) for p in policy.thanks)
            and any(p.search(text) for p in policy.thanks_unless)):
        return True, span  # "but in the meantime I'll sleep at the station. Thanks guys!" asks nothing
    # an urgent phrase says how soon, not that anything went wrong: "I need it to go through ASAP, is that
    # possible?" is a question
    return bool(_TROUBLE_ASKS & set(kinds)), span


def _stated(text: str, span: tuple[int, int]) -> bool:
    """True when the phrase at ``text[span]`` is said to have happened, not only asked about or
    supposed (``only_wondered``)."""
    at, sentence = _sentence_at(text)(span[0])
    return not only_wondered(sentence, span[0] - at, span[1] - at)


# a question that asks us why, too short for detection to read as one: "What gives?", "How come?"
_WHY_ASKED = re.compile(r"^(?:so|and|but|ok)?[,\s]*(?:what\s+gives|why(?:\s+not)?|how\s+come|what\s+happened|"
                        r"what\s+now)\s*\?+$", re.I)
# a question put as a statement: "I don't understand why an extra fee was needed"
_WHY_SAID = re.compile(r"(?:\b(?:i|we)\s+|^)(?:do\s+not|don['\u2019]t|dont|can['\u2019]t|cannot|can\s+not|still\s+don['\u2019]t)\s+"
                       r"(?:understand|see|work\s+out|figure\s+out|get)\s+(?:why|how)\b", re.I)
# a question asking what they should do: an ask's line says what we will do, not whether they should
_ADVICE = re.compile(r"^(?:(?:and|but|so|or)\s+)?(?:\w+\s+){0,2}?(?:should|shall|must|do)\s+(?:i|we)\b", re.I)


_QUOTED = re.compile(r"“[^”]*”|\"[^\"\n]*\"")


def _unquoted(text: str) -> str:
    """``text`` without what it quotes: a "thank you for your request" a screen showed is not the
    customer thanking us."""
    return _QUOTED.sub(" ", text)


def order_value(value: str) -> str:
    """An order number as found, without "order", "no." or "#"."""
    return re.sub(r"^(order\s*)?(no\.?|nr\.?|number|#)?\s*", "", clean_line(value, 40), flags=re.I)


# what a customer may call a number of theirs that is not an order: said with their noun ("flight 4435")
_REF_NOUNS = {"flight": "flight", "booking": "booking", "reservation": "reservation", "ticket": "ticket",
              "case": "case", "claim": "claim", "confirmation": "confirmation", "pnr": "booking", "train": "train",
              "reference": "reference", "ref": "reference", "voucher": "voucher", "complaint": "complaint"}
# a number they called a card or an account: not an order, and not repeated back in an email
_PRIVATE_NOUNS = frozenset({"card", "account", "acct", "iban", "phone", "mobile", "sort", "pin", "cvv"})
_LABEL_WORDS = frozenset({"no", "nr", "number", "num", "id", "code"})


_TRAVEL = re.compile(r"\b(?:flights?|planes?|airlines?|airports?|gates?|boarding|pilots?|crew|baggage|luggage|layover"
                     r"|connections?|connecting|runway|tarmac|take\s*off|landed|landing|departures?|cabin|seats?)\b", re.I)
_ORDERED = re.compile(r"\b(?:orders?|ordered|parcels?|packages?|delivery|delivered|purchased?|bought|items?|shop|store"
                      r"|invoice|receipt)\b", re.I)


def order_noun(text: str, value: str) -> str | None:
    """What the customer called ``value`` where they first wrote it: "order" (also when they named
    nothing, "#48213"), their own noun ("flight", "booking reference"), or None for a card or
    account number."""
    m = re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text, re.I)
    if m is None:
        return "order"
    words = [w for w in re.findall(r"[a-z]+", text[max(0, m.start() - 40):m.start()].lower())]
    while words and words[-1] in _LABEL_WORDS:
        words.pop()
    last = words[-1] if words else ""
    if last in _PRIVATE_NOUNS:
        return None
    if last not in _REF_NOUNS:
        # no noun of theirs: a number in a message about a journey, with nothing ordered, is their
        # flight ("poor execution #4435, 75 minute delay"), never "order 4435"
        return "flight" if _TRAVEL.search(text) and not _ORDERED.search(text) else "order"
    noun = _REF_NOUNS[last]
    before = words[-2] if len(words) > 1 else ""
    if noun == "reference" and before in _REF_NOUNS and _REF_NOUNS[before] != "reference":
        return f"{_REF_NOUNS[before]} reference"
    return noun


def decide(policy: ReplyPolicy, message: Message, detection: Detection) -> Reply:
    """The situation, the remedy to offer, the lines for each ask, the saved answers and open questions."""
    text = f"{message.subject}\n{message.text}"
    all_asks = getattr(detection, "asks", ()) or ()
    kinds = ask_kinds(detection)
    if "status" in kinds and all(a.detail for a in all_asks if a.kind == "status"):
        # only questions about how things work ("how long does a transfer take?"): each is marked or
        # answered as a question, never "I'll find out where things stand"
        kinds = tuple(k for k in kinds if k != "status")
    questions = _questions(message, detection)
    names = set(detection.archetype_names)
    upset = detection.level in ("angry", "furious") or bool(names & {"aggressive", "barnacle"})
    sign = _Signs(policy)
    urgent_text, urgent_body = urgency(policy, text, message.text or "")
    trouble, span = _trouble(policy, message, detection, kinds, sign, urgent_body)
    problems, urgent_problem, steps, problem_situation = problems_in(policy, message)
    # what went wrong, named by the owner's [[problems]] ("my connection was cancelled"), is trouble
    # however calmly it is put: never the plain question reply
    trouble = trouble or bool(problems)
    # a number they called a flight, a booking or a card is not something ordered from us
    ordered = [o for o in map(order_value, detection.facts.orders) if o and order_noun(text, o) == "order"]
    about_order = bool(ordered or detection.facts.products or sign("order", text))
    security = sign("security", text)
    if security:
        # someone else has their card, account or money: urgent whatever the tone
        situation, trouble = "security", True
        inner = sign("security", message.text or "")
        if inner and span == (0, 0):
            span = inner
    elif trouble:
        situation = problem_situation or policy.topics.get(detection.topic, "general")
        if sign("not_delivered", text) and situation in ("billing", "general", "product_fault"):
            situation = "delivery"  # "the goods never arrived, I want a refund": a delivery, not a charge
    elif (not questions and not kinds and "cancelling" not in names and "?" not in message.text
          and not _REQUEST.search(message.text) and any(p.search(_unquoted(text)) for p in policy.thanks)
          and not any(p.search(text) for p in policy.thanks_unless)):
        situation = "thanks"
    elif not questions and not kinds and "?" not in message.text:
        # neither a question nor thanks nor an ask: a remark on how we did ("at least they treat
        # their customers properly"), answered as a complaint, never "thanks for getting in touch"
        situation, trouble = policy.topics.get(detection.topic, "general"), True
    else:
        situation = policy.topics.get(detection.topic, "information") if detection.topic else "information"
        if situation not in ("account", "billing", "delivery"):
            situation = "information"
    remedy = policy.remedies.get(situation, "")
    # never a remedy menu when they asked for a remedy of their own, or turned one down, nor a product's
    # remedies when nothing they bought from us is named
    if REMEDY_KINDS & set(kinds) or any(p.search(message.text) for p in policy.named) or not about_order:
        remedy = ""
    signs = frozenset(name for name in SIGNS if sign(name, text))
    lines = tuple((k, line) for k in kinds if (line := policy.ask_line(k, situation, signs)))
    answers: list[SavedAnswer] = []
    open_questions: list[str] = []
    answered = [(a.start, a.end) for a in all_asks
                if a.kind != "information" and a.where == "text" and any(k == a.kind for k, _ in lines)]
    spans = {asked_text(a): (a.start, a.end) for a in all_asks if a.where == "text" and asked_text(a)}
    # a question that only says how bad it is, however it opens ("5 hours late and no explanation?")
    said_bad = [(e.start, e.end) for e in detection.evidence if e.where == "text" and e.kind == "complaint" and e.weight > 0]
    # "What gives?" and "I don't understand why the fee was needed" ask us why: marked like any question
    for sentence in _sentences(message):
        # "I want a refund, but should I just cancel the payment?": the clause that asks what to do
        last = _QUESTION_LEAD.sub("", re.split(r"[,;:]\s*", sentence)[-1])
        asked = last if sentence.endswith("?") and _ADVICE.match(last) else ""
        asked = asked or (sentence if _WHY_ASKED.match(sentence) or _WHY_SAID.search(sentence) else "")
        if asked and not any(asked in q for q in questions):
            questions.append(asked[:1].upper() + asked[1:])
    # a question detection read twice, once cut short ("How long do I need to"), is marked once
    questions = [q for q in questions if not any(q != o and o.startswith(q.rstrip("?.\u2026 ")) for o in questions)]
    for question in questions:
        # in a complaint, a statement with a question mark ("So you lost my bag?") asks us nothing
        # (one with no clause in it asks, unless it says what went wrong: "Status for flight 769?")
        q0, q1 = spans.get(question, (0, 0))
        if (trouble and question.rstrip().endswith("?") and not asks_like_a_question(question)
                and (not _fragment(question) or any(x < q1 and q0 < y for x, y in said_bad))) or rhetorical(question):
            continue
        # "How can I get my money back?" is answered by the refund line
        if any(x < q1 and q0 < y for x, y in answered) and not _ADVICE.match(_QUESTION_LEAD.sub("", question)):
            continue
        hit = next((a for a in policy.answers if a.matches(question)), None)
        if hit is None:
            open_questions.append(question)
        elif hit not in answers:
            answers.append(hit)
    # a request phrased as a question ("could you update my address?") may have a saved answer too
    for sentence in _sentences(message):
        if sentence.endswith("?") and sentence not in questions:
            hit = next((a for a in policy.answers if a.matches(sentence)), None)
            if hit is not None and hit not in answers:
                answers.append(hit)
    urgent = situation == "security" or urgent_problem or urgent_text or journey_urgent(policy, text)
    deadline = clean_line(getattr(detection.facts, "deadline", "") or "", 60)
    if not _DEADLINE.match(deadline) or _HOW_LONG.match(deadline):
        deadline = ""  # "until Wednesday", "this morning", "(delayed) by 3 hours": a time, not a deadline of theirs
    elif not _asked_by(message.text or "", deadline):
        deadline = ""  # "the balance isn't showing today", "our bags still go tonight?": when, not by when
    # an owner's answer that covers an ask already answered by its policy line is not said twice
    said = {k for k, _ in lines}
    answers = [a for a in answers if a.covers not in said]
    return Reply(situation, remedy, kinds, lines, urgent, deadline, policy.deadline, tuple(answers),
                 tuple(open_questions), upset, trouble, span, about_order, problems, "hardship" in signs, steps,
                 problem_situation if situation == problem_situation else "")


_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
# a sentence's end inside a match: its words belong to two sentences, unless the second goes on
# about the first's ("flight #2231? It was cancelled")
_ACROSS = re.compile(r"(?:[.!?]+\s+|\n\s*)(?!(?:it|it['\u2019]s|they|they['\u2019]re|this|that|which|and|then)\b)", re.I)


def _sentence_at(text: str) -> Callable[[int], tuple[int, str]]:
    """Where the sentence of ``text`` (``_SENTENCE``) that holds a position starts, and the sentence
    (else 0 and the whole text); the sentences are found once, so a long message costs one pass,
    not one per phrase found."""
    spans = [(s.start(), s.end()) for s in _SENTENCE.finditer(text)]
    starts = [a for a, _ in spans]

    def at(pos: int) -> tuple[int, str]:
        i = bisect.bisect_right(starts, pos) - 1
        return (spans[i][0], text[spans[i][0]:spans[i][1]]) if i >= 0 and pos < spans[i][1] else (0, text)
    return at


def is_urgent(policy: ReplyPolicy, text: str) -> bool:
    """Whether ``text`` holds an ``[urgent]`` phrase in a sentence without one of its ``unless`` phrases."""
    sentence_at = None
    for pattern in policy.urgent:
        for m in pattern.finditer(text):
            sentence_at = sentence_at or _sentence_at(text)
            _, sentence = sentence_at(m.start())
            if not any(u.search(sentence) for u in policy.urgent_unless):
                return True
    return False


def urgency(policy: ReplyPolicy, text: str, body: str) -> tuple[bool, bool]:
    """``(is_urgent(policy, text), is_urgent(policy, body))`` for a ``text`` that is a subject, a
    line break and ``body``, each phrase read over ``text`` once: its matches from the body on are
    the body's own (the line break before the body is a word boundary and ends a sentence) unless
    one of its matches runs from the subject into the body (then it reads the body again)."""
    offset = len(text) - len(body)
    if not (text.endswith(body) and text[offset - 1 : offset] == "\n"):
        return is_urgent(policy, text), is_urgent(policy, body)
    in_text = in_body = False
    text_at = body_at = None
    for pattern in policy.urgent:
        found = [(m.start(), m.end()) for m in pattern.finditer(text)]
        if any(start < offset < end for start, end in found):
            own = [m.start() for m in pattern.finditer(body)]
        else:
            own = [start - offset for start, _ in found if start >= offset]
        for start, _ in found if not in_text else ():
            text_at = text_at or _sentence_at(text)
            if not any(u.search(text_at(start)[1]) for u in policy.urgent_unless):
                in_text = True
                break
        for start in own if not in_body else ():
            body_at = body_at or _sentence_at(body)
            if not any(u.search(body_at(start)[1]) for u in policy.urgent_unless):
                in_body = True
                break
        if in_text and in_body:
            break
    return in_text, in_body


# someone else it happened to, named as the subject before the problem: "my friends are stranded",
# "my colleague's card was declined" (I, we and my family are the customer); (what we call them, plural,
# their possessive)
_OTHERS = {
    "friend": ("your friend", False, "their"), "friends": ("your friends", True, "their"),
    "colleague": ("your colleague", False, "their"), "colleagues": ("your colleagues", True, "their"),
    "coworker": ("your colleague", False, "their"), "coworkers": ("your colleagues", True, "their"),
    "partner": ("your partner", False, "their"), "wife": ("your wife", False, "her"),
    "husband": ("your husband", False, "his"), "mother": ("your mother", False, "her"), "mum": ("your mum", False, "her"),
    "mom": ("your mom", False, "her"), "father": ("your father", False, "his"), "dad": ("your dad", False, "his"),
    "parents": ("your parents", True, "their"), "son": ("your son", False, "his"),
    "daughter": ("your daughter", False, "her"), "brother": ("your brother", False, "his"),
    "sister": ("your sister", False, "her"), "boss": ("your boss", False, "their"), "client": ("your client", False, "their"),
    "clients": ("your clients", True, "their"), "guests": ("your guests", True, "their"),
    "grandmother": ("your grandmother", False, "her"), "grandfather": ("your grandfather", False, "his"),
    "grandparents": ("your grandparents", True, "their"), "girlfriend": ("your girlfriend", False, "her"),
    "boyfriend": ("your boyfriend", False, "his"), "uncle": ("your uncle", False, "his"), "aunt": ("your aunt", False, "her"),
}
_OTHER = re.compile(r"\b(?:my|our|a)\s+(?:\w+\s+)?(" + "|".join(_OTHERS) + r")(?:['\u2019]s)?\b", re.I)
_SELF = re.compile(r"\b(?:i|i['\u2019]m|i['\u2019]ve|me|my|we|we['\u2019]re|us|our|myself)\b", re.I)
# "your" before none of the names we call them by ("your wife", "your friends"): said of them, "her", "their"
_YOUR_NOT_THEIR_NAME = re.compile(
    r"\byour\b(?!\s+(?:" + "|".join(sorted({name.split()[-1] for name, _, _ in _OTHERS.values()})) + r"))")


def third_party(sentence: str, at: int) -> tuple[str, bool, str] | None:
    """(what we call them, plural, their possessive) when the problem at ``sentence[at:]`` happened
    to someone the customer names ("my friends are stranded"), not to them; None otherwise. The
    last person named before the problem in its clause decides; "I", "we" or "my" after them takes it
    back ("I booked a friend but my flight was cancelled")."""
    lo = _clause_start(sentence, at)
    found = list(_OTHER.finditer(sentence, lo, max(at, lo) + 40))
    found = [f for f in found if f.start() <= at + 1]  # named after the problem: not whom it happened to
    if not found:
        return None
    other = found[-1]
    if _SELF.search(sentence, other.end(), max(at, other.end())):
        return None
    return _OTHERS[other.group(1).lower()]


_THEIRS = re.compile(r"\b(her|his|their)\b", re.I)


def whose_thing(sentence: str, start: int, end: int) -> tuple[str, bool, str] | None:
    """The person the customer named whose thing the problem at ``sentence[start:end]`` is about, when
    it happened to the customer but the thing is someone else's ("my mother is in hospital and I
    can't get into her account"): the last person named before it whose "her", "his" or "their" it
    is; None when the problem's words say no "her", "his" or "their"."""
    pronoun = _THEIRS.search(sentence, start, min(len(sentence), end + 12))
    if pronoun is None:
        return None
    said = pronoun.group(1).lower()
    named = [_OTHERS[o.group(1).lower()] for o in _OTHER.finditer(sentence, 0, start)]
    return next((who for who in reversed(named) if who[2] == said or said == "their"), None)


def about_them(said: str, who: tuple[str, bool, str]) -> str:
    """Our words about the customer (``[[problems]] say``) turned onto someone else: "you're
    stranded" -> "your friends are stranded", "your flight was cancelled" -> "their flight was cancelled"."""
    name, plural, their = who
    be, were, have = ("are", "were", "have") if plural else ("is", "was", "has")
    first_your, first_you = re.search(r"\byour\b", said), re.search(r"\byou\b", said)
    if first_your and first_you and first_your.start() < first_you.start():
        # "your luggage hasn't reached you" -> "your wife's luggage hasn't reached her": the owner first
        them = {"her": "her", "his": "him"}.get(their, "them")
        out = said[:first_your.start()] + (name + "'" if plural else name + "'s") + said[first_your.end():]
        return re.sub(r"\byou\b", them, out)
    out = re.sub(r"\byou['\u2019]re\b", f"{name} {be}", said, count=1)
    if out == said:
        out = re.sub(r"\byou were\b", f"{name} {were}", said, count=1)
    if out == said:
        out = re.sub(r"\byou(?:['\u2019]ve| have)\b", f"{name} {have}", said, count=1)
    if out == said:
        out = re.sub(r"\byou\b", name, said, count=1)
    if out == said:
        return re.sub(r"\byour\b", name + "'s" if not plural else name + "'", said, count=1)
    return _YOUR_NOT_THEIR_NAME.sub(their, out)


# "Re:", "Fwd:" and their kin in other languages before a subject
FORWARDED = re.compile(r"^\s*(?:(?:fwd?|fw|re|aw|wg|tr)\s*:\s*)+", re.I)
_GREETING_WORDS = frozenset({"hi", "hello", "hey", "dear", "hiya"})
_LINKS = re.compile(r"https?://\S+|(?<!\w)[@#]\w+")


def without_links(text: str) -> str:
    """``text`` with its links, @handles and #hashtags blanked out: not words of theirs to read
    back or to compare (a subject never carries them)."""
    return _LINKS.sub(" ", text or "")


def subject_opens_text(subject: str, text: str) -> bool:
    """True when ``subject`` is only the first words of ``text`` ("My wallet got stolen a…" over "My
    wallet got stolen a couple of hours ago…"): it says nothing of its own, so it is neither quoted
    back nor read as a sentence apart from the text's. Reply and forward prefixes, a greeting on
    either side ("Hello. How do I…"), links and handles (left out of subjects) are not counted, and
    the last word of a subject cut with "…" may be cut."""
    def words(value: str) -> list[str]:
        found = re.findall(r"[^\W_]+", value.lower())
        while found and found[0] in _GREETING_WORDS:
            found = found[1:]
        return found

    said = words(FORWARDED.sub("", subject or ""))
    if said and (subject or "").rstrip().endswith(("\u2026", "...")):
        said = said[:-1]  # the last word may be cut
    plain = without_links((text or "")[:2000])
    return len(said) >= 2 and words(plain)[: len(said)] == said


def problems_in(policy: ReplyPolicy,
                message: Message) -> tuple[tuple[tuple[str, str], ...], bool, tuple[str, ...], str]:
    """What went wrong, in our words, and whether it is urgent.

    The words: the ``[[problems]]`` sentences whose phrases the subject or the text holds (not in a
    sentence with one of the entry's ``unless`` phrases), each once, in the order the customer says
    them, at most PROBLEMS_SAID; a span already read as one problem is not read again, and of the
    entries sharing a ``group`` (one name or a list) only the first in the owner's order that is
    found is said; with them the ``step`` of each problem said, each once. Urgent: one of the problems chosen (not one
    another entry said instead) is ``urgent`` in a sentence without an ``[urgent] unless`` phrase ("my flight was
    cancelled", not "my flight last month was cancelled"). A phrase the customer denies ("it wasn't a delay") or
    grants ("I understand delays happen, but…", ``restate.conceded``) is no problem, nor one whose words run
    into the next sentence, unless that sentence goes on about it ("flight #2231? It was cancelled"). Last, the ``situation`` of the first problem said that names one ("" when none does)."""
    found: list[tuple[int, int, int, ProblemRule, str]] = []
    # a subject that is only the first words of the text is read in the text, where its sentence is whole
    subject = "" if subject_opens_text(message.subject or "", message.text or "") else message.subject or ""
    for offset, text in ((0, subject), (len(message.subject or "") + 1, message.text or "")):
        sentence_at = None
        for n, rule in enumerate(policy.problems):
            for pattern in rule.phrases:
                for m in pattern.finditer(text):
                    sentence_at = sentence_at or _sentence_at(text)
                    at, sentence = sentence_at(m.start())
                    if any(u.search(sentence) for u in rule.unless) or denied(sentence, m.start() - at):
                        continue
                    # the key word and what went wrong must be said together: in one sentence (or the
                    # next, about it), and not as something they grant ("I understand delays happen, but…")
                    if _ACROSS.search(text, m.start(), m.end()) or conceded(sentence, m.start() - at, m.end() - at):
                        continue
                    if only_wondered(sentence, m.start() - at, m.end() - at):
                        if rule.asked:  # asked about, not happened: said as what they'd like to know
                            found.append((offset + m.start(), offset + m.end(), n,
                                          dataclasses.replace(rule, say=WONDERED + rule.asked, groups=(), urgent=False),
                                          rule.thing))
                        continue
                    named = next((label if label.split()[0] in ("the", "your", "what", "a", "an") else f"your {label}"
                                  for p, label in rule.names if p.search(sentence)), "")
                    # the thing named in the problem's own sentence is said as the owner calls it, never
                    # replaced by a product found elsewhere ("your top-up", not "your credit card"); a
                    # label as general as "what you ordered" only stands in when no product is named
                    specific = named and named.split()[0] not in ("what", "the")
                    said = rule.say.replace("{thing}", named) if specific else rule.say
                    if "{where}" in said:
                        place = where_in(sentence)
                        said = said.replace("{where}", place) if place else said.replace(" {where}", "").replace(
                            "{where}", "")
                    who = third_party(sentence, m.start() - at)
                    if who:  # what it happened to is theirs too: "your friends' flight", "your wife's card"
                        said = about_them(said, who).replace("{flight}", about_them("your flight", who))
                        if named or rule.thing:
                            said = said.replace("{thing}", about_them(named or rule.thing, who))
                    elif owner := whose_thing(sentence, m.start() - at, m.end() - at):
                        # it happened to them, to something of someone else's: "your mother's account"
                        name, plural, _ = owner
                        said = re.sub(r"\byour\b(?=\s+(?!" + re.escape(name.split()[-1]) + r"\b))",
                                      name + ("'" if plural else "'s"), said, count=1)
                    # urgent only where its sentence says it is going on now ("last month" says it is over)
                    urgent = rule.urgent and not any(u.search(sentence) for u in policy.urgent_unless)
                    found.append((offset + m.start(), offset + m.end(), n, dataclasses.replace(rule, say=said, urgent=urgent)
                                  if said != rule.say or urgent != rule.urgent else rule, named or rule.thing))
    # a subject's "Delayed flight" over a text that tells it as over ("my flight last month was delayed")
    # is not urgent: the text's sentence says when
    body_at = len(message.subject or "") + 1 if subject else 0
    over = {n for start, _, n, rule, _ in found if start >= body_at and not rule.urgent and policy.problems[n].urgent}
    found = [(a, b, n, dataclasses.replace(rule, urgent=False) if a < body_at and n in over else rule, thing)
             for a, b, n, rule, thing in found]
    taken: list[tuple[int, int]] = []
    chosen: list[tuple[int, ProblemRule, str]] = []
    for start, end, _, rule, thing in sorted(found, key=lambda f: (f[2], f[0])):  # the owner's order says which wins
        if any(start < b and a < end for a, b in taken) or any(
                r.say == rule.say or set(r.groups) & set(rule.groups) for _, r, _ in chosen):
            continue
        taken.append((start, end))
        chosen.append((start, rule, thing))
    chosen.sort(key=lambda c: c[0])
    kept = chosen[:PROBLEMS_SAID]
    steps = tuple(dict.fromkeys(r.step for _, r, _ in kept if r.step))
    situation = next((r.situation for _, r, _ in kept if r.situation and not r.say.startswith(WONDERED)), "")
    # urgent from the problems chosen only: the urgency of a problem another entry said for it is not
    # theirs (a subject's "delay" over "my blender arrived two days late" is a late parcel, not a journey held up)
    urgent = any(r.urgent for _, r, _ in chosen)
    return tuple((r.say, thing) for _, r, thing in kept), urgent, steps, situation


def fill(text: str, values: dict[str, str]) -> str:
    """The owner's sentence with {when}, {order}, {deadline} and {specialist} filled in."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def open_marks(body: str) -> list[tuple[int, int, str]]:
    """(start, end, question) of every ``[[answer: ...]]`` the agent has still to write
    (the ``answer`` items of the draft's checklist, triage/drafting/checklist.py)."""
    return [(i.start, i.end, i.text) for i in checklist.items(body, "answer")]


def open_questions(body: str) -> list[Finding]:
    """A finding per ``[[answer: ...]]`` left in ``body``: a question only the agent can answer."""
    return [Finding(start, end, body[start:end],
                    f"The customer asked \u201c{question}\u201d and there is no saved answer for it.",
                    "Write the answer here (or insert a saved answer), replacing the whole marker.",
                    "open_question")
            for start, end, question in open_marks(body)]


def answers_in(body: str, answers: tuple[SavedAnswer, ...]) -> list[SavedAnswer]:
    """The saved answers whose paragraph is in ``body`` (put there by the drafter or an agent)."""
    flat = " ".join(body.split())
    return [a for a in answers if a.text and " ".join(a.text.split()) in flat]


def insert_answer(body: str, text: str) -> str:
    """``body`` with ``text`` in place of its first ``[[answer: ...]]`` marker, or, with none left,
    as a paragraph before the closing line (the last paragraph before the sign-off)."""
    marks = open_marks(body)
    if marks:
        start, end, _ = marks[0]
        return body[:start] + text + body[end:]
    paragraphs = body.rstrip("\n").split("\n\n")
    at = max(1, len(paragraphs) - 2) if len(paragraphs) >= 3 else len(paragraphs)
    return "\n\n".join([*paragraphs[:at], text, *paragraphs[at:]]) + "\n"


# --------------------------------------------------------------------------- loading

_POLICY_TOP = {"situations", "remedies", "asks", "urgent", "deadline", "thanks", "signs", "problems"}


def _owner_text(f: TomlFile, key: str, value: Any, *, empty: bool = False,
                allowed: tuple[str, ...] = PLACEHOLDERS) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        f.problem(key, "expected " + ("a string (\"\" for none)" if empty else "a non-empty string"))
        return ""
    text = clean_line(value, 2000)
    for name in re.findall(r"\{[^{}]*\}", text):
        if name not in allowed:
            f.problem(key, f"unknown placeholder {name} (allowed: {', '.join(allowed) or 'none'})")
    return text


def _load_problems(f: TomlFile) -> tuple[ProblemRule, ...]:
    """``[[problems]]``: phrases (the syntax of tone.toml), ``say`` (our words), optional ``thing``,
    ``unless``, ``group``, ``names``, ``urgent``, ``asked``, ``step`` and ``situation``."""
    out: list[ProblemRule] = []
    for n, entry in enumerate(f.tables(f.data, "problems")):
        key = f"problems[{n}]"
        f.unknown_keys(entry, {"phrases", "say", "thing", "unless", "group", "names", "urgent", "asked", "step",
                               "situation"}, key)
        phrases = compile_patterns(f, f"{key}.phrases", entry.get("phrases"), regex=False)
        if not phrases:
            f.problem(f"{key}.phrases", "expected a non-empty list of phrases")
        say = _owner_text(f, f"{key}.say", entry.get("say"), allowed=PROBLEM_PLACEHOLDERS)
        thing = _owner_text(f, f"{key}.thing", entry.get("thing", "it"), allowed=(), empty=True)
        names: list[tuple[Pattern, str]] = []
        table = f.table(entry, "names", key, expected=f"a table {key}.names of phrase = \"what we call it\"")
        for phrase, label in table.items():
            pattern = compile_patterns(f, f"{key}.names", [phrase], regex=False)
            said = _owner_text(f, f"{key}.names.{phrase}", label, allowed=())
            if pattern and said:
                names.append((pattern[0], said))
        unless = compile_patterns(f, f"{key}.unless", entry.get("unless"), regex=False)
        group = entry.get("group", [])
        groups = (group,) if isinstance(group, str) else tuple(f.str_list(entry, "group", key))
        urgent = entry.get("urgent", False)
        if not isinstance(urgent, bool):
            f.problem(f"{key}.urgent", f"expected true or false, got {urgent!r}")
            urgent = False
        asked = _owner_text(f, f"{key}.asked", entry.get("asked", ""), allowed=(), empty=True)
        if asked and not WONDER_START.match(asked):
            f.problem(f"{key}.asked", "expected words that follow \"You'd like to know\": "
                      "starting with whether, what, how, why, when, where, which or who")
        step = _owner_text(f, f"{key}.step", entry.get("step", ""), allowed=(), empty=True)
        situation = f.choice(entry, "situation", key, SITUATIONS, "") if "situation" in entry else ""
        out.append(ProblemRule(tuple(phrases), say, thing, tuple(unless), groups, tuple(names), urgent, asked, step,
                               situation or ""))
    return tuple(out)


def load_policy(rules_dir: Path) -> tuple[ReplyPolicy | None, list[Problem]]:
    """Read policy.toml (the shipped one when the folder has none) and answers.toml (optional)."""
    path = rules_dir / POLICY_FILE
    if not is_file(path):
        from triage.config import shipped_dir

        path = shipped_dir("rules") / POLICY_FILE
    f = TomlFile(path)
    if f.problems:
        return None, f.problems
    d = f.data
    f.unknown_keys(d, _POLICY_TOP, "")
    topics: dict[str, str] = {}
    for situation in f.table(d, "situations"):
        if situation not in SITUATIONS:
            f.unknown(f"situations.{situation}", situation, SITUATIONS, "situation")
            continue
        for topic in f.str_list(d["situations"], situation, "situations", empty=True):
            topics[topic] = situation
    remedies = f.table(d, "remedies", allowed={*SITUATIONS, "named"})
    remedy = {s: _owner_text(f, f"remedies.{s}", v, empty=True)
              for s, v in remedies.items() if s in SITUATIONS}
    named = compile_patterns(f, "remedies.named", remedies.get("named"), regex=False)
    asks_table = f.table(d, "asks", allowed=ASK_KINDS)
    asks: dict[str, str] = {}
    ask_situations: dict[str, frozenset[str]] = {}
    ask_variants: dict[str, tuple[tuple[frozenset[str], frozenset[str], str], ...]] = {}
    for kind, value in asks_table.items():
        if kind not in ASK_KINDS:
            continue
        if isinstance(value, list):  # [{ say, situations, signs }, ..., { say }]: the first that fits
            variants: list[tuple[frozenset[str], frozenset[str], str]] = []
            for i, item in enumerate(value):
                where = f"asks.{kind}[{i}]"
                if not isinstance(item, dict):
                    f.problem(where, "expected a table { say = \"...\", situations = [...], signs = [...] }")
                    continue
                f.unknown_keys(item, {"say", "situations", "signs"}, where)
                say = _owner_text(f, f"{where}.say", item.get("say"), empty=True)
                if "situations" in item or "signs" in item:
                    fits = f.str_list(item, "situations", where, allowed=SITUATIONS, what="situation") \
                        if "situations" in item else []
                    needs = f.str_list(item, "signs", where, allowed=SIGNS, what="sign") if "signs" in item else []
                    variants.append((frozenset(fits), frozenset(needs), say))
                else:
                    asks[kind] = say  # the variant for every other case
            ask_variants[kind] = tuple(variants)
            asks.setdefault(kind, "")
        elif isinstance(value, dict):  # { say = "...", situations = [...] }
            f.unknown_keys(value, {"say", "situations"}, f"asks.{kind}")
            asks[kind] = _owner_text(f, f"asks.{kind}.say", value.get("say"), empty=True)
            ask_situations[kind] = frozenset(f.str_list(value, "situations", f"asks.{kind}",
                                                        allowed=SITUATIONS, what="situation"))
        else:
            asks[kind] = _owner_text(f, f"asks.{kind}", value, empty=True)
    urgent_t = f.table(d, "urgent", allowed={"phrases", "within_hours", "unless", "journey"})
    urgent = compile_patterns(f, "urgent.phrases", urgent_t.get("phrases"), regex=False)
    urgent_unless = compile_patterns(f, "urgent.unless", urgent_t.get("unless"), regex=False)
    journey = _load_journey(f, f.table(urgent_t, "journey", "urgent", allowed={
        "travel", "ongoing", "status", "unless", "places", "asking", "doing", "telling", "codes", "who"}))
    urgent_hours = urgent_t.get("within_hours", 0)
    if isinstance(urgent_hours, bool) or not isinstance(urgent_hours, (int, float)) or urgent_hours < 0:
        f.problem("urgent.within_hours", "expected a number of hours (0 = the first-response time)")
        urgent_hours = 0
    deadline_t = f.table(d, "deadline", allowed={"say"})
    deadline = _owner_text(f, "deadline.say", deadline_t.get("say", "You asked for this {deadline}."))
    thanks_t = f.table(d, "thanks", allowed={"phrases", "unless"})
    thanks = compile_patterns(f, "thanks.phrases", thanks_t.get("phrases"), regex=False)
    thanks_unless = compile_patterns(f, "thanks.unless", thanks_t.get("unless"), regex=False)
    signs_t = f.table(d, "signs", allowed=set(SIGNS))
    signs = {name: tuple(compile_patterns(f, f"signs.{name}", signs_t.get(name), regex=False)) for name in SIGNS}
    problem_rules = _load_problems(f)
    problems = list(f.problems)
    answers, answer_problems = load_answers(rules_dir)
    problems += answer_problems
    if problems:
        return None, problems
    return ReplyPolicy(topics, remedy, tuple(named), asks, tuple(urgent), deadline, tuple(thanks),
                       answers, ask_situations, ask_variants, tuple(thanks_unless), signs, float(urgent_hours),
                       problem_rules, tuple(urgent_unless), journey), []


def _load_journey(f: TomlFile, table: dict[str, Any]) -> Journey:
    """``[urgent.journey]``: phrase lists, and lists of single words (``doing`` and ``telling`` lemmas,
    ``codes``)."""
    def phrases(key: str) -> tuple[Pattern, ...]:
        return tuple(compile_patterns(f, f"urgent.journey.{key}", table.get(key), regex=False))

    def words(key: str, lemmas: bool = False) -> frozenset[str]:
        items = f.str_list(table, key, "urgent.journey")
        for i, item in enumerate(items):
            if not re.fullmatch(r"[a-z]+", item):
                f.problem(f"urgent.journey.{key}[{i}]", f"expected one word in small letters, got {item!r}")
            elif lemmas and not _is_lemma(item):
                # the text's words are compared by their lemma: "waiting" would never match
                f.problem(f"urgent.journey.{key}[{i}]",
                          f"expected a lemma, got {item!r} (write {lemma_of(item)!r}: words are compared by lemma)")
        return frozenset(items)

    return Journey(phrases("travel"), phrases("ongoing"), phrases("status"), phrases("unless"), phrases("places"),
                   phrases("asking"), words("doing", True), words("telling", True), words("codes"), words("who"))


def _is_lemma(word: str) -> bool:
    """``word`` is what the lookup lemmatizer gives for a form of it: its own lemma ("wait"), or the lemma
    of an "-ing" form though a form of another word itself ("bore", of "boring"; itself a form of "bear")."""
    return lemma_of(word) == word or word in _ing_lemmas()


@cache
def _ing_lemmas() -> frozenset[str]:
    from triage.detect.lexicon import lemma_table

    return frozenset(lemma for form, lemma in lemma_table().items() if form.endswith("ing"))


def load_answers(rules_dir: Path) -> tuple[tuple[SavedAnswer, ...], list[Problem]]:
    """rules/answers.toml: ``[[answer]]`` tables with id, title, questions (phrases) and text."""
    path = rules_dir / ANSWERS_FILE
    if not is_file(path):
        return (), []
    f = TomlFile(path)
    if f.problems:
        return (), f.problems
    f.unknown_keys(f.data, {"answer"}, "")
    out: list[SavedAnswer] = []
    seen: set[str] = set()
    for n, entry in enumerate(f.tables(f.data, "answer")):
        rid = entry.get("id")
        key = f"answer.{rid}" if isinstance(rid, str) and rid else f"answer[{n}]"
        f.unknown_keys(entry, {"id", "title", "questions", "text", "covers"}, key)
        if not isinstance(rid, str) or not re.fullmatch(r"[a-z0-9_-]+", rid):
            f.problem(f"{key}.id", "expected an id of lower-case letters, digits, '-' or '_'")
            continue
        if rid in seen:
            f.problem(key, "duplicate id")
        seen.add(rid)
        title = f.string(entry, "title", key, default=rid)
        text = f.string(entry, "text", key, required=True)
        if isinstance(text, str) and ("{{" in text or "{%" in text or "[[" in text):
            f.problem(f"{key}.text", "plain text only: no template code or [[ ]] markers")
        patterns = compile_patterns(f, f"{key}.questions", entry.get("questions"), regex=False)
        if not patterns and "questions" not in entry:
            f.problem(f"{key}.questions", "missing (expected a list of question phrases)")
        covers = f.choice(entry, "covers", key, ASK_KINDS, "") if "covers" in entry else ""
        out.append(SavedAnswer(rid, clean_line(str(title or rid), 80), tuple(patterns),
                               clean_line(str(text or ""), 4000), covers or ""))
    return tuple(out), list(f.problems)
