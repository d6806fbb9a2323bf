"""Dashboard pages: the flag queue, a flag, conversations, child records, the audit log.

Thin views: parse, check scope (404 outside it), call one service, audit, commit, render.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import selectinload

from bot import casework, risk
from bot.channels import RecordingError, fetches_recordings
from bot.clock import utcnow
from bot.db import request_session
from bot.i18n import LOCALES
from bot.outbox import dispatch, queue_text
from handlers.dashboard import audit_event, client_ip, ui_text
from handlers.dashboard.access import (child_or_404, contact_or_404, current_scope, flag_or_404, message_or_404,
                                       require_role, scoped_townships)
from handlers.dashboard.blueprint import bp
from models import (ACTIVE_FLAG_STATUSES, CATEGORY_SEVERITY, FLAG_STATUSES, AuditEvent, Caseworker, Child, Contact,
                    Flag, Message, Township)
from models.people import CHANNELS, GUARDIANSHIP_TYPES

log = logging.getLogger("xiangban.dashboard")
SEVERITY_ORDER = case({"urgent": 0, "high": 1, "normal": 2}, value=Flag.severity, else_=3)
STATUS_FILTERS = ("active", *FLAG_STATUSES, "all")
SCHOOL_STATUSES = ("preschool", "in_school", "dropout", "not_enrolled")
QUALITIES = ("good", "fair", "poor")
MAX_REPLY = 500
THREAD_LIMIT = 200


# --- small helpers ---------------------------------------------------------------------------

def parse_local_time(value: str | None, now: datetime) -> datetime | None:
    """A datetime-local form value read in the service's zone; empty means now; None when invalid."""
    value = (value or "").strip()
    if not value:
        return now
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))
    return moment.astimezone(timezone.utc)


