"""The conversation engine: plain Python, no Flask, no Twilio, no database.

`step(contact, state, text, now)` takes what we know of a contact, its open question and an
inbound text, and returns the new state, the replies to send (template keys with variables),
the flags to raise and the records to keep. `ask(...)` opens a question. The caller persists.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot import replies
from bot.triage import Triage, classify

# Question kinds and the menu they expect.
YES_NO = {"confirm_parent", "confirm_guardian", "parent_contact"}
MENU = {"checkin": 4, "quarterly": 4}
FREE_TEXT = {"checkin_followup", "quarterly_phone", "quarterly_workplace", "quarterly_guardian"}
ASK_TEMPLATES = {
    "confirm_parent": ("sms.confirm_parent", "sms.confirm_parent_again"),
    "confirm_guardian": ("sms.confirm_guardian", "sms.confirm_guardian_again"),
    "checkin": ("sms.checkin_ask", "sms.checkin_ask_again"),
    "parent_contact": ("sms.parent_contact_ask", "sms.parent_contact_ask_again"),
    "quarterly": ("sms.quarterly_ask", "sms.quarterly_ask_again"),
    "home_visit": ("sms.helper_visit_reminder", "sms.helper_visit_reminder_again"),
}
WELL_WORDS = {"都好", "很好", "挺好", "好", "好的", "没事", "一切都好", "一切正常", "正常", "都挺好", "都很好", "平安",
              "fine", "good", "allwell", "allgood", "ok", "okay", "well"}
_PHONE = re.compile(r"(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}")


@dataclass(frozen=True)
class ChildInfo:
    """What the engine may know of a child: never the full name in a text."""

    id: int
    given_name: str
    role: str  # the contact's role for this child: father, mother, guardian, helper
    relation: str | None = None  # the guardian's relation to the child (奶奶 ...)


@dataclass(frozen=True)
class ContactInfo:
    """What the engine knows of the person writing."""

    id: int | None  # None for an unknown sender
    language: str = "zh_Hans"
    opted_out: bool = False
    children: tuple[ChildInfo, ...] = ()
    caseworker_phone: str | None = None


@dataclass(frozen=True)
class Question:
    """An open question: what we asked, about which child, when, and how often we re-prompted."""

    kind: str
    asked_at: datetime
    child_id: int | None = None
    arrangement_id: int | None = None
    reminder_id: int | None = None
    reprompts: int = 0
    ref: str = ""
    context: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form for the conversation_state table."""
        return {"kind": self.kind, "asked_at": self.asked_at.isoformat(), "child_id": self.child_id,
                "arrangement_id": self.arrangement_id, "reminder_id": self.reminder_id,
                "reprompts": self.reprompts, "ref": self.ref, "context": self.context}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Question:
        """Inverse of to_json."""
        return cls(kind=data["kind"], asked_at=datetime.fromisoformat(data["asked_at"]),
                   child_id=data.get("child_id"), arrangement_id=data.get("arrangement_id"),
                   reminder_id=data.get("reminder_id"), reprompts=data.get("reprompts", 0),
                   ref=data.get("ref", ""), context=data.get("context") or {})


@dataclass(frozen=True)
class State:
    """A contact's conversation state: the open question, if any, until it expires."""

    question: Question | None = None
    expires_at: datetime | None = None

    def live_question(self, now: datetime) -> Question | None:
        """The open question unless it has expired."""
        if self.question is None or (self.expires_at is not None and now >= self.expires_at):
            return None
        return self.question


@dataclass(frozen=True)
class Reply:
    """A text to send: a template key and its short named variables."""

    template: str
    variables: dict[str, str] = field(default_factory=dict)
    urgent: bool = False


@dataclass(frozen=True)
class FlagRequest:
    """A flag the caller must raise (or add to, when one is open for the child and category)."""

    category: str
    child_id: int | None = None
    severity: str | None = None  # None: the category's own severity
    evidence: tuple[dict[str, Any], ...] = ()
    summary: str = ""


@dataclass(frozen=True)
class Record:
    """A fact to keep: an answer, an arrangement side, an opt-out, a changed phone ..."""

    kind: str
    child_id: int | None = None
    value: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """The outcome of one inbound text or one question asked."""

    state: State
    replies: tuple[Reply, ...] = ()
    flags: tuple[FlagRequest, ...] = ()
    records: tuple[Record, ...] = ()
    triage: Triage | None = None


