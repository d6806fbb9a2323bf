"""The SMS webhooks, signed exactly as Twilio signs them."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Flag, Message
from tests.builders import PUBLIC_URL, household, post_signed, sign, sms_form


def test_signed_inbound_is_stored_and_answered_with_twiml(client: FlaskClient, session: Session) -> None:
    response = post_signed(client, "/twilio/sms", sms_form("+8613900000009", "你好"))
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert b"<Response" in response.data
    stored = session.scalars(select(Message).where(Message.direction == "inbound")).all()
    assert [m.body for m in stored] == ["你好"]
    assert stored[0].from_number == "+8613900000009"


def test_unknown_sender_is_answered_politely_and_flagged(client: FlaskClient, session: Session) -> None:
    post_signed(client, "/twilio/sms", sms_form("+8613900000009", "请问这是哪里"))
    replies = session.scalars(select(Message).where(Message.direction == "outbound")).all()
    assert [m.kind for m in replies] == ["sms.unknown_sender"]
    assert replies[0].status == "sent"
    flag = session.scalars(select(Flag)).one()
    assert flag.category == "other" and flag.child_id is None and flag.contact_id is not None


def test_unsigned_forged_and_tampered_requests_are_refused(client: FlaskClient, session: Session) -> None:
    form = sms_form("+8613900000009", "你好")
    assert client.post("/twilio/sms", data=form).status_code == 403
    forged = client.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert forged.status_code == 403
    signature = sign(PUBLIC_URL + "/twilio/sms", form)
    tampered = dict(form, Body="改过的")
    response = client.post("/twilio/sms", data=tampered, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    other_token = post_signed(client, "/twilio/sms", form, token="another-token")
    assert other_token.status_code == 403
    assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_signature_uses_public_url_behind_a_proxy(client: FlaskClient) -> None:
    form = sms_form("+8613900000009", "你好")
    # Signed for the internal URL (what the proxy forwards to) is refused: Twilio signs the public one.
    internal = post_signed(client, "/twilio/sms", form, base="http://localhost")
    assert internal.status_code == 403
    assert post_signed(client, "/twilio/sms", form).status_code == 200


def test_port_variants_validate(app: Flask) -> None:
    app.config["PUBLIC_URL"] = "https://xiangban.example.org:443"
    form = sms_form("+8613900000009", "你好")
    response = post_signed(app.test_client(), "/twilio/sms", form, base="https://xiangban.example.org")
    assert response.status_code == 200


def test_percent_escaped_query_string_validates_against_the_raw_url(client: FlaskClient) -> None:
    form = sms_form("+8613900000009", "你好")
    path = "/twilio/sms?township=%E4%B8%8B%E8%90%A5%E9%95%87&note=a%20b"
    signature = sign(PUBLIC_URL + path, form)
    response = client.post(path, data=urlencode(form), content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


def test_same_message_sid_twice_is_stored_once_and_answered_the_same(client: FlaskClient, session: Session,
                                                                     now: datetime) -> None:
    household(session, now=now)
    session.commit()
    form = sms_form("+8613800000002", "孩子被人打了，身上都是伤", sid="SMalarm0001")
    first = post_signed(client, "/twilio/sms", form)
    second = post_signed(client, "/twilio/sms", form)
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    inbound = session.scalars(select(Message).where(Message.direction == "inbound")).all()
    assert len(inbound) == 1
    replies = session.scalars(select(Message).where(Message.direction == "outbound")).all()
    assert len(replies) == 1 and "110" in replies[0].body
    flags = session.scalars(select(Flag)).all()
    assert [(f.severity, f.category) for f in flags] == [("urgent", "abuse")]


def test_status_callbacks_are_idempotent_and_monotonic(client: FlaskClient, session: Session, now: datetime) -> None:
    family = household(session, now=now)
    message = Message(direction="outbound", channel="sms", to_number=family.guardian.phone, body="x", kind="sms.thanks",
                      template_vars={}, status="sent", provider_sid="SMout1", contact_id=family.guardian.id,
                      created_at=now, segments=1, attempts=1)
    session.add(message)
    session.commit()
    for status in ("delivered", "sent", "queued", "delivered"):
        response = post_signed(client, "/twilio/status", {"MessageSid": "SMout1", "MessageStatus": status})
        assert response.status_code == 204
    session.refresh(message)
    assert message.status == "delivered"
    unsigned = client.post("/twilio/status", data={"MessageSid": "SMout1", "MessageStatus": "failed"})
    assert unsigned.status_code == 403


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_undelivered_callback_with_21610_opts_the_contact_out_and_tells_a_caseworker(
        client: FlaskClient, session: Session, now: datetime) -> None:
    family = household(session, now=now)
    message = Message(direction="outbound", channel="sms", to_number=family.guardian.phone, body="x",
                      kind="sms.checkin_ask", template_vars={}, status="sent", provider_sid="SMout2",
                      contact_id=family.guardian.id, created_at=now, segments=1, attempts=1)
    session.add(message)
    session.commit()
    form = {"MessageSid": "SMout2", "MessageStatus": "undelivered", "ErrorCode": "21610"}
    assert post_signed(client, "/twilio/status", form).status_code == 204
    session.expire_all()
    assert family.guardian.opted_out is True
    assert session.scalars(select(Flag).where(Flag.category == "opted_out")).one().child_id == family.child.id


def test_replies_travel_in_the_twiml_answer_and_their_callback_adopts_the_sid(
        client: FlaskClient, session: Session, now: datetime) -> None:
    import xml.etree.ElementTree as ET

    household(session, now=now)
    session.commit()
    response = post_signed(client, "/twilio/sms", sms_form("+8613800000002", "孩子被人打了", sid="SMin1"))
    root = ET.fromstring(response.data)
    messages = root.findall("Message")
    assert len(messages) == 1 and "110" in (messages[0].text or "")
    reply = session.scalars(select(Message).where(Message.direction == "outbound",
                                                  Message.kind == "sms.urgent_reply")).one()
    assert reply.status == "sent" and reply.provider_sid is None
    action = messages[0].get("action")
    assert action == f"{PUBLIC_URL}/twilio/status?mid={reply.id}"
    path = action.removeprefix(PUBLIC_URL)
    for status in ("sent", "delivered"):
        callback = post_signed(client, path, {"MessageSid": "SMreply1", "MessageStatus": status})
        assert callback.status_code == 204
    session.refresh(reply)
    assert (reply.provider_sid, reply.status) == ("SMreply1", "delivered")
    # A callback naming another message's id cannot take over a message that already has its SID.
    post_signed(client, path, {"MessageSid": "SMother", "MessageStatus": "failed"})
    session.refresh(reply)
    assert (reply.provider_sid, reply.status) == ("SMreply1", "delivered")


def test_no_reply_to_an_opted_out_contact_but_the_message_is_kept(client: FlaskClient, session: Session,
                                                                   now: datetime) -> None:
    family = household(session, now=now)
    family.guardian.opted_out = True
    session.commit()
    response = post_signed(client, "/twilio/sms", sms_form(family.guardian.phone, "收到"))
    assert b"<Message" not in response.data
    assert session.scalars(select(Message).where(Message.direction == "inbound")).one().body == "收到"
