"""Inbound messages: dedupe by provider SID, store first, then let the engine answer."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from bot import engine
from bot.conversation import apply_step, contact_info, load_state, ttl
from bot.phones import normalize_phone
from models import CATEGORY_SEVERITY, Child, ChildContact, Contact, Message


@dataclass
class InboundResult:
    """The stored inbound message, the replies queued for it, and whether it was a re-delivery."""

    message: Message
    replies: list[Message]
    duplicate: bool
    urgent: bool = False  # an urgent flag was raised or added to: the caseworker is alerted at once


def _replies_to(session: Session, message: Message) -> list[Message]:
    return list(session.scalars(select(Message).where(Message.in_reply_to_id == message.id)
                                .order_by(Message.id)).all())


def _clean(text: str | None) -> str:
    return (text or "").replace("\x00", "")


def find_or_create_contact(session: Session, phone: str, now: datetime) -> Contact:
    """The contact of a phone number; an unknown sender gets a contact row so caseworkers see them."""
    household = selectinload(Contact.links).joinedload(ChildContact.child).selectinload(Child.links)
    contact = session.scalars(select(Contact).where(Contact.phone == phone).options(household)).first()
    if contact is None:
        contact = Contact(phone=phone, language="zh_Hans", channel="sms", created_at=now)
        session.add(contact)
        session.flush()
    return contact


def receive(session: Session, *, provider_sid: str | None, from_number: str, to_number: str | None, body: str,
            now: datetime, config: dict[str, Any], channel: str = "sms", question_ref: str | None = None,
            recording_url: str | None = None) -> InboundResult:
    """Store one inbound text (or keypad answer) once, run the engine, queue the replies; caller commits."""
    # Whatever the form carried must be storable: PostgreSQL refuses NUL in text and over-long values,
    # and a webhook refused for that would be retried by Twilio for ever and the message lost.
    provider_sid = _clean(provider_sid)[:64] or None
    from_number, to_number = _clean(from_number), _clean(to_number)
    if provider_sid:
        existing = session.scalars(select(Message).where(Message.provider_sid == provider_sid)).first()
        if existing is not None:
            return InboundResult(existing, _replies_to(session, existing), duplicate=True)
    body = _clean(body)
    phone = normalize_phone(from_number) or from_number.strip()[:20]  # contact.phone holds 20
    contact = find_or_create_contact(session, phone, now) if phone else None
    message = Message(direction="inbound", channel=channel, from_number=phone[:32] or None,
                      to_number=(to_number or "")[:32] or None, body=body, kind="inbound", template_vars={},
                      status="received", provider_sid=provider_sid, segments=1, attempts=0,
                      contact_id=contact.id if contact else None, recording_url=recording_url,
                      created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
        existing = session.scalars(select(Message).where(Message.provider_sid == provider_sid)).first()
        if existing is None:
            raise
        return InboundResult(existing, _replies_to(session, existing), duplicate=True)
    # The caseworker's number is only told in answer to HELP and cries for help: look it up only then.
    wants_phone = engine.replies.keyword(body) in ("help", "cry")
    info = contact_info(session, contact, fallback_phone=config.get("HELP_PHONE") or None, with_caseworker=wants_phone)
    if contact is not None and contact.links:
        message.child_id = info.children[0].id if len(info.children) == 1 else None
    state = load_state(session, contact) if contact is not None else engine.State()
    result = engine.step(info, state, body, now, question_ref=question_ref, ttl=ttl(config))
    replies = apply_step(session, contact=contact, result=result, now=now, inbound=message, config=config)
    urgent = any((flag.severity or CATEGORY_SEVERITY.get(flag.category)) == "urgent" for flag in result.flags)
    return InboundResult(message, replies, duplicate=False, urgent=urgent)