def question_ttl_default() -> timedelta:
    """How long a question stays open by default (a week)."""
    return timedelta(days=7)


def ask(contact: ContactInfo, kind: str, child: ChildInfo | None, now: datetime, *,
        again: bool = False, reminder_id: int | None = None, arrangement_id: int | None = None,
        ttl: timedelta | None = None, township: str = "") -> Step:
    """Open a question with a contact: the new state and the text that asks it."""
    first, second = ASK_TEMPLATES[kind]
    variables: dict[str, str] = {}
    if child is not None and kind in ("confirm_parent", "confirm_guardian", "checkin", "parent_contact",
                                      "home_visit"):
        variables["child"] = child.given_name
    if kind == "confirm_parent":
        variables["relation"] = (child.relation if child and child.relation else "监护人")
    if kind == "home_visit":  # a reminder, not a question
        return Step(state=State(), replies=(Reply(second if again else first, variables),))
    question = Question(kind=kind, asked_at=now, child_id=child.id if child else None,
                        arrangement_id=arrangement_id, reminder_id=reminder_id, ref=uuid.uuid4().hex[:12],
                        context={"child": child.given_name} if child else {})
    state = State(question=question, expires_at=now + (ttl or question_ttl_default()))
    return Step(state=state, replies=(Reply(second if again else first, variables),))


def step(contact: ContactInfo, state: State | None, text: str, now: datetime, *,
         question_ref: str | None = None, ttl: timedelta | None = None,
         classifier: Callable[[str, str], Triage] = classify) -> Step:
    """Answer one inbound text: keywords first, then safety, then the open question."""
    state = state or State()
    question = state.live_question(now)
    word = replies.keyword(text)
    if word is not None:
        return _keyword(contact, state, word, text, classifier)
    if contact.id is None:
        return _unknown_sender(state, text, contact, classifier)
    if question is not None and question_ref is not None and question_ref != question.ref:
        # A stale answer (to an older question) never acts on a newer one: keep it for the caseworker.
        found = classifier(text, contact.language)
        return _free_text(contact, state, text, found, question=None)
    if question is not None:
        handled = _answer(contact, state, question, text, now, ttl, classifier)
        if handled is not None:
            return handled
    found = classifier(text, contact.language)
    return _free_text(contact, state, text, found, question=question)


# --- keywords -------------------------------------------------------------------------------------

def _keyword(contact: ContactInfo, state: State, word: str, text: str,
             classifier: Callable[[str, str], Triage]) -> Step:
    help_reply = (Reply("sms.help_info", {"phone": contact.caseworker_phone}) if contact.caseworker_phone
                  else Reply("sms.help_info_nophone"))
    if word == "opt_out":
        if contact.opted_out:
            return Step(state=State())  # confirmed once only
        return Step(state=State(), replies=(Reply("sms.optout_confirm"),),
                    flags=tuple(FlagRequest("opted_out", c.id) for c in _children_or_none(contact)),
                    records=(Record("opt_out"),))
    if word == "opt_in":
        return Step(state=state, replies=(Reply("sms.optin_confirm"),), records=(Record("opt_in"),))
    if word == "help":
        return Step(state=state, replies=(help_reply,))
    if word == "cry":
        found = classifier(text, contact.language)
        category = found.category if found.severity == "urgent" else "help"
        evidence = _evidence(found)
        flags = tuple(FlagRequest(category, c.id, evidence=evidence, summary=text[:200])
                      for c in _children_or_none(contact))
        urgent = found.severity == "urgent"
        replies_out = (Reply("sms.urgent_reply", urgent=True),) if urgent else (help_reply,)
        return Step(state=state, replies=replies_out, flags=flags, triage=found)
    language = "en" if word == "english" else "zh_Hans"
    return Step(state=state, replies=(Reply("sms.language_switched"),), records=(Record("language", value=language),))


def _children_or_none(contact: ContactInfo) -> tuple[ChildInfo | None, ...]:
    return contact.children or (None,)


# --- free text and safety --------------------------------------------------------------------------

def _evidence(found: Triage) -> tuple[dict[str, Any], ...]:
    return tuple({"start": e.start, "end": e.end, "text": e.text, "rule": e.rule} for e in found.evidence)


def _subject_children(contact: ContactInfo, question: Question | None) -> tuple[int | None, ...]:
    """Which child a free text is about: the open question's, else every child of the contact."""
    if question is not None and question.child_id is not None:
        return (question.child_id,)
    return tuple(c.id for c in contact.children) or (None,)


