"""The voice check-in (IVR): what a call says and what a key press does, without any provider.

A call is a sequence of pages. Each page is a `Turn`: texts to speak, then one of

- ``gather``: wait for one key (1-4 a menu answer, 1/2 yes/no, 9 hear again, 0 leave a message);
  silence repeats the page once, then the call ends politely;
- ``record``: record a message for the caseworker (its URL is stored, a ``voicemail`` flag raised);
- ``hangup``: say goodbye.

The handler (handlers/voice.py) renders a Turn as TwiML; another voice provider would render
its own markup from the same Turn. A key press that answers a question is an inbound reply like
any text: it goes through `bot.inbox.receive` and the conversation engine (the same flags, triage
and records), stored once per (call, question, page, digit) so a retried webhook acts once. The
engine's replies are spoken on the call instead of being texted: they are recorded as voice
messages already delivered, never queued for the SMS outbox.

Which call is whose: on an inbound call the caller (``From``) is the contact; on our outbound
call (``Direction=outbound-api``) the callee (``To``) is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import engine
from bot.conversation import ask_question, child_info, load_state, save_state
from bot.flags import raise_flag
from bot.i18n import gettext, normalize_locale, render
from bot.inbox import find_or_create_contact, receive
from bot.outbox import apply_status
from bot.phones import normalize_phone
from models import Answer, Child, Contact, Message, Reminder

KEYPAD_KINDS = engine.YES_NO | set(engine.MENU)  # answered with one key
RECORD_KINDS = engine.FREE_TEXT  # answered by speaking (a recording)
REPEAT, LEAVE_MESSAGE = "9", "0"
SILENT_REPEATS = 1  # silence repeats a page once, then the call ends
CALL_QUESTION_TTL = timedelta(minutes=30)  # a check-in opened by a call-in does not block the schedule
QUESTION_PROMPTS = {
    "checkin": "voice.checkin_ask",
    "confirm_parent": "voice.confirm_parent",
    "confirm_guardian": "voice.confirm_guardian",
    "parent_contact": "voice.parent_contact_ask",
    "quarterly": "voice.quarterly_ask",
    "quarterly_phone": "voice.quarterly_ask_phone",
    "quarterly_workplace": "voice.quarterly_ask_workplace",
    "quarterly_guardian": "voice.quarterly_ask_guardian",
}
FOLLOWUP_PROMPTS = {"illness": "voice.checkin_illness_followup", "dropout": "voice.checkin_dropout_followup",
                    "other": "voice.checkin_other_followup"}
# Twilio's final call statuses → our message lifecycle (an answered call counts as delivered).
CALL_STATUS = {"completed": "delivered", "busy": "undelivered", "no-answer": "undelivered",
               "canceled": "undelivered", "failed": "failed"}
UNANSWERED = {"busy", "no-answer", "canceled", "failed"}


@dataclass(frozen=True)
class Turn:
    """One page of a call: what to say, then gather a key, record, or hang up."""

    language: str
    says: tuple[str, ...]
    then: str  # gather | record | hangup
    ref: str = ""  # the open question a key press or recording answers ("" for none)
    page: int = 1  # counts the pages of a call: a retried webhook repeats a page, a new key press does not
    silences: int = 0  # silent repeats so far
    closing: tuple[str, ...] = field(default=())  # said when a recording ends with nothing recorded


@dataclass(frozen=True)
class Call:
    """What every voice webhook of one call tells us."""

    sid: str
    contact_phone: str  # the guardian's side: From on an inbound call, To on ours
    service_phone: str | None  # our side


def call_from_form(form: Any) -> Call:
    """Read the call's parties from a webhook's form fields."""
    outbound = (form.get("Direction") or "").startswith("outbound")
    theirs, ours = (form.get("To"), form.get("From")) if outbound else (form.get("From"), form.get("To"))
    return Call(sid=(form.get("CallSid") or "")[:34], contact_phone=theirs or "", service_phone=ours or None)


# --- texts -----------------------------------------------------------------------------------------

def say(key: str, language: str, variables: dict[str, Any] | None = None) -> str:
    """A voice prompt in the caller's language."""
    return render(key, language, variables or None)


def spoken_reply(template: str, variables: dict[str, Any], language: str) -> tuple[str, str]:
    """The spoken form of an engine reply, (key, text): voice.<name> when the catalog has it, else the text."""
    name = template.split(".", 1)[1] if template.startswith("sms.") else template
    key = f"voice.{name}"
    if gettext(key, language) != key:
        return key, render(key, language, variables or None)
    return template, render(template, language, variables or None).replace("【相伴】", "")


def _question_prompt(session: Session, contact: Contact, question: engine.Question, language: str) -> str:
    if question.kind == "checkin_followup":
        return say(FOLLOWUP_PROMPTS.get(question.context.get("category", "other"), "voice.checkin_other_followup"),
                   language)
    variables: dict[str, Any] = {"child": question.context.get("child", "")}
    child = session.get(Child, question.child_id) if question.child_id else None
    if child is not None:
        role = next((link.role for link in contact.links if link.child_id == child.id), "")
        info = child_info(child, role)
        variables = {"child": info.given_name, "relation": info.relation or "监护人"}
    elif question.kind == "confirm_parent":
        variables["relation"] = "监护人"
    return say(QUESTION_PROMPTS.get(question.kind, "voice.nothing_open"), language, variables)


