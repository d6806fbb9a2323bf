"""The voice check-in, played as Twilio plays it: signed webhooks through whole calls, TwiML parsed."""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.clock import utcnow
from bot.conversation import ask_question, load_state
from bot.enrollment import start_arrangement
from models import Answer, Arrangement, Contact, Flag, Message, Reminder
from tests.builders import Household, household, post_signed

SERVICE = "+8610690000000"
GUARDIAN = "+8613800000002"


@dataclass
class Page:
    """One TwiML answer, parsed."""

    status: int
    root: ET.Element | None
    url: str

    def says(self) -> list[ET.Element]:
        return [] if self.root is None else list(self.root.iter("Say"))

    @property
    def text(self) -> str:
        return " ".join(el.text or "" for el in self.says())

    @property
    def gather(self) -> ET.Element | None:
        return None if self.root is None else self.root.find("Gather")

    @property
    def record(self) -> ET.Element | None:
        return None if self.root is None else self.root.find("Record")

    @property
    def redirect(self) -> str | None:
        found = None if self.root is None else self.root.find("Redirect")
        return (found.text or "").strip() if found is not None else None

    @property
    def hangs_up(self) -> bool:
        return self.root is not None and self.root.find("Hangup") is not None


@dataclass
class Call:
    """Twilio's side of one call against the app."""

    client: FlaskClient
    frm: str
    to: str
    direction: str = "inbound"
    sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)
    last: Page | None = None

    def form(self, **extra: str) -> dict[str, str]:
        return {"CallSid": self.sid, "AccountSid": "AC" + "0" * 32, "From": self.frm, "To": self.to,
                "Direction": self.direction, "CallStatus": "in-progress", "ApiVersion": "2010-04-01", **extra}

    def post(self, url: str, **extra: str) -> Page:
        parts = urlsplit(urljoin(self.last.url if self.last else "/twilio/voice", url))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = post_signed(self.client, path, self.form(**extra))
        root = ET.fromstring(response.data) if response.status_code == 200 else None
        if root is not None:
            assert root.tag == "Response" and response.mimetype == "application/xml"
        self.last = Page(response.status_code, root, path)
        return self.last

    def start(self) -> Page:
        return self.post("/twilio/voice")

    def press(self, digits: str) -> Page:
        assert self.last is not None and self.last.gather is not None, "no <Gather> to press a key on"
        return self.post(self.last.gather.get("action") or self.last.url, Digits=digits, FinishedOnKey="")

    def silence(self) -> Page:
        assert self.last is not None and self.last.redirect, "no <Redirect> after the <Gather>"
        return self.post(self.last.redirect)

    def leave_message(self, url: str = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1",
                      duration: str = "12", recording_sid: str | None = None) -> Page:
        assert self.last is not None and self.last.record is not None, "no <Record> to leave a message on"
        return self.post(self.last.record.get("action") or "", RecordingUrl=url, RecordingDuration=duration,
                         RecordingSid=recording_sid or "RE" + uuid.uuid4().hex, Digits="#")


def inbound(client: FlaskClient, frm: str = GUARDIAN) -> Call:
    return Call(client, frm=frm, to=SERVICE, direction="inbound")


def outbound(client: FlaskClient, to: str = GUARDIAN, sid: str | None = None) -> Call:
    call = Call(client, frm=SERVICE, to=to, direction="outbound-api")
    if sid:
        call.sid = sid
    return call


def voice_household(session: Session, now: datetime, **kwargs: Any) -> Household:
    home = household(session, now=now, guardian_channel="voice", **kwargs)
    session.commit()
    return home


def ask(app: Flask, session: Session, home: Household, kind: str = "checkin", **kwargs: Any) -> None:
    assert home.guardian is not None
    ask_question(session, contact=home.guardian, kind=kind, child=home.child, now=utcnow(), config=app.config,
                 send_text=False, **kwargs)
    session.commit()


def open_flags(session: Session, category: str) -> list[Flag]:
    session.expire_all()
    return list(session.scalars(select(Flag).where(Flag.category == category, Flag.status == "open")).all())


