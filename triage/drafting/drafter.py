"""Drafting: choose a template by the owner's rules, render it safely, lint it.

``Drafter.load(rules_dir, templates_dir, support)`` reads ``rules/replies.toml``
and every ``templates/*.j2`` and checks them all before any mail is touched:
TOML keys, template names, Jinja syntax, undefined variables (a static scan
and a render of every template against sample contexts with StrictUndefined),
tone-linter findings and text hygiene in the rendered samples. Every problem
is raised together as one ``RulesError``.

Customer text only ever enters a template as a *value* of the context
(``triage.drafting.context``, documented in templates/README.md); templates run in
a ``SandboxedEnvironment`` with autoescape off, because mail is plain text.

Its neighbours: ``triage.drafting.rules`` (replies.toml), ``triage.drafting.context``
(the template context), ``triage.drafting.tone`` (the linter) and
``triage.drafting.outgoing`` (header values, our Message-IDs and the outgoing mail).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

from triage.config import SupportSettings
from triage.detect import ARCHETYPES, ArchetypeHit, Detection, Facts
from triage.detect.engine import MAX_CHARS
from triage.drafting.context import CONTEXT_KEYS, build_context
from triage.drafting.outgoing import clean_line, new_message_id, reply_cc, reply_subject, sender_domain
from triage.drafting.rules import PURPOSES, ReplyRules, Specialist, load_reply_rules
from triage.drafting.situation import Reply, ReplyPolicy, SavedAnswer, decide, load_policy, open_questions
from triage.drafting.tone import Finding, Linter
from triage.errors import DraftError, Problem, RulesError
from triage.followups.policy import DEFAULT as DEFAULT_FOLLOWUP
from triage.followups.policy import Policy as FollowupPolicy
from triage.followups.policy import load_policy as load_followup
from triage.message import Message
from triage.rulefile import active, listing, read_text
from triage.store import DraftKind, NewDraft

log = logging.getLogger(__name__)

SUFFIX = ".j2"


@dataclass(frozen=True)
class DraftText:
    """A rendered draft: the template used, the reply subject, the body and its lint findings."""

    template: str
    subject: str
    body: str
    lint: tuple[dict[str, Any], ...] = field(default=())
    situation: str = ""
    answers: tuple[str, ...] = ()  # ids of the saved answers used


def draft_row(case_id: int, message_row: int, message: Message, text: DraftText, support: SupportSettings,
              *, token: str, now: datetime, kind: DraftKind = DraftKind.REPLY) -> NewDraft:
    """The pending draft for ``text``, answering ``message`` (stored as ``message_row``).

    It goes to the message's reply address, with its other recipients kept as Cc (not ours),
    and carries its own outgoing
    Message-ID, made unique within the case by ``token`` ("m" + the message
    row for a reply, "f" + the deadline for a check-in). Poll's replies and
    remind's check-ins are both stored through this one row.
    """
    return NewDraft(
        case_id=case_id,
        message_id=message_row,
        kind=kind,
        template=text.template,
        to_address=message.reply_address,
        cc=reply_cc(message.reply_address, (*message.to, *message.cc), support.own_addresses),
        subject=text.subject,
        body=text.body,
        lint=tuple(text.lint),
        outgoing_message_id=new_message_id(case_id, sender_domain(support.address), token),
        created_at=now,
    )


# --------------------------------------------------------------------------- rendering

def _as_read(message: Message) -> Message:
    """``message`` as the drafter reads it: the start of a very long text, as detection reads it
    (``MAX_CHARS``), so a message of megabytes costs no more to draft than to detect."""
    if len(message.text) <= MAX_CHARS:
        return message
    return replace(message, text=message.text[:MAX_CHARS])


def normalise_body(raw: str) -> str:
    """Tidy rendered text: LF line ends, no trailing or doubled spaces, at most one blank line."""
    lines = [re.sub(r"(?<=\S) {2,}", " ", ln.rstrip()) for ln in raw.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def _customer_spans(body: str, ctx: Mapping[str, Any]) -> list[tuple[int, int]]:
    """Where the customer's own words appear in ``body``: lint does not blame us for them."""
    # their clause said back in our words is still what they told us ("our agent told you to calm down")
    values: list[str] = [ctx["their_words"], ctx["subject"], ctx["about"], ctx["details"], ctx["problem_phrase"],
                         ctx["restated"], ctx["their_question"], ctx["wondered"]]
    for key in ("orders", "products", "dates", "amounts"):
        values.extend(ctx[key])
    spans = []
    for value in {v for v in values if len(v) >= 3}:
        # str.find, not a regex per value: customer text would compile (and evict) a pattern each time
        start = body.find(value)
        while start != -1:
            spans.append((start, start + len(value)))
            start = body.find(value, start + len(value))
    return spans


