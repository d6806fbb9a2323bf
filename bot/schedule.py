"""Everything due at a given `now`: planned contacts, the unanswered ladder, the report clock, sends.

`run_due(db, sender, now=..., config=...)` is the one entry point: `flask --app bot tick --now`
calls it once, APScheduler calls it every minute in exactly one process (`flask --app bot worker`).
Claims on due rows are conditional UPDATEs (with FOR UPDATE SKIP LOCKED on PostgreSQL), so two
workers running at once never send the same reminder.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot.channels import Sender
from bot.conversation import ask_question, load_state, save_state
from bot.db import Database
from bot.engine import State
from bot.enrollment import migrant_parents
from bot.flags import raise_flag
from bot.outbox import dispatch, mark_stuck_unknown, next_window_start, queue_call, queue_staff_text, queue_text
from bot.reconcile import provider_lookup, reconcile_unknown
from bot.reminders import PERIOD_DAYS, plan_reminder
from bot.risk import risk_type
from models import (ACTIVE_FLAG_STATUSES, Arrangement, Caseworker, Child, Contact, Flag, FlagEvent, Message, Reminder,
                    Township, caseworker_township)

log = logging.getLogger("xiangban.schedule")
QUESTION_KINDS = {"confirm_parent", "confirm_guardian", "checkin", "parent_contact", "quarterly"}
BATCH = 500
STALE_CLAIM = timedelta(minutes=10)


@dataclass
class TickReport:
    """What one tick did (printed by `flask --app bot tick`)."""

    reminders_sent: int = 0
    reminders_skipped: int = 0
    ladder_steps: int = 0
    no_response_flags: int = 0
    escalations: int = 0
    dispatched: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {"reminders_sent": self.reminders_sent, "reminders_skipped": self.reminders_skipped,
                "ladder_steps": self.ladder_steps, "no_response_flags": self.no_response_flags,
                "escalations": self.escalations, "dispatched": self.dispatched}


def worker_id() -> str:
    """A name for this process in claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_due(db: Database, sender: Sender, *, now: datetime, config: dict[str, Any],
            dispatch_limit: int | None = None) -> TickReport:
    """Run everything due at `now` once; safe to call concurrently from several processes."""
    report = TickReport()
    me = worker_id()
    with db.session() as session:
        mark_stuck_unknown(session, now=now)
        _release_stale_claims(session, now=now)
        reconcile_unknown(session, provider_lookup(sender), now)
        _send_due_reminders(session, now=now, config=config, worker=me, report=report)
        _advance_ladders(session, now=now, config=config, worker=me, report=report)
        _escalate_flags(session, now=now, config=config, report=report)
        limit = dispatch_limit or max(1, int(config["SEND_RATE_PER_SECOND"] * 60))
        result = dispatch(session, sender, now=now, config=config, limit=limit,
                          pace=getattr(sender, "name", "") != "console")
        report.dispatched = {"sent": result.sent, "retried": result.retried, "failed": result.failed,
                             "deferred": result.deferred}
    return report


# --- planned contacts ------------------------------------------------------------------------------

def _in_window(contact: Contact, now: datetime, config: dict[str, Any]) -> bool:
    return next_window_start(contact, now, default_zone=config["TIMEZONE"], start=config["QUIET_START"],
                             end=config["QUIET_END"]) is None


def _claim_ids(session: Session, ids: list[int], *, from_state: str, to_values: dict[str, Any],
               extra: Any = None) -> list[int]:
    """Conditionally move rows out of a state; only rows still in it are ours."""
    if not ids:
        return []
    condition = [Reminder.id.in_(ids), Reminder.state == from_state]
    if extra is not None:
        condition.append(extra)
    statement = update(Reminder).where(*condition).values(**to_values).returning(Reminder.id)
    claimed = list(session.execute(statement).scalars().all())
    session.commit()
    return claimed


def _due_batches(session: Session, *conditions: Any) -> Iterator[list[Reminder]]:
    """Due reminders in batches by id; on PostgreSQL rows another worker holds are skipped, not waited for."""
    last_id = 0
    while True:
        query = select(Reminder).where(*conditions, Reminder.id > last_id).order_by(Reminder.id).limit(BATCH)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Reminder)
        candidates = list(session.scalars(query).all())
        if not candidates:
            session.commit()
            return
        last_id = candidates[-1].id
        yield candidates