def assert_mandarin(page: Page) -> None:
    assert page.says(), "nothing said"
    for el in page.says():
        assert el.get("language") == "cmn-CN" and el.get("voice") == "Polly.Zhiyu"


def assert_keypad_menu(page: Page) -> None:
    gather = page.gather
    assert gather is not None
    assert gather.get("input") == "dtmf" and gather.get("numDigits") == "1"
    assert gather.get("action", "").startswith("/twilio/voice/answer")
    assert list(gather.iter("Say")), "the prompt is inside the <Gather>, so a key interrupts it"
    assert page.redirect == gather.get("action"), "silence comes back to the same page without Digits"


# --- a check-in call --------------------------------------------------------------------------------

def test_checkin_call_greets_in_mandarin_and_reads_the_keypad_menu(app: Flask, client: FlaskClient,
                                                                  session: Session, now: datetime) -> None:
    home = voice_household(session, now)
    ask(app, session, home)
    page = outbound(client).start()
    assert page.status == 200
    assert_mandarin(page)
    assert_keypad_menu(page)
    assert "相伴" in page.text and "小明" in page.text
    assert all(f"按{d}" in page.text for d in "12349") and "按0" in page.text


def test_pressing_2_raises_an_illness_flag_and_asks_for_a_message(app: Flask, client: FlaskClient,
                                                                 session: Session, now: datetime) -> None:
    home = voice_household(session, now)
    ask(app, session, home)
    call = outbound(client)
    call.start()
    page = call.press("2")
    assert page.status == 200
    assert_mandarin(page)
    assert "不舒服" in page.text
    assert page.record is not None and page.record.get("action", "").startswith("/twilio/voice/recorded")
    flags = open_flags(session, "illness")
    assert len(flags) == 1 and flags[0].child_id == home.child.id and flags[0].severity == "high"
    answer = session.scalars(select(Answer)).one()
    assert (answer.question, answer.value) == ("checkin", "ill")
    keypad = session.scalars(select(Message).where(Message.direction == "inbound")).one()
    assert (keypad.channel, keypad.body, keypad.provider_sid.startswith(call.sid)) == ("voice", "2", True)
    # The engine's reply was spoken on the call, never queued as a text.
    outbound_rows = session.scalars(select(Message).where(Message.direction == "outbound")).all()
    assert [(m.channel, m.status) for m in outbound_rows] == [("voice", "delivered")]
    assert outbound_rows[0].in_reply_to_id == keypad.id

    done = call.leave_message(url="https://api.twilio.com/recordings/RE42")
    assert done.hangs_up and "留言已收到" in done.text
    voicemail = session.scalars(select(Message).where(Message.kind == "voicemail")).one()
    assert voicemail.recording_url == "https://api.twilio.com/recordings/RE42"
    assert voicemail.channel == "voice" and voicemail.child_id == home.child.id
    flag = open_flags(session, "voicemail")[0]
    assert flag.severity == "high" and flag.message_id == voicemail.id and flag.child_id == home.child.id
    assert load_state(session, home.guardian).question is None  # the recording answered the follow-up


def test_pressing_1_thanks_hangs_up_and_marks_the_reminder_answered(app: Flask, client: FlaskClient,
                                                                   session: Session, now: datetime) -> None:
    home = voice_household(session, now)
    reminder = Reminder(contact_id=home.guardian.id, child_id=home.child.id, kind="checkin", period_key="w1",
                        due_at=utcnow(), state="sent", created_at=utcnow(), detail={})
    session.add(reminder)
    session.commit()
    ask(app, session, home, reminder=reminder)
    call = outbound(client)
    call.start()
    page = call.press("1")
    assert page.hangs_up and page.gather is None and "谢谢" in page.text
    session.expire_all()
    assert session.get(Reminder, reminder.id).state == "answered"
    assert session.scalar(select(func.count()).select_from(Flag)) == 0


