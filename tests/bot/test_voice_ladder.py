"""Voice in the schedule: check-in calls on a tick, the unanswered ladder's voice step, quiet hours."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.conversation import load_state
from bot.outbox import queue_call
from bot.schedule import run_due
from models import Contact, Flag, Message, Reminder
from tests.builders import Household, household, post_signed

START = datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai, a Monday
SERVICE = "+8610690000000"


class Clock:
    """The time the webhooks see (the handlers read the clock; ticks are given `now`)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    value = Clock()
    monkeypatch.setattr("handlers.voice.utcnow", value)
    yield value


def tick(app: Flask, clock: Clock, now: datetime) -> None:
    clock.now = now
    run_due(app.extensions["xiangban_db"], app.extensions["xiangban_sender"], now=now, config=app.config)


def messages(session: Session, contact: Contact, channel: str | None = None) -> list[Message]:
    session.expire_all()
    query = select(Message).where(Message.direction == "outbound", Message.contact_id == contact.id)
    if channel:
        query = query.where(Message.channel == channel)
    return list(session.scalars(query.order_by(Message.id)).all())


def flags(session: Session, category: str) -> list[Flag]:
    session.expire_all()
    return list(session.scalars(select(Flag).where(Flag.category == category, Flag.status == "open")).all())


def checkin_household(session: Session, channel: str = "voice", due: datetime = START) -> tuple[Household, Reminder]:
    home = household(session, now=due, guardian_channel=channel)
    reminder = Reminder(contact_id=home.guardian.id, child_id=home.child.id, kind="checkin", period_key="2026-W49",
                        due_at=due, state="planned", ladder_step=0, detail={}, created_at=due)
    session.add(reminder)
    session.commit()
    return home, reminder


def call_form(call: Message, **extra: str) -> dict[str, str]:
    return {"CallSid": call.provider_sid or "", "AccountSid": "AC" + "0" * 32, "From": SERVICE,
            "To": call.to_number or "", "Direction": "outbound-api", "CallStatus": "in-progress", **extra}


def answer_call(client: FlaskClient, call: Message, digit: str) -> ET.Element:
    """The guardian picks up our call and presses one key on the first menu."""
    first = ET.fromstring(post_signed(client, "/twilio/voice", call_form(call)).data)
    action = first.find("Gather").get("action")
    return ET.fromstring(post_signed(client, action, call_form(call, Digits=digit)).data)


def test_a_voice_guardian_is_called_for_the_checkin_never_texted(app: Flask, session: Session, clock: Clock) -> None:
    home, reminder = checkin_household(session)
    tick(app, clock, START + timedelta(minutes=1))
    calls = messages(session, home.guardian)
    assert [(m.channel, m.kind, m.status) for m in calls] == [("voice", "voice.checkin", "sent")]
    assert calls[0].provider_sid and calls[0].reminder_id == reminder.id and calls[0].child_id == home.child.id
    question = load_state(session, home.guardian).question
    assert question is not None and question.kind == "checkin" and question.reminder_id == reminder.id


def test_an_unanswered_call_climbs_the_ladder_to_a_no_response_flag(app: Flask, client: FlaskClient,
                                                                    session: Session, clock: Clock) -> None:
    home, reminder = checkin_household(session)
    tick(app, clock, START + timedelta(minutes=1))
    first = messages(session, home.guardian)[0]
    status = {"CallSid": first.provider_sid, "CallStatus": "no-answer", "To": home.guardian.phone, "From": SERVICE}
    assert post_signed(client, "/twilio/voice/status", status).status_code == 204
    session.expire_all()
    assert session.get(Message, first.id).status == "undelivered"
    assert session.get(Reminder, reminder.id).detail["calls"][0]["status"] == "no-answer"

    steps = []
    for hours in (24, 48, 72):
        tick(app, clock, START + timedelta(hours=hours, minutes=1))
        session.expire_all()
        steps.append((session.get(Reminder, reminder.id).ladder_step, len(messages(session, home.guardian, "voice"))))
    # Step 1 asks again (by call, her channel), step 2 is the voice step, step 3 flags.
    assert steps == [(1, 2), (2, 3), (3, 3)]
    assert messages(session, home.guardian, "sms") == []
    session.expire_all()
    assert session.get(Reminder, reminder.id).state == "no_response"
    no_response = flags(session, "no_response")
    assert [f.child_id for f in no_response] == [home.child.id]
    assert load_state(session, home.guardian).question is None


