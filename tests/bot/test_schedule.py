"""Driving `run_due` through a simulated month with explicit times."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import local
from bot.schedule import run_due
from models import Flag, Message, Reminder
from tests.builders import household, post_signed, sms_form

SHANGHAI = "Asia/Shanghai"
START = datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai, a Monday


def tick(app: Flask, now: datetime) -> None:
    run_due(app.extensions["xiangban_db"], app.extensions["xiangban_sender"], now=now, config=app.config)


def outbound(session: Session, phone: str | None = None) -> list[Message]:
    session.expire_all()
    query = select(Message).where(Message.direction == "outbound").order_by(Message.id)
    if phone:
        query = query.where(Message.to_number == phone)
    return list(session.scalars(query).all())


def enroll(app: Flask, session: Session, **kwargs: object):  # type: ignore[no-untyped-def]
    family = household(session, now=START, enroll=True, **kwargs)
    session.commit()
    return family


def test_enrollment_welcomes_and_asks_both_sides_at_once(app: Flask, session: Session) -> None:
    family = enroll(app, session)
    tick(app, START + timedelta(minutes=1))
    assert [m.kind for m in outbound(session, family.father.phone)] == ["sms.welcome", "sms.confirm_parent"]
    assert [m.kind for m in outbound(session, family.guardian.phone)] == ["sms.welcome", "sms.confirm_guardian"]
    assert all(m.status == "sent" for m in outbound(session))


def test_nothing_is_sent_at_night_and_the_morning_sends_once(app: Flask, session: Session) -> None:
    night = datetime(2026, 11, 30, 14, 30, tzinfo=timezone.utc)  # 22:30 in Shanghai
    household(session, now=night, enroll=True)
    session.commit()
    tick(app, night)
    tick(app, night + timedelta(hours=3))
    assert outbound(session) == []
    morning = datetime(2026, 12, 1, 0, 5, tzinfo=timezone.utc)  # 08:05
    for _ in range(3):
        tick(app, morning)
    sent = outbound(session)
    assert len(sent) == 4
    assert all(8 <= local(m.created_at, SHANGHAI).hour < 21 for m in sent)


def test_a_month_of_silence_sends_each_reminder_once_by_day_and_ends_in_no_response(app: Flask,
                                                                                  session: Session) -> None:
    family = enroll(app, session)
    now = START
    for _ in range(31 * 24 // 3):  # every three hours for a month
        tick(app, now)
        now += timedelta(hours=3)
    messages = outbound(session)
    assert messages, "nothing was sent"
    for message in messages:
        hour = local(message.created_at, SHANGHAI).hour
        assert 8 <= hour < 21, f"{message.kind} sent at {hour}h"
    per_day: dict[tuple[str, str, str], int] = {}
    for message in messages:
        key = (message.to_number or "", message.body, local(message.created_at, SHANGHAI).date().isoformat())
        per_day[key] = per_day.get(key, 0) + 1
    assert max(per_day.values()) <= 2, "the same text went to one number more than twice a day"
    guardian_kinds = [m.kind for m in outbound(session, family.guardian.phone)]
    assert guardian_kinds.count("sms.welcome") == 1
    assert "sms.checkin_ask" in guardian_kinds and "sms.checkin_ask_again" in guardian_kinds
    flags = session.scalars(select(Flag).where(Flag.category == "no_response")).all()
    assert len(flags) == 1 and flags[0].occurrences >= 2  # one open flag per child and category
    reminders = session.scalars(select(Reminder).where(Reminder.kind == "checkin")).all()
    assert len({r.period_key for r in reminders}) == len(reminders)


def test_an_answer_stops_the_ladder(app: Flask, session: Session) -> None:
    family = enroll(app, session)
    tick(app, START)
    client = app.test_client()
    post_signed(client, "/twilio/sms", sms_form(family.guardian.phone, "1"))
    post_signed(client, "/twilio/sms", sms_form(family.father.phone, "1"))
    now = START
    for _ in range(8):
        now += timedelta(hours=12)
        tick(app, now)
    kinds = [m.kind for m in outbound(session, family.guardian.phone)]
    assert "sms.confirm_guardian_again" not in kinds
    assert not session.scalars(select(Flag).where(Flag.category == "no_response")).all()
    reminder = session.scalars(select(Reminder).where(Reminder.kind == "confirm_guardian").order_by(Reminder.id)).first()
    assert reminder is not None and reminder.state == "answered"


def test_ladder_is_halved_and_urgent_for_a_child_of_risk_type_1(app: Flask, session: Session) -> None:
    enroll(app, session, guardianship_type="one_parent_incapable", relation="母亲")
    now = START
    for _ in range(4 * 8):  # every three hours for four days
        tick(app, now)
        now += timedelta(hours=3)
    flags = session.scalars(select(Flag).where(Flag.category == "no_response")).all()
    assert flags and flags[0].severity == "urgent"
    assert flags[0].created_at <= START + timedelta(hours=40)


def test_opted_out_contact_gets_nothing_more(app: Flask, session: Session) -> None:
    family = enroll(app, session)
    tick(app, START)
    post_signed(app.test_client(), "/twilio/sms", sms_form(family.father.phone, "TD"))
    before = len(outbound(session, family.father.phone))
    now = START
    for _ in range(20):
        now += timedelta(days=1)
        tick(app, now)
    assert len(outbound(session, family.father.phone)) == before
    assert session.scalars(select(Flag).where(Flag.category == "opted_out")).first() is not None


def test_urgent_flag_alerts_the_caseworker_at_once_then_escalates_on_its_clock(app: Flask,
                                                                               session: Session) -> None:
    from models import Caseworker, Township

    family = enroll(app, session)
    township = session.get(Township, family.child.township_id)
    worker = Caseworker(login="w", name="甲", password_hash="x", role="caseworker", phone="+8613900000001",
                        created_at=START, townships=[township])
    boss = Caseworker(login="s", name="乙", password_hash="x", role="supervisor", county=township.county,
                      phone="+8613900000002", created_at=START)
    session.add_all([worker, boss])
    session.commit()
    post_signed(app.test_client(), "/twilio/sms", sms_form(family.guardian.phone, "孩子被人打了，流了好多血"))
    # The alert goes out with the webhook itself, whatever the hour, and says nothing of the case.
    alerts = outbound(session, "+8613900000001")
    assert [(m.kind, m.status) for m in alerts] == [("sms.caseworker_alert", "sent")]
    assert "打" not in alerts[0].body and "血" not in alerts[0].body
    flag = session.scalars(select(Flag).where(Flag.severity == "urgent", Flag.category != "unattended")).one()
    assert flag.escalation_level == 1 and flag.next_escalation_at == flag.due_at
    tick(app, flag.due_at - timedelta(minutes=30))
    assert outbound(session, "+8613900000002") == []
    tick(app, flag.due_at + timedelta(minutes=1))
    assert [m.kind for m in outbound(session, "+8613900000002")] == ["sms.caseworker_escalation"]
    tick(app, flag.due_at + timedelta(hours=3))
    assert len(outbound(session, "+8613900000002")) == 1
    session.refresh(flag)
    assert [e.action for e in flag.events][-2:] == ["alerted", "escalated"]


def test_acknowledged_flag_does_not_escalate(app: Flask, session: Session) -> None:
    from models import Caseworker, Township

    family = enroll(app, session)
    township = session.get(Township, family.child.township_id)
    session.add(Caseworker(login="s", name="乙", password_hash="x", role="supervisor", county=township.county,
                           phone="+8613900000002", created_at=START))
    session.commit()
    post_signed(app.test_client(), "/twilio/sms", sms_form(family.guardian.phone, "孩子不见了，一晚上没回家"))
    flag = session.scalars(select(Flag).where(Flag.category == "missing")).one()
    flag.status, flag.next_escalation_at = "acknowledged", None
    session.commit()
    tick(app, flag.due_at + timedelta(hours=2))
    assert [m.kind for m in outbound(session, "+8613900000002")] == ["sms.caseworker_alert"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_concurrent_workers_on_postgresql_send_nothing_twice(app: Flask, session: Session) -> None:
    for i in range(40):
        household(session, now=START, enroll=True, name=f"王{i}明", father_phone=f"+86138000{i:05d}",
                  guardian_phone=f"+86139000{i:05d}", village_name=f"村{i}")
    session.commit()
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        tick(app, START + timedelta(minutes=5))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    tick(app, START + timedelta(minutes=6))
    pairs = [(m.to_number, m.body) for m in outbound(session)]
    assert len(pairs) == 40 * 4
    assert len(pairs) == len(set(pairs))


def test_after_downtime_each_overdue_item_is_sent_once_and_catch_up_is_spread(app: Flask, session: Session) -> None:
    for i in range(3):
        household(session, now=START, enroll=True, name=f"李{i}红", father_phone=f"+86138100{i:05d}",
                  guardian_phone=f"+86139100{i:05d}", village_name=f"屯{i}")
    session.commit()
    app.config["SEND_RATE_PER_SECOND"] = 0.1  # six texts a minute
    later = START + timedelta(days=30)  # the worker was down for a month
    tick(app, later)
    queued = outbound(session)
    assert sum(m.status == "sent" for m in queued) == 6
    assert sum(m.status == "queued" for m in queued) == len(queued) - 6
    for minute in range(1, 10):
        tick(app, later + timedelta(minutes=minute))
    sent = outbound(session)
    assert all(m.status == "sent" for m in sent)
    for phone in {m.to_number for m in sent}:
        kinds = [m.kind for m in sent if m.to_number == phone]
        for kind in set(kinds):
            assert kinds.count(kind) == 1, f"{phone} got {kind} {kinds.count(kind)} times after downtime"
    checkins = session.scalars(select(Reminder).where(Reminder.kind == "checkin")).all()
    for contact_id in {r.contact_id for r in checkins}:
        overdue = [r for r in checkins if r.contact_id == contact_id and r.due_at <= later]
        assert len(overdue) == 1  # the missed weeks are one overdue item, not four


def test_a_contact_may_set_their_own_window_or_none(app: Flask, session: Session) -> None:
    from datetime import time

    family = household(session, now=START, enroll=True)
    family.father.quiet_start, family.father.quiet_end = time(0, 0), time(0, 0)  # any hour
    family.guardian.quiet_start, family.guardian.quiet_end = time(6, 0), time(7, 0)
    session.commit()
    night = datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc)  # 23:00 in Shanghai
    tick(app, night)
    assert [m.kind for m in outbound(session)] == ["sms.welcome", "sms.confirm_parent"]
    tick(app, datetime(2026, 11, 30, 22, 30, tzinfo=timezone.utc))  # 06:30 next day: the guardian's window
    assert [m.kind for m in outbound(session, family.guardian.phone)] == ["sms.welcome", "sms.confirm_guardian"]


def test_claims_of_a_worker_that_died_mid_batch_are_released(app: Flask, session: Session) -> None:
    family = enroll(app, session)
    reminder = session.scalars(select(Reminder).where(Reminder.kind == "welcome",
                                                      Reminder.contact_id == family.guardian.id)).one()
    reminder.state, reminder.claimed_by, reminder.claimed_at = "claimed", "dead-worker", START
    session.commit()
    tick(app, START + timedelta(minutes=5))
    assert "sms.welcome" not in [m.kind for m in outbound(session, family.guardian.phone)]
    tick(app, START + timedelta(minutes=11))
    assert [m.kind for m in outbound(session, family.guardian.phone)].count("sms.welcome") == 1


def test_welcome_then_confirmation_then_check_in_even_when_the_rhythm_starts_at_once(app: Flask,
                                                                                     session: Session) -> None:
    from bot.enrollment import enroll_child

    family = household(session, now=START)
    enroll_child(session, child=family.child, now=START, first_checkin_at=START)
    session.commit()
    tick(app, START)
    assert [m.kind for m in outbound(session, family.guardian.phone)] == ["sms.welcome", "sms.confirm_guardian"]
    post_signed(app.test_client(), "/twilio/sms", sms_form(family.guardian.phone, "1"))
    tick(app, START + timedelta(minutes=1))
    assert [m.kind for m in outbound(session, family.guardian.phone)][-1] == "sms.checkin_ask"
