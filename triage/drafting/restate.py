"""Their words said back in ours, from the clause's own structure.

There is no parser or tagger here (detection runs ``spacy.blank("en")`` with the lookup
lemmatizer only), so the structure of a clause is read from its closed-class words
(pronouns, auxiliaries, modals, negation, determiners) and the lemma table: who or what
it is about (the subject), what happened (the verb group, with its tense and negation as
they wrote it) and to what (the rest). ``ours`` turns the pronouns round ("my" ->
"your", the company's "you" -> "we"/"us"); ``in_our_words`` says one clause of what went
wrong back as ours ("my bag was left in Denver" -> "your bag was left in Denver", "you
lost my bag" -> "we lost your bag"), or "" when the clause does not read as one (no
subject, no verb) or saying it as ours would admit more than they said ("you don't
care" is never "we don't care"). Pure functions over one short clause.
"""

from __future__ import annotations

import re
from functools import cache

from triage.detect.lexicon import _lemma_index, is_ordinary_word, lemma_table

# their words about themselves as ours about them, and theirs about us as ours about us
_SWAP = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself", "i'm": "you're",
         "i've": "you've", "i'd": "you'd", "i'll": "you'll", "we": "you", "us": "you", "our": "your",
         "ours": "yours", "ourselves": "yourselves", "we're": "you're", "we've": "you've", "we'd": "you'd",
         "we'll": "you'll", "your": "our", "ur": "our", "yours": "ours", "yourself": "ourselves",
         "you're": "we're", "you've": "we've", "you'd": "we'd", "you'll": "we'll", "am": "are",
         "y'all": "we", "yall": "we"}
# written without their apostrophe: "dont", "im", "cant"
_CONTRACTED = {"dont": "don't", "didnt": "didn't", "doesnt": "doesn't", "cant": "can't", "couldnt": "couldn't",
               "wouldnt": "wouldn't", "shouldnt": "shouldn't", "isnt": "isn't", "wasnt": "wasn't", "werent": "weren't",
               "arent": "aren't", "havent": "haven't", "hasnt": "hasn't", "hadnt": "hadn't", "wont": "won't",
               "im": "I'm", "ive": "I've", "u": "you", "ya": "you"}
AUX = frozenset({"am", "is", "are", "was", "were", "be", "been", "being", "has", "have", "had", "do", "does", "did",
                 "can", "could", "will", "would", "shall", "should", "may", "might", "must", "keep", "keeps", "kept",
                 "get", "gets", "got", "gotten", "seem", "seems", "seemed", "still", "ca", "wo"})
_NEGATION = re.compile(r"n['\u2019]t$|^(?:not|never|no|nothing|nobody|none|neither|nor|cannot)$")
_VERB_NEGATION = re.compile(r"n['\u2019]t$|^(?:not|never|cannot)$")  # never "no" or "nothing": no verb of their own
_PRONOUNS = frozenset({"i", "we", "you", "it", "they", "he", "she", "there", "nobody", "someone", "somebody",
                       "everyone", "everybody", "everything", "nothing", "noone", "anyone", "this", "that"})
_CONTRACTED_SUBJECT = re.compile(r"^(?:i|we|you|it|they|he|she|there|that|nobody|everything|nothing)['\u2019]"
                                 r"(?:m|re|ve|s|d|ll)$", re.I)
_DETERMINERS = frozenset({"my", "our", "your", "the", "this", "that", "these", "those", "a", "an", "his", "her",
                          "their", "its", "every", "all", "some", "one", "each", "another", "no", "both", "ur",
                          "two", "three", "several", "many", "most", "any"})
# between a subject and its verb: "I just got", "it still hasn't"
_ADVERBS = frozenset({"just", "still", "already", "really", "finally", "even", "also", "only", "always", "now",
                      "again", "then", "actually", "literally", "apparently", "obviously", "clearly", "simply",
                      "completely", "totally", "basically", "recently", "suddenly", "somehow", "ever", "all"})
# before the subject, and nothing of what happened: "so", "and now", "well"
_LEAD = frozenset({"so", "and", "but", "also", "plus", "then", "now", "well", "oh", "ok", "okay", "yes", "yeah",
                   "today", "yesterday", "tonight", "again", "anyway", "honestly", "sadly", "unfortunately", "apparently",
                   "however", "actually", "basically", "because", "cause", "cuz", "as", "since", "while", "when", "after"})