def highlight(body: str, spans: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """Split a message body into (text, rule) pieces; rule is set on the triage evidence."""
    marks: list[tuple[int, int, str]] = []
    for span in spans:
        try:
            start, end = int(span.get("start", -1)), int(span.get("end", -1))
        except (TypeError, ValueError):
            continue
        text = str(span.get("text") or "")
        if not (0 <= start < end <= len(body)) or (text and body[start:end] != text):
            found = body.find(text) if text else -1
            if found < 0:
                continue
            start, end = found, found + len(text)
        marks.append((start, end, str(span.get("rule") or "")))
    pieces: list[tuple[str, str | None]] = []
    cursor = 0
    for start, end, rule in sorted(marks):
        if start < cursor:
            continue
        if start > cursor:
            pieces.append((body[cursor:start], None))
        pieces.append((body[start:end], rule or "evidence"))
        cursor = end
    if cursor < len(body):
        pieces.append((body[cursor:], None))
    return pieces


def message_view(message: Message, extra_spans: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What a thread shows of a message: pieces with evidence marked, delivery status in words."""
    spans = list((message.triage or {}).get("evidence") or []) + list(extra_spans or [])
    return {"m": message, "pieces": highlight(message.body or "", spans) if message.direction == "inbound"
            else [(message.body or "", None)], "status": delivery_status(message)}


def delivery_status(message: Message) -> str:
    """A message's status in plain words (and why it failed)."""
    if message.direction == "inbound":
        return ui_text("ui.msg.received")
    if message.channel == "voice" and message.status in ("sent", "delivered"):
        return ui_text("ui.msg.call_placed")
    key = {"queued": "queued", "sending": "sending", "unknown": "unknown", "accepted": "sent", "scheduled": "queued",
           "sent": "sent", "delivered": "delivered", "read": "delivered", "undelivered": "failed",
           "failed": "failed"}.get(message.status, "unknown")
    text = ui_text(f"ui.msg.{key}")
    if key == "queued" and message.next_attempt_at is not None:
        text = ui_text("ui.msg.queued_until", time=_local(message.next_attempt_at))
    if key == "failed":
        text += " — " + failure_reason(message)
    return text


def failure_reason(message: Message) -> str:
    """Why a message failed, in words."""
    code = message.error_code or ""
    known = {"21610": "opted_out", "21614": "not_mobile", "21211": "invalid_number", "30003": "unreachable",
             "30005": "unknown_number", "30006": "landline", "30007": "filtered", "30008": "unknown_error"}
    if code in known:
        return ui_text(f"ui.msg.why.{known[code]}")
    if message.error_message == "contact not reachable":
        return ui_text("ui.msg.why.not_reachable")
    return ui_text("ui.msg.why.other", code=code or "-")


def _local(moment: datetime | None) -> str:
    from handlers.dashboard import local_time

    return local_time(moment)


def clock_view(flag: Flag, now: datetime) -> dict[str, Any] | None:
    """The report clock for templates (rendered on the server; countdown.js keeps it ticking)."""
    clock = casework.report_clock(flag, now)
    if clock is None:
        return None
    left = clock["minutes_left"]
    if clock["reported"]:
        text = ui_text("ui.clock.reported_on_time" if clock["met"] else "ui.clock.reported_late",
                       time=_local(flag.police_reported_at))
    elif flag.status == "resolved":
        text = ui_text("ui.clock.resolved_unreported")
    elif left >= 0:
        text = ui_text("ui.clock.left", minutes=left)
    else:
        text = ui_text("ui.clock.late", minutes=-left)
    return {**clock, "text": text, "due_iso": flag.due_at.isoformat() if flag.due_at else "",
            "due_local": _local(flag.due_at)}


def subject_name(flag: Flag) -> str:
    """Whom a flag is about, as the queue shows it."""
    if flag.child is not None:
        return flag.child.name
    if flag.contact is not None:
        return ui_text("ui.flag.unknown_sender", who=flag.contact.name or flag.contact.phone)
    return ui_text("ui.flag.no_subject")


def names_by_id(ids: set[int | None]) -> dict[int, str]:
    """Caseworker names for event lists."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(request_session().execute(select(Caseworker.id, Caseworker.name).where(Caseworker.id.in_(ids))).all())


def recordings_playable() -> bool:
    """Whether the transport can fetch call recordings (Twilio); the console transport cannot."""
    return fetches_recordings(current_app.extensions.get("xiangban_sender"))


def visible_children(contact: Contact) -> list[Any]:
    """The contact's links to children in scope."""
    scope = current_scope()
    return [link for link in contact.links if scope.allows_child(link.child)]


# --- the flag queue --------------------------------------------------------------------------

@bp.get("/")
@login_required
def flag_queue() -> str:
    """Flags of the user's townships: urgent first, then by deadline; filter by township, category, status."""
    now = utcnow()
    scope = current_scope()
    status = request.args.get("status", "active")
    status = status if status in STATUS_FILTERS else "active"
    category = request.args.get("category", "")
    township_id = request.args.get("township", type=int)
    mine = request.args.get("mine") == "1"
    query = select(Flag).where(scope.flag_clause()).options(
        selectinload(Flag.child).selectinload(Child.township), selectinload(Flag.child).selectinload(Child.village),
        selectinload(Flag.contact))
    if status == "active":
        query = query.where(Flag.status.in_(ACTIVE_FLAG_STATUSES))
    elif status != "all":
        query = query.where(Flag.status == status)
    if category in CATEGORY_SEVERITY:
        query = query.where(Flag.category == category)
    if township_id:
        query = query.where(or_(Flag.township_id == township_id,
                                Flag.child.has(Child.township_id == township_id)))
    if mine:
        query = query.where(Flag.assignee_id == current_user.record.id)
    query = query.order_by(SEVERITY_ORDER, Flag.due_at.is_(None), Flag.due_at, Flag.created_at.desc()).limit(300)
    flags = list(request_session().scalars(query))
    assignees = names_by_id({f.assignee_id for f in flags})
    rows = [{"flag": f, "subject": subject_name(f), "clock": clock_view(f, now),
             "assignee": assignees.get(f.assignee_id or 0)} for f in flags]
    return render_template("dashboard/queue.html", rows=rows, status=status, category=category,
                           township_id=township_id, mine=mine, townships=scoped_townships(),
                           categories=sorted(CATEGORY_SEVERITY), statuses=STATUS_FILTERS, now=now)


# --- one flag --------------------------------------------------------------------------------

@bp.get("/flags/<int:flag_id>")
@login_required
def flag_page(flag_id: int) -> str:
    """A flag: its clock, the conversation that raised it with the evidence marked, its history, actions."""
    now = utcnow()
    flag = flag_or_404(flag_id)
    scope = current_scope()
    session = request_session()
    thread: list[dict[str, Any]] = []
    if flag.contact_id is not None:
        messages = session.scalars(select(Message).where(Message.contact_id == flag.contact_id)
                                   .order_by(Message.created_at.desc(), Message.id.desc()).limit(30)).all()
        for message in reversed(messages):
            if scope.allows_message(message):
                extra = flag.evidence if message.id == flag.message_id else None
                thread.append({**message_view(message, extra), "trigger": message.id == flag.message_id})
    elif flag.message is not None and scope.allows_message(flag.message):
        thread.append({**message_view(flag.message, flag.evidence), "trigger": True})
    names = names_by_id({e.actor_id for e in flag.events} | {flag.assignee_id, flag.police_recorded_by_id})
    audit_event("view_flag", "flag", flag.id, _flag_township(flag), {}, now)
    session.commit()
    children = visible_children(flag.contact) if flag.contact is not None and flag.child is None else []
    return render_template("dashboard/flag.html", flag=flag, subject=subject_name(flag), thread=thread,
                           clock=clock_view(flag, now), names=names, now_local=_local(now).replace(" ", "T"),
                           other_children=children, recordings_playable=recordings_playable())


def _flag_township(flag: Flag) -> int | None:
    return flag.child.township_id if flag.child is not None else flag.township_id


@bp.post("/flags/<int:flag_id>/<action>")
@login_required
def flag_action(flag_id: int, action: str) -> Response:
    """Take, acknowledge, record the police report or a home visit, resolve, reopen."""
    if action not in casework.ACTIONS:
        abort(404)
    now = utcnow()
    flag = flag_or_404(flag_id)
    actor = current_user.record
    form = request.form
    session = request_session()
    try:
        if action == "take":
            casework.take(session, flag, actor, now)
        elif action == "acknowledge":
            casework.acknowledge(session, flag, actor, now)
        elif action == "police":
            reported_at = parse_local_time(form.get("reported_at"), now)
            if reported_at is None:
                raise casework.CaseworkError("time_invalid")
            casework.record_police_report(session, flag, actor, now, reported_at=reported_at,
                                          station=form.get("station", ""), reference=form.get("reference", ""),
                                          officer=form.get("officer", ""))
        elif action == "visit":
            visited_at = parse_local_time(form.get("visited_at"), now)
            if visited_at is None:
                raise casework.CaseworkError("time_invalid")
            casework.record_home_visit(session, flag, actor, now, visited_at=visited_at, note=form.get("note", ""))
        elif action == "resolve":
            casework.resolve(session, flag, actor, now, outcome=form.get("outcome", ""),
                             no_report_reason=form.get("no_report_reason", ""))
        elif action == "reopen":
            casework.reopen(session, flag, actor, now, reason=form.get("reason", ""))
    except casework.CaseworkError as error:
        session.rollback()
        flash(ui_text(f"ui.flag.error.{error.code}"), "error")
        return redirect(url_for("dashboard.flag_page", flag_id=flag_id))
    audit_event(f"flag.{action}", "flag", flag.id, _flag_township(flag), {"status": flag.status}, now)
    session.commit()
    flash(ui_text(f"ui.flag.done.{action}"), "ok")
    return redirect(url_for("dashboard.flag_page", flag_id=flag_id))


# --- conversations ---------------------------------------------------------------------------

@bp.get("/conversations")
@login_required
def conversations() -> str:
    """Contacts with messages, newest first (only those in scope)."""
    scope = current_scope()
    session = request_session()
    last = (select(Message.contact_id, func.max(Message.id).label("last_id"))
            .where(Message.contact_id.is_not(None), scope.contact_clause(Message.contact_id))
            .group_by(Message.contact_id).order_by(func.max(Message.id).desc()).limit(100))
    pairs = session.execute(last).all()
    messages = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_([p.last_id for p in pairs]))
                                                 .options(selectinload(Message.contact)))}
    rows = []
    for pair in pairs:
        message = messages.get(pair.last_id)
        if message is None or message.contact is None:
            continue
        rows.append({"contact": message.contact, "last": message if scope.allows_message(message) else None,
                     "children": visible_children(message.contact)})
    return render_template("dashboard/conversations.html", rows=rows)


