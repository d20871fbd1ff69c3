"""The personalisation context a template sees, built from one message and its detection.

``build_context`` returns exactly the keys of ``CONTEXT_KEYS`` (documented in
templates/README.md). Every customer-supplied value is one clean line of plain
text; templates receive customer text only as values, never as template code.
Pure: no I/O, the clock comes in as ``now``. Raises ``DraftError`` for an
``extra`` key that is not one of ``EXTRA_KEYS``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from triage.config import SupportSettings
from triage.detect import Detection, Facts
from triage.detect.lexicon import is_ordinary_word
from triage.drafting.outgoing import clean_line, reply_subject
from triage.drafting.restate import (
    AUX,
    has_verb,
    in_our_voice,
    in_our_words,
    judges_us,
    lone_subject,
    ours,
    tells_what_happened,
)
from triage.drafting.restate import CONCEDED as _CONCEDED
from triage.drafting.rules import Specialist
from triage.drafting.situation import (
    _REQUEST,
    FORWARDED,
    WONDERED,
    Reply,
    asks_like_a_question,
    fill,
    order_noun,
    order_value,
    rhetorical,
    subject_opens_text,
    without_links,
)
from triage.errors import DraftError
from triage.message import Message

EXTRA_KEYS = ("promise", "promise_due", "progress")
QUOTE_LIMIT = 240
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


# --------------------------------------------------------------------------- names and days

_TITLES = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "lady",
           "lord", "rev", "fr", "herr", "frau", "mme", "mlle", "m", "sr", "sra", "srta", "dott",
           "ing", "mag", "capt", "col", "hon"}
_SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq", "mba", "msc", "bsc", "ma",
             "ba", "dds", "cpa", "pe", "rn"}
_NOT_PEOPLE = {"team", "support", "accounts", "account", "payable", "receivable", "billing",
               "department", "dept", "service", "services", "sales", "info", "admin",
               "administrator", "office", "helpdesk", "desk", "noreply", "no-reply", "reply",
               "ltd", "llc", "inc", "gmbh", "corp", "corporation", "company", "plc", "limited",
               "group", "shop", "store", "finance", "marketing", "operations", "enquiries",
               "inquiries", "orders", "invoices", "invoice", "mailer", "daemon", "postmaster",
               "webmaster", "contact", "hello", "customer", "customers", "care", "hr",
               "procurement", "purchasing", "reception", "notifications", "newsletter", "staff",
               "unknown", "user", "owner", "manager", "management", "partners", "bank"}
_FAMILY_FIRST = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def first_name(name: str) -> str:
    """The customer's first name from a display name, or "" when there is none to trust.

    "Lee, Ann" -> "Ann"; "ANN LEE" -> "Ann"; "Dr. Ann Lee" -> "Ann"; "J. Edgar
    Hoover" -> "Edgar"; "Zoë Ødegård" -> "Zoë". Email addresses, role or
    company names ("Support Team", "Accounts Payable"), a title or initials
    before a lone surname ("Mr Smith", "J. Smith"), names with digits, and
    CJK names (family name first) give "".
    """
    text = clean_line(name, 300)
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>", " ", text)
    text = text.strip(" \"'\u201c\u201d\u2018\u2019`")
    if not text or "@" in text or _FAMILY_FIRST.search(text):
        return ""
    if "," in text:
        head, _, tail = text.partition(",")
        tail_words = [w.strip(".").lower() for w in tail.split()]
        if tail_words and (all(w in _SUFFIXES for w in tail_words)
                           or any(w in _NOT_PEOPLE for w in tail_words)):
            text = head  # "Ann Lee, PhD", "Ann Lee, Sales Manager"
        elif tail.strip() and len(head.split()) <= 2:
            text = f"{tail} {head}"  # "Lee, Ann" -> "Ann Lee"
        else:
            text = head
    words = [w.strip(" \"'\u201c\u201d\u2018\u2019`,;:!") for w in text.split()]
    words = [w for w in words if w and w not in ("-", "&", "/")]
    if not words or any(w.lower().strip(".") in _NOT_PEOPLE for w in words):
        return ""
    titled = False
    while words and words[0].lower().rstrip(".") in _TITLES:
        words, titled = words[1:], True
    given = [w for w in words if not _initial(w)]
    if not given or (len(given) == 1 and (titled or _initial(words[0]))):
        return ""  # "J. Smith", "Mr Smith", "Dr. Lee": a surname alone
    word = given[0]
    if not re.fullmatch(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*", word) or len(word) > 30:
        return ""
    if word.isupper() or word.islower():
        word = "-".join(p[:1].upper() + p[1:].lower() for p in word.split("-"))
    return word


def _initial(word: str) -> bool:
    """"J", "J.", "J.R." and "JR." are initials; "Jo" is not."""
    return bool(re.fullmatch(r"(?:[^\W\d_]\.)+[^\W\d_]?\.?|[^\W\d_]", word))


def format_day(day: date) -> str:
    """"Tuesday 24 November": English names, no leading zero, independent of locale."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def add_working_days(start: date, days: int, holidays: frozenset[date] = frozenset()) -> date:
    """``start`` moved forward by ``days`` working days (Monday-Friday, not a holiday).

    With ``days == 0`` a weekend or holiday start moves to the next working day.
    """
    def working(d: date) -> bool:
        return d.weekday() < 5 and d not in holidays

    day = start
    while days == 0 and not working(day):
        day += timedelta(days=1)
    added = 0
    while added < days:
        day += timedelta(days=1)
        added += working(day)
    return day


# --------------------------------------------------------------------------- context

_GREETING_LINE = re.compile(
    r"^(hi|hello|hey|hiya|dear|greetings|good (morning|afternoon|evening)|to whom)\b"
    r"(\s+[\w.'\u2019-]+){0,3}\s*[,!.:]?$", re.I)
_GREETING_LEAD = re.compile(r"^(hi|hello|hey|hiya|dear)\b[^,.!?]{0,30},\s*", re.I)
_ARTICLE = re.compile(r"^(the|a|an|my|our|your|this|that)\s+", re.I)
CONTEXT_KEYS = (
    "greeting", "first_name", "shop", "agent", "support_address", "case_id", "subject",
    "their_words", "their_words_source", "about", "details", "cancel_what", "cancel_when", "order", "orders", "order_ref", "product",
    "products", "date", "dates", "amount", "amounts", "topic", "level", "angry", "complaint",
    "archetypes", "today", "next_step_date", "next_step_days", "specialist", "specialist_name",
    "specialist_role", "specialist_why", "situation", "remedy", "asks", "ask_replies", "urgent",
    "deadline", "deadline_line", "problem_steps", "next_step", "answers", "open_questions", "all_answered", "about_order", "upset",
    "problem_phrase", "repeat", "waited", "asked_for", "their_question", "problems", "understood", "restated", "wondered", "leaving",
    "hardship", "told_us", *EXTRA_KEYS,
)