_HYGIENE = (
    (re.compile(r"(?<=[^\W_]) +[,.;:!?](?!\w)"), "a space before punctuation (an empty value?)"),
    (re.compile(r"#(?![\w])"), "'#' with nothing after it"),
    (re.compile(r"\u201c\s*\u201d|\"\s*\"|\(\s*\)|\[\s*\]"), "empty quotes or brackets"),
)


# --------------------------------------------------------------------------- the drafter


def _sample_contexts(support: SupportSettings, rules: ReplyRules | None) -> list[tuple[str, dict[str, Any]]]:
    """Contexts every template must render cleanly with: each archetype, rich and missing facts."""
    now = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
    spec = next(iter(rules.specialists.values()), None) if rules else None
    spec = spec or Specialist("Dana", "our billing specialist", "she can see every payment")
    rich = Message("<s1@example.com>", "Lee, Ann", "ann@example.com", "Re: Broken blender!!!",
                   now, "Hi,\nThe blender I ordered on 3 March arrived broken.", "")
    facts = Facts(("#10234",), ("€89.99",), ("3 March",), ("the Vitamix blender",),
                  "The blender I ordered on 3 March arrived broken, and this is the second time.")
    out: list[tuple[str, dict[str, Any]]] = []
    for arch in ("", *ARCHETYPES):
        det = Detection(0.8, "angry", True, (ArchetypeHit(arch, "sample"),) if arch else (),
                        facts=facts, topic="billing")
        extra: dict[str, str | date] = {"promise": "a replacement blender", "promise_due": date(2026, 11, 24),
                 "progress": "the replacement left our warehouse today"}
        out.append((f"rich facts, {arch or 'no'} archetype",
                    build_context(rich, det, 7, now, support, specialist=spec, extra=extra)))
        out.append((f"every ask, urgent, a deadline, {arch or 'no'} archetype",
                    build_context(rich, det, 7, now, support, specialist=spec, extra=extra,
                                  reply=_sample_reply(arch, True), within="within the hour")))
        out.append((f"a product fault, a remedy to offer, {arch or 'no'} archetype",
                    build_context(rich, det, 7, now, support, specialist=spec, extra=extra,
                                  reply=_sample_reply(arch, False))))
    bare = [("no facts, no name", Message("<s2@x>", "Support Team", "a@x", "",
                                          now, "HELLO\nTHIS DOES NOT WORK", "")),
            ("subject only", Message("<s3@x>", "", "a@x", "parcel never arrived", now, "", "")),
            ("nothing at all", Message("<s4@x>", "", "a@x", "", now, "", ""))]
    for label, msg in bare:
        for det in (Detection(0.0, "calm", False), Detection(0.9, "furious", True)):
            out.append((f"{label}, {det.level}", build_context(msg, det, 8, now, support)))
    # one sample per cancel_what value, so every branch a template takes on it is rendered
    for what, text in (("order", "Please cancel order #10234."),
                       ("subscription", "Please cancel my coffee subscription."),
                       ("membership", "Please end my membership."),
                       ("account", "Please close my account.")):
        msg = Message(f"<c-{what}@x>", "Ann Lee", "a@x", f"cancel {what}", now, text, "")
        for det in (Detection(0.0, "calm", False, (ArchetypeHit("cancelling", "sample"),)),
                    Detection(0.9, "furious", True, (ArchetypeHit("cancelling", "sample"),))):
            out.append((f"cancel {what}, {det.level}", build_context(msg, det, 9, now, support)))
    return out