# --- whose call, which question ----------------------------------------------------------------------

def _contact(session: Session, phone: str) -> Contact | None:
    normalized = normalize_phone(phone)
    if not normalized:
        return None
    return session.scalars(select(Contact).where(Contact.phone == normalized)).first()


def _language(contact: Contact | None, config: dict[str, Any]) -> str:
    return normalize_locale(contact.language if contact else config.get("DEFAULT_LANGUAGE"))


def _guardian_child(contact: Contact) -> Child | None:
    """The child a guardian's call-in check-in is about (the eldest, as in the SMS texts)."""
    children = sorted((link.child for link in contact.links if link.role == "guardian"),
                      key=lambda child: (child.birth_date, child.id))
    return children[0] if children else None


def _open_or_start_question(session: Session, contact: Contact, now: datetime,
                            config: dict[str, Any]) -> engine.Question | None:
    """The contact's open question; for a guardian with none open, a check-in asked on this call."""
    question = load_state(session, contact).live_question(now)
    if question is not None:
        return question
    child = _guardian_child(contact)
    if child is None:
        return None
    ask_question(session, contact=contact, kind="checkin", child=child, now=now, config=config, send_text=False)
    state = load_state(session, contact)
    # Asked only for this call: it expires with the call, so the planned check-in is never held up.
    save_state(session, contact, engine.State(state.question, now + CALL_QUESTION_TTL), now)
    return state.question


def _page(session: Session, contact: Contact | None, question: engine.Question | None, language: str, *,
          before: tuple[str, ...] = (), page: int, silences: int = 0) -> Turn:
    """Read a question (or, with none, the leave-a-message menu)."""
    if contact is None or not contact.links:
        return Turn(language, (*before, say("voice.unknown_caller", language), say("voice.unknown_menu", language)),
                    "gather", page=page, silences=silences)
    if question is None:
        return Turn(language, (*before, say("voice.nothing_open", language)), "gather", page=page, silences=silences)
    prompt = _question_prompt(session, contact, question, language)
    if question.kind in KEYPAD_KINDS:
        return Turn(language, (*before, prompt, say("voice.menu_tail", language)), "gather", ref=question.ref,
                    page=page, silences=silences)
    return _record_turn(language, (*before, prompt), ref=question.ref, page=page)


def _record_turn(language: str, says: tuple[str, ...], *, ref: str, page: int) -> Turn:
    return Turn(language, (*says, say("voice.record_prompt", language)), "record", ref=ref, page=page,
                closing=(say("voice.no_input_goodbye", language),))


# --- the call --------------------------------------------------------------------------------------

def start_call(session: Session, *, call: Call, now: datetime, config: dict[str, Any]) -> Turn:
    """The first page of a call, either direction: greeting, then the open question as a keypad menu."""
    contact = _contact(session, call.contact_phone)
    language = _language(contact, config)
    if contact is None or not contact.links:
        return _page(session, None, None, language, page=1)
    question = _open_or_start_question(session, contact, now, config)
    return _page(session, contact, question, language, before=(say("voice.greeting", language),), page=1)


def key_pressed(session: Session, *, call: Call, digits: str, ref: str, page: int, silences: int, now: datetime,
                config: dict[str, Any]) -> Turn:
    """What one key press (or silence, digits "") does on a page that asked question `ref`."""
    contact = _contact(session, call.contact_phone)
    language = _language(contact, config)
    known = contact is not None and bool(contact.links)
    question = load_state(session, contact).live_question(now) if known and contact is not None else None
    digits = (digits or "").strip()[:1]
    if not digits:
        if silences >= SILENT_REPEATS:
            return Turn(language, (say("voice.no_input_goodbye", language),), "hangup", page=page + 1)
        return _page(session, contact, question, language, page=page + 1, silences=silences + 1)
    if digits == LEAVE_MESSAGE:
        return _record_turn(language, (), ref=ref, page=page + 1)
    if digits == REPEAT or contact is None or not known or not ref:
        return _page(session, contact, question, language, page=page + 1, silences=silences)
    sid = f"{call.sid}:{ref}:{page}:{digits}"[:64]
    result = receive(session, provider_sid=sid, from_number=call.contact_phone, to_number=call.service_phone,
                     body=digits, now=now, config=config, channel="voice", question_ref=ref)
    spoken = tuple(_speak(reply, language, now) for reply in result.replies)
    following = load_state(session, contact).live_question(now)
    if following is None:
        return Turn(language, (*spoken, say("voice.goodbye", language)), "hangup", page=page + 1)
    if following.kind in KEYPAD_KINDS:
        # A new menu (or the same one after a key that fits no option): read it.
        return _page(session, contact, following, language, before=spoken, page=page + 1)
    if spoken:  # the engine's reply already asks for the details (checkin_followup)
        return _record_turn(language, spoken, ref=following.ref, page=page + 1)
    return _page(session, contact, following, language, page=page + 1)