def test_an_answered_call_pressing_2_flags_illness_and_stops_the_ladder(app: Flask, client: FlaskClient,
                                                                        session: Session, clock: Clock) -> None:
    home, reminder = checkin_household(session)
    tick(app, clock, START + timedelta(minutes=1))
    call = messages(session, home.guardian)[0]
    clock.now = START + timedelta(minutes=2)
    page = answer_call(client, call, "2")
    assert page.find("Record") is not None
    post_signed(client, "/twilio/voice/status", call_form(call, CallStatus="completed", CallDuration="40"))
    assert [f.child_id for f in flags(session, "illness")] == [home.child.id]
    session.expire_all()
    assert session.get(Reminder, reminder.id).state == "answered"
    assert session.get(Message, call.id).status == "delivered"
    for hours in (24, 48, 72, 96):
        tick(app, clock, START + timedelta(hours=hours, minutes=1))
    assert len(messages(session, home.guardian, "voice")) == 2  # the call, and the reply spoken on it
    assert messages(session, home.guardian, "sms") == []
    assert flags(session, "no_response") == []


def test_a_guardian_on_both_channels_is_texted_then_called_at_the_voice_step(app: Flask, session: Session,
                                                                             clock: Clock) -> None:
    home, reminder = checkin_household(session, channel="both")
    tick(app, clock, START + timedelta(minutes=1))
    tick(app, clock, START + timedelta(hours=24, minutes=1))
    assert [m.channel for m in messages(session, home.guardian)] == ["sms", "sms"]
    tick(app, clock, START + timedelta(hours=48, minutes=1))
    assert [(m.channel, m.kind) for m in messages(session, home.guardian)][-1] == ("voice", "voice.checkin")


def test_no_call_is_placed_at_night(app: Flask, session: Session, clock: Clock) -> None:
    night = datetime(2026, 11, 30, 14, 30, tzinfo=timezone.utc)  # 22:30 in Shanghai
    home, _ = checkin_household(session, due=night)
    queue_call(session, contact=home.guardian, now=night, child=home.child)
    session.commit()
    tick(app, clock, night)
    tick(app, clock, night + timedelta(hours=3))
    assert [m.status for m in messages(session, home.guardian)] == ["queued"]
    tick(app, clock, datetime(2026, 12, 1, 0, 5, tzinfo=timezone.utc))  # 08:05
    calls = messages(session, home.guardian)
    assert len(calls) == 2 and {m.status for m in calls} == {"sent"}


def test_an_enrolled_voice_guardian_confirms_guardianship_by_call(app: Flask, client: FlaskClient, session: Session,
                                                                  clock: Clock) -> None:
    home = household(session, now=START, guardian_channel="voice", enroll=True)
    session.commit()
    tick(app, clock, START + timedelta(minutes=1))
    sent = messages(session, home.guardian)
    assert [(m.channel, m.kind) for m in sent] == [("sms", "sms.welcome"), ("voice", "voice.confirm_guardian")]
    page = answer_call(client, sent[1], "1")
    assert page.find("Hangup") is not None
    session.expire_all()
    arrangement = home.child.current_arrangement()
    session.refresh(arrangement)
    assert arrangement.guardian_confirmed_at is not None
    # A week on, the check-in is a call too.
    tick(app, clock, START + timedelta(days=7, minutes=1))
    kinds = [m.kind for m in messages(session, home.guardian, "voice")]
    assert kinds == ["voice.confirm_guardian", "voice.confirm_thanks", "voice.checkin"]