def test_nine_repeats_the_question_without_answering_it(app: Flask, client: FlaskClient, session: Session,
                                                        now: datetime) -> None:
    home = voice_household(session, now)
    ask(app, session, home)
    call = outbound(client)
    first = call.start()
    again = call.press("9")
    assert_keypad_menu(again)
    assert "小明这周好吗" in again.text and "相伴" not in again.text  # the question, not the greeting
    assert again.gather.get("action") != first.gather.get("action")
    assert session.scalar(select(func.count()).select_from(Message)) == 0
    assert call.press("3").status == 200
    assert [f.category for f in open_flags(session, "dropout")] == ["dropout"]


def test_silence_repeats_once_then_says_goodbye(app: Flask, client: FlaskClient, session: Session,
                                                now: datetime) -> None:
    home = voice_household(session, now)
    ask(app, session, home)
    call = outbound(client)
    call.start()
    repeat = call.silence()
    assert_keypad_menu(repeat)
    assert "小明这周好吗" in repeat.text
    goodbye = call.silence()
    assert goodbye.hangs_up and goodbye.gather is None and "再见" in goodbye.text
    assert session.scalar(select(func.count()).select_from(Message)) == 0
    assert load_state(session, home.guardian).live_question(utcnow()) is not None  # still open: the ladder goes on


def test_a_key_after_a_silent_repeat_still_answers(app: Flask, client: FlaskClient, session: Session,
                                                  now: datetime) -> None:
    home = voice_household(session, now)
    ask(app, session, home)
    call = outbound(client)
    call.start()
    call.silence()
    call.press("2")
    assert len(open_flags(session, "illness")) == 1


def test_a_key_that_fits_no_option_reprompts_then_hands_over(app: Flask, client: FlaskClient, session: Session,
                                                             now: datetime) -> None:
    home = voice_household(session, now)
    ask(app, session, home)
    call = outbound(client)
    call.start()
    reprompt = call.press("7")
    assert_keypad_menu(reprompt)
    assert "没有听清" in reprompt.text and "小明这周好吗" in reprompt.text
    handed = call.press("7")
    assert handed.hangs_up and "社工" in handed.text
    assert [f.severity for f in open_flags(session, "other")] == ["normal"]


def test_a_retried_key_press_is_stored_once_and_answered_the_same(app: Flask, client: FlaskClient,
                                                                  session: Session, now: datetime) -> None:
    home = voice_household(session, now)
    ask(app, session, home)
    call = outbound(client)
    start = call.start()
    first = call.press("2")
    call.last = start
    second = call.press("2")
    assert ET.tostring(first.root) == ET.tostring(second.root)
    assert session.scalar(select(func.count()).select_from(Message).where(Message.direction == "inbound")) == 1
    assert open_flags(session, "illness")[0].occurrences == 1


def test_a_recording_delivered_twice_is_stored_once(app: Flask, client: FlaskClient, session: Session,
                                                    now: datetime) -> None:
    voice_household(session, now)
    call = inbound(client)
    call.start()
    record_page = call.press("0")
    assert record_page.record is not None and "提示音" in record_page.text
    call.leave_message(recording_sid="RE" + "1" * 32)
    call.last = record_page
    call.leave_message(recording_sid="RE" + "1" * 32)
    assert session.scalar(select(func.count()).select_from(Message).where(Message.kind == "voicemail")) == 1
    assert open_flags(session, "voicemail")[0].occurrences == 1


def test_an_empty_recording_is_not_stored(app: Flask, client: FlaskClient, session: Session, now: datetime) -> None:
    voice_household(session, now)
    call = inbound(client)
    call.start()
    call.press("0")
    page = call.leave_message(duration="0")
    assert page.hangs_up
    assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_press_0_on_a_menu_records_a_message_about_that_child(app: Flask, client: FlaskClient, session: Session,
                                                              now: datetime) -> None:
    home = voice_household(session, now)
    ask(app, session, home)
    call = outbound(client)
    call.start()
    page = call.press("0")
    assert_mandarin(page)
    assert page.record is not None and page.record.get("finishOnKey") == "#"
    assert page.record.get("playBeep") == "true" and int(page.record.get("maxLength")) >= 60
    assert page.hangs_up  # after the <Record>, for when nothing was recorded
    call.leave_message(url="https://api.twilio.com/recordings/RE7")
    flag = open_flags(session, "voicemail")[0]
    assert flag.child_id == home.child.id
    assert session.scalars(select(Message).where(Message.kind == "voicemail")).one().recording_url.endswith("RE7")
    # The check-in itself is still open: a message is not an answer to the menu.
    assert load_state(session, home.guardian).live_question(utcnow()).kind == "checkin"


