"""Whole dialogues through signed webhooks, in Chinese and in English."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.schedule import run_due
from models import Answer, Arrangement, Contact, Flag, Message
from tests.builders import household, post_signed, sms_form

START = datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)  # 09:00 Shanghai


def tick(app: Flask, now: datetime) -> None:
    run_due(app.extensions["xiangban_db"], app.extensions["xiangban_sender"], now=now, config=app.config)


def text(app: Flask, phone: str, body: str) -> list[str]:
    """Send an SMS as a contact; return the bodies of the replies it got."""
    with app.extensions["xiangban_db"].session() as session:
        before = session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) or 0
    response = post_signed(app.test_client(), "/twilio/sms", sms_form(phone, body))
    assert response.status_code == 200
    with app.extensions["xiangban_db"].session() as session:
        rows = session.scalars(select(Message).where(Message.id > before, Message.direction == "outbound",
                                                     Message.to_number == phone).order_by(Message.id)).all()
        return [m.body for m in rows]


def test_confirm_check_in_opt_out_and_back_in_chinese(app: Flask, session: Session) -> None:
    family = household(session, now=START, enroll=True)
    session.commit()
    tick(app, START)
    assert text(app, family.guardian.phone, "1") == ["谢谢您的确认，已记录。"]
    assert text(app, family.father.phone, "１") == ["谢谢您的确认，已记录。"]
    arrangement = session.scalars(select(Arrangement)).one()
    session.refresh(arrangement)
    assert arrangement.status == "confirmed"
    assert arrangement.parent_message_id and arrangement.guardian_message_id
    assert arrangement.parent_confirmed_at and arrangement.guardian_confirmed_at
    # A week later the check-in comes; grandma says the child is ill.
    tick(app, START + timedelta(days=7, hours=1))
    asked = session.scalars(select(Message).where(Message.kind == "sms.checkin_ask")).all()
    assert len(asked) == 1 and "小明" in asked[0].body and "王小明" not in asked[0].body
    reply = text(app, family.guardian.phone, "2")
    assert reply and "医院" in reply[0]
    assert session.scalars(select(Flag).where(Flag.category == "illness")).one().severity == "high"
    text(app, family.guardian.phone, "发烧了，今天去卫生院看了")
    answers = [a.value for a in session.scalars(select(Answer).order_by(Answer.id))]
    assert "ill" in answers
    # Opt out and back in.
    assert text(app, family.guardian.phone, "退订") == ["已退订，以后不再发送。回复恢复可重新接收。"]
    session.expire_all()
    assert session.get(Contact, family.guardian.id).opted_out
    assert text(app, family.guardian.phone, "TD") == []  # confirmed once only
    assert text(app, family.guardian.phone, "恢复") == ["已恢复接收，谢谢！回复TD可退订。"]
    session.expire_all()
    assert not session.get(Contact, family.guardian.id).opted_out


def test_english_speaking_parent(app: Flask, session: Session) -> None:
    family = household(session, now=START, enroll=True, language="en")
    session.commit()
    tick(app, START)
    sent = session.scalars(select(Message).where(Message.to_number == family.father.phone)).all()
    assert sent[-1].body.startswith("Xiangban: Please confirm")
    assert text(app, family.father.phone, "yes") == ["Thank you, your confirmation is recorded."]
    assert text(app, family.father.phone, "HELP")[0].startswith("Xiangban, the township child-care service")
    assert text(app, family.father.phone, "中文") == ["已切换为中文。"]


def test_alarming_reply_is_answered_with_emergency_numbers_and_flagged_once(app: Flask, session: Session) -> None:
    family = household(session, now=START, enroll=True)
    session.commit()
    form = sms_form(family.guardian.phone, "孩子被人打了，身上都是伤", sid="SMalarm")
    client = app.test_client()
    for _ in range(2):
        assert post_signed(client, "/twilio/sms", form).status_code == 200
    text(app, family.guardian.phone, "他爸又打他了")
    flags = session.scalars(select(Flag).where(Flag.severity == "urgent", Flag.category == "abuse")).all()
    assert len(flags) == 1 and flags[0].occurrences == 2
    replies = session.scalars(select(Message).where(Message.kind == "sms.urgent_reply")).all()
    assert replies and all("110" in m.body and m.urgent for m in replies)
    assert flags[0].due_at is not None and flags[0].due_at - flags[0].created_at == timedelta(hours=1)


def test_guardian_of_two_children_is_asked_about_each_in_turn(app: Flask, session: Session) -> None:
    first = household(session, now=START, enroll=True, name="王小明")
    household(session, now=START, enroll=True, name="王小红", village_name="西庄村", father_phone="+8613800000011")
    session.commit()
    tick(app, START)
    asked = [m.body for m in session.scalars(select(Message).where(
        Message.to_number == first.guardian.phone, Message.kind == "sms.confirm_guardian"))]
    assert len(asked) == 1  # one question at a time
    text(app, first.guardian.phone, "1")
    tick(app, START + timedelta(minutes=1))
    asked = [m.body for m in session.scalars(select(Message).where(
        Message.to_number == first.guardian.phone, Message.kind == "sms.confirm_guardian"))]
    assert len(asked) == 2 and "小明" in asked[0] and "小红" in asked[1]