def _first_sentence(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").replace("\r", "\n").split("\n")]
    lines = [re.sub(r"^(?:[>*\u2022-]+\s+)+", "", ln) for ln in lines if ln and not _GREETING_LINE.match(ln)]
    lines = [ln for ln in lines if not ln.startswith("#")] or lines  # headings from HTML mail
    joined = _GREETING_LEAD.sub("", clean_line(" ".join(lines)))
    sentences = [s for s in re.split(r"(?<=[.!?\u2026])\s+", joined) if s.strip()]
    for sentence in sentences:
        if len(re.findall(r"[^\W_]+", sentence)) >= 3:
            return sentence
    return sentences[0] if sentences else ""


def _quote(text: str, end: bool = True) -> str:
    """Customer words fit to quote back: one line, not shouted, clipped, ending in punctuation."""
    text = clean_line(text)
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 8 and sum(c.isupper() for c in letters) > 0.6 * len(letters):
        text = re.sub(r"\bi\b", "I", text.lower())
    text = re.sub(r"([!?])[!?1]+", r"\1", text)
    clipped = clean_line(text, QUOTE_LIMIT)
    text = clipped + ("\u2026" if len(clipped) < len(text) else "")
    text = text.strip(" \"'\u201c\u201d")
    if end and text and text[-1] not in ".!?\u2026":
        text += "."
    return text[:1].upper() + text[1:]


def their_words(message: Message, facts: Facts) -> tuple[str, str]:
    """(words, source): the problem sentence, else their first real sentence, else the subject.

    ``source`` is "problem", "sentence", "subject", or "none" (words "") when
    the message has neither text nor subject.
    """
    subject = reply_subject(message.subject)[4:] if message.subject.strip() else ""
    for source, words in (("problem", facts.problem), ("sentence", _first_sentence(message.text)),
                          ("subject", subject)):
        if clean_line(words):
            return _quote(words, end=source != "subject"), source
    return "", "none"


# "cancel my coffee bean box subscription", "close our Kettle & Crumb account",
# "unsubscribe me from the coffee box", "cancel #10234": a verb, an optional
# determiner, up to four of their own words, then the thing.
_CANCEL_VERB = (r"(?<![\w-])(?:cancel(?:l?ing|l?ed)?|cancellation\s+of|close|closing|delete|deleting"
                r"|end(?!\s+of)|ending|stop|stopping|terminate|terminating|termination\s+of"
                r"|discontinue|discontinuing|unsubscribe(?:\s+me)?(?:\s+from)?)")
_CANCEL_THING = re.compile(
    _CANCEL_VERB + r"\s+(?:(?:my|our|the|this|that|your)\s+)?(?:[\w&'.-]+\s+){0,4}?"
    r"(?P<thing>subscriptions?|memberships?|account|profile|orders?|purchase|plan|contract|box"
    r"|#?\d{3,})(?![\w-])", re.IGNORECASE)
# the bare verb only: "please cancel it"; "Cancelling" or "I'm cancelling" is leaving, not an order
_CANCEL_ANY = re.compile(r"(?<![\w-])cancel(?![\w-])", re.IGNORECASE)
_NEGATED = re.compile(r"(?:\bnot|n't|n\u2019t|\bnever)\s+(?:(?:want|need|going)\s+to\s+|to\s+)?$",
                      re.IGNORECASE)
_CANCEL_KINDS = {"subscription": "subscription", "subscriptions": "subscription",
                 "plan": "subscription", "contract": "subscription", "box": "subscription",
                 "membership": "membership", "memberships": "membership",
                 "account": "account", "profile": "account",
                 "order": "order", "orders": "order", "purchase": "order"}


def cancel_what(message: Message, facts: Facts) -> str:
    """What the customer asked to cancel: "order", "subscription", "membership", "account" or "".

    The first thing named after a cancelling verb in their new words, else in
    the subject ("please cancel my coffee bean box subscription" ->
    "subscription"; "close my account" -> "account"; "cancel #10234" ->
    "order"); a negated ask ("I don't want to cancel my account") does not
    count. With no thing named, the bare verb "cancel" ("please cancel it")
    and an order number in the message mean "order"; otherwise "" (nothing
    we can name, e.g. "I'm leaving", "Cancelling").
    """
    for text in (message.text, message.subject):
        for m in _CANCEL_THING.finditer(text or ""):
            if _NEGATED.search(text[max(0, m.start() - 30):m.start()]):
                continue
            thing = m.group("thing").lower()
            return "order" if thing.lstrip("#").isdigit() else _CANCEL_KINDS[thing]
    if facts.orders and any(
            not _NEGATED.search(text[max(0, m.start() - 30):m.start()])
            for text in (message.text or "", message.subject or "") for m in _CANCEL_ANY.finditer(text)):
        return "order"
    return ""


# --------------------------------------------------------------------------- restating in our words

RESTATE_WORDS = 12  # the most consecutive words of theirs a restatement quotes (a test holds drafts to 12)
_QUOTED_KINDS = frozenset({"complaint"})  # anger is how they feel, not what went wrong: never quoted back
_NEVER_QUOTED = frozenset({"insult", "profanity", "threat"})
# "so" starts a clause only before its subject ("…, so I missed it"); before an adjective or "much" it
# only says how much ("the wifi is so slow"), and the clause goes on
_CLAUSE_BREAK = re.compile(r",(?!\d{3}\b)|[;()\[\]\u2013\u2014\u2026\"\u201c\u201d]|\.{2,}|(?<!\d):(?!\d)|\s-\s|\s[&+]\s(?=(?:i|we|you|they|he|she|it|my|our|the|now|then|so)\b)|\beven\s+(?:though|if)\b|\b(?:but|because|although|(?<!\beven\s)though|"
                           r"(?<!\ba\s)while|which|whereas|then|or|(?<!\beven\s)if|unless|as|why|when)\b"
                           # "between 8 and 12" is one span, not two clauses
                           r"|(?<!\d\s)(?<!\d[ap]m\s)\band\b|\band\b(?!\s+\d)"
                           # "since March", "since the 3rd", "since last week" is when, not a clause
                           r"|\bsince\b(?!\s+(?:\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
                           r"|(?:mon|tues|wednes|thurs|fri|satur|sun)day\b|last\b|yesterday\b|then\b|early\b|mid\b"
                           r"|the\s+(?:\d|start|beginning|end|middle)|this\s+(?:morning|week|month|year)\b"
                           r"|christmas\b|easter\b))"
                           r"|\bso\b(?=\s+(?:i|we|you|u|they|he|she|it|its|it['\u2019]s|the|my|our|your|their|this|that"
                           r"|there|now|please|can|could|would|will|what|why|how|i['\u2019]\w+|we['\u2019]\w+|no|nobody"
                           r"|nothing|now|then)\b)", re.I)
# a title or an abbreviation before a name or a number ends no sentence: "St. Louis", "Mrs. Lee", "No. 5"
_ABBREVIATION_STOP = (r"(?:(?<=\bMr)|(?<=\bMrs)|(?<=\bMs)|(?<=\bDr)|(?<=\bSt)|(?<=\be\.g)|(?<=\bi\.e)|(?<=\betc))"
                      r"\.(?=\s+[A-Z\d])|(?<=\bNo)\.(?=\s+\d)")
_SENTENCE_STOP = re.compile(rf"(?!{_ABBREVIATION_STOP})[.!?]+(?=\s|$)|\n\s*\n")
# "I am writing in English", "I'm writing regarding…", "to whom it may concern": about the message, not the problem
_META = re.compile(r"\b(?:writ(?:e|ing)\s+(?:to|in|regarding|about|again|because)|i\s+hope\s+(?:it|this|that)\s+is\s+ok"
                   r"|to\s+whom|sorry\s+to\s+(?:bother|trouble)|hope\s+you\s+(?:are|'re)\s+well"
                   r"|(?:wrote|written|emailed|e-mailed|called)\s+(?:to\s+)?you)", re.I)
# what they intend or suppose is not what went wrong: "I'll keep the scratched one", "maybe it's just me",
# "would have been possible"
# (what they think happened is: "I think there's been a withdrawal I didn't make")
_NOT_WHAT_WENT_WRONG = re.compile(
    r"\b(?:i|we)(?:'ll|\u2019ll|\s+will|\s+would|'d|\u2019d|\s+want|\s+think(?!\s+(?:that\s+)?(?:there|someone|somebody)\b)|\s+hope|\s+might|\s+expect|\s+need"
    r"|\s+feel|\s+understand|\s+know|\s+guess|\s+suppose|\s+reckon|\s+get\s+(?:it|that)|\s+reali[sz]e|\s+can(?!['\u2019]?t\b|not\b|\s+not\b|\s+no\b)"
    r"|(?:\s+am|'m|\u2019m)\s+(?:going\s+to|gonna|about\s+to|happy|glad|sure|not\s+sure|keen|willing|thinking|hoping"
    r"|wondering|writing|trying\s+to\s+(?:find|understand|work\s+out)))\b"
    r"|\bmaybe\b|\bperhaps\b|^(?:ok(?:ay)?|fair\s+enough|yes|sure)\b|^(?:would|could|should|might)\s+(?:not\s+)?have\b", re.I)
_CONTRAST = re.compile(r"\b(?:but|however|yet)\b", re.I)
# how strongly a piece of complaint evidence says what went wrong: a failure or a wrong thing before a
# bare problem word ("again", "still")
_WEAK_RULES = ("complaint.problem_words",)
_WORD = re.compile(r"[^\W_]+(?:['\u2019.-][^\W_]+)*")
_COUNTED = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")  # words as the twelve-word rule counts them ("half-caf" is two)
_ORDINALS = {"second": "second", "2nd": "second", "third": "third", "3rd": "third", "fourth": "fourth",
             "4th": "fourth", "fifth": "fifth", "5th": "fifth", "umpteenth": "umpteenth"}
_REPEAT = re.compile(r"\b(second|third|fourth|fifth|2nd|3rd|4th|5th|umpteenth)\s+(?P<what>time|email|e-mail|message|"
                     r"request|attempt|call|one|replacement|delivery|order|[a-z]+\s+in\s+a\s+row"
                     # "the second blender you have sent me", "the third kettle that arrived broken"
                     r"|[a-z]+(?=\s+(?:you(?:'ve|\u2019ve|\s+have)?\s+sent|that\s+(?:has|have|had|arrived|came|broke))))\b",
                     re.I)
_NUMBER_WORDS = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|several|a few|a couple of)"
_WAITED = re.compile(r"\b(?:wait(?:ed|ing)?(?:\s+for)?|(?:it's|it\u2019s|it\s+is|it\s+has|has|have|now)\s+(?:now\s+)?been)\s+"
                     r"(?:over\s+|nearly\s+|almost\s+|more than\s+|about\s+)?"
                     r"(?P<span>" + _NUMBER_WORDS + r"\s+(?:working\s+|business\s+)?(?:hours?|days?|weeks?|months?))\b", re.I)
# "Wednesday it won't switch on" -> "it won't switch on": when it happened is not what happened
_LEADING_WHEN = re.compile(r"^(?:(?:on|since|by|last|this)\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|"
                           r"sunday|today|yesterday|tonight|now|then|recently|lately|suddenly)\b,?\s*", re.I)
_LOWER_FIRST = frozenset({"the", "a", "an", "it", "its", "it's", "my", "our", "this", "that", "there", "they",
                          "one", "some", "both", "all", "only", "still", "now", "then", "is", "was", "has", "had"})
# what each ask sounds like in our words, after "You'd like …"
_ASKED = {
    "refund": "a refund", "replacement": "a replacement", "repair": "a repair", "return": "to send it back",
    "cancel": "to cancel", "close_account": "your account closed", "delete_data": "your personal data deleted",
    "compensation": "compensation", "callback": "a call back", "escalate": "to speak to a manager",
    "status": "to know where things stand", "apology": "an apology", "fix": "this put right",
    "change": "a change to your booking", "suggestion": "your suggestion passed on",
}