# --- guardianship confirmation ----------------------------------------------------------------------

@pytest.mark.parametrize("digit, status, flag", [("1", "guardian_confirmed", None), ("2", "declined", "unattended")])
def test_guardianship_confirmation_by_keypad(app: Flask, client: FlaskClient, session: Session, now: datetime,
                                             digit: str, status: str, flag: str | None) -> None:
    home = voice_household(session, now)
    arrangement = start_arrangement(session, child=home.child, now=utcnow())
    session.commit()
    ask(app, session, home, kind="confirm_guardian", arrangement=arrangement)
    call = outbound(client)
    page = call.start()
    assert_keypad_menu(page)
    assert "委托您照顾和监护小明" in page.text and "按1" in page.text and "按2" in page.text
    done = call.press(digit)
    assert done.hangs_up and "记录" in done.text
    session.expire_all()
    assert session.get(Arrangement, arrangement.id).status == status
    if flag:
        assert [f.severity for f in open_flags(session, flag)] == ["urgent"]


# --- calling the service number -----------------------------------------------------------------------

def test_a_guardian_calling_in_gets_the_checkin_and_pressing_2_flags_illness(app: Flask, client: FlaskClient,
                                                                             session: Session, now: datetime) -> None:
    home = voice_household(session, now)
    call = inbound(client)
    page = call.start()
    assert_mandarin(page)
    assert_keypad_menu(page)
    assert "小明这周好吗" in page.text
    question = load_state(session, home.guardian).question
    assert question is not None and question.kind == "checkin" and question.child_id == home.child.id
    call.press("2")
    assert [f.child_id for f in open_flags(session, "illness")] == [home.child.id]


def test_a_question_opened_by_a_call_in_expires_with_the_call(app: Flask, client: FlaskClient, session: Session,
                                                              now: datetime) -> None:
    home = voice_household(session, now)
    inbound(client).start()  # and hangs up
    state = load_state(session, home.guardian)
    assert state.live_question(utcnow()) is not None
    assert state.live_question(utcnow() + timedelta(hours=2)) is None


def test_a_guardian_calling_back_hears_the_open_question(app: Flask, client: FlaskClient, session: Session,
                                                         now: datetime) -> None:
    home = voice_household(session, now)
    arrangement = start_arrangement(session, child=home.child, now=utcnow())
    session.commit()
    ask(app, session, home, kind="confirm_guardian", arrangement=arrangement)
    call = inbound(client)
    page = call.start()
    assert "委托您照顾和监护小明" in page.text
    call.press("1")
    session.expire_all()
    assert session.get(Arrangement, arrangement.id).status == "guardian_confirmed"


def test_a_parent_with_nothing_open_can_leave_a_message(app: Flask, client: FlaskClient, session: Session,
                                                        now: datetime) -> None:
    home = voice_household(session, now)
    call = inbound(client, frm="+8613800000001")
    page = call.start()
    assert_keypad_menu(page)
    assert "按0" in page.text
    assert load_state(session, home.father).question is None
    call.press("0")
    call.leave_message()
    assert [f.child_id for f in open_flags(session, "voicemail")] == [home.child.id]


def test_an_unknown_caller_hears_who_we_are_and_can_leave_a_message(client: FlaskClient, session: Session) -> None:
    call = inbound(client, frm="+8613999999999")
    page = call.start()
    assert_mandarin(page)
    assert_keypad_menu(page)
    assert "相伴" in page.text and "没有登记" in page.text
    assert call.press("5").gather is not None  # any other key: hear it again
    call.press("0")
    done = call.leave_message(url="https://api.twilio.com/recordings/RE9")
    assert done.hangs_up
    caller = session.scalars(select(Contact).where(Contact.phone == "+8613999999999")).one()
    flag = open_flags(session, "voicemail")[0]
    assert flag.child_id is None and flag.contact_id == caller.id
    assert session.scalars(select(Message).where(Message.kind == "voicemail")).one().recording_url.endswith("RE9")