@bp.get("/conversations/<int:contact_id>")
@login_required
def conversation(contact_id: int) -> str:
    """The whole thread with a contact, each message with its delivery status; a reply box."""
    now = utcnow()
    contact = contact_or_404(contact_id)
    scope = current_scope()
    session = request_session()
    messages = session.scalars(select(Message).where(Message.contact_id == contact.id)
                               .order_by(Message.created_at.desc(), Message.id.desc()).limit(THREAD_LIMIT)).all()
    thread = [message_view(m) for m in reversed(messages) if scope.allows_message(m)]
    flags = session.scalars(select(Flag).where(Flag.contact_id == contact.id, scope.flag_clause())
                            .order_by(Flag.id.desc()).limit(20)).all()
    children = visible_children(contact)
    audit_event("view_conversation", "contact", contact.id,
                children[0].child.township_id if children else None, {}, now)
    session.commit()
    return render_template("dashboard/conversation.html", contact=contact, thread=thread, flags=flags,
                           children=children, max_reply=MAX_REPLY, recordings_playable=recordings_playable(),
                           settings=contact_settings_view(contact), languages=LOCALES, channels=CHANNELS,
                           zones=COMMON_ZONES)


@bp.post("/conversations/<int:contact_id>/reply")
@login_required
def reply(contact_id: int) -> Response:
    """Send a caseworker's text through the outbox (stored first, then dispatched)."""
    now = utcnow()
    contact = contact_or_404(contact_id)
    text = (request.form.get("text") or "").replace("\x00", "").strip()
    if not text or len(text) > MAX_REPLY:
        flash(ui_text("ui.reply.error.length", max=MAX_REPLY), "error")
        return redirect(url_for("dashboard.conversation", contact_id=contact.id))
    if not contact.reachable:
        flash(ui_text("ui.reply.error.unreachable"), "error")
        return redirect(url_for("dashboard.conversation", contact_id=contact.id))
    session = request_session()
    children = visible_children(contact)
    last_inbound = session.scalars(select(Message).where(Message.contact_id == contact.id,
                                                         Message.direction == "inbound")
                                   .order_by(Message.id.desc()).limit(1)).first()
    message = queue_text(session, contact=contact, template="sms.caseworker_reply", variables={"text": text},
                         now=now, child=children[0].child if len(children) == 1 else None,
                         in_reply_to=last_inbound)
    audit_event("reply", "contact", contact.id, children[0].child.township_id if children else None,
                {"message_id": message.id, "length": len(text)}, now)
    session.commit()
    try:
        dispatch(session, current_app.extensions["xiangban_sender"], now=now, config=current_app.config,
                 ids=[message.id])
    except (OperationalError, DBAPIError):
        raise
    except Exception:  # stored; the worker sends it
        session.rollback()
        log.exception("caseworker reply %s left queued for the worker", message.id)
    flash(ui_text("ui.reply.done"), "ok")
    return redirect(url_for("dashboard.conversation", contact_id=contact.id) + "#bottom")