# a phrase of theirs that is not the problem, however strongly it is put: a denial ("that's incorrect"),
# what they did not mean ("I wasn't asking for a full refund"), a stance ("I now refuse to pay", "I will
# never fly with you again"), a verdict ("this is beyond unacceptable"), or a fragment that opens with
# a preposition or a time clause ("of system wide tech issue", "after our unscheduled stop", "over again")
_NOT_THE_PROBLEM = re.compile(
    r"^(?:that|this|it)(?:['\u2019]s|\s+is|\s+was)\s+(?:just\s+|simply\s+)?(?:incorrect|wrong|not\s+(?:true|right|correct|"
    r"what)|untrue|false|a\s+lie|rubbish|nonsense)\b"
    # what it was not: "it wasn't a delay (so much as a cancellation)", "this isn't an error"
    r"|^(?:that|this|it|which)\s+(?:(?:is|was|were|are)\s+not|isn['\u2019]t|wasn['\u2019]t|['\u2019]s\s+not)\s+"
    r"(?:really\s+|just\s+|even\s+|actually\s+)?an?\s"
    r"|\b(?:i|we)\s+(?:was|were|am|are|'m|\u2019m)?\s*(?:not|n['\u2019]t|never)\s+(?:asking|saying|expecting|wanting|"
    r"looking\s+for|trying\s+to\s+get)\b|\b(?:i|we)\s+(?:wasn['\u2019]t|weren['\u2019]t|didn['\u2019]t|don['\u2019]t|"
    r"did\s+not|do\s+not)\s+(?:ask|say|want|mean|expect)\b"
    r"|\b(?:i|we)\s+(?:now\s+|therefore\s+|simply\s+|just\s+)?(?:refuse|won['\u2019]?t|will\s+not|will\s+never|shall\s+never"
    r"|would\s+never|am\s+done|['\u2019]m\s+done|demand|insist)\b|\bnever\s+(?:again|do(?:ing)?\s+business|fly\w*|us\w*|shop\w*|bank\w*|book\w*|com\w*\s+back)\b"
    r"|^(?:this|that|it|which)\s+(?:is|was|'s|\u2019s)\s+(?:beyond\s+|just\s+|so\s+|totally\s+|completely\s+|absolutely\s+)?"
    r"(?:unacceptable|ridiculous|a\s+joke|outrageous|disgraceful|appalling|shocking|pathetic|terrible|awful|insane)\b"
    r"|^(?:of|after|before|over|with|for|from|to|in|on|at|by|about|during|until|than|into|onto|again)\b"
    r"|\bget\s+lost\b", re.I)


# they are leaving us: "I'm closing my card with you", "I will never fly with you again"
_LEAVING = re.compile(r"\b(?:i|we)(?:['\u2019]m|['\u2019]re|\s+am|\s+are)\s+(?:now\s+)?(?:closing|cancell?ing|leaving|switching|"
                      r"moving|taking\s+my\s+business)\b|\bnever\s+(?:again\s+)?(?:do(?:ing)?\s+business|fly\w*|bank\w*|shop\w*|"
                      r"us\w*|book\w*)\s+(?:with|on)\s+(?:you|u)\b|\b(?:i|we)\s+will\s+never\s+\w+\s+(?:with|on)\s+(?:you|u)\b",
                      re.I)


# a judgement of us, not what happened: "you guys are atrocious", "your company is lame", "the app is
# the worst one", "worst airline ever", "I love flying with you" (an insult, a verdict or praise says
# nothing of what went wrong). A clause whose subject is us (you, your company, the app) and whose
# predicate is a quality, not a state it is in ("the app is down", "your site was broken" happened),
# or a superlative or praise anywhere in it.
_OF_US = (r"(?:you|u|ya|y['\u2019]?all|you\s+(?:guys|lot|people|all|two)|your\s+[\w-]+(?:\s+[\w-]+)?|ur\s+[\w-]+"
          r"|the\s+[\w-]+|this\s+[\w-]+|that\s+[\w-]+|[A-Z][\w&-]+|it|this|that)")
_STATE = (r"(?:down|gone|missing|late|closed|offline|unavailable|empty|stuck|wrong|out|off|frozen|locked|blocked|full"
          r"|overbooked|dead|not\s+\w+|no\s+\w+|still\s+\w+|\w+ed|\w+en|\w+ing|on\s+\w+|in\s+\w+|at\s+\w+|\d\w*)")
# how one of our people treated them is what happened: "the staff were unhelpful" is said back
_PEOPLE = (r"(?!(?:the|this|that|your|ur)\s+(?:[\w-]+\s+)?(?:staff|agents?|crew|pilots?|attendants?|employees?|"
           r"representatives?|reps?|managers?|drivers?|person|lady|man|guy|woman|cashier|teller|supervisor|"
           r"stewardess|steward|officer|clerk|advisor|adviser)\b)")
_VERDICT = re.compile(
    rf"^{_PEOPLE}{_OF_US}(?:\s+(?:here|there|now|today|lately|recently|these\s+days))?\s+(?:is|are|was|were|['\u2019]s|['\u2019]re|has\s+been|have\s+been|seems?|looks?|sounds?|remains?)\s+"
    r"(?:(?:\w+ly|so|such|just|truly|beyond|really|very|pretty|quite|the|a|an|one|of|ever|far|by|now)\s+)*"
    rf"(?!{_STATE}\b)[\w-]+(?:\s+[\w-]+){{0,3}}\s*[.!]*$"
    r"|\b(?:worst|best|greatest|poorest|most\s+\w+|least\s+\w+)\b(?:\s+[\w-]+){0,3}\s+(?:ever|in\s+the\s+world"
    r"|on\s+earth|in\s+history|of\s+all(?:\s+time)?|i\s*(?:['\u2019]ve|\s+have)\s+(?:ever\s+)?(?:seen|used|had|flown))\b"
    r"|^(?:the|this|that|what\s+an?|such\s+an?|an?)?\s*(?:worst|best|greatest|poorest)\b"
    r"|\b(?:i|we)\s+(?:(?:really|do|just|absolutely|always|usually|normally|used\s+to)\s+)*(?:love|loved|like|liked|"
    r"enjoy|enjoyed|adore|adored|appreciate|prefer)\b"
    r"|^(?:you|u|ya|you\s+(?:guys|lot|people|all))\s+(?:suck|stink|rock|rule)\b"
    # how they feel about us, not what happened: "I am not satisfied with your service"
    r"|^(?:i|we)(?:\s+am|\s+are|['\u2019]m|['\u2019]re)\s+(?:(?:not|so|very|really|extremely|totally|completely|truly|still"
    r"|just|absolutely|deeply|quite|beyond)\s+)*(?:satisfied|happy|pleased|impressed|disappointed|unhappy|dissatisfied"
    r"|upset|angry|furious|annoyed|frustrated|fed\s+up|disgusted|appalled|livid)\b", re.I)


_SENTENCE_ADVERB = re.compile(r"^(?:(?:\w+ly|seriously|tbh|well|look|so|to\s+be\s+honest|quite\s+simply)[,\s]+)+", re.I)


def not_the_problem(phrase: str, text: str) -> bool:
    """True when ``phrase`` (a clause of theirs) would not restate what went wrong: a denial, what
    they did not mean, a stance, a verdict, an insult or praise (``_VERDICT``), a fragment, or
    nearly all they wrote (quoting a short message back whole is parroting, not understanding)."""
    bare = _SENTENCE_ADVERB.sub("", phrase.strip(" \"'\u201c\u201d"))  # "Honestly, you people are dreadful"
    if _NOT_THE_PROBLEM.search(phrase) or _VERDICT.search(bare):
        return True
    if not text:
        return False
    plain = without_links(text)
    if len(_sentence_list(plain)) < 2:
        return False  # a message of one statement: quoting it says we read it, asking would not
    said = _COUNTED.findall(plain)
    return 5 <= len(said) <= 16 and len(_COUNTED.findall(phrase)) >= 0.7 * len(said)


_ELLIPTICAL = re.compile(r"^(?:so|neither|nor)\s+(?:is|are|was|were|do|does|did|has|have)\b", re.I)


def told_us(text: str) -> bool:
    """True when some clause of theirs says something happened: not only a verdict on us, an insult,
    a feeling or praise ("Honestly you people are dreadful.", "Worst bank ever, never again."). A
    message that says what happened is never asked what happened, even when no rule could say it back."""
    plain = without_links(text)
    for a, b in _sentences(plain):
        for lo, hi, _opener in _clause_spans(plain, a, b):
            clause = clean_line(plain[lo:hi]).strip(" .!?\"'\u201c\u201d")
            if len(_COUNTED.findall(clause)) < 3 or _ELLIPTICAL.match(clause) or _THANKS.search(clause):
                continue
            if not not_the_problem(clause, ""):
                return True
    return False