def _speak(reply: Message, language: str, now: datetime) -> str:
    """An engine reply is spoken on the call, not texted: record it as a delivered voice message."""
    if reply.channel == "voice":  # a retried webhook: already spoken once, say the same again
        return reply.body
    key, text = spoken_reply(reply.kind, reply.template_vars or {}, reply.language or language)
    if reply.status == "queued":
        reply.kind, reply.channel, reply.body, reply.segments = key, "voice", text, 0
        reply.status, reply.sent_at, reply.delivered_at, reply.updated_at = "delivered", now, now, now
    return text


def recorded(session: Session, *, call: Call, recording_sid: str | None, recording_url: str | None,
             duration: int | None, ref: str, page: int, now: datetime, config: dict[str, Any]) -> Turn:
    """A message left on the call: stored with its URL once, a voicemail flag for the caseworker."""
    contact = _contact(session, call.contact_phone)
    language = _language(contact, config)
    if not recording_url or duration == 0:
        return Turn(language, (say("voice.no_input_goodbye", language),), "hangup", page=page + 1)
    sid = (recording_sid or f"{call.sid}:rec:{page}")[:64]
    if session.scalars(select(Message.id).where(Message.provider_sid == sid)).first() is not None:
        return Turn(language, (say("voice.record_thanks", language),), "hangup", page=page + 1)
    if contact is None:
        contact = find_or_create_contact(session, normalize_phone(call.contact_phone) or call.contact_phone[:20], now)
    state = load_state(session, contact)
    question = state.live_question(now)
    answers = question if question is not None and ref and question.ref == ref else None
    children = _voicemail_children(session, contact, answers)
    message = Message(direction="inbound", channel="voice", from_number=contact.phone,
                      to_number=(call.service_phone or "")[:32] or None, body="", kind="voicemail",
                      template_vars={"call_sid": call.sid, "duration": duration, "question": answers.kind if answers
                                     else None}, language=language, status="received", provider_sid=sid,
                      segments=0, attempts=0, contact_id=contact.id,
                      child_id=children[0].id if len(children) == 1 and children[0] is not None else None,
                      recording_url=recording_url, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:  # the same recording delivered twice at once
        return Turn(language, (say("voice.record_thanks", language),), "hangup", page=page + 1)
    for child in children:
        raise_flag(session, category="voicemail", now=now, child=child, contact=contact, message=message,
                   summary=f"voicemail {duration or '?'}s", report_minutes=config["URGENT_REPORT_MINUTES"],
                   detail={"recording_url": recording_url, "message_id": message.id})
    if answers is not None and answers.kind in RECORD_KINDS:
        # The recording answers a question that wanted details in words: close it, keep the answer.
        session.add(Answer(contact_id=contact.id, child_id=answers.child_id, question=answers.kind,
                           value="voicemail", message_id=message.id, reminder_id=answers.reminder_id, at=now))
        save_state(session, contact, engine.State(), now)
    return Turn(language, (say("voice.record_thanks", language),), "hangup", page=page + 1)


def _voicemail_children(session: Session, contact: Contact, question: engine.Question | None) -> list[Child | None]:
    """Whom a voicemail is about: the question's child, else the contact's children, else the caller."""
    if question is not None and question.child_id:
        child = session.get(Child, question.child_id)
        if child is not None:
            return [child]
    children = sorted({link.child.id: link.child for link in contact.links}.values(), key=lambda c: c.id)
    return list(children) or [None]


def call_status(session: Session, *, call_sid: str, status: str, duration: str | None, error_code: str | None,
                now: datetime) -> Message | None:
    """A call status callback: the outbound call's message moves on; an unanswered call is noted.

    An unanswered call (busy, no-answer, canceled, failed) leaves the question open, so the
    unanswered ladder treats it like an unanswered text: re-ask, call again, then `no_response`.
    The outcome is also kept on the reminder (``detail["calls"]``) for the caseworker.
    """
    status = (status or "").lower()
    message = session.scalars(select(Message).where(Message.provider_sid == call_sid,
                                                    Message.direction == "outbound")).first()
    if message is None or status not in CALL_STATUS:
        return message
    apply_status(session, provider_sid=call_sid, status=CALL_STATUS[status], error_code=error_code, now=now)
    if status in UNANSWERED:
        message.error_message = f"call {status}"
    if message.reminder_id:
        reminder = session.get(Reminder, message.reminder_id)
        if reminder is not None:
            calls = list((reminder.detail or {}).get("calls", []))
            if not any(entry.get("sid") == call_sid for entry in calls):
                calls.append({"sid": call_sid, "status": status, "duration": duration, "at": now.isoformat()})
                reminder.detail = {**(reminder.detail or {}), "calls": calls}
    return message
