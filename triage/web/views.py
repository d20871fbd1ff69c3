"""The review page's routes. Each view: read the form, call a service, redirect or render.

GET  /login, POST /login, POST /logout
GET  /                      the queue (sort, dir, level, archetype, overdue, page)
GET  /drafts/<id>           the case page for a draft
POST /drafts/<id>/edit      save the text (re-linted), POST .../approve, .../reject,
POST /drafts/<id>/insert-answer  put a saved answer (rules/answers.toml) into the reply
POST /drafts/<id>/confirm   confirm a checklist item ([[confirm: ...]]) once the action is done
POST /drafts/<id>/assign    record another agent as the case's owner
POST /drafts/<id>/label     record a correction of the detection
GET  /quarantine            quarantined messages
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from triage import agents, detect, labels, review, ruleset
from triage.drafting.situation import answers_in
from triage.errors import TriageError
from triage.store import Draft, DraftStatus
from triage.web import render, security
from triage.web.request import settings, store

bp = Blueprint("web", __name__)
PAGE = 100
#: The level filter, most urgent first.
LEVELS = tuple(reversed(detect.LEVELS))


def _agent() -> str:
    return str(g.agent)


def _int_arg(name: str, default: int) -> int:
    try:
        return max(1, int(request.args.get(name, default)))
    except ValueError:
        return default


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    error = ""
    status = 200
    headers: dict[str, str] = {}
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        try:
            ok = agents.login(store(), name, request.form.get("password", ""), request.remote_addr or "",
                              now=security.clock_now())
        except agents.LoginRefused as exc:
            error, status = str(exc), 429
            headers["Retry-After"] = str(exc.retry_after)
        else:
            if ok:
                security.start_session(store(), name, settings().web)
                return redirect(security.safe_next(request.args.get("next")))
            error = "Unknown agent or wrong password."
    page = render_template("login.html", error=error, next=request.args.get("next", ""))
    return Response(page, status=status, headers=headers, mimetype="text/html")


@bp.post("/logout")
def logout() -> Response:
    security.end_session(store())
    return redirect(url_for("web.login"))


@bp.get("/")
def queue() -> str:
    sort = request.args.get("sort", "urgency")
    if sort not in store().QUEUE_SORTS:
        sort = "urgency"
    descending = request.args.get("dir") == "desc"
    level = request.args.get("level", "")
    archetype = request.args.get("archetype", "")
    overdue = request.args.get("overdue") == "1"
    page = _int_arg("page", 1)
    now = datetime.now(UTC)
    rows, total = store().queue_page(
        level=level if level in LEVELS else "",
        archetype=archetype,
        overdue_at=now if overdue else None,
        sort=sort,
        descending=descending,
        limit=PAGE,
        offset=(page - 1) * PAGE,
    )
    filters = {"sort": sort, "dir": "desc" if descending else "asc", "level": level,
               "archetype": archetype, "overdue": "1" if overdue else ""}
    return render_template(
        "queue.html", rows=rows, total=total, page=page, pages=max(1, math.ceil(total / PAGE)),
        filters=filters, levels=LEVELS, archetypes=store().queue_archetypes(), now=now, r=render,
        loops=store().loop_cases(),
        rate_limited=store().rate_limited_cases(),
    )


def _draft_or_404(draft_id: int) -> Draft:
    draft = store().draft(draft_id)
    if draft is None:
        abort(404, description=f"no draft {draft_id}")
    return draft


@bp.get("/drafts/<int:draft_id>")
def case(draft_id: int) -> str:
    s = store()
    draft = _draft_or_404(draft_id)
    case_row = s.case(draft.case_id)
    message = s.message(draft.message_id) if draft.message_id else None
    detection = s.detection_for(draft.message_id) if draft.message_id else None
    earlier = s.earlier_cases(case_row) if case_row else []
    saved = review.saved_answers(settings())
    return render_template(
        "case.html",
        DraftStatus=DraftStatus,
        draft=draft,
        case=case_row,
        message=message,
        detection=detection,
        body_html=render.highlight(message.text, detection["evidence"] if detection else []) if message else "",
        earlier=earlier[:20],
        thread=[m for m in s.case_messages(draft.case_id) if not message or m.id != message.id],
        events=s.case_events(draft.case_id),
        drafts=s.case_drafts(draft.case_id),
        owner=s.owners([draft.case_id]).get(draft.case_id),
        agent_names=s.agent_names(),
        labels=s.labels_for(draft.message_id) if draft.message_id else [],
        archetypes=sorted({*s.queue_archetypes(), *(case_row.archetypes if case_row else [])}),
        loop=s.loop_flags([draft.case_id]).get(draft.case_id),
        saved_answers=saved,
        answers_used=answers_in(draft.body, saved),
        checklist=review.open_items(draft.body) if draft.status == DraftStatus.PENDING else [],
        version=review.version(draft),
        templates=sorted(t for t in ruleset.load(settings()).drafter.templates if not t.startswith("_")),
        r=render,
    )


def _back(draft_id: int) -> Response:
    return redirect(url_for("web.case", draft_id=draft_id))


def _box(name: str) -> str | None:
    """A textarea's text as the browser sent it, with the line ends the CLI writes."""
    if name not in request.form:
        return None
    return request.form[name].replace("\r\n", "\n").rstrip("\n") + "\n"


