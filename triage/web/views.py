"""The review page's routes. Each view: read the form, call a service, redirect or render.

GET  /login, POST /login, POST /logout
GET  /                      the queue (sort, dir, level, archetype, overdue, page), and search results (q)
GET  /cases/<id>            a case: its draft in the queue, else its latest draft
GET  /drafts/<id>           the case page for a draft; .../next and .../previous: the waiting draft after or before it
POST /drafts/<id>/edit      save the text (re-linted), POST .../approve, .../reject,
POST /drafts/<id>/insert-answer  put a saved answer (rules/answers.toml) into the reply
POST /drafts/<id>/confirm   confirm a checklist item ([[confirm: ...]]) once the action is done
POST /drafts/<id>/assign    record another agent as the case's owner
POST /drafts/<id>/label     record a correction of the detection
POST /cases/<id>/promise, .../kept, .../wait, .../resolve   the CLI's follow-up commands, from the case page
GET  /messages/<id>/attachments/<n>   one attachment, always as a download
GET  /quarantine            quarantined messages

After approve, reject or "Save and next", the browser lands on the next
waiting draft (the queue's default order) with a link back to the one acted
on (``?from=ID``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from triage import agents, detect, labels, review, ruleset
from triage.drafting.situation import answers_in
from triage.errors import RulesError, TriageError
from triage.message import attachment_payload
from triage.store import Draft, DraftStatus
from triage.web import render, security
from triage.web.request import settings, store

bp = Blueprint("web", __name__)
PAGE = 100
#: The level filter, most urgent first.
LEVELS = tuple(reversed(detect.LEVELS))


def _agent() -> str:
    return str(g.agent)


def _tz() -> tzinfo:
    """The policy's time zone (rules/followup.toml), UTC while the policy file is broken."""
    try:
        return ruleset.load(settings()).policy.tz
    except RulesError:
        return UTC


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
    owner = request.args.get("owner", "")  # "mine" (the logged-in agent's cases) or "unassigned"
    owner = owner if owner in ("mine", "unassigned") else ""
    page = _int_arg("page", 1)
    now = datetime.now(UTC)
    rows, total = store().queue_page(
        level=level if level in LEVELS else "",
        archetype=archetype,
        overdue_at=now if overdue else None,
        owner=_agent() if owner == "mine" else None,
        unassigned=owner == "unassigned",
        sort=sort,
        descending=descending,
        limit=PAGE,
        offset=(page - 1) * PAGE,
    )
    filters = {"sort": sort, "dir": "desc" if descending else "asc", "level": level,
               "archetype": archetype, "overdue": "1" if overdue else "", "owner": owner}
    q = request.args.get("q", "")[:200].strip()
    return render_template(
        "queue.html", rows=rows, total=total, page=page, pages=max(1, math.ceil(total / PAGE)),
        filters=filters, levels=LEVELS, archetypes=store().queue_archetypes(), now=now, r=render, tz=_tz(),
        q=q, results=store().search(q) if q else None,
        loops=store().loop_cases(),
        rate_limited=store().rate_limited_cases(),
        needs_reply=store().needs_reply_cases(owner=_agent() if owner == "mine" else None,
                                              unassigned=owner == "unassigned"),
    )


