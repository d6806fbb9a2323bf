"""Between the engine and the database: load what the engine needs, persist what it decided."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import engine
from bot.flags import raise_flag
from bot.outbox import queue_text
from bot.phones import normalize_phone
from models import (Answer, Arrangement, Caseworker, Child, ChildContact, Contact, ConversationState, Message,
                    Reminder)


def caseworker_phone_for(session: Session, contact: Contact) -> str | None:
    """The phone of a caseworker of the contact's township, for HELP answers."""
    township_ids = {link.child.township_id for link in contact.links}
    if not township_ids:
        return None
    from models import caseworker_township

    row = session.execute(
        select(Caseworker.phone).join(caseworker_township, caseworker_township.c.caseworker_id == Caseworker.id)
        .where(caseworker_township.c.township_id.in_(township_ids), Caseworker.phone.is_not(None),
               Caseworker.active.is_(True)).order_by(Caseworker.id).limit(1)
    ).first()
    return row[0] if row else None


def child_info(child: Child, role: str) -> engine.ChildInfo:
    """The engine's view of a child, from one contact's side."""
    guardian = next((link for link in child.links if link.role == "guardian"), None)
    relation = guardian.relationship_label if guardian else None
    return engine.ChildInfo(id=child.id, given_name=child.given_name, role=role, relation=relation)


def contact_info(session: Session, contact: Contact | None, *, fallback_phone: str | None = None,
                 with_caseworker: bool = True) -> engine.ContactInfo:
    """The engine's view of a contact (an unknown sender when None)."""
    if contact is None or not contact.links:  # nobody we enrolled: an unknown sender
        return engine.ContactInfo(id=None, language=contact.language if contact else "zh_Hans",
                                  caseworker_phone=fallback_phone)
    children = tuple(child_info(link.child, link.role)
                     for link in sorted(contact.links, key=lambda link: (link.child.birth_date, link.child_id)))
    return engine.ContactInfo(id=contact.id, language=contact.language, opted_out=contact.opted_out,
                              children=children,
                              caseworker_phone=(caseworker_phone_for(session, contact) if with_caseworker else None)
                              or fallback_phone)


def load_state(session: Session, contact: Contact) -> engine.State:
    """The stored conversation state of a contact."""
    row = session.get(ConversationState, contact.id)
    if row is None or not row.state.get("question"):
        return engine.State()
    return engine.State(question=engine.Question.from_json(row.state["question"]), expires_at=row.expires_at)


def save_state(session: Session, contact: Contact, state: engine.State, now: datetime) -> None:
    """Store a contact's conversation state."""
    row = session.get(ConversationState, contact.id)
    if row is None:
        row = ConversationState(contact_id=contact.id, state={}, updated_at=now)
        session.add(row)
    row.state = {"question": state.question.to_json()} if state.question else {}
    row.expires_at = state.expires_at
    row.updated_at = now


def ttl(config: dict[str, Any]) -> timedelta:
    """How long a question stays open."""
    return timedelta(hours=config["CONVERSATION_TTL_HOURS"])


def ask_question(session: Session, *, contact: Contact, kind: str, child: Child | None, now: datetime,
                 config: dict[str, Any], reminder: Reminder | None = None, arrangement: Arrangement | None = None,
                 again: bool = False, send_text: bool = True) -> Message | None:
    """Open a question with a contact and queue the text that asks it (unless it is asked by call)."""
    role = next((link.role for link in contact.links if child is not None and link.child_id == child.id), "")
    info = child_info(child, role) if child is not None else None
    result = engine.ask(contact_info(session, contact), kind, info, now, again=again,
                        reminder_id=reminder.id if reminder else None,
                        arrangement_id=arrangement.id if arrangement else None, ttl=ttl(config))
    if result.state.question is not None:
        save_state(session, contact, result.state, now)
    if not send_text:
        return None
    reply = result.replies[0]
    return queue_text(session, contact=contact, template=reply.template, variables=reply.variables, child=child,
                      now=now, reminder_id=reminder.id if reminder else None)


def apply_step(session: Session, *, contact: Contact | None, result: engine.Step, now: datetime,
               inbound: Message | None, config: dict[str, Any]) -> list[Message]:
    """Persist an engine step: state, records, flags; queue the replies. Returns the queued replies."""
    if contact is not None:
        save_state(session, contact, result.state, now)
    if inbound is not None and result.triage is not None:
        inbound.triage = {"severity": result.triage.severity, "category": result.triage.category,
                          "evidence": [{"start": e.start, "end": e.end, "text": e.text, "rule": e.rule}
                                       for e in result.triage.evidence]}
    for record in result.records:
        _apply_record(session, contact, record, now, inbound, config)
    for request in result.flags:
        child = session.get(Child, request.child_id) if request.child_id else None
        raise_flag(session, category=request.category, now=now, child=child, contact=contact, message=inbound,
                   severity=request.severity, evidence=request.evidence, summary=request.summary,
                   report_minutes=config["URGENT_REPORT_MINUTES"])
    queued = []
    if contact is not None:
        for reply in result.replies:
            queued.append(queue_text(session, contact=contact, template=reply.template, variables=reply.variables,
                                     now=now, urgent=reply.urgent, in_reply_to=inbound))
    return queued