def _send_due_reminders(session: Session, *, now: datetime, config: dict[str, Any], worker: str,
                        report: TickReport) -> None:
    for candidates in _due_batches(session, Reminder.state == "planned", Reminder.due_at <= now):
        ready = [r.id for r in candidates if _ready(session, r, now, config)]
        claimed = _claim_ids(session, ready, from_state="planned",
                             to_values={"state": "claimed", "claimed_by": worker, "claimed_at": now})
        for reminder_id in claimed:
            reminder = session.get(Reminder, reminder_id)
            if reminder is None:
                continue
            if _busy(session, reminder, now):  # an earlier reminder of this batch asked a question
                reminder.state, reminder.claimed_by = "planned", None
            else:
                _fire(session, reminder, now=now, config=config, report=report)
        # One commit a batch: the messages and the reminders' new states land together, or not at all
        # (a worker that dies here leaves its claims to `_release_stale_claims`).
        session.commit()


def _release_stale_claims(session: Session, *, now: datetime) -> None:
    """Reminders claimed by a worker that died before committing its batch go back to planned."""
    session.execute(update(Reminder).where(Reminder.state == "claimed", Reminder.claimed_at < now - STALE_CLAIM)
                    .values(state="planned", claimed_by=None))
    session.commit()


def _ready(session: Session, reminder: Reminder, now: datetime, config: dict[str, Any]) -> bool:
    """Whether a due reminder may go now: daytime, and no other question open with this contact."""
    contact = reminder.contact
    if not contact.reachable:
        return True  # fired only to be skipped and planned forward
    if not _in_window(contact, now, config):
        return False
    return not _busy(session, reminder, now)


def _busy(session: Session, reminder: Reminder, now: datetime) -> bool:
    """Whether the contact is still to answer another question (we never ask two at once)."""
    if reminder.kind not in QUESTION_KINDS or not reminder.contact.reachable:
        return False
    open_question = load_state(session, reminder.contact).live_question(now)
    return open_question is not None and open_question.reminder_id != reminder.id


def _cadence(session: Session, reminder: Reminder, config: dict[str, Any]) -> dict[str, Any]:
    cadence = dict(config["CADENCE"])
    child = reminder.child
    if child is not None:
        township = session.get(Township, child.township_id)
        if township is not None and township.settings:
            cadence.update(township.settings.get("cadence", {}))
    return cadence


def _plan_next(session: Session, reminder: Reminder, now: datetime, config: dict[str, Any]) -> None:
    """Plan the following occurrence once, after `now` (missed periods are not sent one by one)."""
    setting = PERIOD_DAYS.get(reminder.kind)
    if setting is None:
        return
    step = timedelta(days=_cadence(session, reminder, config)[setting])
    due = reminder.due_at + step
    while due <= now:
        due += step
    detail = dict(reminder.detail or {})
    key = None
    if reminder.kind in ("confirm_parent", "confirm_guardian"):
        arrangement = session.get(Arrangement, detail.get("arrangement_id"))
        if arrangement is None or arrangement.status in ("ended", "declined"):
            return
        key = f"arr{arrangement.id}:{due.date().isoformat()}"
    plan_reminder(session, contact_id=reminder.contact_id, child_id=reminder.child_id, kind=reminder.kind,
                  period_key=key, due_at=due, detail=detail, now=now)


def _fire(session: Session, reminder: Reminder, *, now: datetime, config: dict[str, Any],
          report: TickReport) -> None:
    contact, child = reminder.contact, reminder.child
    skip_reason = _skip_reason(session, reminder, now)
    if skip_reason:
        reminder.state, reminder.detail = "skipped", {**(reminder.detail or {}), "skipped": skip_reason}
        report.reminders_skipped += 1
        _plan_next(session, reminder, now, config)
        return
    if reminder.kind == "welcome":
        township = child.township if child else _township_of(contact)
        message = queue_text(session, contact=contact, template="sms.welcome", now=now,
                             variables={"township": township.name if township else ""}, reminder_id=reminder.id)
        reminder.state, reminder.sent_at, reminder.message_id = "done", now, message.id
    elif reminder.kind == "home_visit":
        message = queue_text(session, contact=contact, template="sms.helper_visit_reminder", now=now,
                             variables={"child": child.given_name if child else ""}, child=child,
                             reminder_id=reminder.id)
        reminder.state, reminder.sent_at, reminder.message_id = "done", now, message.id
    else:
        arrangement = (session.get(Arrangement, reminder.detail.get("arrangement_id"))
                       if reminder.detail.get("arrangement_id") else None)
        message = _ask(session, reminder, contact, child, arrangement, now, config, again=False)
        reminder.state, reminder.sent_at, reminder.message_id = "sent", now, message.id
        reminder.ladder_step = 0
        reminder.next_step_at = now + _ladder(session, reminder, config)[0]
    report.reminders_sent += 1
    _plan_next(session, reminder, now, config)


