"""Twilio SMS webhooks: inbound messages and status callbacks."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app
from flask import request as flask_request
from sqlalchemy.exc import OperationalError, DBAPIError
from twilio.twiml.messaging_response import MessagingResponse

from bot.clock import utcnow
from bot.db import request_session
from bot.inbox import receive
from bot.outbox import apply_status, dispatch
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
    """Store the inbound message before answering; the engine's replies go through the outbox."""
    form = flask_request.form
    session = request_session()
    now = utcnow()
    result = receive(session, provider_sid=form.get("MessageSid") or form.get("SmsSid"),
                     from_number=form.get("From", ""), to_number=form.get("To"), body=form.get("Body", ""),
                     now=now, config=current_app.config)
    session.commit()
    if result.replies and not result.duplicate:
        _send_now(session, [m.id for m in result.replies], now)
    return twiml(MessagingResponse())


def _send_now(session, ids: list[int], now) -> None:  # type: ignore[no-untyped-def]
    """Send replies at once; whatever fails stays queued for the worker."""
    try:
        dispatch(session, current_app.extensions["xiangban_sender"], now=now, config=current_app.config, ids=ids)
    except (OperationalError, DBAPIError):
        raise
    except Exception:  # the reply is stored; the worker retries it
        session.rollback()
        log.exception("immediate reply dispatch failed; left for the worker")


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
    apply_status(session, provider_sid=sid, status=status, error_code=form.get("ErrorCode"), now=utcnow(),
                 config=current_app.config)
    session.commit()
    return "", 204
