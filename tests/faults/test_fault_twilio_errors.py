"""Twilio refusing or failing: 429/5xx retried with backoff, 21610 opts the contact out, 21211/21614
mark the number invalid and tell a caseworker; a lost send reconciled from Twilio's own records."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from email.utils import format_datetime

import pytest
import responses
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels.twilio_sender import TwilioSender
from bot.db import get_database
from bot.outbox import MAX_ATTEMPTS, dispatch, queue_text
from bot.schedule import run_due
from models import Flag, Message
from tests.builders import household

ACCOUNT = "AC" + "1" * 32
BASE = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}"
CREATE = f"{BASE}/Messages.json"


def _sender() -> TwilioSender:
    return TwilioSender(ACCOUNT, "token", from_number="+15005550006", messaging_service_sid=None,
                        public_url="https://xiangban.example.org")


def _error(code: int, status: int) -> dict:
    return {"json": {"code": code, "message": f"error {code}", "more_info": "", "status": status}, "status": status}


def _created(sid: str, to: str, body: str, status: str = "queued", at: datetime | None = None) -> dict:
    return {"sid": sid, "account_sid": ACCOUNT, "to": to, "from": "+15005550006", "body": body, "status": status,
            "error_code": None, "date_created": format_datetime(at) if at else None, "num_segments": "1"}


def _queued(session: Session, now: datetime) -> tuple[Message, object]:
    home = household(session, now=now)
    message = queue_text(session, contact=home.guardian, template="sms.welcome", now=now,
                         variables={"township": "下营镇"}, child=home.child)
    session.commit()
    return message, home


@responses.activate
def test_429_and_5xx_are_retried_with_growing_backoff_then_sent(app: Flask, session: Session, now: datetime) -> None:
    message, _ = _queued(session, now)
    responses.add(responses.POST, CREATE, **_error(20429, 429))
    responses.add(responses.POST, CREATE, **_error(20500, 500))
    responses.add(responses.POST, CREATE, **_error(20503, 503))
    responses.add(responses.POST, CREATE, json=_created("SM" + "a" * 32, message.to_number, message.body), status=201)
    sender, config = _sender(), app.config
    waits = []
    at = now
    for _ in range(3):
        report = dispatch(session, sender, now=at, config=config)
        assert report.retried == 1
        session.refresh(message)
        assert message.status == "queued" and message.next_attempt_at > at
        waits.append(message.next_attempt_at - at)
        assert dispatch(session, sender, now=at + waits[-1] / 2, config=config).sent == 0  # not before its time
        at = message.next_attempt_at
    assert waits == sorted(waits) and waits[0] < waits[-1]  # exponential backoff
    assert dispatch(session, sender, now=at, config=config).sent == 1
    session.refresh(message)
    assert (message.status, message.provider_sid, message.attempts) == ("sent", "SM" + "a" * 32, 4)
    assert len(responses.calls) == 4


@responses.activate
def test_retries_stop_after_max_attempts(app: Flask, session: Session, now: datetime) -> None:
    message, _ = _queued(session, now)
    for _ in range(MAX_ATTEMPTS + 2):
        responses.add(responses.POST, CREATE, **_error(20429, 429))
    at = now
    for _ in range(MAX_ATTEMPTS):
        dispatch(session, _sender(), now=at, config=app.config)
        session.refresh(message)
        at = message.next_attempt_at or at
    assert message.status == "failed" and len(responses.calls) == MAX_ATTEMPTS
    flags = session.scalars(select(Flag).where(Flag.category == "undeliverable")).all()
    assert len(flags) == 1 and flags[0].severity == "high"  # the caseworker is told


@responses.activate
def test_21610_marks_the_contact_opted_out_and_tells_the_caseworker(app: Flask, session: Session,
                                                                   now: datetime) -> None:
    message, home = _queued(session, now)
    responses.add(responses.POST, CREATE, **_error(21610, 400))
    assert dispatch(session, _sender(), now=now, config=app.config).failed == 1
    session.expire_all()
    assert session.get(Message, message.id).status == "failed"
    assert home.guardian.opted_out is True
    flag = session.scalars(select(Flag)).one()
    assert (flag.category, flag.child_id, flag.status) == ("opted_out", home.child.id, "open")
    # Nothing more goes to that number, not even a retry.
    queue_text(session, contact=home.guardian, template="sms.welcome", now=now, variables={"township": "x"})
    session.commit()
    dispatch(session, _sender(), now=now, config=app.config)
    assert len(responses.calls) == 1


@pytest.mark.parametrize("code", [21211, 21614])
@responses.activate
def test_bad_numbers_are_marked_invalid_and_flagged(app: Flask, session: Session, now: datetime, code: int) -> None:
    message, home = _queued(session, now)
    responses.add(responses.POST, CREATE, **_error(code, 400))
    dispatch(session, _sender(), now=now, config=app.config)
    session.expire_all()
    assert session.get(Message, message.id).status == "failed"
    assert session.get(Message, message.id).error_code == str(code)
    assert home.guardian.invalid_number is True and home.guardian.opted_out is False
    flag = session.scalars(select(Flag)).one()
    assert (flag.category, flag.child_id, flag.township_id) == ("invalid_number", home.child.id,
                                                                home.child.township_id)
    assert len(responses.calls) == 1


@responses.activate
def test_unknown_messages_are_reconciled_from_twilio_not_resent(app: Flask, session: Session, now: datetime) -> None:
    home = household(session, now=now, father_phone="+8613800000001", guardian_phone="+8613800000002")
    lost = queue_text(session, contact=home.guardian, template="sms.welcome", now=now, variables={"township": "镇"})
    never = queue_text(session, contact=home.father, template="sms.welcome", now=now, variables={"township": "镇"})
    with_sid = queue_text(session, contact=home.father, template="sms.welcome", now=now,
                          variables={"township": "另"})
    for message in (lost, never, with_sid):
        message.status, message.claimed_at = "sending", now
    with_sid.provider_sid = "SM" + "c" * 32
    session.commit()
    later = now + timedelta(minutes=20)
    # Twilio's list for the guardian shows the lost message (plus an older, different one).
    responses.add(responses.GET, CREATE, match=[responses.matchers.query_param_matcher(
        {"To": lost.to_number, "PageSize": "100"})], json={"messages": [
            _created("SM" + "b" * 32, lost.to_number, lost.body, "delivered", now + timedelta(seconds=3)),
            _created("SM" + "0" * 32, lost.to_number, lost.body, "delivered", now - timedelta(days=9))],
            "next_page_uri": None, "page": 0, "page_size": 100, "uri": "/x"})
    responses.add(responses.GET, CREATE, match=[responses.matchers.query_param_matcher(
        {"To": never.to_number, "PageSize": "100"})], json={"messages": [], "next_page_uri": None, "page": 0,
                                                             "page_size": 100, "uri": "/x"})
    responses.add(responses.GET, f"{BASE}/Messages/{with_sid.provider_sid}.json",
                  json=_created(with_sid.provider_sid, with_sid.to_number, with_sid.body, "failed") |
                  {"error_code": 30006})
    responses.add(responses.POST, CREATE, json=_created("SM" + "d" * 32, never.to_number, never.body), status=201)
    run_due(get_database(app), _sender(), now=later, config=app.config | {"SEND_RATE_PER_SECOND": 1e6})
    session.expire_all()
    lost, never, with_sid = (session.get(Message, m.id) for m in (lost, never, with_sid))
    assert (lost.status, lost.provider_sid) == ("delivered", "SM" + "b" * 32)
    assert (with_sid.status, with_sid.error_code) == ("failed", "30006")
    assert (never.status, never.provider_sid) == ("sent", "SM" + "d" * 32)  # Twilio never had it: sent once now
    posts = [call for call in responses.calls if call.request.method == "POST"]
    assert len(posts) == 1 and never.to_number in json.dumps(dict(
        pair.split("=", 1) for pair in posts[0].request.body.split("&"))).replace("%2B", "+")