def _sentences(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each sentence of ``text``, its stop left out: the one sentence splitter
    the restatement reads by (a blank line ends one too)."""
    spans, at = [], 0
    for m in _SENTENCE_STOP.finditer(text):
        if _WORD.search(text, at, m.start()):
            spans.append((at, m.start()))
        at = m.end()
    if _WORD.search(text, at):
        spans.append((at, len(text)))
    return spans


def _sentence_list(text: str) -> list[str]:
    """Their sentences, each one clean line with its stop, without the signature (a last short line)."""
    plain = _SIGNATURE.sub("", text or "")
    return [clean_line(plain[a:b] + plain[b:b + 1].strip(), 240) for a, b in _sentences(plain)]


def _clause_spans(text: str, a: int, b: int) -> list[tuple[int, int, str]]:
    """The clauses of the sentence text[a:b], split where ``_CLAUSE_BREAK`` says (a question word
    that opens the sentence starts a clause rather than breaking one): (start, end, opener), the
    opener the lower-cased word that broke it off ("if", "as", "but"), or "" after punctuation."""
    spans: list[tuple[int, int, str]] = []
    at, opener = a, ""
    for stop in [*(m for m in _CLAUSE_BREAK.finditer(text, a, b) if not _opens(text, a, m)), None]:
        end = stop.start() if stop else b
        if _WORD.search(text, at, end):
            spans.append((at, end, opener))
        opener = stop.group(0).split()[-1].lower() if stop and _WORD.match(stop.group(0).strip()) else ""
        at = stop.end() if stop else b
    return spans


_CONDITION = frozenset({"if", "unless", "when", "whether"})
_WILL = re.compile(r"\b(?:will|would|shall|gonna)\b|['\u2019]ll\b", re.I)
# how strongly a sign says what went wrong (``_key_clause``): complaint evidence scores 3 and its
# weight, a bare problem word ("again", "problem") less; the rest come from the case being trouble
# alone: a clause turning from a concession, a [signs] trouble phrase, a negated verb, the first
# clause of detection's problem sentence, their first statement
_WEAK = 2.8
_AFTER_CONCESSION = 2.6
_TROUBLE_SIGN = 2.5
_NEGATED_SIGN = 2.0
_PROBLEM_SENTENCE = 1.5
FIRST_STATEMENT = 0.1
_TROUBLE_ONLY = frozenset({_AFTER_CONCESSION, _TROUBLE_SIGN, _NEGATED_SIGN, _PROBLEM_SENTENCE, FIRST_STATEMENT})
_STRUCTURE_ONLY = frozenset({_AFTER_CONCESSION, _TROUBLE_SIGN, _NEGATED_SIGN, FIRST_STATEMENT})
_TURN = frozenset({"but", "however", "yet", "though", "although"})
# what joins a reason or a result to the clause before it: "I'll keep it, as I can't be bothered…"
_BECAUSE = frozenset({"as", "because", "since", "so", "cause"})


# a negated verb says something did not happen as it should: "they won't fix the handle"
_NEGATED_VERB = re.compile(r"(?:\b(?:am|is|are|was|were|be|been|do|does|did|have|has|had|can|could|will|would|should"
                           r"|may|might|must|i|we|you|it|they|he|she)\s+not|\bnever|\bno\s+longer|\bnothing|\bnobody"
                           r"|\bno\s+one)\b|n['\u2019]t\b", re.I)


def key_phrase(text: str, detection: Detection, trouble: tuple[int, int] | None = None) -> str:
    """The phrase of ``_key_clause``: see there."""
    return _key_clause(text, detection, trouble)[1]


def _key_clause(text: str, detection: Detection,
                trouble: tuple[int, int] | None = None) -> tuple[float, str, str]:
    """A short phrase of theirs that says what went wrong, fit to quote or to say back in our words:
    at most RESTATE_WORDS words of the clause that carries the strongest sign of it. The signs, from
    strongest: complaint evidence of a failure or a wrong thing, then a bare problem word
    ("again"); with ``trouble`` given (the case is known to be trouble; the span of a sign of it,
    or (0, 0)), a clause that turns from a concession ("I understand the weather is nobody's fault,
    but…"), that sign, a negated verb ("they won't fix the handle"), the first clause of
    detection's problem sentence, and last their first statement, past an aside that opens it. A
    word graded only by the valence lexicon is no sign. A clause whose subject is only "it" or
    "they" comes with the clause that says what it is (``_with_antecedent``). Never from a sentence
    holding an insult, profanity or a threat, a greeting or a real question; never a clause that
    asks for something, follows a condition ("if not…"), gives the reason for an aside ("…as I
    can't be bothered"), or is not fit to say (``_fit_to_say``); a bare problem word or a sign from
    the case being trouble alone is never read in a sentence ending "?", and one from structure
    or a sign of trouble must tell what happened (``tells_what_happened``). Links, handles and hashtags are not
    read. (score, phrase, unsaid): the score of the sign that gave it, and who a phrase with no
    subject of its own is about (``_unsaid_subject``); (0, "", "") when there is none."""
    text = without_links(_SIGNATURE.sub("", text or ""))  # blanked, so the offsets stay
    evidence = [e for e in detection.evidence if e.where == "text" and e.end <= len(text)]
    taboo = [e.start for e in evidence if e.kind in _NEVER_QUOTED]
    # a clause that asks for something is not what went wrong; "it still hasn't arrived" (status)
    # and a question (quoted as a question) may well be
    asked = [(a.start, a.end) for a in detection.asks if a.where == "text" and a.kind not in ("status", "information")]
    signs: list[tuple[float, int, int]] = []
    for e in evidence:
        # a word graded by the valence lexicon alone ("worry", "wasted") is too weak a sign of what went wrong
        if e.kind in _QUOTED_KINDS and e.weight > 0 and not e.rule.endswith(".valence"):
            score = _WEAK if e.rule in _WEAK_RULES else 3 + e.weight
            # "tried to pay in a cheque but the balance…": what went wrong is what follows the contrast
            turn = _CONTRAST.search(text, e.start, e.end)
            signs.append((score, turn.end() if turn and _WORD.search(text, turn.end(), e.end) else e.start, e.end))
    if trouble is not None:
        if trouble[0] < trouble[1] <= len(text):
            signs.append((_TROUBLE_SIGN, *trouble))
        signs += [(_NEGATED_SIGN, m.start(), m.end()) for m in _NEGATED_VERB.finditer(text)]
        # detection's problem sentence: the start of its first clause
        head = _WORD.findall(detection.facts.problem)[:4]
        found = re.search(r"\W+".join(map(re.escape, head)), text) if head else None
        if found:
            signs.append((_PROBLEM_SENTENCE, found.start(), found.start()))
    best: tuple[float, str, str] = (0.0, "", "")
    first_statement = trouble is not None
    for a, b in _sentences(text):
        if any(a <= t < b for t in taboo) or _real_question(text, a, b) or _GREETING_LINE.match(text[a:b].strip()):
            continue
        aside = False  # the clause before was what they will do or suppose, or a concession
        carry = False  # the clauses before were only a subject and an aside about it ("My son, aged 9,")
        for lo, hi, opener in _clause_spans(text, a, b):
            clause = clean_line(text[lo:hi])
            # a condition ("if not…"), and the reason for an aside ("…as I can't be bothered going to
            # the post office"), are not what went wrong; what follows a concession is ("I understand
            # the weather is nobody's fault, but my bag was sent to Oslo")
            turned = aside and opener in _TURN and trouble is not None
            skip, aside = opener in _CONDITION or (aside and opener in _BECAUSE), bool(
                _NOT_WHAT_WENT_WRONG.search(clause) or _CONCEDED.search(clause)) or (aside and opener in _BECAUSE)
            carry = lone_subject(clause) or carry and not tells_what_happened(clause)
            aside = aside or carry
            inside = [s for s in signs if lo <= s[1] < hi] + ([(FIRST_STATEMENT, lo, lo)] if first_statement else []) + (
                [(_AFTER_CONCESSION, lo, lo)] if turned else [])
            first_statement = first_statement and aside  # their first statement, past an aside opening it
            asking = text[b:b + 1] == "?"
            for score, x, y in sorted(inside, key=lambda s: -s[0]):
                if score <= best[0] or skip:
                    break
                if asking and (score in _TROUBLE_ONLY or score == _WEAK):
                    continue
                phrase, plo, phi = _clause(text, a, b, x, y)
                # a clause only its structure or a sign of trouble points at must say that something
                # happened (a subject and a verb, not only a quality, nothing that will or would happen)
                if score in _STRUCTURE_ONLY and phrase and (not tells_what_happened(phrase) or _WILL.search(phrase)):
                    continue
                if phrase and lone_subject(phrase):
                    continue  # "my daughter": who it happened to, not what happened
                if phrase and _fit_to_say(phrase) and not any(plo < y2 and x2 < phi for x2, y2 in asked):
                    best = (score, _with_antecedent(text, a, b, plo, phi, phrase), _unsaid_subject(text, a, b, plo))
                    break
        first_statement = False  # their first statement is the first sentence that is not a question
    return best


def _fragment(phrase: str) -> bool:
    """True when ``phrase`` does not tell what happened: no verb ("my daughter", "almost stale"), or
    two words with no subject ("almost stale") or ending on an auxiliary, the verb itself left unsaid
    ("She didn't"); "it broke" does."""
    words = [w.lower().replace("\u2019", "'") for w in _COUNTED.findall(phrase)]
    return not (tells_what_happened(phrase) or has_verb(phrase)) or len(words) < 2 or len(words) == 2 and (
        words[-1] in AUX or words[-1].endswith("n't") or not tells_what_happened(phrase))


def _unsaid_subject(text: str, a: int, b: int, lo: int) -> str:
    """Who a clause at ``lo`` in the sentence text[a:b] is about when it says no subject ("was
    refused boarding"): the customer ("I") when it opens the sentence (past words like "Yesterday,")
    or follows a clause of theirs about themselves ("I got to the desk and was told to wait"); the
    subject the sentence opened with, across an aside ("My son, who is 12, was refused boarding"
    -> "my son"); else "" (no one to say it of: the customer would be a guess)."""
    before = [(x, y) for x, y, _ in _clause_spans(text, a, b) if y <= lo]
    lead = [w.lower() for w in _WORD.findall(_LEADING_WHEN.sub("", clean_line(text[a:lo])))]
    if not before or all(w in _LEAD_WORDS for w in lead):
        return "I"
    first = clean_line(text[before[0][0]:before[0][1]])
    if lone_subject(first):
        return first
    words = [w.lower().replace("\u2019", "'") for w in _WORD.findall(text, before[-1][0], before[-1][1])]
    while words and words[0] in _LEAD_WORDS:
        words = words[1:]
    return "I" if words and words[0] in ("i", "we", "i'm", "i've", "we've", "we're", "im", "ive") else ""


_LEAD_WORDS = frozenset({"so", "and", "but", "then", "now", "well", "oh", "also", "plus", "today", "yesterday",
                         "tonight", "again", "anyway", "honestly", "sadly", "unfortunately", "apparently", "however"})


_BARE_SUBJECT = re.compile(r"^(?:it|they|it['\u2019]s|its|they['\u2019]re)\s", re.I)
# a clause that goes on with the subject of the one before: "…and didn't get home until midnight"
_NO_SUBJECT = re.compile(r"(?:did|didn['\u2019]t|never|was|wasn['\u2019]t|has|hasn['\u2019]t|had|hadn['\u2019]t|got|still)\b", re.I)
_JOINED_BY = re.compile(r"^[\s,]*(?:and|but|,)?[\s,]*$", re.I)


def _with_antecedent(text: str, a: int, b: int, lo: int, hi: int, phrase: str) -> str:
    """``phrase`` (of the clause text[lo:hi] in the sentence text[a:b]) with the clause that says
    what its "it" or "they" is, when the two, joined by "and", "but" or a comma, still fit: the
    clause before one whose subject is only "it" or "they" ("I did a bank transfer and it isn't
    current", never "it isn't current" alone), or the one after that goes on about it ("I have a
    cash deposit to my account but it is experiencing a problem") or whose subject it shares ("was
    supposed to get home at 9pm and didn't get home until midnight")."""
    spans = _clause_spans(text, a, b)
    if _BARE_SUBJECT.match(phrase):
        pairs = [(x, hi) for (x, y, _), (nx, _, _) in zip(spans, spans[1:], strict=False) if nx == lo and y <= lo
                 and _JOINED_BY.match(text[y:lo])]
    else:
        pairs = [(lo, ny) for (_, y, _), (nx, ny, _) in zip(spans, spans[1:], strict=False) if y == hi
                 and _JOINED_BY.match(text[y:nx]) and (_BARE_SUBJECT.match(clean_line(text[nx:ny]) + " ")
                                                      or _NO_SUBJECT.match(clean_line(text[nx:ny])))]
    for x, y in pairs:
        first = _WORD.search(text, x, y)
        if not first or first.group(0).lower() not in _SUBJECT_START:
            continue
        joined = _clause(text, x, y, x, y)[0]  # no break inside [x, y) is one: the two clauses read as one
        if joined and _fit_to_say(joined) and not _NUMBERISH.search(joined):
            return joined
    return phrase


def _fit_to_say(phrase: str) -> bool:
    """True when a clause of theirs may say what went wrong: not what they will do or suppose, a
    concession, a thank-you, words about the message itself ("I am writing in English"), a request
    ("please…"), a hashtag or a handle, a verdict or a denial, a judgement of us ("you don't care")."""
    return not (_NOT_WHAT_WENT_WRONG.search(phrase) or _CONCEDED.search(phrase) or _THANKS.search(phrase)
                or _META.search(phrase)
                or re.match(r"(?:please|pls|plz)\b", phrase, re.I)
                or _TAGGED.search(phrase) or not_the_problem(phrase, "") or judges_us(phrase))


_SIGNATURE = re.compile(r"\n\s*\n\s*[^\n.!?]{1,40}\s*$")  # a last short line: their name
_TAGGED = re.compile(r"(?<!\w)[#@]\w")  # hashtags and handles are not what went wrong
_THANKS = re.compile(r"\bthank(?:s|\s+you)\b|\bcheers\b", re.I)


def all_answered(reply: Reply) -> bool:
    """True when every ask has its answer in the draft: no question left for the agent, and each
    ask kind said by an owner's line or a saved answer ("anything else?" only then)."""
    if reply.open_questions or not (reply.answers or reply.ask_lines):
        return False
    said = {k for k, _ in reply.ask_lines} | ({"information"} if reply.answers else set())
    return all(k in said for k in reply.asks) and "status" not in said  # "I'll find out" is not an answer


def _real_question(text: str, a: int, b: int) -> bool:
    """True when the sentence text[a:b] (its stop at b) is a question that opens like one."""
    return text[b : b + 1] == "?" and asks_like_a_question(text[a:b])


_WH = frozenset({"why", "when"})


def _opens(text: str, a: int, m: re.Match[str]) -> bool:
    """True for a question word that opens the sentence ("Where is my refund"): it starts the
    clause, it does not break it (mid-sentence, "delayed in Chicago why offer…", it does)."""
    return m.group(0).lower() in _WH and not _WORD.search(text, a, m.start())


def _clause(text: str, a: int, b: int, start: int, end: int) -> tuple[str, int, int]:
    """The clause of text[a:b] around [start, end), cleaned, with its span; "" when it is longer
    than RESTATE_WORDS words (a clause cut short misquotes them) or shorter than two."""
    lo, hi = a, b
    for m in _CLAUSE_BREAK.finditer(text, a, b):
        if _opens(text, a, m):
            continue
        if m.end() <= start:
            lo = m.end()
        elif m.start() >= end:
            hi = m.start()
            break
    words = list(_WORD.finditer(text, lo, hi))
    if len(words) > RESTATE_WORDS:
        words = _core(words, start, end)
    # a date is restated from the facts: a clause that ends on when it happened is said without it
    # ("the tracking hasn't moved | since Oct 29")
    for i in range(len(words) - 1, 1, -1):
        if words[i].group(0).lower() in _WHEN_ADJUNCT and _NUMBERISH.search(text, words[i].start(), words[-1].end()):
            words = words[:i]
            break
    # order numbers, amounts and long numbers are restated from the facts, in our words, not quoted
    if not 2 <= len(words) <= RESTATE_WORDS or _NUMBERISH.search(text, max(0, words[0].start() - 1), words[-1].end()) or any(
            _CODE.fullmatch(w.group(0)) and not is_ordinary_word(w.group(0).lower()) for w in words):
        return "", lo, hi
    original = _LEADING_WHEN.sub("", clean_line(text[words[0].start() : words[-1].end()]))
    original = re.sub(r"\bi\b", "I", original)  # "the goods i ordered": quoted as they meant it
    if not 2 <= len(_COUNTED.findall(original)) <= RESTATE_WORDS:
        return "", lo, hi
    if _COUNTED.findall(original)[-1].lower() in _DANGLING:
        return "", lo, hi  # "I am seeing", "I was told", "wifi is": what they go on to say is the point
    phrase = _quote(original, end=False)
    first = phrase.split(" ", 1)[0]
    if first.lower() in _LOWER_FIRST or original[:1].islower():
        phrase = first.lower() + phrase[len(first):]
    return phrase, lo, hi


# "#10234", "630", "$40", "89.99", "2 November", "3/11": restated from the facts; "2 days" may be quoted
_NUMBERISH = re.compile(r"\d{3,}|[$\u20ac\u00a3#]\s?\d|\d[.,]\d\d\b|\d[/.-]\d|\d(?:st|nd|rd|th)?\s+(?:of\s+)?"
                        r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
                        r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}\b", re.I)
_WHEN_ADJUNCT = frozenset({"since", "on", "from", "until", "till", "by", "after", "before"})
# "MKWLKR", "AB12CD": a booking reference or a code, as numbers are, restated from the facts
_CODE = re.compile(r"(?=[A-Z\d]*[A-Z])[A-Z\d]{5,10}")
# the words a clause's subject starts with: a long clause is quoted from its subject to the evidence
_SUBJECT_START = frozenset({"i", "we", "my", "our", "it", "they", "the", "this", "that", "these", "you", "your",
                            "he", "she", "his", "her", "their", "nobody", "no", "nothing", "someone"})


_RELATIVE = frozenset({"that", "which", "who", "whom", "whose"})
# a clause that ends on one of these stops short of what it says: a verb waiting for its object, a
# determiner, a preposition
_DANGLING = frozenset({"seeing", "waiting", "told", "said", "saying", "asked", "getting", "having", "doing", "making", "trying",
                       "wondering", "thinking", "hoping", "wanting", "is", "are", "was", "were", "be", "been", "am",
                       "have", "has", "had", "get", "got", "the", "a", "an", "my", "your", "our", "their", "to", "of",
                       "for", "with", "at", "in", "on", "from", "by", "very", "really", "so", "too", "did", "can", "could",
                       "will", "would", "should"})
# words that open what may be left off the end of a quote: a time, a place, a reason, a manner
_ADJUNCT_START = frozenset({"for", "in", "on", "at", "since", "after", "before", "during", "every", "each", "when",
                            "while", "because", "from", "with", "without", "again", "today", "yesterday", "tonight",
                            "now", "until", "till", "despite", "by", "over", "this", "last", "all", "even"})


def _core(words: list[re.Match[str]], start: int, end: int) -> list[re.Match[str]]:
    """The words of a long clause from its subject, before the evidence at [start, end), to the
    clause's end: "yesterday afternoon we were delayed for six hours" -> "we were delayed for six
    hours". [] when that is still more than RESTATE_WORDS words: a clause is never cut before its end."""
    inside = [i for i, w in enumerate(words) if w.start() < end and start < w.end()]
    if not inside:
        return []
    first, last = inside[0], inside[-1]
    for s in range(max(0, last - RESTATE_WORDS + 1), first + 1):  # the earliest start that fits
        if words[s].group(0).lower() in _SUBJECT_START or s == 0:
            if any(w.group(0).lower() in _RELATIVE for w in words[s + 1 : first]):
                return []  # "my app that I haven't made": the subject of another clause, not of the evidence
            stop = min(len(words), s + RESTATE_WORDS)  # as far as the clause goes, at most RESTATE_WORDS
            if stop == len(words):
                return words[s:stop]
            # cut after the evidence only where what follows adds to it ("makes a squeaking noise | for
            # the first few seconds"), never before what the verb needs ("I have been charged | a pound")
            after = words[last + 1].group(0).lower() if last + 1 < len(words) else ""
            return words[s : last + 1] if after in _ADJUNCT_START else []
    return []


def repeat_of(text: str) -> str:
    """"second time" when they say it is the second time ("third email", "second month in a row"), else ""."""
    m = _REPEAT.search(text or "")
    # "the second one" is often only which of two ("the second one was fine"): a repeat only when
    # it is this one ("this is the second one") or one that went wrong the same way ("the third one
    # that broke")
    while m and m.group("what").lower() == "one" and not (
            re.search(r"\b(?:this|it|that)(?:['\u2019]s|\s+is|\s+was)\s+(?:now\s+|already\s+)?(?:the|my|our)\s+$",
                      text[max(0, m.start() - 30):m.start()], re.I)
            or re.match(r"\s+(?:that|which|to)\s+(?:has|have|had|did|does|is|was|also|now|just|broke|break|arrive|came|"
                        r"stopped|failed|leak)", text[m.end():], re.I)):
        m = _REPEAT.search(text, m.end())
    return f"{_ORDINALS[m.group(1).lower()]} {' '.join(m.group('what').lower().split())}" if m else ""


# held up for so long: "stuck in SFO for four hours", "on the phone for an hour and a half", "a 75 minute delay"
_HELD = re.compile(
    r"\b(?:delayed|stuck|stranded|held\s+up|sat|sitting|waiting|on\s+hold|on\s+the\s+(?:phone|line|tarmac|runway|plane))"
    r"(?:\s+[\w'\u2019]+){0,3}?\s+(?:for|by)\s+(?:over\s+|nearly\s+|almost\s+|more than\s+|about\s+)?"
    r"(?P<span>" + _NUMBER_WORDS + r"\+?\s+(?:hours?|hrs?|minutes?|mins?)(?:\s+and\s+a\s+half)?)\b"
    r"|(?<![\d:.,])\b(?P<num>\d+)\s*\+?\s*-?\s*(?P<unit>hour|hr|minute|min)s?\s+(?:delay|delayed|wait|hold|late)\b", re.I)
_UNITS = {"hr": "hours", "hrs": "hours", "min": "minutes", "mins": "minutes", "hour": "hours", "minute": "minutes"}


def waited_for(text: str) -> str:
    """How long they say they have waited ("three weeks", "four hours", "75 minutes"), or ""."""
    for m in _WAITED.finditer(text or ""):
        before = text[max(0, m.start() - 40) : m.start()].lower()
        if "warranty" in before or "guarantee" in before:
            continue
        return " ".join(m.group("span").lower().split())
    held = _HELD.search(text or "")
    if held and held.group("span"):
        words = held.group("span").lower().replace("+", "").split()
        if words[-1] in _UNITS:
            unit = _UNITS[words[-1]]
            words[-1] = unit[:-1] if words[0] in ("1", "one", "a", "an") else unit  # "1 hr": one hour
        return " ".join(words)
    if held:
        n = int(held.group("num"))
        unit = _UNITS[held.group("unit").lower()]
        return f"{n} {unit if n != 1 else unit[:-1]}"
    return ""


def asked_for(text: str, detection: Detection) -> str:
    """What they asked for, in our words ("a replacement or a refund"), "" when nothing but questions."""
    asks = [a for a in detection.asks if a.kind in _ASKED]
    parts: list[tuple[str, Any]] = []
    for ask in asks:
        phrase = _ASKED[ask.kind]
        if ask.kind == "refund" and re.search(r"money\s+back", ask.text, re.I):
            phrase = "your money back"
        elif ask.kind == "return" and re.search(r"label", ask.text + " " + (text or ""), re.I):
            phrase = "a prepaid label to send it back"
        elif ask.kind == "cancel" and ask.detail:
            phrase = f"to cancel {in_our_voice(clean_line(ask.detail, 60))}"
        elif ask.kind == "change" and re.match(r"(?:change|move|amend|switch|modify|rebook|re-book|reschedule)\w*\s+\S",
                                               ask.text, re.I):
            phrase = f"to {in_our_voice(clean_line(ask.text, 60))}"  # "change my reservation" -> "to change your reservation"
        elif ask.kind == "callback" and ask.detail:
            phrase = f"a call back on {clean_line(ask.detail, 30)}"
        if ask.kind in ("cancel", "callback") and ask.when:
            phrase += f" {in_our_voice(clean_line(ask.when, 40))}"
        parts.append((phrase, ask))
    if not parts:
        return ""
    out = parts[0][0]
    for i in range(1, len(parts)):
        (phrase, ask), before = parts[i], parts[i - 1][1]
        between = (text or "")[before.end : ask.start] if ask.where == before.where == "text" else ""
        alternative = bool(re.search(r"\bor\b", between, re.I)) and len(between) < 80
        glue = " or " if alternative else (" and " if i == len(parts) - 1 else ", ")
        out += glue + phrase
    return out


QUESTION_WORDS = 12  # the most words of their question quoted back ("half-caf" is two)

# their question said back as what they'd like to know, in our words: "How can I check X?" -> "how
# you can check X", "Could my card be locked?" -> "whether your card could be locked"
_AUX = r"(?:am|is|are|was|were|can|could|will|would|should|shall|may|might|must|has|have|had|do|does|did)"
_PRONOUN = {"i": "you", "we": "you", "you": "we", "u": "we", "y'all": "we", "yall": "we", "it": "it", "they": "they",
            "he": "he", "she": "she", "there": "there", "this": "this", "that": "that", "someone": "someone",
            "anyone": "anyone"}
_BE_AFTER = {("you", "am"): "are", ("you", "was"): "were", ("we", "are"): "are"}
_DETERMINERS = frozenset({"my", "our", "the", "this", "that", "your", "these", "those", "a", "an", "any"})
_TELL_ME = re.compile(r"^(?:(?:can|could|would|will)\s+(?:you|u|someone|somebody)\s+(?:please\s+)?"
                      r"(?:tell|let|show|explain\s+to)\s+(?:me|us)(?:\s+know)?|please\s+(?:tell|let)\s+(?:me|us)(?:\s+know)?"
                      r"|(?:i|we)\s+(?:would\s+like|'d\s+like|want|need)\s+to\s+know|i\s+wonder|i['\u2019]m\s+wondering)\s+"
                      r"(?P<inner>(?:what|where|when|how|why|which|who|whether|if)\b.*)$", re.I)
# verbs a "does" question turns on, to find where its subject ends ("Does your press office have…")
_COMMON_VERBS = frozenset({
    "have", "work", "cover", "include", "ship", "cost", "take", "mean", "need", "come", "go", "accept", "charge",
    "apply", "offer", "support", "allow", "affect", "get", "make", "show", "matter", "sell", "open", "close", "count",
    "expire", "run", "deliver", "arrive", "stay", "keep", "last", "fit", "use", "contain", "require", "let", "exist",
    "happen", "change", "send", "pay", "refund", "fly", "stop", "leave", "depart", "land", "carry", "do", "know"})
_IRREGULAR_S = {"have": "has", "do": "does", "go": "goes", "be": "is"}


_PAST = {"get": "got", "have": "had", "do": "did", "make": "made", "send": "sent", "take": "took", "give": "gave",
         "lose": "lost", "go": "went", "put": "put", "cut": "cut", "stop": "stopped", "drop": "dropped", "cancel": "cancelled",
         "receive": "received", "see": "saw", "get rid": "got rid", "pay": "paid", "charge": "charged", "find": "found",
         "keep": "kept", "leave": "left", "come": "came", "move": "moved", "change": "changed", "book": "booked",
         "say": "said", "tell": "told", "hear": "heard", "know": "knew", "sell": "sold", "fly": "flew", "ship": "shipped",
         "refund": "refunded", "block": "blocked", "close": "closed", "open": "opened", "add": "added", "remove": "removed",
         "update": "updated", "delete": "deleted", "process": "processed", "arrive": "arrived", "work": "worked"}


def _past(verb: str) -> str:
    """The past of a common verb ("get" -> "got"), or "" for one this does not know."""
    said = _PAST.get(verb.lower(), "")
    return verb[:1] + said[1:] if said and verb[:1].isupper() else said


def _third_person(verb: str) -> str:
    low = verb.lower()
    if low in _IRREGULAR_S:
        return _IRREGULAR_S[low]
    if re.search(r"(?:s|sh|ch|x|z|o)$", low):
        return verb + "es"
    if re.search(r"[^aeiou]y$", low):
        return verb[:-1] + "ies"
    return verb + "s"


def _ours(words: list[str]) -> str:
    return " ".join(ours(words))


def indirect_question(question: str) -> str:
    """Their question as what they'd like to know, pronouns turned round, or "" when it does not
    read back cleanly: "How can I check for an unsupported merchant?" -> "how you can check for an
    unsupported merchant"; "Is there a fee?" -> "whether there is a fee"; "Why am I being charged
    fees?" -> "why you're being charged fees"; "Does Ana have an email address?" -> "whether Ana has
    an email address". A question about what happened in the past ("Did you…") is left unsaid."""
    q = _QUESTION_LEAD_WORDS.sub("", clean_line(question)).rstrip(" ?!.").strip()
    # a question of two parts is said by its first: "How long is the warranty, and does it cover…"
    q = re.split(r"\s*(?:,|;|\s-\s|\u2013|\u2014)\s*(?:and|or|also|plus)?\s*(?=(?:what|where|when|how|why|which|who|"
                 r"is|are|do|does|can|could|will|would|should)\b)", q, maxsplit=1, flags=re.I)[0]
    if not q or "?" in q or len(_COUNTED.findall(q)) > 16 or _NUMBERISH.search(q):
        return ""  # card, account and order numbers are never said back; the facts say which order
    told = _TELL_ME.match(q)
    if told:  # "Can you tell me why this happened" -> "why this happened"
        inner = told.group("inner").split()
        if inner[0].lower() == "if":
            inner[0] = "whether"
        return _ours(inner) if len(inner) >= 2 else ""
    words = q.split()
    lowered = [w.lower() for w in words]
    wh = ""
    if lowered[0] in ("what", "where", "when", "how", "why", "which", "who"):
        wh, words, lowered = lowered[0], words[1:], lowered[1:]
        if wh == "how" and lowered and lowered[0] in ("long", "much", "many", "soon", "often", "come"):
            if lowered[0] == "come":
                return ""
            wh, words, lowered = f"how {lowered[0]}", words[1:], lowered[1:]
    if len(words) < 2 or not re.fullmatch(_AUX, lowered[0]):
        return ""
    aux = lowered[0]
    if aux in ("was", "were", "had") and not wh:
        return ""  # "Was my card blocked?": what happened is said from what went wrong, not as a question
    if aux == "did" and wh:
        return ""  # "Why did you cancel it?": the problem says what happened
    # the subject: a pronoun, a name, or a determiner and up to two words
    rest = words[1:]
    low = lowered[1:]
    if low[0] in _PRONOUN:
        n = 1
    elif low[0] in _DETERMINERS:
        n = 2 if len(low) > 1 else 0
        if n and aux not in ("do", "does") and len(low) > 2 and not re.search(r"(?:ing|ed|ly)$", low[2]) and low[2] not in (
                "be", "been", "being", "not", "still", "ever", "have", "get", "go", "take", "arrive", "work", "come",
                "show", "there", "to", "in", "on", "at", "for", "with", "from", "out", "up", "by", "of", "so", "really"):
            n = 3
    elif rest[0][:1].isupper() and not rest[0].isupper():
        n = 1 + (1 if len(rest) > 1 and rest[1][:1].isupper() else 0)  # "Joanna Geraghty"
    else:
        return ""
    if not n or n >= len(rest) and aux not in ("is", "are", "am"):
        return ""
    subject = _ours(rest[:n])
    verb_rest = rest[n:]
    if aux in ("do", "does", "did"):
        if low[0] not in _PRONOUN:  # "Does your press office have…": the subject runs to the verb
            first = 2 if low[0] in _DETERMINERS else 1  # "my refund go through": the noun is never the verb
            at = next((i for i, w in enumerate(low[first:4], first) if w in _COMMON_VERBS), 0)
            if not at:
                return ""
            subject, verb_rest = _ours(rest[:at]), rest[at:]
        if not verb_rest:
            return ""
        if wh in ("what", "how") and low[0] in ("i", "we") and aux == "do":
            phrase = f"{wh} to {_ours(verb_rest)}"  # "What do I do if…" -> "what to do if…"
            return phrase
        verb = verb_rest[0]
        if aux == "did":  # "Did you get rid of the route?" -> "whether we got rid of the route"
            verb = _past(verb)
            if not verb:
                return ""
        elif aux == "does" or subject.split()[-1].lower() in ("it", "he", "she"):
            verb = _third_person(verb)
        clause = f"{subject} {_ours([verb, *verb_rest[1:]])}"
    else:
        said = _BE_AFTER.get((subject.lower(), aux), aux)
        if subject.lower() == "you" and said == "are" and verb_rest:
            clause = f"you're {_ours(verb_rest)}"
        else:
            clause = f"{subject} {said}" + (f" {_ours(verb_rest)}" if verb_rest else "")
    return f"{wh or 'whether'} {clause}"


_QUESTION_LEAD_WORDS = re.compile(r"^(?:(?:and|also|so|but|oh|ok|okay|hi|hello|hey|please|pls)\b[,:]?\s*)+", re.I)


def _short_question(text: str) -> str:
    """Their question, one line, cut to QUESTION_WORDS words (with "…" when cut)."""
    kept: list[str] = []
    count = 0
    for word in clean_line(text).split():
        count += len(_COUNTED.findall(word))
        if count > QUESTION_WORDS:
            return _quote(" ".join(kept).rstrip(",;:") + "\u2026", end=True)
        kept.append("I" if word == "i" else word)
    return _quote(" ".join(kept), end=True)


def _and(parts: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] if parts else ""


def our_problems(reply: Reply | None, products: list[str], orders: list[str], flights: tuple[str, ...] = ()) -> list[str]:
    """The ``[[problems]]`` sentences of ``reply`` with {thing} filled in: the product and order they
    named, said once (then "it"), else the entry's own word for it."""
    if reply is None:
        return []
    if products and orders:
        thing = f"your {products[0]} from order {orders[0]}"
    elif products:
        thing = f"your {products[0]}"
    elif orders:
        thing = f"order {orders[0]}"
    else:
        thing = ""
    out: list[str] = []
    for say, default in reply.problems:
        # their flight by its number, said once: "flight UA624 was delayed", then "your flight"
        flight = f"flight {flights[0]}" if flights and not any(f"flight {flights[0]}" in o for o in out) else "your flight"
        text = say.replace("{flight}", flight)
        if "{thing}" in text:
            if not thing and not default:
                continue  # an entry that needs a named thing, and none is: never a wrong "the item"
            # the product and order are said once, with the first problem that names them
            named = thing and not any(thing in o for o in out)
            text = text.replace("{thing}", thing if named else ("it" if out and thing else default))
        out.append(text)
    return out


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SOON = re.compile(r"\b(?:today|tonight|this (?:morning|afternoon|evening)|noon|midday|end of (?:the )?day|eod|asap"
                   r"|as soon as possible|immediately|right away|straight away|urgently|right now"
                   r"|within\s+(?:the\s+next\s+)?\S+\s+(?:working\s+|business\s+)?hours?"
                   r"|\d{1,2}(?::\d{2})?\s*(?:am|pm))\b", re.I)


def due_by(deadline: str, day: date, answer_day: date) -> bool:
    """True when the customer's ``deadline`` ("today", "by Friday", "by 3rd December") falls on or
    before ``answer_day``, the day we would otherwise answer by, or has already passed on ``day``."""
    text = deadline.lower()
    if _SOON.search(text):
        return True
    if "tomorrow" in text:
        return day + timedelta(days=1) <= answer_day
    wanted: date | None = None
    if m := re.search(r"\b(" + "|".join(_WEEKDAYS) + r")\b", text):
        wanted = day + timedelta(days=(_WEEKDAYS.index(m.group(1)) - day.weekday()) % 7)
    elif "weekend" in text or re.search(r"end of (?:the )?week", text):
        wanted = day + timedelta(days=(4 - day.weekday()) % 7)
    elif m := re.search(r"within\s+(\d+)\s+(?:working\s+|business\s+)?days?", text):
        wanted = day + timedelta(days=int(m.group(1)))
    else:
        m = re.search(r"(\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?\s+([a-z]{3,9})|([a-z]{3,9})\s+(\d{1,2})(?:st|nd|rd|th)?\b",
                      text)
        if m:
            num, name = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
            month = next((i + 1 for i, n in enumerate(x.lower() for x in _MONTHS)
                          if n.startswith(name[:3]) and name in n), 0)
            if month:
                try:
                    wanted = date(day.year, month, int(num))
                except ValueError:
                    wanted = None
                if wanted and (day - wanted).days > 180:  # "by 3rd January", written in December
                    wanted = date(day.year + 1, month, int(num))
    return wanted is not None and wanted <= answer_day


# a checklist item that passes the case to someone: "[[confirm: I've passed your message to our support lead…]]"
_HAND_OFF = re.compile(r"\s*\[\[confirm:\s*I(?:['\u2019]ve| have) (?:passed|handed|sent|forwarded)\b[^\]]*\]\]")


def one_hand_off(line: str, steps: tuple[str, ...]) -> str:
    """An ask's line without its hand-off item when a problem's step already passes the case on
    (an apology asked for over how our colleague behaved goes to their team lead once, not also to
    the support lead): one person takes it up, and the agent confirms one hand-off."""
    if not any(_HAND_OFF.match(step) for step in steps):
        return line
    return _HAND_OFF.sub("", line).strip() or line


def build_context(message: Message, detection: Detection, case_id: int, now: datetime,
                  support: SupportSettings, *, working_days: int = 1,
                  holidays: frozenset[date] = frozenset(), specialist: Specialist | None = None,
                  extra: Mapping[str, str | date] | None = None, reply: Reply | None = None,
                  within: str = "") -> dict[str, Any]:
    """The personalisation context, exactly the keys of CONTEXT_KEYS (see templates/README.md).

    Every customer-supplied value is one clean line of plain text; lists are
    de-duplicated. Raises DraftError for an ``extra`` key that is not one of
    EXTRA_KEYS. ``reply`` is the situation and policy decision
    (``drafting.situation.decide``); ``within`` the first-response time an
    urgent case promises contact in ("within the hour").
    """
    facts = detection.facts
    unknown = set(extra or {}) - set(EXTRA_KEYS)
    if unknown:
        raise DraftError(f"unknown extra context {', '.join(sorted(unknown))}")
    orders = list(dict.fromkeys(o for o in map(order_value, facts.orders) if o))
    said_in = f"{message.subject}\n{message.text}"
    nouns = {o: order_noun(said_in, o) for o in orders}
    orders = [o for o in orders if nouns[o]]  # a card or account number is not an order
    refs = [f"{nouns[o]} {o}" for o in orders]  # each with the customer's noun: "order 48213", "flight 4435"
    ordered = [o for o in orders if nouns[o] == "order"]  # what {thing} may name: never "your kettle from flight 4435"
    products = list(dict.fromkeys(p for p in (_ARTICLE.sub("", clean_line(p, 60))
                                              for p in facts.products) if p))
    dates = list(dict.fromkeys(d for d in (clean_line(d, 40) for d in facts.dates) if d))
    amounts = list(dict.fromkeys(a for a in (clean_line(a, 30) for a in facts.amounts) if a))
    words, source = their_words(message, facts)
    trouble = reply.trouble if reply else detection.complaint
    score, phrase, unsaid = _key_clause(message.text, detection,
                                (reply.trouble_span if reply else (0, 0)) if trouble else None)
    waited = waited_for(message.text)
    # "You asked" only for a real question: "So you lost my bag?" is a complaint, not a question
    questions = [a.text for a in detection.asks if a.kind == "information" and a.where == "text"
                 and asks_like_a_question(a.text) and not rhetorical(a.text) and len(_WORD.findall(a.text)) >= 3]
    wanted = asked_for(message.text, detection)
    asked = list(questions)  # what detection read as questions: only those are said as what they'd like to know
    if not questions and not detection.asks:  # detection read no ask: their first real question, to restate
        questions = [q for q in _sentence_list(message.text) if not _REQUEST.search(q)
                     and q.endswith("?") and asks_like_a_question(q) and not rhetorical(q)
                     and len(_WORD.findall(q)) >= 3][:1]
    subject = reply_subject(message.subject)[4:] if message.subject.strip() else ""
    echo = subject_opens_text(subject, message.text)
    named = bool(subject.strip()) and not echo  # a subject of its own says what it is about
    # said back in our words ("your bag was left in Denver"), else quoted: a clause only the case
    # being trouble gave is quoted only when nothing else names the case, and their first statement,
    # a guess at what went wrong, is said as what we understood only when it is all they told us
    only = score == FIRST_STATEMENT and len(_sentence_list(without_links(message.text))) == 1
    restated = in_our_words(phrase, unsaid) if score > FIRST_STATEMENT or only else ""
    if not restated and score in _TROUBLE_ONLY and (orders or products or (named and (wanted or questions))):
        phrase = ""
    if phrase and questions and " ".join(_WORD.findall(phrase.lower())) in " ".join(_WORD.findall(questions[0].lower())):
        phrase = ""  # their question says it ("why was I declined from getting cash?"): not said twice
    if orders:
        about = refs[0] + (f" ({products[0]})" if products else "")
    elif products:
        about = f"your {products[0]}"
    else:
        # a subject that is only their first words says nothing the restatement does not
        quoted = "" if echo else _quote(" ".join(FORWARDED.sub("", subject).split()[:RESTATE_WORDS]), end=False)
        about = f"\u201c{quoted}\u201d" if quoted else "what you wrote to us about"
    details = ", ".join(refs[:2] + products[:2] + dates[:2] + amounts[:2])
    name = first_name(message.sender_name)
    day = now.date()
    values: dict[str, str] = {k: "" for k in EXTRA_KEYS}
    for key, value in (extra or {}).items():
        text = format_day(value) if isinstance(value, date) else clean_line(str(value), 300)
        values[key] = text.rstrip(" .")
    answer_day = add_working_days(day, working_days, holidays)
    next_day = format_day(answer_day)
    deadline = reply.deadline if reply else ""
    # a deadline of theirs that falls before our usual answer (today, tonight, by a day already
    # passed) is met within the first-response time, never "I'll tell you by Wednesday"
    soon = bool(deadline) and due_by(deadline, day, answer_day)
    urgent = bool(reply and (reply.urgent or soon) and within)
    next_step = within if urgent else f"by {next_day}"
    if soon and not urgent:
        deadline = ""  # no first-response time to promise: better unsaid than a promise after it
    problems = our_problems(reply, products, ordered, tuple(o for o in orders if nouns[o] == "flight"))
    # what they only asked about or feared ("is my card blocked?") is said as what they'd like to know
    wonders = [p[len(WONDERED):] for p in problems if p.startswith(WONDERED)]
    problems = [p for p in problems if not p.startswith(WONDERED)]
    wondered = wonders[0] if wonders else (indirect_question(asked[0]) if asked else "")
    if phrase and not restated and _fragment(phrase):
        phrase = ""  # a fragment ("She didn't", "my daughter") quoted back says nothing of what happened
    if phrase and not restated and not_the_problem(phrase, message.text):
        phrase = ""  # nearly all of a short message quoted back is parroting; said in our words it is not
    if problems or not phrase:
        restated = ""
    rep = repeat_of(message.text)
    said = "" if problems else phrase.lower()  # the phrase is not quoted when the problems or our words say it
    rep = "" if rep and rep.split()[0] in said else rep
    waited = "" if waited and waited in said else waited
    understood = _and([*(problems or [restated]), *([f"this is the {rep}"] if rep else []),
                       *([f"you've been waiting {waited}"] if waited else [])]) if problems or restated else ""
    phrase = "" if restated else phrase
    placeholders = {"when": next_step, "order": refs[0] if orders else "your order",
                    "deadline": deadline, "specialist": specialist.full if specialist else "a colleague"}
    return {
        "greeting": f"Hi {name}," if name else "Hi there,",
        "first_name": name,
        "shop": clean_line(support.name, 80),
        "agent": clean_line(support.agent, 80),
        "support_address": clean_line(support.address, 120),
        "case_id": case_id,
        "subject": subject,
        "their_words": words,
        "their_words_source": source,
        "about": about,
        "details": details,
        "cancel_what": cancel_what(message, facts),
        "cancel_when": next((clean_line(a.when, 60) for a in detection.asks
                             if a.kind in ("cancel", "close_account") and a.when), ""),
        "order": orders[0] if orders else "", "orders": orders, "order_ref": refs[0] if refs else "",
        "product": products[0] if products else "", "products": products,
        "date": dates[0] if dates else "", "dates": dates,
        "amount": amounts[0] if amounts else "", "amounts": amounts,
        "topic": clean_line(detection.topic, 40),
        "level": detection.level,
        "angry": detection.angry,
        "complaint": trouble,
        "archetypes": list(detection.archetype_names),
        "today": format_day(day),
        "next_step_date": next_day,
        "next_step_days": working_days,
        "specialist": specialist.full if specialist else "",
        "specialist_name": specialist.name if specialist else "",
        "specialist_role": specialist.role if specialist else "",
        "specialist_why": specialist.why if specialist else "",
        "situation": reply.situation if reply else ("general" if detection.complaint else "information"),
        "remedy": fill(reply.remedy, placeholders) if reply else "",
        "asks": list(reply.asks) if reply else [],
        # the cancelling reply confirms the cancellation itself: no line of the policy's for it
        "ask_replies": [{"kind": k, "text": one_hand_off(fill(t, placeholders), reply.steps if reply else ())}
                        for k, t in (reply.ask_lines if reply else ())
                        if k != "cancel" or "cancelling" not in detection.archetype_names],
        "problem_steps": list(reply.steps) if reply else [],
        "urgent": urgent,
        "deadline": deadline,
        "deadline_line": fill(reply.deadline_say, placeholders) if reply and deadline else "",
        "next_step": next_step,
        "answers": [{"id": a.id, "title": a.title, "text": a.text} for a in (reply.answers if reply else ())],
        "open_questions": list(reply.open_questions) if reply else [],
        "all_answered": bool(reply and all_answered(reply)),
        "about_order": bool(reply.about_order if reply else orders or products),
        "upset": reply.upset if reply else detection.level in ("angry", "furious"),
        "problem_phrase": phrase,
        "repeat": rep,
        "waited": waited,
        "asked_for": wanted,
        "their_question": _short_question(questions[0]) if questions else "",
        "problems": problems,
        "understood": understood,
        "restated": restated,
        "wondered": wondered,
        "hardship": bool(reply and reply.hardship),
        "told_us": told_us(message.text),
        "leaving": bool(_LEAVING.search(message.text or "")) or bool(
            {"cancel", "close_account"} & {a.kind for a in detection.asks}) or "cancelling" in detection.archetype_names,
        **values,
    }