# the company as the subject of a feeling or a habit is a judgement of us, never ours to say back:
# "you don't care", "you never listen", "you lie"
_JUDGED = frozenset({"care", "bother", "respect", "value", "lie", "cheat", "steal", "rob", "scam", "suck", "hate",
                     "think", "want", "like", "love", "listen", "know", "understand", "mean", "deserve",
                     "try", "pretend", "expect", "blame", "joke", "laugh", "rip", "fool"})
_PAST_IRREGULAR = frozenset({"lost", "left", "sent", "put", "cut", "got", "had", "made", "took", "gave", "kept",
                             "told", "said", "came", "went", "broke", "paid", "sold", "flew", "found", "held",
                             "brought", "bought", "stuck", "shut", "set", "let", "hit", "ran", "stood", "sat",
                             "lied", "won", "ate", "forgot", "forgotten", "taken", "given", "broken", "done", "gone",
                             "seen", "shown", "thrown", "threw", "hung", "rang", "rung", "spent", "charged"})
_TAGS = re.compile(r"(?:https?://|www\.|[@#])", re.I)
# a concession: what they grant is not what went wrong ("okay, I understand a delay", "delays happen",
# "it's not a big deal", "0% isn't bad")
CONCEDED = re.compile(r"^(?:ok(?:ay)?|fair\s+enough|yes|sure)\b|\b(?:i|we)\s+(?:understand|know|get\s+(?:it|that))\b"
                      r"|\bmaybe\b|\bperhaps\b|\bunderstandable\b|\bno\s+(?:problem|worries|big\s+deal)\b"
                      r"|\b(?:things|these\s+things|delays|stuff|it)\s+happens?\b(?!\s+(?:every|each|all|again|always|constantly|too))"
                      r"|\bnot\s+(?:about|blaming\s+you\s+for|complaining\s+about)\b|\bi\s+doubt\b"
                      r"|(?:\bnot|n['\u2019]t)\s+(?:so\s+|too\s+|that\s+|really\s+)?(?:bad|terrible|awful|a\s+(?:big\s+)?deal"
                      r"|a\s+problem|an\s+issue|the\s+(?:issue|problem|point))\b", re.I)
_TURNS = re.compile(r"\b(?:but|however|yet|although|though|still)\b", re.I)


def conceded(sentence: str, start: int, end: int) -> bool:
    """True when the words at sentence[start:end] are granted, not complained of: a concession
    before them in their clause, since the last "but" ("I understand delays happen" before "…, but
    my bag was lost" concedes the delay, not the bag), or one about them right after ("the delay is
    understandable", "delays happen")."""
    head = re.split(r"[,;:.!?\u2013\u2014]", sentence[:start])[-1]
    turns = list(_TURNS.finditer(head))
    head = head[turns[-1].end():] if turns else head
    tail = _TURNS.split(re.split(r"[,;:.!?\u2013\u2014]", sentence[end:])[0])[0]
    return bool(CONCEDED.search(head) or re.match(r"\s*(?:is|are|was|were|'s)?\s*(?:understandable|fine|ok|okay|forgivable)\b"
                                                    r"|\s*happens?\b", tail, re.I))


@cache
def _verbs() -> frozenset[str]:
    return frozenset(_lemma_index()["verb"])


@cache
def _adjectives() -> frozenset[str]:
    return frozenset(_lemma_index()["adj"])


@cache
def _nouns() -> frozenset[str]:
    return frozenset(_lemma_index()["noun"])


@cache
def _lemmas() -> frozenset[str]:
    return frozenset(lemma_table().values())


def _known(word: str) -> bool:
    """True for a word the lemma table knows as a form or a lemma: an English word, not an acronym."""
    return word in lemma_table() or word in _lemmas()


def lemma_of(word: str) -> str:
    """The lookup table's lemma of ``word`` as written ("declined" -> "decline"); the word itself when unknown."""
    return lemma_table().get(word, word)