def _ask(session: Session, reminder: Reminder, contact: Contact, child: Child | None,
         arrangement: Arrangement | None, now: datetime, config: dict[str, Any], *, again: bool) -> Any:
    if contact.channel == "voice" and reminder.kind in QUESTION_KINDS:
        # Voice-first contacts get the question as a call; the IVR reads the same open question.
        ask_question(session, contact=contact, kind=reminder.kind, child=child, now=now, config=config,
                     reminder=reminder, arrangement=arrangement, again=again, send_text=False)
        return queue_call(session, contact=contact, now=now, child=child, reminder_id=reminder.id,
                          kind=f"voice.{reminder.kind}")
    return ask_question(session, contact=contact, kind=reminder.kind, child=child, now=now, config=config,
                        reminder=reminder, arrangement=arrangement, again=again)


def _township_of(contact: Contact) -> Township | None:
    return contact.links[0].child.township if contact.links else None


def _skip_reason(session: Session, reminder: Reminder, now: datetime) -> str | None:
    contact = reminder.contact
    if contact.opted_out:
        return "opted_out"
    if contact.invalid_number:
        return "invalid_number"
    if reminder.kind in ("confirm_parent", "confirm_guardian"):
        arrangement = session.get(Arrangement, reminder.detail.get("arrangement_id"))
        if arrangement is None or arrangement.status in ("ended", "declined"):
            return "arrangement_closed"
        if reminder.kind == "confirm_parent" and arrangement.status == "confirmed" and \
                arrangement.confirmed_at and now - arrangement.confirmed_at < timedelta(days=30):
            return "recently_confirmed"
    if reminder.kind == "parent_contact" and reminder.child_id:
        from models import Answer
        week_start = now - timedelta(days=7)
        reported = session.scalars(select(Answer.id).where(
            Answer.contact_id == contact.id, Answer.child_id == reminder.child_id,
            Answer.question == "parent_contact", Answer.value == "yes", Answer.at >= week_start).limit(1)).first()
        if reported:
            return "contact_reported"
    return None


# --- the unanswered ladder -------------------------------------------------------------------------

def _ladder(session: Session, reminder: Reminder, config: dict[str, Any]) -> list[timedelta]:
    """The ladder's offsets from the first send; halved for risk type 1 or a child with an open flag."""
    hours = list(_cadence(session, reminder, config)["ladder_hours"])
    if _heightened(session, reminder.child):
        hours = [h / 2 for h in hours]
    return [timedelta(hours=h) for h in hours]


def _heightened(session: Session, child: Child | None) -> bool:
    if child is None:
        return False
    if risk_type(child) == 1:
        return True
    return session.scalars(select(Flag.id).where(Flag.child_id == child.id,
                                                 Flag.status.in_(ACTIVE_FLAG_STATUSES)).limit(1)).first() is not None


def _advance_ladders(session: Session, *, now: datetime, config: dict[str, Any], worker: str,
                     report: TickReport) -> None:
    for candidates in _due_batches(session, Reminder.state == "sent", Reminder.next_step_at <= now):
        for reminder in candidates:
            step = reminder.ladder_step
            final = step + 1 >= len(_ladder(session, reminder, config))
            if not final and not _in_window(reminder.contact, now, config):
                continue
            claimed = _claim_ids(session, [reminder.id], from_state="sent",
                                 to_values={"ladder_step": step + 1, "claimed_by": worker, "claimed_at": now},
                                 extra=Reminder.ladder_step == step)
            if not claimed:
                continue
            session.refresh(reminder)
            _ladder_step(session, reminder, step + 1, now=now, config=config, report=report)
            session.commit()


def _ladder_step(session: Session, reminder: Reminder, step: int, *, now: datetime, config: dict[str, Any],
                 report: TickReport) -> None:
    offsets = _ladder(session, reminder, config)
    contact, child = reminder.contact, reminder.child
    arrangement = (session.get(Arrangement, reminder.detail.get("arrangement_id"))
                   if reminder.detail.get("arrangement_id") else None)
    report.ladder_steps += 1
    if step < len(offsets):
        reminder.next_step_at = (reminder.sent_at or now) + offsets[step]
    if step == 1 and contact.reachable:
        _ask(session, reminder, contact, child, arrangement, now, config, again=True)
    elif step == 2 and contact.reachable:
        if contact.channel in ("voice", "both"):
            queue_call(session, contact=contact, now=now, child=child, reminder_id=reminder.id,
                       kind=f"voice.{reminder.kind}")
        else:
            _nudge_household(session, reminder, now)
    elif step >= len(offsets):
        reminder.state, reminder.next_step_at = "no_response", None
        severity = "urgent" if _heightened(session, child) else "high"
        raise_flag(session, category="no_response", now=now, child=child, contact=contact, severity=severity,
                   summary=f"{reminder.kind} {reminder.period_key}", report_minutes=config["URGENT_REPORT_MINUTES"],
                   detail={"reminder_id": reminder.id})
        state = load_state(session, contact)
        if state.question is not None and state.question.reminder_id == reminder.id:
            save_state(session, contact, State(), now)
        report.no_response_flags += 1