# --- a contact's settings ------------------------------------------------------------------------

# Where the parents of the pilot counties mostly work (the field takes any IANA name).
COMMON_ZONES = ("Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Asia/Tokyo", "Asia/Seoul", "Asia/Singapore",
                "Asia/Dubai", "Europe/Moscow", "Europe/Rome", "Africa/Lagos", "America/New_York")


def _defaults() -> dict[str, Any]:
    from bot.clock import parse_hhmm

    config = current_app.config
    return {"default_zone": config["TIMEZONE"], "default_start": parse_hhmm(config.get("QUIET_START", "08:00")),
            "default_end": parse_hhmm(config.get("QUIET_END", "21:00"))}


def contact_settings_view(contact: Contact) -> dict[str, Any]:
    """The contact's effective settings for the form (the service defaults filled in)."""
    defaults = _defaults()
    from bot.i18n import normalize_locale

    return {"language": normalize_locale(contact.language),
            "quiet_start": (contact.quiet_start or defaults["default_start"]).strftime("%H:%M"),
            "quiet_end": (contact.quiet_end or defaults["default_end"]).strftime("%H:%M"),
            "timezone": contact.timezone or defaults["default_zone"],
            "default_window": f"{defaults['default_start']:%H:%M}–{defaults['default_end']:%H:%M}",
            "default_zone": defaults["default_zone"],
            "custom": any(v is not None for v in (contact.quiet_start, contact.quiet_end, contact.timezone))}