def _free_text(contact: ContactInfo, state: State, text: str, found: Triage, *, question: Question | None,
               answered: bool = False) -> Step:
    """A text that answers no menu: triage decides whether a caseworker must see it now."""
    evidence = _evidence(found)
    children = _subject_children(contact, question)
    if found.severity == "urgent":
        flags = tuple(FlagRequest(found.category, cid, "urgent", evidence, text[:200]) for cid in children)
        new_state = State() if question is not None else state
        return Step(state=new_state, replies=(Reply("sms.urgent_reply", urgent=True),), flags=flags,
                    records=_answered(question, "text", text), triage=found)
    if found.severity == "high":
        flags = tuple(FlagRequest(found.category, cid, "high", evidence, text[:200]) for cid in children)
        new_state = State() if question is not None else state
        return Step(state=new_state, replies=(Reply("sms.concern_reply"),), flags=flags,
                    records=_answered(question, "text", text), triage=found)
    if question is not None and not answered:
        # Text that fits no option: one re-prompt, then a caseworker; never a loop.
        if question.reprompts == 0:
            template = "sms.reprompt_yesno" if question.kind in YES_NO else "sms.reprompt_menu"
            return Step(state=replace(state, question=replace(question, reprompts=1)),
                        replies=(Reply(template),), triage=found)
        flag = FlagRequest("other", question.child_id, "normal", evidence, text[:200])
        return Step(state=State(), replies=(Reply("sms.handed_to_caseworker"),), flags=(flag,),
                    records=(Record("unanswerable", question.child_id, question.kind, {"text": text[:500]}),),
                    triage=found)
    return Step(state=state if question is None else State(), replies=(Reply("sms.thanks"),),
                records=_answered(question, "text", text), triage=found)


def _answered(question: Question | None, value: str, text: str = "") -> tuple[Record, ...]:
    if question is None:
        return ()
    return (Record("answer", question.child_id, value,
                   {"question": question.kind, "reminder_id": question.reminder_id, "text": text[:500],
                    "arrangement_id": question.arrangement_id}),)


def _unknown_sender(state: State, text: str, contact: ContactInfo, classifier: Callable[[str, str], Triage]) -> Step:
    found = classifier(text, contact.language)
    severity = found.severity
    category = found.category if severity != "normal" else "other"
    flag = FlagRequest(category, None, severity, _evidence(found), text[:200])
    template = "sms.urgent_reply" if severity == "urgent" else "sms.unknown_sender"
    return Step(state=state, replies=(Reply(template, urgent=severity == "urgent"),), flags=(flag,), triage=found)


# --- answers to open questions ---------------------------------------------------------------------

def _answer(contact: ContactInfo, state: State, question: Question, text: str, now: datetime,
            ttl: timedelta | None, classifier: Callable[[str, str], Triage]) -> Step | None:
    """Handle a reply that answers the open question; None when it does not fit (free text)."""
    kind = question.kind
    if kind in YES_NO:
        verdict = replies.parse_yes_no(text)
        if verdict is None:
            return None
        return _yes_no(question, verdict, text)
    if kind in MENU:
        choice = replies.parse_choice(text, MENU[kind])
        if choice is None and kind == "checkin" and replies.squash(text) in WELL_WORDS:
            choice = 1
        if choice is None or choice == 0:
            return None
        return _menu(contact, question, choice, now, ttl)
    if kind == "checkin_followup":
        found = classifier(text, contact.language)
        if found.severity == "normal":
            category = question.context.get("category", "other")
            flag = FlagRequest(category, question.child_id, None, _evidence(found), text[:200])
            return Step(state=State(), replies=(Reply("sms.followup_thanks"),), flags=(flag,),
                        records=_answered(question, "followup", text), triage=found)
        return _free_text(contact, state, text, found, question=question, answered=True)
    if kind in ("quarterly_phone", "quarterly_workplace", "quarterly_guardian"):
        return _quarterly_detail(contact, state, question, text, classifier)
    return None


