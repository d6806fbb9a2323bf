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


# --- call recordings (responses) -----------------------------------------------------------------------------

RECORDING = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{'3' * 32}"
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8  # binary, not text: must come back intact


@responses.activate
def test_a_recording_is_fetched_as_mp3_with_the_account_credentials() -> None:
    import base64

    responses.add(responses.GET, RECORDING + ".mp3", body=MP3, content_type="audio/mpeg")
    audio, content_type = sender().fetch_recording(RECORDING)
    assert audio == MP3 and content_type == "audio/mpeg"
    request = responses.calls[0].request
    assert request.url == RECORDING + ".mp3"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert sender().fetch_recording(RECORDING + ".wav")[0] == MP3, "the .wav form is asked for as .mp3"


@responses.activate
def test_a_recording_redirect_to_a_media_host_carries_no_credentials() -> None:
    media = "https://media.example-cdn.com/recording.mp3?signature=abc"
    responses.add(responses.GET, RECORDING + ".mp3", status=302, headers={"Location": media})
    responses.add(responses.GET, media, body=MP3, content_type="audio/mpeg")
    assert sender().fetch_recording(RECORDING) == (MP3, "audio/mpeg")
    assert "Authorization" not in responses.calls[1].request.headers


@responses.activate
def test_a_recording_through_the_api_base_of_tests() -> None:
    responses.add(responses.GET, f"http://127.0.0.1:4010/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{'3' * 32}.mp3",
                  body=MP3, content_type="audio/mpeg")
    assert sender("http://127.0.0.1:4010").fetch_recording(RECORDING)[0] == MP3


@pytest.mark.parametrize("url", [
    "https://evil.example.com/2010-04-01/Accounts/AC1/Recordings/RE1",
    "http://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
    "https://api.twilio.com.evil.example.com/2010-04-01/Accounts/AC1/Recordings/RE1",
    "https://user:pw@api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
    "https://api.twilio.com:8443/2010-04-01/Accounts/AC1/Recordings/RE1",
    "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/SM1",
    "", "file:///etc/passwd",
])
@responses.activate
def test_our_credentials_go_to_twilio_recordings_only(url: str) -> None:
    from bot.channels import RecordingError

    with pytest.raises(RecordingError) as error:
        sender().fetch_recording(url)
    assert error.value.code == "not_twilio" and not responses.calls


@pytest.mark.parametrize("status, body, content_type, code", [
    (404, b'{"code": 20404}', "application/json", "not_found"),
    (401, b'{"code": 20003}', "application/json", "provider"),
    (503, b"busy", "text/plain", "provider"),
    (200, b"<Response/>", "application/xml", "not_audio"),
])
@responses.activate
def test_a_recording_twilio_will_not_give_is_a_recording_error(status: int, body: bytes, content_type: str,
                                                               code: str) -> None:
    from bot.channels import RecordingError

    responses.add(responses.GET, RECORDING + ".mp3", status=status, body=body, content_type=content_type)
    with pytest.raises(RecordingError) as error:
        sender().fetch_recording(RECORDING)
    assert error.value.code == code


@responses.activate
def test_an_unreachable_or_oversized_recording_is_a_recording_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    from bot.channels import RecordingError, fetches_recordings
    from bot.channels import twilio_sender
    from bot.channels.console import ConsoleSender

    responses.add(responses.GET, RECORDING + ".mp3", body=requests.ConnectionError("down"))
    with pytest.raises(RecordingError) as error:
        sender().fetch_recording(RECORDING)
    assert error.value.code == "unreachable"
    responses.replace(responses.GET, RECORDING + ".mp3", body=MP3, content_type="audio/mpeg")
    monkeypatch.setattr(twilio_sender, "MAX_RECORDING_BYTES", 100)
    with pytest.raises(RecordingError) as error:
        sender().fetch_recording(RECORDING)
    assert error.value.code == "too_large"
    assert fetches_recordings(sender()) and not fetches_recordings(ConsoleSender())
