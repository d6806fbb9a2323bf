"""The Twilio sender with the real twilio client: against Twilio's OpenAPI description served by
Prism (every request must validate), and against an in-process mock (`responses`) for the error
codes Prism cannot produce (21610 opted out, 21211/21614 bad number, 20429 and 5xx retried)."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs

import pytest
import responses
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import SendError
from bot.channels.factory import make_sender
from bot.channels.twilio_sender import TwilioSender
from bot.outbox import MAX_ATTEMPTS, dispatch, queue_call, queue_text
from models import Flag, Message
from tests.builders import household

ACCOUNT = "AC" + "1" * 32
TOKEN = "secret-token"
SERVICE_SID = "MG" + "2" * 32
FROM = "+8610690000000"
PUBLIC = "https://xiangban.example.org"
TO = "+8613800000002"


def sender(api_base: str | None = None, *, service: bool = False, from_number: str | None = FROM) -> TwilioSender:
    return TwilioSender(ACCOUNT, TOKEN, from_number=from_number, messaging_service_sid=SERVICE_SID if service else None,
                        public_url=PUBLIC, api_base=api_base)


def sent_form(transport: TwilioSender) -> dict[str, list[str]]:
    """The form the twilio client last sent."""
    request = transport.client.http_client._test_only_last_request  # type: ignore[attr-defined]
    data = request.data
    return {key: value if isinstance(value, list) else [value] for key, value in data.items()}


# --- against Twilio's OpenAPI description (Prism) -----------------------------------------------------

def test_a_text_through_a_messaging_service_validates(prism_api: str) -> None:
    transport = sender(prism_api, service=True)
    result = transport.send_text(TO, "【相伴】小明这周好吗？回复1都好", message_id=1)
    assert re.fullmatch(r"SM[0-9a-fA-F]{32}", result.provider_sid or "")
    form = sent_form(transport)
    assert form["MessagingServiceSid"] == [SERVICE_SID] and "From" not in form
    assert form["To"] == [TO] and form["Body"] == ["【相伴】小明这周好吗？回复1都好"]
    assert form["StatusCallback"] == [f"{PUBLIC}/twilio/status"]


def test_a_text_from_a_number_validates(prism_api: str) -> None:
    transport = sender(prism_api)
    result = transport.send_text(TO, "hello", message_id=2)
    assert result.provider_sid
    form = sent_form(transport)
    assert form["From"] == [FROM] and "MessagingServiceSid" not in form


def test_a_call_validates_with_our_voice_url_and_status_callback(prism_api: str) -> None:
    transport = sender(prism_api)
    result = transport.place_call(TO, message_id=3)
    assert re.fullmatch(r"CA[0-9a-fA-F]{32}", result.provider_sid or "")
    form = sent_form(transport)
    assert form["To"] == [TO] and form["From"] == [FROM]
    assert form["Url"] == [f"{PUBLIC}/twilio/voice"] and form["Method"] == ["POST"]
    assert form["StatusCallback"] == [f"{PUBLIC}/twilio/voice/status"] and form["StatusCallbackMethod"] == ["POST"]
    assert set(form["StatusCallbackEvent"]) >= {"initiated", "answered", "completed"}


def test_prism_refuses_a_request_that_breaks_the_description(prism_api: str) -> None:
    """The mock really validates: a malformed Messaging Service SID is a 422, never sent."""
    transport = TwilioSender(ACCOUNT, TOKEN, from_number=None, messaging_service_sid="MG-not-a-sid",
                             public_url=PUBLIC, api_base=prism_api)
    with pytest.raises(SendError) as refused:
        transport.send_text(TO, "hello", message_id=4)
    assert refused.value.retryable is False


def test_the_app_sends_through_twilio_when_configured(prism_api: str, app: Flask, session: Session,
                                                      now: datetime) -> None:
    config = {**app.config, "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN,
              "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID, "TWILIO_FROM_NUMBER": FROM, "TWILIO_API_BASE": prism_api}
    transport = make_sender(config)
    assert transport.name == "twilio"
    home = household(session, now=now, guardian_channel="voice")
    text = queue_text(session, contact=home.father, template="sms.checkin_ok", now=now)
    call = queue_call(session, contact=home.guardian, now=now, child=home.child)
    session.commit()
    report = dispatch(session, transport, now=now, config=config)
    assert report.sent == 2 and report.failed == report.retried == 0
    session.expire_all()
    assert session.get(Message, text.id).provider_sid.startswith("SM")
    assert session.get(Message, call.id).provider_sid.startswith("CA")
    assert {session.get(Message, i).status for i in (text.id, call.id)} == {"sent"}


def test_without_a_sender_address_nothing_is_sent() -> None:
    transport = sender("http://127.0.0.1:9", from_number=None)
    with pytest.raises(SendError) as refused:
        transport.send_text(TO, "hello", message_id=5)
    assert refused.value.retryable is False
    with pytest.raises(SendError):
        transport.place_call(TO, message_id=6)


# --- error codes Prism cannot produce (responses) ----------------------------------------------------------

MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"


def twilio_error(code: int, status: int) -> dict[str, object]:
    return {"status": status, "content_type": "application/json",
            "body": json.dumps({"code": code, "message": f"error {code}", "status": status,
                                "more_info": f"https://www.twilio.com/docs/errors/{code}"})}


def created(kind: str) -> dict[str, object]:
    prefix = "SM" if kind == "message" else "CA"
    return {"status": 201, "json": {"sid": prefix + "f" * 32, "status": "queued", "account_sid": ACCOUNT}}


def queued_text(session: Session, now: datetime):  # type: ignore[no-untyped-def]
    home = household(session, now=now)
    message = queue_text(session, contact=home.guardian, template="sms.checkin_ok", now=now)
    session.commit()
    return home, message


@responses.activate
def test_21610_marks_the_contact_opted_out_and_tells_the_caseworker(app: Flask, session: Session,
                                                                    now: datetime) -> None:
    responses.add(responses.POST, MESSAGES_URL, **twilio_error(21610, 400))
    home, message = queued_text(session, now)
    report = dispatch(session, sender(), now=now, config=app.config)
    assert report.failed == 1 and report.retried == 0
    session.expire_all()
    stored = session.get(Message, message.id)
    assert (stored.status, stored.error_code) == ("failed", "21610")
    assert home.guardian.opted_out is True
    flag = session.scalars(select(Flag).where(Flag.category == "opted_out")).one()
    assert flag.child_id == home.child.id and flag.severity == "high"
    assert len(responses.calls) == 1


@pytest.mark.parametrize("code", [21211, 21614])
@responses.activate
def test_a_bad_number_marks_the_contact_invalid(app: Flask, session: Session, now: datetime, code: int) -> None:
    responses.add(responses.POST, MESSAGES_URL, **twilio_error(code, 400))
    home, message = queued_text(session, now)
    dispatch(session, sender(), now=now, config=app.config)
    session.expire_all()
    assert session.get(Message, message.id).status == "failed"
    assert home.guardian.invalid_number is True
    assert [f.category for f in session.scalars(select(Flag)).all()] == ["invalid_number"]
    # Nothing more is sent to that number.
    later = queue_text(session, contact=home.guardian, template="sms.checkin_ok", now=now)
    session.commit()
    dispatch(session, sender(), now=now + timedelta(minutes=1), config=app.config)
    session.expire_all()
    assert session.get(Message, later.id).status == "failed" and len(responses.calls) == 1


@responses.activate
def test_a_call_to_a_bad_number_marks_it_invalid(app: Flask, session: Session, now: datetime) -> None:
    responses.add(responses.POST, CALLS_URL, **twilio_error(21211, 400))
    home = household(session, now=now, guardian_channel="voice")
    call = queue_call(session, contact=home.guardian, now=now, child=home.child)
    session.commit()
    dispatch(session, sender(), now=now, config=app.config)
    session.expire_all()
    assert session.get(Message, call.id).status == "failed" and home.guardian.invalid_number is True


@pytest.mark.parametrize("code, status", [(20429, 429), (20500, 500), (None, 503)])
@responses.activate
def test_throttling_and_server_errors_are_retried_with_backoff(app: Flask, session: Session, now: datetime,
                                                               code: int | None, status: int) -> None:
    error = twilio_error(code, status) if code else {"status": status, "body": "<html>unavailable</html>"}
    responses.add(responses.POST, MESSAGES_URL, **error)
    responses.add(responses.POST, MESSAGES_URL, **error)
    responses.add(responses.POST, MESSAGES_URL, **created("message"))
    _, message = queued_text(session, now)
    transport = sender()

    first = dispatch(session, transport, now=now, config=app.config)
    assert first.retried == 1
    session.expire_all()
    stored = session.get(Message, message.id)
    assert stored.status == "queued" and stored.attempts == 1
    assert stored.next_attempt_at == now + timedelta(seconds=30)

    assert dispatch(session, transport, now=now + timedelta(seconds=10), config=app.config).retried == 0  # not yet
    assert len(responses.calls) == 1
    dispatch(session, transport, now=now + timedelta(seconds=30), config=app.config)
    session.expire_all()
    stored = session.get(Message, message.id)
    assert stored.next_attempt_at == now + timedelta(seconds=30 + 60)  # the wait doubles

    dispatch(session, transport, now=now + timedelta(seconds=90), config=app.config)
    session.expire_all()
    stored = session.get(Message, message.id)
    assert (stored.status, stored.provider_sid, stored.attempts) == ("sent", "SM" + "f" * 32, 3)
    assert len(responses.calls) == 3


@responses.activate
def test_retries_stop_after_the_last_attempt(app: Flask, session: Session, now: datetime) -> None:
    responses.add(responses.POST, MESSAGES_URL, **twilio_error(20429, 429))
    home, message = queued_text(session, now)
    at = now
    for _ in range(MAX_ATTEMPTS + 2):
        dispatch(session, sender(), now=at, config=app.config)
        at += timedelta(hours=2)
    session.expire_all()
    stored = session.get(Message, message.id)
    assert (stored.status, stored.attempts) == ("failed", MAX_ATTEMPTS)
    assert len(responses.calls) == MAX_ATTEMPTS
    assert home.guardian.opted_out is False and home.guardian.invalid_number is False


@responses.activate
def test_the_request_has_a_timeout(app: Flask) -> None:
    """A hung connection to Twilio must not hang the worker forever."""
    responses.add(responses.POST, MESSAGES_URL, **created("message"))
    transport = sender()
    transport.send_text(TO, "hello", message_id=7)
    assert transport.client.http_client.timeout  # type: ignore[attr-defined]
    assert parse_qs(responses.calls[0].request.body)["To"] == [TO]
