"""Twilio SMS webhooks: inbound messages and status callbacks."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app
from flask import request as flask_request
from sqlalchemy.exc import DBAPIError
from twilio.twiml.messaging_response import MessagingResponse

from bot.clock import utcnow
from bot.db import request_session
from bot.inbox import receive
from bot.outbox import apply_status, carry_in_answer
from bot.schedule import alert_urgent_now
from handlers.twilio_auth import twilio_signed

log = logging.getLogger("xiangban.twilio")
bp = Blueprint("twilio", __name__, url_prefix="/twilio")


def twiml(response: MessagingResponse | object) -> Response:
    """A TwiML response."""
    return Response(str(response), mimetype="application/xml")


@bp.errorhandler(DBAPIError)
def database_unavailable(_error: Exception) -> tuple[str, int]:
    """The database is down: 503, so Twilio retries or uses the fallback URL."""
    log.error("database unavailable during a webhook")
    return "database unavailable", 503


@bp.post("/sms")
@twilio_signed
def inbound_sms() -> Response:
    """Store the inbound message, answer it with TwiML; its replies are stored first and tracked by callbacks."""
    form = flask_request.form
    session = request_session()
    now = utcnow()
    result = receive(session, provider_sid=form.get("MessageSid") or form.get("SmsSid"),
                     from_number=form.get("From", ""), to_number=form.get("To"), body=form.get("Body", ""),
                     now=now, config=current_app.config)
    replies = ([m for m in result.replies if m.status == "sent"] if result.duplicate
               else carry_in_answer(session, result.replies, now=now))
    session.commit()
    if result.urgent:
        _alert_now(session, now)
    response = MessagingResponse()
    for reply in replies:
        response.message(reply.body, action=_status_url(reply.id), method="POST")
    return twiml(response)


def _status_url(message_id: int) -> str:
    """Where Twilio reports on a reply carried in our answer (signed like every callback)."""
    base = current_app.config.get("PUBLIC_URL") or flask_request.host_url.rstrip("/")
    return f"{base}/twilio/status?mid={message_id}"


def _alert_now(session, now) -> None:  # type: ignore[no-untyped-def]
    """Tell the caseworker about an urgent case at once; if sending fails the worker retries within a minute."""
    try:
        alert_urgent_now(session, current_app.extensions["xiangban_sender"], now=now, config=current_app.config)
    except DBAPIError:  # the database is down: 503, Twilio retries
        raise
    except Exception:
        session.rollback()
        log.exception("immediate caseworker alert failed; left for the worker")


@bp.post("/status")
@twilio_signed
def status_callback() -> tuple[str, int]:
    """Apply a message status callback (idempotent, monotonic)."""
    form = flask_request.form
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not status:
        return "", 204
    session = request_session()
    mid = flask_request.args.get("mid", type=int)
    apply_status(session, provider_sid=sid, status=status, error_code=form.get("ErrorCode"), now=utcnow(),
                 config=current_app.config, message_id=mid)
    session.commit()
    return "", 204