def _nudge_household(session: Session, reminder: Reminder, now: datetime) -> None:
    """Ask another adult of the household (the other parent, or the guardian) to pass the word on."""
    child = reminder.child
    if child is None:
        return
    silent = reminder.contact
    link = next((l for l in child.links if l.contact_id == silent.id), None)
    who = (link.relationship_label if link and link.relationship_label else
           {"father": "父亲", "mother": "母亲", "guardian": "监护人", "helper": "帮扶人"}.get(link.role if link else "", ""))
    others = [c for c in migrant_parents(child) if c.id != silent.id]
    guardian = next((l.contact for l in child.links if l.role == "guardian"), None)
    if guardian is not None and guardian.id != silent.id:
        others.append(guardian)
    for other in others:
        if other.reachable:
            queue_text(session, contact=other, template="sms.ladder_nudge", now=now,
                       variables={"who": who}, child=child, reminder_id=reminder.id)
            return


# --- the mandatory-report clock --------------------------------------------------------------------

def alert_urgent_now(session: Session, sender: Sender, *, now: datetime, config: dict[str, Any]) -> None:
    """Alert caseworkers about urgent flags due for an alert, and send the alerts at once (any hour)."""
    before = session.scalar(select(func.max(Message.id))) or 0
    _escalate_flags(session, now=now, config=config, report=TickReport())
    alerts = session.scalars(select(Message.id).where(Message.id > before, Message.direction == "outbound",
                                                      Message.contact_id.is_(None))).all()
    if alerts:
        dispatch(session, sender, now=now, config=config, ids=list(alerts))


def _escalate_flags(session: Session, *, now: datetime, config: dict[str, Any], report: TickReport) -> None:
    flags = session.scalars(select(Flag).where(
        Flag.severity == "urgent", Flag.status == "open", Flag.next_escalation_at.is_not(None),
        Flag.next_escalation_at <= now).order_by(Flag.id).limit(BATCH)).all()
    for flag in flags:
        level = flag.escalation_level
        claimed = session.execute(update(Flag).where(Flag.id == flag.id, Flag.escalation_level == level,
                                                     Flag.status == "open")
                                  .values(escalation_level=level + 1).returning(Flag.id)).scalars().all()
        if not claimed:
            session.rollback()
            continue
        session.refresh(flag)
        recipients = _alert_recipients(session, flag, level)
        template = "sms.caseworker_alert" if level == 0 else "sms.caseworker_escalation"
        for worker in recipients:
            queue_staff_text(session, phone=worker.phone or "", language=worker.language, template=template, now=now)
        flag.next_escalation_at = flag.due_at if level == 0 else None
        session.add(FlagEvent(flag=flag, at=now, action="alerted" if level == 0 else "escalated",
                              detail={"to": [w.id for w in recipients], "template": template,
                                      "note": "" if recipients else "no caseworker with a phone to alert"}))
        report.escalations += 1
        session.commit()


def _alert_recipients(session: Session, flag: Flag, level: int) -> list[Caseworker]:
    """Level 0: the township's caseworkers. Level 1: the supervisors of the county, else other caseworkers."""
    township = session.get(Township, flag.township_id) if flag.township_id else None
    with_phone = Caseworker.phone.is_not(None), Caseworker.active.is_(True)
    local = list(session.scalars(select(Caseworker).join(caseworker_township).where(
        caseworker_township.c.township_id == flag.township_id, Caseworker.role == "caseworker", *with_phone)
        .order_by(Caseworker.id)).all()) if township else []
    if level == 0:
        if local:
            return local
    supervisors = list(session.scalars(select(Caseworker).where(
        Caseworker.role.in_(("supervisor", "admin")), *with_phone,
        or_(Caseworker.county.is_(None), Caseworker.county == (township.county if township else None)))
        .order_by(Caseworker.role.desc(), Caseworker.id)).all())
    return supervisors or local[1:2]