@bp.post("/conversations/<int:contact_id>/settings")
@login_required
def contact_settings(contact_id: int) -> Response:
    """Set a contact's channel, language and local window; audit-logged with the old and new values."""
    from bot.contacts import SettingsError, apply_settings, read_settings

    now = utcnow()
    contact = contact_or_404(contact_id)
    target = url_for("dashboard.conversation", contact_id=contact.id) + "#settings"
    session = request_session()
    try:
        changes = apply_settings(contact, read_settings(request.form), **_defaults())
    except SettingsError as error:
        session.rollback()
        flash(ui_text(f"ui.contact.error.{error.code}"), "error")
        return redirect(target)
    if not changes:
        flash(ui_text("ui.contact.settings.unchanged"), "ok")
        return redirect(target)
    children = visible_children(contact)
    audit_event("contact.settings", "contact", contact.id, children[0].child.township_id if children else None,
                {"changes": changes}, now)
    session.commit()
    flash(ui_text("ui.contact.settings.saved"), "ok")
    return redirect(target)


# --- call recordings ---------------------------------------------------------------------------

@bp.get("/messages/<int:message_id>/recording")
@login_required
def recording(message_id: int) -> Response:
    """A voicemail's audio, fetched from the provider with the account's credentials; each play is audit-logged.

    404 outside scope, for a message without a recording, and when the transport keeps none (console)."""
    now = utcnow()
    message = message_or_404(message_id)
    sender = current_app.extensions.get("xiangban_sender")
    if not message.recording_url or not fetches_recordings(sender):
        abort(404)
    if message.child is not None:
        township_id = message.child.township_id
    else:
        children = visible_children(message.contact) if message.contact is not None else []
        township_id = children[0].child.township_id if children else None
    session = request_session()
    try:
        audio, content_type = sender.fetch_recording(message.recording_url)  # type: ignore[union-attr]
    except RecordingError as error:
        log.warning("recording of message %s not fetched: %s (%s)", message.id, error.code, error)
        audit_event("play_recording", "message", message.id, township_id,
                    {"contact_id": message.contact_id, "ok": False, "error": error.code}, now)
        session.commit()
        return Response(ui_text("ui.recording.unavailable"), status=502, mimetype="text/plain",
                        headers={"Cache-Control": "no-store"})
    audit_event("play_recording", "message", message.id, township_id,
                {"contact_id": message.contact_id, "ok": True, "bytes": len(audio)}, now)
    session.commit()
    response = Response(audio, mimetype=content_type,
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                 "Content-Disposition": f"inline; filename=recording-{message.id}.mp3"})
    return response.make_conditional(request, accept_ranges=True, complete_length=len(audio))


# --- children --------------------------------------------------------------------------------

CHILDREN_PAGE = 100


def _township_filter() -> Township | None:
    """The township a list asks for (?township=), or None; 404 when it is outside the user's scope."""
    township_id = request.args.get("township", type=int)
    if not township_id:
        return None
    township = request_session().get(Township, township_id)
    if township is None or not current_scope().allows_township(township.id):
        abort(404)
    return township


@bp.get("/children")
@login_required
def children() -> str:
    """Children in scope, one list: by arrangement state (default: not yet confirmed by both), township,
    guardianship type and name; each with its arrangement state, risk class and open flags."""
    from bot.attention import ARRANGEMENT_STATES, UNCONFIRMED, children_overview, count_by_arrangement

    scope = current_scope()
    township = _township_filter()
    ids = [township.id] if township else None if scope.everything else sorted(scope.township_ids or ())
    state = request.args.get("arrangement", "unconfirmed")
    if state not in (*ARRANGEMENT_STATES, "unconfirmed", "any"):
        state = "unconfirmed"
    states = list(UNCONFIRMED) if state == "unconfirmed" else None if state == "any" else [state]
    gtype = request.args.get("type", "")
    gtype = gtype if gtype in GUARDIANSHIP_TYPES else ""
    q = (request.args.get("q") or "").strip()[:50]
    page = max(1, request.args.get("page", 1, type=int) or 1)
    session = request_session()
    rows = children_overview(session, township_ids=ids, arrangements=states, guardianship_type=gtype or None,
                             name_like=q or None, limit=CHILDREN_PAGE + 1, offset=(page - 1) * CHILDREN_PAGE)
    more = len(rows) > CHILDREN_PAGE
    rows = rows[:CHILDREN_PAGE]
    counts = count_by_arrangement(session, township_ids=ids)
    audit_event("view_children_list", "child", None, township.id if township else None,
                {"arrangement": state, "type": gtype, "q": q, "page": page, "shown": len(rows)}, utcnow())
    session.commit()
    filters = {"arrangement": state, "township": township.id if township else None, "type": gtype or None,
               "q": q or None}
    return render_template("dashboard/children.html", rows=rows, counts=counts, state=state,
                           states=ARRANGEMENT_STATES, unconfirmed_total=sum(counts[s] for s in UNCONFIRMED),
                           township_id=township.id if township else None, townships=scoped_townships(),
                           gtype=gtype, gtypes=GUARDIANSHIP_TYPES, q=q, page=page, more=more, filters=filters)