def _finite(word: str) -> bool:
    """True for a word that carries a clause's tense after a subject that is not a pronoun: an
    auxiliary, a modal, a negation, or a past form ("lost", "declined", "showed")."""
    low = word.lower().replace("\u2019", "'")
    if low in AUX or _VERB_NEGATION.search(low):
        return True
    lemma = lemma_of(low)
    if lemma == low or lemma not in _verbs():
        return False
    return low.endswith("ed") or low in _PAST_IRREGULAR or (
        low not in _nouns() and not low.endswith("ing"))  # "waits", "disconnects": never a noun


def _verb_after_pronoun(word: str) -> bool:
    low = word.lower().replace("\u2019", "'")
    return _finite(low) or lemma_of(low) in _verbs() and not low.endswith("ing")


def ours(words: list[str]) -> list[str]:
    """``words`` with the pronouns turned round: theirs about themselves ("I", "my", "we") as ours
    about them ("you", "your"), and theirs about us ("you", "your") as ours about us ("we"/"us",
    "our"); "I am", "I was" agree ("you are", "you were"). The company's "you" is "we" where it
    does something ("you lost", "that you sent", "whether you ship") and "us" where something is
    done to it ("told you"). Punctuation around a word stays as it was ("my," -> "your,")."""
    out: list[str] = []
    bare = [w.strip(".,;:!?\"'()\u201c\u201d") or w for w in words]
    lowered = [w.lower().replace("\u2019", "'") for w in bare]
    for i, (word, core, low) in enumerate(zip(words, bare, lowered, strict=True)):
        before = lowered[i - 1] if i else ""
        after = lowered[i + 1] if i + 1 < len(lowered) else ""
        said = core
        if core == "US" or (low == "us" and core[:1].isupper() and i):
            said = core  # "US Airways": a name, not us
        elif low in ("you", "u", "ya"):
            if after in ("guys", "people", "lot", "folks", "all") and i + 1 < len(words):
                out.append(word.replace(core, "we"))
                continue
            subject = not before or before in _OPENS_CLAUSE or after in AUX or _NEGATION.search(after) or (
                after in _ADVERBS) or (bool(after) and _verb_after_pronoun(after) and not after.endswith("ing"))
            # "told you to wait" is done to us; "told you would update it": "you" does the updating
            does = after in AUX or bool(_VERB_NEGATION.search(after))
            said = "we" if subject and (before not in _SWAP_OBJECT_BEFORE or does and before in _TELLING) else "us"
        elif low in ("guys", "people", "lot", "folks", "all") and before in ("you", "u", "ya") and out and out[-1] == "we":
            continue
        elif low == "am" and before not in ("i", "i'm"):
            said = core  # "9 am"
        elif low == "was" and before in ("i", "you", "u"):
            said = "were"
        elif low in _SWAP:
            said = _SWAP[low]
        out.append(word.replace(core, said, 1) if core != said else word)
    return out


def in_our_voice(text: str) -> str:
    """``text`` with its pronouns turned round (``ours``): "cancel my box" -> "cancel your box"."""
    return " ".join(ours(text.split()))


# a "you" after these starts a clause of its own: "whether you ship", "that you sent"
_OPENS_CLAUSE = frozenset({"and", "or", "if", "when", "that", "whether", "because", "but", "so", "as"})
# after these a "you" may be the one told ("told you to wait") or the subject of what was said ("told
# you would call")
_TELLING = frozenset({"tell", "told", "said", "promised", "assured", "emailed", "called", "asked", "showed", "call",
                      "ask", "confirmed", "explained", "wrote"})
# after these, "you" is what something is done to: "told you", "for you", "with you"
_SWAP_OBJECT_BEFORE = frozenset({"to", "for", "with", "at", "from", "by", "about", "of", "on", "than", "tell", "told",
                                 "called", "emailed", "asked", "showed", "paid", "gave", "sent", "call", "ask"})


def _words(clause: str) -> list[str]:
    words = [w for w in re.findall(r"[^\s]+", clause)]
    words = [w.strip("\"'\u201c\u201d\u2018,;:()[]") for w in words]
    words = [w.rstrip(".!?\u2026") for w in words if w]
    return [_CONTRACTED.get(w.lower(), w) for w in words if w]