@bp.get("/cases/<int:case_id>")
def case_by_id(case_id: int) -> Response:
    """A case's page: the page of its draft in the queue, else of its latest draft."""
    draft_id = store().case_draft(case_id)
    if draft_id is None:
        abort(404, description=f"case {case_id} has no draft to show")
    return redirect(url_for("web.case", draft_id=draft_id))


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
    came_from = request.args.get("from", type=int)
    return render_template(
        "case.html",
        tz=_tz(),
        now=datetime.now(UTC),
        thread=_thread(draft.case_id, message.id if message else None),
        deadlines=s.deadline_rows(case_id=draft.case_id),
        came_from=s.draft(came_from) if came_from else None,
        DraftStatus=DraftStatus,
        draft=draft,
        case=case_row,
        message=message,
        detection=detection,
        body_html=render.highlight(message.text, detection["evidence"] if detection else []) if message else "",
        earlier=earlier[:20],
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


def _thread(case_id: int, current: int | None) -> list[dict[str, Any]]:
    """Every message of the case and every reply we sent, oldest first."""
    s = store()
    items: list[dict[str, Any]] = [
        {"ours": False, "at": m.received_at, "message": m, "current": m.id == current}
        for m in s.case_messages(case_id)
    ]
    items += [
        {"ours": True, "at": d.sent_at, "draft": d, "current": False}
        for d in s.case_drafts(case_id)
        if d.status == DraftStatus.SENT and d.sent_at
    ]
    return sorted(items, key=lambda i: (str(i["at"]), i["ours"]))


def _back(draft_id: int) -> Response:
    return redirect(url_for("web.case", draft_id=draft_id))


def _neighbour(draft_id: int, waiting: list[int], step: int) -> int | None:
    """The waiting draft ``step`` places from ``draft_id`` in ``waiting`` (an order read before any
    action), skipping drafts no longer pending; past the end, around from the other end."""
    at = waiting.index(draft_id) if draft_id in waiting else (-1 if step > 0 else len(waiting))
    ahead = waiting[at + 1 :] + waiting[: max(at, 0)] if step > 0 else waiting[:at][::-1] + waiting[at + 1 :][::-1]
    for candidate in ahead:
        found = store().draft(candidate)
        if candidate != draft_id and found is not None and found.status == DraftStatus.PENDING:
            return candidate
    return None


def _onward(draft_id: int, waiting: list[int], step: int = 1) -> Response:
    """After acting on ``draft_id`` (or asking for the next one): the next waiting draft in the queue's
    order, with a link back (``?from=``); the queue when no other draft waits."""
    candidate = _neighbour(draft_id, waiting, step)
    if candidate is None:
        flash("No other draft is waiting.", "ok")
        return redirect(url_for("web.queue"))
    back: dict[str, Any] = {"from": draft_id}
    return redirect(url_for("web.case", draft_id=candidate, **back))


@bp.get("/drafts/<int:draft_id>/next")
def next_draft(draft_id: int) -> Response:
    """The next waiting draft after this one (the queue's order, around at the end): the j key."""
    return _onward(draft_id, store().waiting_ids())


@bp.get("/drafts/<int:draft_id>/previous")
def previous_draft(draft_id: int) -> Response:
    """The waiting draft before this one: the k key."""
    return _onward(draft_id, store().waiting_ids(), -1)


def _box(name: str) -> str | None:
    """A textarea's text as the browser sent it, with the line ends the CLI writes."""
    if name not in request.form:
        return None
    return request.form[name].replace("\r\n", "\n").rstrip("\n") + "\n"


def _keep_cc(draft_id: int) -> None:
    """Every button of the reply form keeps the Cc on screen, as it keeps the text in the box."""
    if "cc" in request.form:
        review.set_cc(store(), draft_id, request.form["cc"], _agent())


@bp.post("/drafts/<int:draft_id>/edit")
def edit(draft_id: int) -> Response:
    body = _box("body") or "\n"
    waiting = store().waiting_ids() if request.form.get("next") else []
    try:
        _keep_cc(draft_id)
        findings = review.edit(settings(), store(), draft_id, body, _agent())
    except TriageError as exc:
        flash(str(exc), "error")
        return _back(draft_id)
    if findings:
        flash(f"Saved with {len(findings)} tone finding(s): see below.", "warning")
        return _back(draft_id)  # "Save and next" too: the findings are to be seen
    flash(f"Draft {draft_id} saved. Tone: no findings.", "ok")
    return _onward(draft_id, waiting) if request.form.get("next") else _back(draft_id)


@bp.post("/drafts/<int:draft_id>/insert-answer")
def insert_answer(draft_id: int) -> Response:
    try:
        _keep_cc(draft_id)
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
        _keep_cc(draft_id)
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
    waiting = store().waiting_ids()
    try:
        seen, body = _box("seen_body"), _box("body")
        report = review.approve(settings(), store(), draft_id, _agent(), override,
                                body=None if body == seen else body,
                                seen_version=request.form.get("version"), seen_body=seen,
                                cc=request.form.get("cc"))
    except TriageError as exc:
        flash(str(exc), "error")
        return _back(draft_id)
    if report.failed:
        flash(f"Approved but not sent: {report.failed[draft_id]}. It stays in the queue; "
              "approve again or run triage send-pending to retry.", "error")
        return _back(draft_id)
    flash(f"Draft {draft_id} sent to {draft.to_address}.", "ok")
    return _onward(draft_id, waiting)


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
    waiting = store().waiting_ids()
    try:
        review.reject(store(), draft_id, _agent(), request.form.get("reason", ""))
    except TriageError as exc:
        flash(str(exc), "error")
        return _back(draft_id)
    flash(f"Draft {draft_id} rejected.", "ok")
    return _onward(draft_id, waiting)


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


def _case_action(case_id: int) -> Response:
    """Back to the case page the form was on (its draft), else the case's own page."""
    draft_id = request.form.get("draft", type=int)
    if draft_id is not None and (d := store().draft(draft_id)) is not None and d.case_id == case_id:
        return _back(draft_id)
    return redirect(url_for("web.case_by_id", case_id=case_id))


def _follow_up(case_id: int, action: Any, done: str) -> Response:
    """Run a follow-up command as the CLI does (same function, same audit event), flash what happened."""
    if store().case(case_id) is None:
        abort(404, description=f"no case {case_id}")
    try:
        result = action(ruleset.load(settings()).policy, security.clock_now())
    except TriageError as exc:
        flash(str(exc), "error")
    else:
        flash(done.format(case=case_id, result=result), "ok")
    return _case_action(case_id)


@bp.post("/cases/<int:case_id>/promise")
def promise(case_id: int) -> Response:
    from triage.followups import deadlines

    by, what = request.form.get("by", "").strip(), request.form.get("what", "")
    return _follow_up(case_id, lambda policy, now: deadlines.promise(store(), policy, case_id, by, what, _agent(), now),
                      "Promise {result[id]} on case {case}: due " + "{result[due]}.")


@bp.post("/cases/<int:case_id>/kept")
def kept(case_id: int) -> Response:
    from triage.followups import deadlines

    only = request.form.get("promise", type=int)
    return _follow_up(case_id, lambda policy, now: deadlines.kept(store(), case_id, _agent(), now, only),
                      "Promise(s) on case {case} kept.")


@bp.post("/cases/<int:case_id>/wait")
def wait(case_id: int) -> Response:
    from triage.followups import deadlines

    if request.form.get("resume"):
        return _follow_up(case_id, lambda policy, now: deadlines.resume(store(), policy, case_id, _agent(), now),
                          "Case {case} no longer waits; its clocks restarted.")
    return _follow_up(case_id, lambda policy, now: deadlines.wait(store(), case_id, _agent(), now),
                      "Case {case} waits on the customer; its clocks are paused.")


@bp.post("/cases/<int:case_id>/resolve")
def resolve(case_id: int) -> Response:
    from triage.followups import deadlines

    cause, outcome = request.form.get("root_cause", "").strip() or None, request.form.get("outcome", "resolved")
    return _follow_up(
        case_id,
        lambda policy, now: deadlines.resolve(store(), policy, case_id, _agent(), now, cause, outcome),
        "Case {case} {result[outcome]}.",
    )


@bp.get("/messages/<int:message_id>/attachments/<int:index>")
def attachment(message_id: int, index: int) -> Response:
    """One attachment as a download: never rendered, whatever type the mail declared."""
    message = store().message(message_id)
    if message is None or message.case_id is None or not 0 <= index < len(message.attachments):
        abort(404, description="no such attachment")
    found = attachment_payload(message.raw, index) if message.raw else None
    if found is None:
        abort(404, description="this attachment was not kept")
    name = render.safe_filename(str(message.attachments[index].get("name") or ""), index)
    response = Response(found, mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = render.content_disposition(name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/quarantine")
def quarantine() -> str:
    page = _int_arg("page", 1)
    rows, total = store().quarantined_page(limit=PAGE, offset=(page - 1) * PAGE)
    return render_template("quarantine.html", rows=rows, total=total, page=page,
                           pages=max(1, math.ceil(total / PAGE)), r=render)