def risk_summary(child: Child, open_flags: list[Flag]) -> dict[str, Any]:
    """Risk type, level (the override when there is one), evaluation and the reasons in words (bot.risk)."""
    from handlers.dashboard import ui_locale

    summary: dict[str, Any] = {"type": risk.risk_type(child), "level": None, "computed_level": None,
                               "overridden": False, "evaluation": None, "reasons": [], "override_reason": None}
    try:
        result = risk.assess(child, open_flags)
        reasons = risk.describe(result, ui_locale())
    except Exception:  # a page must not die on a scoring bug; the type still shows
        log.exception("risk assessment failed for child %s", child.id)
        return summary
    summary.update(type=result.type, level=result.level, computed_level=result.computed_level,
                   overridden=result.overridden, evaluation=result.evaluation, reasons=reasons,
                   override_reason=result.override_reason)
    return summary


def arrangement_history(arrangement: Any) -> list[dict[str, Any]]:
    """The confirmation answers of an arrangement, oldest first, times parsed."""
    rows = []
    for entry in arrangement.history or []:
        try:
            at = datetime.fromisoformat(str(entry.get("at")))
        except (TypeError, ValueError):
            at = None
        side = entry.get("side") if entry.get("side") in ("parent", "guardian") else "unknown"
        answer = entry.get("answer") if entry.get("answer") in ("yes", "no") else "other"
        rows.append({"at": at, "side": side, "answer": answer})
    return rows


@bp.get("/children/<int:child_id>")
@login_required
def child_record(child_id: int) -> str:
    """One record per child (一人一档): household, arrangement history, risk, school and hukou, flags."""
    now = utcnow()
    child = child_or_404(child_id)
    session = request_session()
    flags = list(session.scalars(select(Flag).where(Flag.child_id == child.id).order_by(Flag.id.desc())))
    open_flags = [f for f in flags if f.status in ACTIVE_FLAG_STATUSES]
    audit_event("view_child", "child", child.id, child.township_id, {}, now)
    session.commit()
    order = {"father": 0, "mother": 1, "guardian": 2, "helper": 3}
    links = sorted(child.links, key=lambda link: (order.get(link.role, 9), link.id))
    return render_template("dashboard/child.html", child=child, links=links, flags=flags,
                           risk=risk_summary(child, open_flags),
                           arrangements=[(a, arrangement_history(a)) for a in reversed(child.arrangements)],
                           clocks={f.id: clock_view(f, now) for f in open_flags})


@bp.route("/children/<int:child_id>/edit", methods=["GET", "POST"])
@login_required
def child_edit(child_id: int) -> str | Response:
    """Edit what caseworkers learn on visits; every change is audit-logged with old and new value."""
    child = child_or_404(child_id)
    parents = [link.contact for link in child.links if link.role in ("father", "mother")]
    if request.method == "GET":
        return render_template("dashboard/child_edit.html", child=child, parents=parents, errors=[],
                               schools=SCHOOL_STATUSES, qualities=QUALITIES)
    now = utcnow()
    form = request.form
    errors: list[str] = []
    changes: dict[str, list[Any]] = {}

    def change(target: Any, field: str, value: Any, label: str) -> None:
        old = getattr(target, field)
        if old != value:
            changes[label] = [old, value]
            setattr(target, field, value)

    school_status = form.get("school_status") or None
    if school_status is not None and school_status not in SCHOOL_STATUSES:
        errors.append("ui.edit.error.invalid")
    quality = form.get("guardianship_quality") or None
    if quality is not None and quality not in QUALITIES:
        errors.append("ui.edit.error.invalid")
    override_text = form.get("risk_level_override") or ""
    override = int(override_text) if override_text in {str(n) for n in risk.LEVELS} else None
    reason: str | None = None
    if override_text and override is None:
        errors.append("ui.edit.error.invalid")
    else:
        try:
            reason = risk.check_override(override, form.get("risk_override_reason"))
        except risk.OverrideError as error:
            errors.append("ui.edit.error.override_reason" if str(error) == "reason" else "ui.edit.error.invalid")
    if errors:
        return render_template("dashboard/child_edit.html", child=child, parents=parents, errors=errors,
                               schools=SCHOOL_STATUSES, qualities=QUALITIES), 400  # type: ignore[return-value]
    change(child, "school_status", school_status, "school_status")
    change(child, "school", (form.get("school") or "").strip()[:200] or None, "school")
    change(child, "has_hukou", form.get("has_hukou") == "yes", "has_hukou")
    change(child, "guardianship_quality", quality, "guardianship_quality")
    change(child, "special_circumstances", (form.get("special_circumstances") or "").strip()[:2000] or None,
           "special_circumstances")
    for parent in parents:
        change(parent, "workplace", (form.get(f"workplace_{parent.id}") or "").strip()[:200] or None,
               f"workplace:contact:{parent.id}")
    session = request_session()
    if changes:
        child.updated_at = now
        audit_event("child.edit", "child", child.id, child.township_id, {"changes": changes}, now)
    # The override has its own service and audit event (risk.override, old and new level and reason).
    overridden = risk.set_override(session, child, override, reason, actor=current_user.record, now=now,
                                   ip=client_ip())
    if changes or overridden:
        session.commit()
        flash(ui_text("ui.edit.saved"), "ok")
    return redirect(url_for("dashboard.child_record", child_id=child.id))