def in_our_words(clause: str, unsaid: str = "I") -> str:
    """One clause of theirs about what went wrong, said back in our words, or "" when it does not
    read as a clause (a subject, then a verb), holds a link or a tag, or would have us say
    something about ourselves they did not say happened (a feeling, a habit, a verdict: "you don't
    care", "you never answer"), or what will or would happen (never said as fact: "your payment will be
    taken twice"), or whose subject is only "it", "he", "she", "this" or "that". ``unsaid`` is who
    a clause with no subject of its own is about: "I" (the customer) by default, the subject of the
    clause before it across an aside ("my son", for "My son, who is 12, | was refused boarding"), or
    "" when no one can say (nothing is said). Tense and negation stay theirs: "my bag was left in Denver" ->
    "your bag was left in Denver"; "I've been charged twice" -> "you've been charged twice"; "you
    lost my bag" -> "we lost your bag"; "was told to wait" -> "you were told to wait"; "still no
    response" -> "there's still no response"."""
    words = _words(clause)
    if not words or any(_TAGS.match(w) for w in words):
        return ""
    while len(words) > 2 and words[0].lower() in _LEAD:
        words = words[1:]
    lowered = [w.lower().replace("\u2019", "'") for w in words]
    if len(words) < 2:
        return ""
    if _nothing_there(lowered):  # "still no response", "no compensation": said as such
        return _tidy(["there's", *words])
    verb = _verb_at(lowered)
    if verb is None:
        # no subject said ("was told to wait", "been delayed three times"): it happened to them, or to
        # whoever the clause before named
        if lowered[0] in ("was", "were", "been", "got", "had") and unsaid != "I":
            if not unsaid or lowered[0] == "been" or lowered[0] in ("got", "had") and len(words) <= 2:
                return ""
            lead = unsaid.split()
            words, verb = [*lead, *words], len(lead)
        elif lowered[0] in ("was", "were"):
            words, verb = ["I", *words], 1
        elif lowered[0] == "been":
            words, verb = ["I've", *words], 1
        elif lowered[0] in ("got", "had") and len(words) > 2:
            words, verb = ["I", *words], 1
        else:
            return ""
        lowered = [w.lower().replace("\u2019", "'") for w in words]
    if any(w in _SUPPOSED for w in lowered) or any(w in ("must", "might", "could", "would") and after == "have"
                                                   for w, after in zip(lowered, lowered[1:], strict=False)):
        return ""  # "you must have been swamped", "bad weather shouldn't mean bad service": not what happened
    if _future(lowered, verb):
        return ""  # "your loan payment will be taken twice": what will happen is not said as what did
    subject = lowered[:verb]
    if subject[0] not in _DETERMINERS | _PRONOUNS and not _CONTRACTED_SUBJECT.match(subject[0]) and subject[0] not in (
            "you", "u", "y'all", "yall", "i", "we"):
        words, verb, subject = ["the", *words], verb + 1, ["the", *subject]  # "supervisor humiliated us"
    if len(subject) == 1 and subject[0] in _BARE:
        return ""  # "it broke": in our sentence "it" would name nothing; their words say it better
    if not _a_state(lowered, verb):
        return ""
    said = ours(words)
    company = any(w in ("you", "u", "ya", "y'all", "yall", "you're", "you've", "you'd", "you'll") for w in subject) or (
        bool(subject) and subject[0] in ("your", "ur"))
    if company:
        # what we did is said back only as something that happened (a past or perfect verb), never a
        # feeling or a habit of ours they judge
        group = lowered[verb: verb + 4]
        if any(lemma_of(w) in _JUDGED for w in group) or not any(
                w.endswith("ed") and lemma_of(w) != w or w in _PAST_IRREGULAR or w in ("have", "has", "had", "was", "were", "did", "didn't",
                                                                  "haven't", "hasn't", "wasn't", "weren't")
                or w.endswith("'ve") for w in group):
            return ""
    return _tidy(said)


def _future(lowered: list[str], verb: int) -> bool:
    """True when the clause's verb group says what will or would happen ("will be taken", "I'll",
    "is going to", "gonna"); "won't", "wouldn't" say what does not happen now ("it won't switch on")."""
    group = lowered[verb: verb + 3]
    return bool(verb and re.search(r"['\u2019](?:ll)$", lowered[verb - 1])) or bool(group) and (
        group[0] in ("will", "would", "shall", "gonna") or "going" in group[:2] and "to" in group[1:3])