def _yes_no(question: Question, verdict: bool, text: str) -> Step:
    value = "yes" if verdict else "no"
    answer = Record("answer", question.child_id, value,
                    {"question": question.kind, "reminder_id": question.reminder_id, "text": text[:500],
                     "arrangement_id": question.arrangement_id})
    if question.kind == "parent_contact":
        nudge = Reply("sms.parent_contact_nudge", {"child": question.context.get("child", "")}) if not verdict else None
        reply = Reply("sms.parent_contact_yes") if verdict else nudge
        return Step(state=State(), replies=(reply,) if reply else (), records=(answer,))
    side = "parent" if question.kind == "confirm_parent" else "guardian"
    record = Record("arrangement", question.child_id, value,
                    {"side": side, "arrangement_id": question.arrangement_id})
    if verdict:
        return Step(state=State(), replies=(Reply("sms.confirm_thanks"),), records=(answer, record))
    if side == "parent":
        flag = FlagRequest("guardianship_change", question.child_id, "high", summary=text[:200])
        return Step(state=State(), replies=(Reply("sms.confirm_parent_wrong"),), flags=(flag,), records=(answer, record))
    flag = FlagRequest("unattended", question.child_id, "urgent", summary=text[:200])
    return Step(state=State(), replies=(Reply("sms.confirm_guardian_declined"),), flags=(flag,), records=(answer, record))


def _menu(contact: ContactInfo, question: Question, choice: int, now: datetime, ttl: timedelta | None) -> Step:
    expires = now + (ttl or question_ttl_default())
    if question.kind == "checkin":
        answer = _answered(question, {1: "well", 2: "ill", 3: "not_at_school", 4: "other"}[choice])
        if choice == 1:
            return Step(state=State(), replies=(Reply("sms.checkin_ok"),), records=answer)
        category = {2: "illness", 3: "dropout", 4: "other"}[choice]
        template = {2: "sms.checkin_illness_followup", 3: "sms.checkin_dropout_followup",
                    4: "sms.checkin_other_followup"}[choice]
        follow = Question("checkin_followup", now, question.child_id, question.arrangement_id, question.reminder_id,
                          ref=uuid.uuid4().hex[:12], context={"category": category})
        flags = (FlagRequest(category, question.child_id, "high"),) if choice in (2, 3) else ()
        return Step(state=State(follow, expires), replies=(Reply(template),), flags=flags, records=answer)
    # quarterly
    answer = _answered(question, {1: "no_change", 2: "phone", 3: "workplace", 4: "guardian"}[choice])
    if choice == 1:
        return Step(state=State(), replies=(Reply("sms.quarterly_no_change"),), records=answer)
    kind, template = {2: ("quarterly_phone", "sms.quarterly_ask_phone"),
                      3: ("quarterly_workplace", "sms.quarterly_ask_workplace"),
                      4: ("quarterly_guardian", "sms.quarterly_ask_guardian")}[choice]
    follow = Question(kind, now, question.child_id, question.arrangement_id, question.reminder_id,
                      ref=uuid.uuid4().hex[:12])
    return Step(state=State(follow, expires), replies=(Reply(template),), records=answer)


def _quarterly_detail(contact: ContactInfo, state: State, question: Question, text: str,
                      classifier: Callable[[str, str], Triage]) -> Step:
    found = classifier(text, contact.language)
    if found.severity != "normal":
        return _free_text(contact, state, text, found, question=question, answered=True)
    if question.kind == "quarterly_workplace":
        workplace = text.strip()[:200]
        return Step(state=State(), replies=(Reply("sms.quarterly_recorded"),),
                    records=(Record("workplace", question.child_id, workplace),), triage=found)
    phone_match = _PHONE.search(text.replace("\u3000", " "))
    phone = re.sub(r"[\s-]", "", phone_match.group(0)) if phone_match else None
    if question.kind == "quarterly_phone":
        if not phone:
            flag = FlagRequest("other", question.child_id, "normal", summary=text[:200])
            return Step(state=State(), replies=(Reply("sms.quarterly_bad_phone"),), flags=(flag,), triage=found)
        return Step(state=State(), replies=(Reply("sms.quarterly_recorded"),),
                    records=(Record("phone", question.child_id, phone),), triage=found)
    relation = re.sub(r"[\s,，:：]+", "", _PHONE.sub("", text)).strip()[:20] or None
    flag = FlagRequest("guardianship_change", question.child_id, "high", summary=text[:200])
    return Step(state=State(), replies=(Reply("sms.quarterly_guardian_recorded"),), flags=(flag,),
                records=(Record("guardian_change", question.child_id, phone or "", {"relation": relation}),),
                triage=found)
