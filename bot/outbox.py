"""The outbox: a message is stored before it is sent, claimed atomically, and never sent twice."""
from __future__ import annotations

import logging
import time as _time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from bot.channels import Sender, SendError, segment_count
from bot.clock import local, parse_hhmm
from bot.i18n import normalize_locale, render
from bot.phones import mask_phone
from models import Child, Contact, Message

log = logging.getLogger("xiangban.outbox")
MAX_ATTEMPTS = 6
ALWAYS_ALLOWED = {"sms.optout_confirm"}  # the one confirmation an opted-out contact still gets
STUCK_AFTER = timedelta(minutes=10)


def queue_text(session: Session, *, contact: Contact, template: str, now: datetime,
               variables: dict[str, Any] | None = None, child: Child | None = None, urgent: bool = False,
               in_reply_to: Message | None = None, reminder_id: int | None = None,
               from_number: str | None = None, not_before: datetime | None = None) -> Message:
    """Store an outbound text from a template in the contact's language (status queued)."""
    language = normalize_locale(contact.language)
    body = render(template, language, variables or {})
    message = Message(direction="outbound", channel="sms", from_number=from_number, to_number=contact.phone,
                      body=body, kind=template, template_vars=dict(variables or {}), language=language,
                      status="queued", segments=segment_count(body), attempts=0, urgent=urgent,
                      contact_id=contact.id, child_id=child.id if child else None,
                      in_reply_to_id=in_reply_to.id if in_reply_to else None, reminder_id=reminder_id,
                      created_at=now, next_attempt_at=not_before, updated_at=now)
    session.add(message)
    session.flush()
    return message


def queue_staff_text(session: Session, *, phone: str, language: str, template: str, now: datetime) -> Message:
    """Store an alert to a caseworker: urgent, so it is sent at any hour; never carries case details."""
    language = normalize_locale(language)
    body = render(template, language)
    message = Message(direction="outbound", channel="sms", to_number=phone, body=body, kind=template,
                      template_vars={}, language=language, status="queued", segments=segment_count(body),
                      attempts=0, urgent=True, created_at=now, updated_at=now)
    session.add(message)
    session.flush()
    return message


def queue_call(session: Session, *, contact: Contact, now: datetime, child: Child | None = None,
               reminder_id: int | None = None, kind: str = "voice.checkin") -> Message:
    """Store an outbound voice call (status queued); the IVR asks the open question when answered."""
    message = Message(direction="outbound", channel="voice", to_number=contact.phone, body="", kind=kind,
                      template_vars={}, language=normalize_locale(contact.language), status="queued",
                      segments=0, attempts=0, contact_id=contact.id, child_id=child.id if child else None,
                      reminder_id=reminder_id, created_at=now, updated_at=now)
    session.add(message)
    session.flush()
    return message


def next_window_start(contact: Contact, now: datetime, *, default_zone: str, start: str, end: str) -> datetime | None:
    """None when `now` is inside the contact's daytime window, else the instant it next opens."""
    zone = contact.timezone or default_zone
    here = local(now, zone)
    opens = contact.quiet_start if contact.quiet_start is not None else parse_hhmm(start)
    closes = contact.quiet_end if contact.quiet_end is not None else parse_hhmm(end)
    if opens == closes or opens <= here.time() < closes:  # the same start and end: no quiet hours
        return None
    day = here.date() if here.time() < opens else here.date() + timedelta(days=1)
    return datetime.combine(day, opens, tzinfo=here.tzinfo)