def has_verb(phrase: str) -> bool:
    """True when ``phrase`` holds a verb that carries a tense ("makes a squeaking noise", "was
    left"): "my daughter", "the gate agent" do not tell what happened."""
    return any(_verb_after_pronoun(w) or _finite(w) for w in _words(phrase)[:6])


def lone_subject(phrase: str) -> bool:
    """True when ``phrase`` is only a subject, a determiner and its noun, with no verb: "my son",
    "our dog", "my grandmother" (before an aside: "My son, who is 12, was refused boarding")."""
    lowered = [w.lower() for w in _words(phrase)]
    return 2 <= len(lowered) <= 4 and lowered[0] in ("my", "our", "the", "his", "her", "their") and not any(
        _finite(w) or w in _PRONOUNS for w in lowered[1:])


# a subject that names nothing said on its own
# ("they" is the people they dealt with: "they say they won't fix the handle")
_BARE = frozenset({"it", "it's", "its", "this", "that", "that's", "he", "she", "he's", "she's"})
# what should be, or what must have been, is not what happened
_SUPPOSED = frozenset({"should", "shouldn't", "ought", "should've", "could've", "would've", "must've", "might've"})
_COPULA = frozenset({"is", "are", "was", "were", "am", "be", "been", "being", "isn't", "aren't", "wasn't", "weren't"})
_DEGREE = frozenset({"so", "very", "really", "just", "absolutely", "totally", "completely", "beyond", "extremely",
                     "incredibly", "pretty", "quite", "too", "such", "truly", "utterly", "simply", "now", "still", "also"})
# what a thing is in, not what it is like: "my bag is missing", "the app is down", "it's still pending"
_STATES = frozenset({"missing", "gone", "late", "stuck", "down", "closed", "offline", "unavailable", "empty", "wrong",
                     "out", "off", "frozen", "locked", "blocked", "full", "overbooked", "dead", "broken", "lost", "due",
                     "pending", "stranded", "on", "in", "at", "from", "for", "with", "without", "under", "over", "into",
                     "away", "nowhere", "there", "here", "unable", "able", "supposed", "charged", "current", "available",
                     "possible", "valid", "correct", "right", "incorrect", "invalid", "different", "short", "double",
                     "twice", "less", "more", "still", "being", "been", "no", "not", "never", "nothing", "trying"})


def _a_state(lowered: list[str], verb: int) -> bool:
    """False when the clause only judges its subject: a copula and a quality ("the service is horrible",
    "three late deliveries is enough") or what it is not ("I'm not a grown man"), never what happened
    to it or the state it is in ("my bag is missing", "the kiosks weren't working", "it isn't current")."""
    at = verb
    if at and re.search(r"['\u2019](?:s|re|m)$", lowered[at - 1]):
        pass  # "it's", "they're", "I'm": the copula is in the subject's word
    elif at < len(lowered) and lowered[at] in _COPULA:
        at += 1
    else:
        return True
    negated = lowered[at - 1].endswith("n't")
    while at < len(lowered) and (lowered[at] in _DEGREE or lowered[at] == "not"):
        negated = negated or lowered[at] == "not"
        at += 1
    if at >= len(lowered):
        return False
    word = lowered[at]
    if negated and word in ("a", "an", "the", "my", "your", "our", "that", "so", "very"):
        return False  # "I'm not a grown man": what it is not
    # what it is (not) in is what went wrong ("my bag is missing", "it isn't current"); a quality,
    # said or denied, is a verdict ("the service is horrible", "this trip was not good")
    return bool(word in _STATES or re.search(r"(?:ed|en|ing)$", word) or word in _PAST_IRREGULAR or word[:1].isdigit())


def judges_us(clause: str) -> bool:
    """True when ``clause`` is their judgement of us, not something that happened: we (the company,
    "you people", "your staff") as the subject of a feeling or an attitude ("you don't care about
    your customers", "you people never listen"). Neither quoted back nor said as ours."""
    lowered = [w.lower().replace("\u2019", "'") for w in _words(clause)]
    while len(lowered) > 2 and lowered[0] in _LEAD:
        lowered = lowered[1:]
    if not lowered or not (lowered[0] in ("you", "u", "ya", "y'all", "yall", "you're", "you've") or lowered[0] in (
            "your", "ur") and len(lowered) > 2):
        return False
    return any(lemma_of(w) in _JUDGED for w in lowered[1:6])