_SAMPLE_ANSWER = SavedAnswer("sample", "A saved answer", (), "We ship to the UK and the EU.")


def _sample_reply(arch: str, everything: bool) -> Reply:
    """A decision with every optional part filled (``everything``) or a plain product fault."""
    if not everything:
        return Reply("product_fault", "If a repair, a replacement or a refund would suit you better, "
                     "tell me which and I'll arrange it.", (), (), False, "", "", (), (), arch == "aggressive")
    kinds = ("refund", "return", "delete_data", "status", "information")
    lines = tuple((k, f"You asked about {k.replace('_', ' ')}: I'll write to you {{when}}.") for k in kinds)
    return Reply("delivery", "", kinds, lines, True, "by Friday", "You asked for this {deadline}.",
                 (_SAMPLE_ANSWER,), ("Do you ship to Canada?",), arch in ("aggressive", "barnacle"))


def _loader(templates_dir: Path) -> jinja2.BaseLoader:
    """The templates as the rule set's snapshot holds them (``rulefile.Snapshot``), includes
    too, never re-read from the disk; without one, the folder itself."""
    files = active()
    if files is None:
        return jinja2.FileSystemLoader(str(templates_dir))

    def source(name: str) -> tuple[str, str, Callable[[], bool]] | None:
        path = templates_dir.joinpath(*jinja2.loaders.split_template_path(name))
        with files.reading():
            try:
                return read_text(path), str(path), lambda: True
            except FileNotFoundError:
                return None

    return jinja2.FunctionLoader(source)