@bp.post("/drafts/<int:draft_id>/edit")
def edit(draft_id: int) -> Response:
    body = _box("body") or "\n"
    try:
        findings = review.edit(settings(), store(), draft_id, body, _agent())
    except TriageError as exc:
        flash(str(exc), "error")
        return _back(draft_id)
    if findings:
        flash(f"Saved with {len(findings)} tone finding(s): see below.", "warning")
    else:
        flash("Saved. Tone: no findings.", "ok")
    return _back(draft_id)


@bp.post("/drafts/<int:draft_id>/insert-answer")
def insert_answer(draft_id: int) -> Response:
    try:
        body = request.form.get("body", "").replace("\r\n", "\n")
        findings = review.insert_answer(settings(), store(), draft_id, request.form.get("answer", ""), _agent(),
                                        body=body.rstrip("\n") + "\n" if body.strip() else None)
    except TriageError as exc:
        flash(str(exc), "error")
        return _back(draft_id)
    flash("Saved answer inserted." + (f" {len(findings)} finding(s): see below." if findings else ""),
          "warning" if findings else "ok")
    return _back(draft_id)


@bp.post("/drafts/<int:draft_id>/confirm")
def confirm(draft_id: int) -> Response:
    """The same path as ``triage confirm``: the item named by its text, in the box's text."""
    try:
        text = review.confirm(settings(), store(), draft_id, _agent(), request.form.get("item", ""),
                              body=_box("body"))
    except TriageError as exc:
        flash(str(exc), "error")
        return _back(draft_id)
    flash(f"Confirmed: {text}", "ok")
    return _back(draft_id)


@bp.post("/drafts/<int:draft_id>/approve")
def approve(draft_id: int) -> Response:
    draft = _draft_or_404(draft_id)
    override = request.form.get("override_tone", "").strip() or None
    try:
        seen, body = _box("seen_body"), _box("body")
        report = review.approve(settings(), store(), draft_id, _agent(), override,
                                body=None if body == seen else body,
                                seen_version=request.form.get("version"), seen_body=seen)
    except TriageError as exc:
        flash(str(exc), "error")
        return _back(draft_id)
    if report.failed:
        flash(f"Approved but not sent: {report.failed[draft_id]}. It stays in the queue; "
              "approve again or run triage send-pending to retry.", "error")
        return _back(draft_id)
    flash(f"Draft {draft_id} sent to {draft.to_address}.", "ok")
    return redirect(url_for("web.queue"))


@bp.post("/drafts/<int:draft_id>/redraft")
def redraft(draft_id: int) -> Response:
    choice = request.form.get("template", "")
    try:
        new_id = review.redraft(settings(), store(), draft_id, _agent(), template=None if choice in ("", "scratch")
                                else choice, scratch=choice == "scratch")
    except TriageError as exc:
        flash(str(exc), "error")
        return _back(draft_id)
    flash(f"New draft {new_id} made; the case's earlier pending draft, if any, is superseded.", "ok")
    return _back(new_id)


@bp.post("/drafts/<int:draft_id>/clear-loop")
def clear_loop(draft_id: int) -> Response:
    draft = _draft_or_404(draft_id)
    if review.clear_loop(store(), draft.case_id, _agent()):
        flash(f"Case {draft.case_id} is no longer flagged; its next message gets a draft.", "ok")
    return _back(draft_id)


@bp.post("/drafts/<int:draft_id>/reject")
def reject(draft_id: int) -> Response:
    try:
        review.reject(store(), draft_id, _agent(), request.form.get("reason", ""))
    except TriageError as exc:
        flash(str(exc), "error")
        return _back(draft_id)
    flash(f"Draft {draft_id} rejected.", "ok")
    return redirect(url_for("web.queue"))


@bp.post("/drafts/<int:draft_id>/assign")
def assign(draft_id: int) -> Response:
    draft = _draft_or_404(draft_id)
    to = request.form.get("to", "")
    try:
        agents.assign(store(), draft.case_id, to, _agent())
    except TriageError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Case {draft.case_id} assigned to {to}.", "ok")
    return _back(draft_id)


@bp.post("/drafts/<int:draft_id>/label")
def label(draft_id: int) -> Response:
    draft = _draft_or_404(draft_id)
    if not draft.message_id:
        abort(400, description="this draft answers no stored message")
    angry = {"yes": True, "no": False}.get(request.form.get("angry", ""))
    archetype = request.form.get("archetype", "").strip()[:64] or None
    try:
        labels.record(store(), draft.message_id, angry, archetype, _agent())
    except TriageError as exc:
        flash(str(exc), "error")
    else:
        flash("Correction recorded.", "ok")
    return _back(draft_id)


@bp.get("/quarantine")
def quarantine() -> str:
    page = _int_arg("page", 1)
    rows, total = store().quarantined_page(limit=PAGE, offset=(page - 1) * PAGE)
    return render_template("quarantine.html", rows=rows, total=total, page=page,
                           pages=max(1, math.ceil(total / PAGE)), r=render)