@dataclass
class DispatchReport:
    """What one dispatch pass did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0


def _claim(session: Session, now: datetime, limit: int, ids: Iterable[int] | None, is_postgres: bool) -> list[int]:
    """Atomically move due queued messages to 'sending' and return their ids."""
    due = select(Message.id).where(
        Message.direction == "outbound", Message.status == "queued",
        or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
    ).order_by(Message.urgent.desc(), Message.id).limit(limit)
    if ids is not None:
        due = due.where(Message.id.in_(list(ids)))
    if is_postgres:
        # Lock the rows first (another worker's are skipped), then update exactly those: an UPDATE over a
        # LIMIT subquery may be re-evaluated by PostgreSQL and exceed the limit.
        due_ids = list(session.scalars(due.with_for_update(skip_locked=True)).all())
    else:
        due_ids = list(session.scalars(due).all())  # SQLite: one writer at a time; the UPDATE re-checks
    if not due_ids:
        session.commit()
        return []
    claimed = session.execute(
        update(Message).where(Message.id.in_(due_ids), Message.status == "queued")
        .values(status="sending", claimed_at=now, attempts=Message.attempts + 1, updated_at=now)
        .returning(Message.id)
    ).scalars().all()
    session.commit()
    return sorted(claimed)


def dispatch(session: Session, sender: Sender, *, now: datetime, config: dict[str, Any], limit: int = 500,
             ids: Iterable[int] | None = None, pace: bool = False) -> DispatchReport:
    """Send what is due, at most `limit`, respecting quiet hours (unless urgent or a reply)."""
    report = DispatchReport()
    is_postgres = session.get_bind().dialect.name == "postgresql"
    claimed = _claim(session, now, limit, ids, is_postgres)
    interval = 1.0 / config.get("SEND_RATE_PER_SECOND", 10) if pace else 0.0
    for message_id in claimed:
        message = session.get(Message, message_id)
        if message is None:
            continue
        contact = session.get(Contact, message.contact_id) if message.contact_id else None
        if contact is not None and not _may_send(contact, message):
            message.status, message.error_message, message.updated_at = "failed", "contact not reachable", now
            session.commit()
            report.failed += 1
            continue
        if contact is not None and not (message.urgent or message.in_reply_to_id):
            opens = next_window_start(contact, now, default_zone=config["TIMEZONE"],
                                      start=config["QUIET_START"], end=config["QUIET_END"])
            if opens is not None:
                message.status, message.next_attempt_at, message.updated_at = "queued", opens, now
                message.attempts -= 1
                session.commit()
                report.deferred += 1
                continue
        _send_one(session, sender, message, contact, now, report, config)
        if interval:
            _time.sleep(interval)
    return report


def _may_send(contact: Contact, message: Message) -> bool:
    if contact.invalid_number:
        return False
    return not contact.opted_out or message.kind in ALWAYS_ALLOWED


def _send_one(session: Session, sender: Sender, message: Message, contact: Contact | None, now: datetime,
              report: DispatchReport, config: dict[str, Any]) -> None:
    from bot.flags import raise_flag  # local: flags import models only, avoid a cycle at import

    try:
        if message.channel == "voice":
            result = sender.place_call(message.to_number or "", message_id=message.id)
        else:
            result = sender.send_text(message.to_number or "", message.body, message_id=message.id)
    except SendError as error:
        message.error_code, message.error_message, message.updated_at = error.code, str(error)[:500], now
        if error.retryable and message.attempts < MAX_ATTEMPTS:
            message.status = "queued"
            message.next_attempt_at = now + timedelta(seconds=30 * 2 ** (message.attempts - 1))
            report.retried += 1
        else:
            message.status = "failed"
            report.failed += 1
            if contact is not None and error.retryable:  # retried to the limit: tell the caseworker
                for child in [link.child for link in contact.links] or [None]:
                    raise_flag(session, category="undeliverable", now=now, child=child, contact=contact,
                               message=message, summary=f"{error.code or ''}",
                               report_minutes=config["URGENT_REPORT_MINUTES"])
            elif contact is not None:
                _apply_provider_verdict(session, contact, message, error, now, raise_flag, config)
        session.commit()
        log.warning("send to %s failed: %s %s", mask_phone(message.to_number), error.code, error)
        return
    except Exception as error:  # network trouble: the provider may or may not have it
        message.status, message.error_message, message.updated_at = "unknown", str(error)[:500], now
        session.commit()
        log.exception("send to %s: outcome unknown", mask_phone(message.to_number))
        report.failed += 1
        return
    message.provider_sid = result.provider_sid
    message.status = "sent"
    message.sent_at = message.updated_at = now
    session.commit()
    report.sent += 1


def _apply_provider_verdict(session: Session, contact: Contact, message: Message, error: SendError, now: datetime,
                            raise_flag: Any, config: dict[str, Any]) -> None:
    """21610 marks the contact opted out; bad-number codes mark it invalid; a caseworker is told."""
    from bot.channels.twilio_sender import INVALID_NUMBER, OPTED_OUT

    if error.code in OPTED_OUT:
        contact.opted_out, contact.opted_out_at = True, now
        category = "opted_out"
    elif error.code in INVALID_NUMBER:
        contact.invalid_number = True
        category = "invalid_number"
    else:
        return
    children = [link.child for link in contact.links] or [None]
    for child in children:
        raise_flag(session, category=category, now=now, child=child, contact=contact, message=message,
                   summary=f"{error.code}", report_minutes=config["URGENT_REPORT_MINUTES"])


def mark_stuck_unknown(session: Session, *, now: datetime) -> int:
    """Messages left 'sending' by a dead worker become 'unknown': reconciled, never blindly re-sent."""
    result = session.execute(
        update(Message).where(and_(Message.status == "sending", Message.claimed_at < now - STUCK_AFTER))
        .values(status="unknown", error_message="worker stopped mid-send; awaiting provider status", updated_at=now)
    )
    session.commit()
    return result.rowcount or 0


def carry_in_answer(session: Session, replies: Iterable[Message], *, now: datetime) -> list[Message]:
    """Replies that travel in the webhook's own answer (TwiML): handed to the provider now, in this transaction.

    A re-delivered webhook gets the same answer, so a reply is never lost; one to a contact who may not
    be texted (opted out, invalid number) is marked failed instead, unless it is the opt-out confirmation
    or the answer to an urgent message.
    """
    carried = []
    for message in replies:
        contact = session.get(Contact, message.contact_id) if message.contact_id else None
        if contact is not None and not message.urgent and not _may_send(contact, message):
            message.status, message.error_message, message.updated_at = "failed", "contact not reachable", now
            continue
        message.status, message.sent_at, message.claimed_at, message.updated_at = "sent", now, now, now
        message.attempts = 1
        carried.append(message)
    return carried


def apply_status(session: Session, *, provider_sid: str, status: str, error_code: str | None,
                 now: datetime, config: dict[str, Any] | None = None, message_id: int | None = None) -> Message | None:
    """Apply a provider status callback: idempotent, and only ever forward in the lifecycle.

    A reply carried in a webhook answer has no provider SID until its first callback, which names our
    message id (`message_id`) and so gives the SID to adopt.
    """
    from models import STATUS_RANK

    message = session.scalars(select(Message).where(Message.provider_sid == provider_sid)).first()
    if message is None and message_id is not None:
        message = session.get(Message, message_id)
        if message is None or message.direction != "outbound" or message.provider_sid not in (None, provider_sid):
            return None
        message.provider_sid = provider_sid
    if message is None:
        return None
    status = status.lower()
    if STATUS_RANK.get(status, -1) < STATUS_RANK.get(message.status, 0) or status == message.status:
        return message
    message.status = status
    message.updated_at = now
    if error_code:
        message.error_code = error_code
    if status == "delivered":
        message.delivered_at = now
    if status == "sent" and message.sent_at is None:
        message.sent_at = now
    if status in ("undelivered", "failed") and error_code and message.contact_id and config is not None:
        from bot.flags import raise_flag

        contact = session.get(Contact, message.contact_id)
        if contact is not None:  # a carrier's verdict arrives late: opted out, or not a mobile
            _apply_provider_verdict(session, contact, message, SendError(error_code, status, retryable=False), now,
                                    raise_flag, config)
    return message