@functools.cache
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja's cache of compiled templates (keyed by each file's name and source) in this user's own
    temporary folder, which Jinja makes mode 0700 and checks is ours: compiling the templates is a
    tenth of what a poll with one new message spends on its rules. None when there is no such folder."""
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError) as exc:  # Jinja raises RuntimeError for an unsafe folder
        log.debug("no Jinja bytecode cache: %s", exc)
        return None


class Drafter:
    """Chooses, renders and lints drafts; built only by ``load``, which checks everything."""

    def __init__(self, support: SupportSettings, rules: ReplyRules, linter: Linter,
                 templates: Mapping[str, jinja2.Template], policy: ReplyPolicy | None = None,
                 followup: FollowupPolicy | None = None):
        self.support = support
        self.rules = rules
        self.linter = linter
        self.templates = dict(templates)
        self.policy = policy or ReplyPolicy()
        self.followup = followup or DEFAULT_FOLLOWUP

    @classmethod
    def load(cls, rules_dir: Path, templates_dir: Path, support: SupportSettings,
             linter: Linter | None = None, checked: bool = False) -> Drafter:
        """Load replies.toml, tone.toml (unless ``linter`` is given) and every template;
        raise RulesError listing all problems.

        A template named ``_x.j2`` is a partial, for ``{% include %}`` only. ``checked``:
        these files passed every check before with this ``support`` (``triage.rulecache``),
        so the templates are not scanned for undefined names nor rendered with the samples.
        """
        problems: list[Problem] = []
        if linter is None:
            try:
                linter = Linter.load(rules_dir)
            except RulesError as exc:
                problems += exc.problems
        files = listing(templates_dir, SUFFIX)
        if not files:
            problems.append(Problem(str(templates_dir), "", f"no *{SUFFIX} templates found"))
        env = SandboxedEnvironment(loader=_loader(templates_dir),
                                   undefined=jinja2.StrictUndefined, autoescape=False,
                                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                                   bytecode_cache=_bytecode_cache())
        compiled: dict[str, jinja2.Template] = {}
        for path in files:
            name = path.stem
            try:
                unknown = set() if checked else (jinja2.meta.find_undeclared_variables(
                    env.parse(read_text(path))) - set(CONTEXT_KEYS))
                if unknown:
                    problems.append(Problem(str(path), name, "undefined variable(s): "
                                            f"{', '.join(sorted(unknown))} (see templates/README.md)"))
                    continue
                if not name.startswith("_"):
                    compiled[name] = env.get_template(path.name)
            except jinja2.TemplateSyntaxError as exc:
                where = Path(exc.filename).name if exc.filename else path.name
                problems.append(Problem(str(path), name, f"{where} line {exc.lineno}: "
                                        f"template syntax error: {exc.message}", exc.lineno))
            except (OSError, UnicodeDecodeError, jinja2.TemplateError) as exc:
                problems.append(Problem(str(path), name, f"cannot load: {exc}"))
        rules, rule_problems = load_reply_rules(rules_dir, set(compiled) | {
            p.stem for p in files if not p.stem.startswith("_")})
        problems += rule_problems
        policy, policy_problems = load_policy(rules_dir)
        problems += policy_problems
        try:
            followup = load_followup(rules_dir)
        except RulesError:
            followup = DEFAULT_FOLLOWUP  # reported by the RuleSet's own load of followup.toml
        samples = [] if checked else _sample_contexts(support, rules)
        linted: dict[str, list[Finding]] = {}  # most samples render a template to a body another did
        for name, template in compiled.items() if samples else ():
            problems += _check_template(templates_dir / f"{name}{SUFFIX}", name, template,
                                        samples, linter, linted)
        if problems or rules is None or linter is None or policy is None:
            raise RulesError(problems)
        return cls(support, rules, linter, compiled, policy, followup)

    def needs_reply(self, message: Message, detection: Detection) -> bool:
        """False only for a short, calm closing message ("thanks, all good") that asks nothing.

        A complaint, any anger, a cancellation, a "?", a long message, a
        ``still_open`` phrase or the lack of a ``closing`` phrase all mean a reply.
        """
        message = _as_read(message)
        text = clean_line(message.text) or clean_line(message.subject)
        nr = self.rules.no_reply
        if detection.complaint or detection.angry or "cancelling" in detection.archetype_names:
            return True
        if not text or "?" in text or len(text.split()) > nr.max_words:
            return True
        if not any(p.search(text) for p in nr.closing):
            return True
        return any(p.search(text) for p in nr.still_open)

    def choose(self, detection: Detection, purpose: str = "reply", situation: str = "") -> tuple[str, int]:
        """(template, working days to the next step) for a detection, its situation and a purpose."""
        if purpose == "reply":
            return self.rules.choose_for(detection, situation)
        if purpose not in self.rules.purposes:
            raise DraftError(f"unknown purpose {purpose!r} (expected one of {', '.join(PURPOSES)})")
        return self.rules.purposes[purpose], self.rules.working_days

    def render(self, message: Message, detection: Detection, case_id: int, now: datetime, *,
               purpose: str = "reply", extra: Mapping[str, str | date] | None = None,
               template: str | None = None, signer: str = "") -> DraftText:
        """Render the chosen template once; lint the body (not the customer's quoted words).

        ``signer``: the agent's display name for ``agent`` (the sign-off), instead of
        ``[support] agent`` (a redraft by an agent who has one).

        ``purpose`` is "reply" (chosen by [[choose]] rules), "promise_update" or
        "follow_up" (the [purposes] templates); ``extra`` fills promise,
        promise_due and progress. Raises DraftError if rendering fails.
        """
        message = _as_read(message)
        reply = decide(self.policy, message, detection) if purpose == "reply" else None
        # a [[choose]] rule's `complaint` is true when something went wrong, even if detection's
        # score stayed below the line ("it has not gone through", "I want my bag")
        # and false when the only complaint detection read is inside a question about a case they suppose
        chosen = dataclasses.replace(detection, complaint=reply.trouble) if reply else detection
        # a topic's specialist takes only a case of that topic's situation: a missed connection (whose
        # problem says it is a journey gone wrong) is not the billing specialist's for "who's in charge?"
        specialist = self.rules.specialists.get(detection.topic)
        if reply and reply.problem_situation and self.policy.topics.get(detection.topic) != reply.situation:
            chosen, specialist = dataclasses.replace(chosen, topic=""), None
        name, days = self.choose(chosen, purpose, reply.situation if reply else "")
        if template is not None:  # an agent's choice (triage redraft --template)
            if template not in self.templates or template.startswith("_"):
                known = ", ".join(sorted(t for t in self.templates if not t.startswith("_")))
                raise DraftError(f"no template {template!r} (expected one of {known})")
            name = template
        hours = self.followup.first_response_hours(detection.level, detection.archetype_names)
        if reply and reply.urgent and self.policy.urgent_hours:
            hours = min(hours, self.policy.urgent_hours)  # "stranded", "stolen": not at the pace of a calm case
        support = replace(self.support, agent=signer) if signer else self.support
        ctx = build_context(message, detection, case_id, now, support, working_days=days,
                            holidays=self.rules.holidays,
                            specialist=specialist, extra=extra,
                            reply=reply, within=within_hours(hours))
        try:
            body = normalise_body(self.templates[name].render(ctx))
        except Exception as exc:  # a template error must not escape as a Jinja type
            raise DraftError(f"template {name!r} failed: {exc}") from exc
        findings = lint_body(self.linter, body, ctx) + open_questions(body)
        log.debug("case %s: template %s, %d lint finding(s)", case_id, name, len(findings))
        return DraftText(name, reply_subject(message.subject), body,
                         tuple(f.to_dict() for f in findings), reply.situation if reply else "",
                         tuple(a.id for a in reply.answers) if reply else ())


def within_hours(hours: float) -> str:
    """"within the hour", "within 4 hours", "within a working day" (24 h or more)."""
    if hours <= 1:
        return "within the hour"
    if hours >= 24:
        return "within a working day"
    return f"within {hours:g} hours"


def lint_body(linter: Linter, body: str, ctx: Mapping[str, Any],
              linted: dict[str, list[Finding]] | None = None) -> list[Finding]:
    """Lint findings in a rendered body, ignoring spans inside the customer's own words.

    ``linted``: the linter's findings by body, kept across calls (``lint`` is pure)."""
    spans = _customer_spans(body, ctx)
    found = linted.get(body) if linted is not None else None
    if found is None:
        found = linter.lint(body)
        if linted is not None:
            linted[body] = found
    return [f for f in found if not any(s <= f.start and f.end <= e for s, e in spans)]


def _check_template(path: Path, name: str, template: jinja2.Template,
                    samples: list[tuple[str, dict[str, Any]]], linter: Linter | None,
                    linted: dict[str, list[Finding]] | None = None) -> list[Problem]:
    """Render one template with every sample; report the first failure of each kind.

    ``linted``: the linter's findings by body, shared by the templates checked together."""
    found: dict[str, Problem] = {}
    for label, ctx in samples:
        try:
            raw = template.render(ctx)
        except Exception as exc:  # any Jinja or sandbox error is an owner's template problem
            found.setdefault("render", Problem(str(path), name, f"fails to render ({label}): {exc}"))
            continue
        body = normalise_body(raw)
        for m in re.finditer(r"\S {2,}\S", raw):
            found.setdefault("spaces", Problem(
                str(path), name, f"double space in {m.group(0)!r} ({label}): an empty value?"))
        for pattern, why in _HYGIENE:
            hit = pattern.search(body)
            if hit:
                snippet = body[max(0, hit.start() - 25): hit.end() + 5].replace("\n", " ")
                found.setdefault(why, Problem(str(path), name, f"{why}: {snippet!r} ({label})"))
        for f in lint_body(linter, body, ctx, linted) if linter else []:
            found.setdefault(f"lint:{f.rule}", Problem(
                str(path), name, f"banned phrase {f.text!r} ({label}): {f.reason} "
                f"Say instead: {f.suggestion}"))
    return list(found.values())