@bp.get("/children/<int:child_id>/export.json")
@login_required
def child_export(child_id: int) -> Response:
    """The child's record as JSON (a data-subject request, a transfer): audit-logged as an export."""
    now = utcnow()
    child = child_or_404(child_id)
    session = request_session()
    flags = session.scalars(select(Flag).where(Flag.child_id == child.id).order_by(Flag.id)).all()
    record = {
        "id": child.id, "name": child.name, "sex": child.sex, "birth_date": child.birth_date.isoformat(),
        "township": child.township.name, "village": child.village.name, "has_hukou": child.has_hukou,
        "school_status": child.school_status, "school": child.school, "guardianship_type": child.guardianship_type,
        "guardianship_quality": child.guardianship_quality, "special_circumstances": child.special_circumstances,
        "people": [{"role": link.role, "relationship": link.relationship_label, "name": link.contact.name,
                    "phone": link.contact.phone, "workplace": link.contact.workplace} for link in child.links],
        "arrangements": [{"status": a.status, "created_at": a.created_at.isoformat(),
                          "confirmed_at": a.confirmed_at.isoformat() if a.confirmed_at else None,
                          "history": a.history} for a in child.arrangements],
        "flags": [{"id": f.id, "category": f.category, "severity": f.severity, "status": f.status,
                   "created_at": f.created_at.isoformat(),
                   "police_reported_at": f.police_reported_at.isoformat() if f.police_reported_at else None,
                   "outcome": f.outcome} for f in flags],
    }
    audit_event("export", "child", child.id, child.township_id, {"format": "json"}, now)
    session.commit()
    return Response(json.dumps(record, ensure_ascii=False, indent=1), mimetype="application/json",
                    headers={"Content-Disposition": f"attachment; filename=child-{child.id}.json",
                             "Cache-Control": "no-store"})


# --- the audit log (admins) --------------------------------------------------------------------

@bp.get("/audit")
@login_required
def audit_log() -> str:
    """The newest audit events; filter by action, actor or object."""
    require_role("admin")
    now = utcnow()
    session = request_session()
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    action = (request.args.get("action") or "").strip()[:50]
    actor = request.args.get("actor", type=int)
    object_type = (request.args.get("object_type") or "").strip()[:30]
    object_id = request.args.get("object_id", type=int)
    if action:
        query = query.where(AuditEvent.action == action)
    if actor:
        query = query.where(AuditEvent.actor_id == actor)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    events = list(session.scalars(query.limit(300)))
    names = names_by_id({e.actor_id for e in events})
    audit_event("view_audit", None, None, None, {"action": action, "actor": actor}, now)
    session.commit()
    return render_template("dashboard/audit.html", events=events, names=names, action=action,
                           actor=actor or "", object_type=object_type, object_id=object_id or "")


@bp.app_errorhandler(404)
def not_found(_error: Exception) -> tuple[str, int] | tuple[Response, int]:
    """404 for everything outside scope, the same as for what does not exist."""
    if request.path.startswith("/twilio/"):
        return Response("not found", mimetype="text/plain"), 404
    return render_template("dashboard/error.html", code=404, message_key="ui.error.not_found"), 404