def _apply_record(session: Session, contact: Contact | None, record: engine.Record, now: datetime,
                  inbound: Message | None, config: dict[str, Any]) -> None:
    if contact is None:
        return
    message_id = inbound.id if inbound is not None else None
    if record.kind == "opt_out":
        contact.opted_out, contact.opted_out_at = True, now
    elif record.kind == "opt_in":
        contact.opted_out = False
    elif record.kind == "language":
        contact.language = record.value
    elif record.kind == "answer":
        reminder_id = record.data.get("reminder_id")
        session.add(Answer(contact_id=contact.id, child_id=record.child_id, question=record.data.get("question", ""),
                           value=record.value, text=record.data.get("text") or None, message_id=message_id,
                           reminder_id=reminder_id, at=now))
        if reminder_id:
            reminder = session.get(Reminder, reminder_id)
            if reminder is not None and reminder.state not in ("answered",):
                reminder.state, reminder.answered_at, reminder.next_step_at = "answered", now, None
    elif record.kind == "unanswerable":
        session.add(Answer(contact_id=contact.id, child_id=record.child_id, question=record.value,
                           value="unclear", text=record.data.get("text"), message_id=message_id, at=now))
    elif record.kind == "arrangement":
        _arrangement_answer(session, contact, record, now, inbound)
    elif record.kind == "workplace":
        contact.workplace = record.value
        session.add(Answer(contact_id=contact.id, child_id=record.child_id, question="quarterly_workplace",
                           value="changed", text=record.value, message_id=message_id, at=now))
    elif record.kind == "phone":
        _phone_change(session, contact, record, now, inbound, config)
    elif record.kind == "guardian_change":
        _guardian_change(session, contact, record, now, inbound, config)


def _arrangement_answer(session: Session, contact: Contact, record: engine.Record, now: datetime,
                        inbound: Message | None) -> None:
    arrangement = session.get(Arrangement, record.data.get("arrangement_id")) if record.data.get("arrangement_id") else None
    if arrangement is None or arrangement.status in ("ended",):
        return
    side = record.data["side"]
    entry = {"at": now.isoformat(), "side": side, "answer": record.value,
             "message_id": inbound.id if inbound is not None else None}
    arrangement.history = [*arrangement.history, entry]
    if record.value == "no":
        arrangement.status, arrangement.declined_at, arrangement.declined_by = "declined", now, side
        return
    if side == "parent":
        arrangement.parent_confirmed_at = now
        arrangement.parent_message_id = inbound.id if inbound is not None else None
    else:
        arrangement.guardian_confirmed_at = now
        arrangement.guardian_message_id = inbound.id if inbound is not None else None
    if arrangement.status == "declined":
        return
    parent_ok = arrangement.parent_confirmed_at is not None or arrangement.parent_contact_id is None
    guardian_ok = arrangement.guardian_confirmed_at is not None
    if parent_ok and guardian_ok:
        arrangement.status, arrangement.confirmed_at = "confirmed", now
    elif arrangement.parent_confirmed_at is not None:
        arrangement.status = "parent_confirmed"
    elif guardian_ok:
        arrangement.status = "guardian_confirmed"


def _phone_change(session: Session, contact: Contact, record: engine.Record, now: datetime,
                  inbound: Message | None, config: dict[str, Any]) -> None:
    phone = normalize_phone(record.value)
    clash = session.scalars(select(Contact).where(Contact.phone == phone)).first() if phone else None
    child = session.get(Child, record.child_id) if record.child_id else None
    if phone is None or (clash is not None and clash.id != contact.id):
        raise_flag(session, category="other", now=now, child=child, contact=contact, message=inbound,
                   summary=f"phone change not applied: {record.value}", report_minutes=config["URGENT_REPORT_MINUTES"])
        return
    session.add(Answer(contact_id=contact.id, child_id=record.child_id, question="quarterly_phone", value="changed",
                       text=f"{contact.phone} -> {phone}", message_id=inbound.id if inbound else None, at=now))
    contact.phone = phone


def _guardian_change(session: Session, contact: Contact, record: engine.Record, now: datetime,
                     inbound: Message | None, config: dict[str, Any]) -> None:
    """A parent names a new guardian: end the old arrangement, start a new two-party confirmation."""
    from bot.enrollment import start_arrangement

    children = ([session.get(Child, record.child_id)] if record.child_id
                else [link.child for link in contact.links if link.role in ("father", "mother")])
    phone = normalize_phone(record.value) if record.value else None
    relation = record.data.get("relation")
    for child in children:
        if child is None:
            continue
        session.add(Answer(contact_id=contact.id, child_id=child.id, question="quarterly_guardian", value="changed",
                           text=f"{relation or ''} {phone or ''}".strip(), message_id=inbound.id if inbound else None,
                           at=now))
        if phone is None:
            continue  # the flag tells the caseworker; nobody to ask yet
        guardian = session.scalars(select(Contact).where(Contact.phone == phone)).first()
        if guardian is None:
            guardian = Contact(phone=phone, language=contact.language, channel="sms", created_at=now)
            session.add(guardian)
            session.flush()
        for link in list(child.links):
            if link.role == "guardian" and link.contact_id != guardian.id:
                session.delete(link)
        if not any(link.role == "guardian" and link.contact_id == guardian.id for link in child.links):
            child.links.append(ChildContact(contact=guardian, role="guardian", relationship_label=relation))
        session.flush()
        start_arrangement(session, child=child, now=now, parent=contact)