def _nothing_there(lowered: list[str]) -> bool:
    """True for a clause that says only that something is missing: "still no response", "no refund"."""
    at = 1 if lowered[0] in ("still", "yet", "again") else 0
    return (len(lowered) > at + 1 and lowered[at] == "no" and len(lowered) - at <= 5
            and not any(_finite(w) for w in lowered[at + 1:]) and lowered[at + 1] in _nouns()
            and lowered[at + 1] not in ("longer", "one", "more", "way", "matter", "idea"))


def tells_what_happened(clause: str) -> bool:
    """True when ``clause`` reads as something that happened: a subject (said, or left unsaid as in
    "was told to wait") and a verb group, not only a quality of its subject ("I'm not a grown man",
    "the service is horrible")."""
    words = _words(clause)
    while len(words) > 2 and words[0].lower() in _LEAD:
        words = words[1:]
    lowered = [w.lower().replace("\u2019", "'") for w in words]
    if len(lowered) < 2:
        return False
    verb = _verb_at(lowered)
    if verb is None:
        return _nothing_there(lowered) or lowered[0] in ("was", "were", "been", "got", "had") or bool(_NEGATION.search(lowered[0])) and (
            lowered[0] not in ("no", "not", "nothing", "nobody", "none"))
    return _a_state(lowered, verb)


def _verb_at(lowered: list[str]) -> int | None:
    """Where the verb group starts after the clause's subject (a pronoun, a contracted one, or a
    determiner and up to four words), or None when the clause opens with no subject."""
    first = lowered[0]
    if _CONTRACTED_SUBJECT.match(first):
        return 1
    if first in ("this", "that") and len(lowered) > 2 and not _finite(lowered[1]):
        pass  # "this trip was…": a determiner, read below
    elif first in _PRONOUNS or first in ("you", "u", "y'all", "yall", "no one"):
        at = 1
        if first == "you" and len(lowered) > 1 and lowered[1] in ("guys", "people", "lot", "folks", "all"):
            at = 2
        while at < len(lowered) and lowered[at] in _ADVERBS:
            at += 1
        if at < len(lowered) and (_verb_after_pronoun(lowered[at]) or _NEGATION.search(lowered[at])):
            return 1 if first != "you" or at == 1 else 2
        return None
    if (first not in _DETERMINERS and first in _nouns() and first not in _verbs() and first not in _adjectives()
            and len(lowered) > 2):
        # a subject without its article, as short messages write it: "supervisor humiliated us",
        # "back rows NOT CLEANED": a noun and a past verb or a negation within two words
        for at in (1, 2):
            word = lowered[at]
            if word.endswith("ed") and lemma_of(word) in _verbs() or word in _PAST_IRREGULAR or _NEGATION.search(word):
                return at
            if word not in _nouns():
                break
        return None
    if first in _DETERMINERS:
        for at in range(2, min(len(lowered), 7)):
            if _finite(lowered[at]) and lowered[at] not in ("that", "which", "who"):
                return at
            if lowered[at] in ("that", "which", "who", "i", "we", "you"):
                # "the transfer that I tried was declined": the relative clause has a verb group of its
                # own, and the subject's is the next one after it
                end = at + 1
                while end < len(lowered) and not _finite(lowered[end]):
                    end += 1
                while end < len(lowered) and _finite(lowered[end]):
                    end += 1
                    # "that I was promised | was never paid": an auxiliary after a participle starts the next
                    if end < len(lowered) and lowered[end] in AUX and lowered[end - 1] not in AUX:
                        return end
                while end < len(lowered) and not _finite(lowered[end]):
                    end += 1
                return end if end < min(len(lowered), at + 10) else None
    return None


def _tidy(words: list[str]) -> str:
    """The words as one clause of ours: a capital kept only for "I" and names."""
    closed = _PRONOUNS | _DETERMINERS | AUX | _ADVERBS | {"no", "not", "never", "there's"}
    # a shouted word is said plainly ("DAYS" -> "days"); an acronym ("ATM", "IVR") stays as it is
    out = [w.lower() if i == 0 and is_ordinary_word(w.lower()) or w.isupper() and len(w) > 1 and _known(w.lower())
           or w.lower() in closed else w for i, w in enumerate(words)]
    text = " ".join(out)
    return re.sub(r"\bi\b", "I", text)