def test_an_english_speaking_guardian_hears_english(app: Flask, client: FlaskClient, session: Session,
                                                    now: datetime) -> None:
    voice_household(session, now, language="en")
    page = inbound(client).start()
    assert {el.get("language") for el in page.says()} == {"en-US"}
    assert "How is" in page.text


# --- signatures and status callbacks -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/voice/answer?q=x&s=1&n=0", "/twilio/voice/recorded",
                                  "/twilio/voice/status"])
def test_unsigned_or_forged_voice_webhooks_are_refused(client: FlaskClient, session: Session, path: str) -> None:
    form = {"CallSid": "CA1", "From": GUARDIAN, "To": SERVICE, "Digits": "2", "CallStatus": "completed",
            "RecordingUrl": "https://example.org/r"}
    assert client.post(path, data=form).status_code == 403
    assert client.post(path, data=form, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}).status_code == 403
    assert post_signed(client, path, form, token="another-token").status_code == 403
    assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_a_tampered_page_url_is_refused(app: Flask, client: FlaskClient, session: Session, now: datetime) -> None:
    from tests.builders import sign, PUBLIC_URL

    call = outbound(client)
    form = call.form(Digits="2")
    signature = sign(PUBLIC_URL + "/twilio/voice/answer?q=abc&s=1&n=0", form)
    response = client.post("/twilio/voice/answer?q=other&s=1&n=0", data=form,
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def _placed_call(session: Session, home: Household, sid: str) -> tuple[Message, Reminder]:
    reminder = Reminder(contact_id=home.guardian.id, child_id=home.child.id, kind="checkin", period_key="w1",
                        due_at=utcnow(), state="sent", created_at=utcnow(), detail={})
    session.add(reminder)
    session.flush()
    message = Message(direction="outbound", channel="voice", to_number=GUARDIAN, body="", kind="voice.checkin",
                      template_vars={}, status="sent", provider_sid=sid, segments=0, attempts=1,
                      contact_id=home.guardian.id, reminder_id=reminder.id, created_at=utcnow(), updated_at=utcnow())
    session.add(message)
    session.commit()
    return message, reminder


@pytest.mark.parametrize("call_status, message_status", [("no-answer", "undelivered"), ("busy", "undelivered"),
                                                         ("failed", "failed"), ("completed", "delivered")])
def test_call_status_callbacks_move_the_call_on(client: FlaskClient, session: Session, now: datetime,
                                                call_status: str, message_status: str) -> None:
    home = voice_household(session, now)
    message, reminder = _placed_call(session, home, "CA" + "a" * 32)
    for status in ("initiated", "ringing", call_status):
        form = {"CallSid": message.provider_sid, "CallStatus": status, "From": SERVICE, "To": GUARDIAN,
                "Direction": "outbound-api", "CallDuration": "0"}
        assert post_signed(client, "/twilio/voice/status", form).status_code == 204
    session.expire_all()
    assert session.get(Message, message.id).status == message_status
    reminder = session.get(Reminder, reminder.id)
    assert [c["status"] for c in reminder.detail["calls"]] == [call_status]
    assert reminder.state == "sent"  # the ladder decides what an unanswered call leads to
    # A late or repeated callback changes nothing.
    post_signed(client, "/twilio/voice/status", {"CallSid": message.provider_sid, "CallStatus": call_status})
    session.expire_all()
    assert len(session.get(Reminder, reminder.id).detail["calls"]) == 1


def test_a_status_callback_for_an_unknown_call_is_accepted(client: FlaskClient) -> None:
    form = {"CallSid": "CA" + "b" * 32, "CallStatus": "completed"}
    assert post_signed(client, "/twilio/voice/status", form).status_code == 204
