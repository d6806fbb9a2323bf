"""Twilio voice webhooks: the IVR check-in as TwiML, and call status callbacks.

Every route is signature-checked. The pages of a call carry their state in the URL Twilio
calls back (``q`` the question answered, ``s`` the page, ``n`` silent repeats), so a webhook
retried by Twilio is the same request and is answered the same way.

| route | what |
|---|---|
| POST /twilio/voice | a call starts (ours answered, or a guardian calling the service number) |
| POST /twilio/voice/answer | a key pressed on a page (or, without Digits, silence) |
| POST /twilio/voice/recorded | a message recorded after "press 0" (RecordingUrl) |
| POST /twilio/voice/status | call status callback (completed, busy, no-answer, failed ...) |
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app
from flask import request as flask_request
from sqlalchemy.exc import DBAPIError
from twilio.twiml.voice_response import VoiceResponse

from bot import voice
from bot.clock import utcnow
from bot.db import request_session
from handlers.twilio_auth import twilio_signed

bp = Blueprint("voice", __name__, url_prefix="/twilio/voice")
# Mandarin is read by Amazon Polly's Zhiyu (cmn-CN); English by Joanna.
VOICES = {"zh_Hans": ("Polly.Zhiyu", "cmn-CN"), "en": ("Polly.Joanna", "en-US")}
GATHER_SECONDS = 6
RECORD_MAX_SECONDS = 120


@bp.errorhandler(DBAPIError)
def database_unavailable(_error: Exception) -> tuple[str, int]:
    """The database is down: 503, so Twilio tries the fallback URL."""
    return "database unavailable", 503


def init_app(app: Flask) -> None:
    """Register the voice routes (called by the app factory when this module exists)."""
    app.register_blueprint(bp)


def _url(route: str, turn: voice.Turn, **extra: int) -> str:
    query = {"q": turn.ref, "s": turn.page, "n": turn.silences, **extra}
    return f"{bp.url_prefix}/{route}?{urlencode(query)}"


def render(turn: voice.Turn) -> Response:
    """A Turn as TwiML."""
    name, language = VOICES.get(turn.language, VOICES["zh_Hans"])
    response = VoiceResponse()
    if turn.then == "gather":
        action = _url("answer", turn)
        gather = response.gather(input="dtmf", num_digits=1, action=action, method="POST", timeout=GATHER_SECONDS)
        for text in turn.says:
            gather.say(text, voice=name, language=language)
        response.redirect(action, method="POST")  # no key pressed: the same URL without Digits
    else:
        for text in turn.says:
            response.say(text, voice=name, language=language)
        if turn.then == "record":
            response.record(action=_url("recorded", turn), method="POST", max_length=RECORD_MAX_SECONDS,
                            timeout=5, finish_on_key="#", play_beep=True)
            for text in turn.closing:  # reached only when nothing was recorded
                response.say(text, voice=name, language=language)
        response.hangup()
    return Response(str(response), mimetype="application/xml")


def _int_arg(name: str) -> int:
    try:
        return max(0, int(flask_request.args.get(name, "0")))
    except ValueError:
        return 0


@bp.post("")
@twilio_signed
def start() -> Response:
    """A call begins: greeting, then the open question (or a check-in) as a keypad menu."""
    session = request_session()
    turn = voice.start_call(session, call=voice.call_from_form(flask_request.form), now=utcnow(),
                            config=current_app.config)
    session.commit()
    return render(turn)


@bp.post("/answer")
@twilio_signed
def answer() -> Response:
    """A key press on a page; without Digits, the page went unanswered (silence)."""
    session = request_session()
    turn = voice.key_pressed(session, call=voice.call_from_form(flask_request.form),
                             digits=flask_request.form.get("Digits", ""), ref=flask_request.args.get("q", ""),
                             page=_int_arg("s"), silences=_int_arg("n"), now=utcnow(), config=current_app.config)
    session.commit()
    return render(turn)


@bp.post("/recorded")
@twilio_signed
def recorded() -> Response:
    """A recorded message: stored with its URL, flagged for the caseworker."""
    form = flask_request.form
    try:
        duration: int | None = int(form.get("RecordingDuration", ""))
    except ValueError:
        duration = None
    session = request_session()
    turn = voice.recorded(session, call=voice.call_from_form(form), recording_sid=form.get("RecordingSid"),
                          recording_url=form.get("RecordingUrl"), duration=duration,
                          ref=flask_request.args.get("q", ""), page=_int_arg("s"), now=utcnow(),
                          config=current_app.config)
    session.commit()
    return render(turn)


@bp.post("/status")
@twilio_signed
def status() -> tuple[str, int]:
    """A call status callback."""
    form = flask_request.form
    if form.get("CallSid") and form.get("CallStatus"):
        session = request_session()
        voice.call_status(session, call_sid=form["CallSid"], status=form["CallStatus"],
                          duration=form.get("CallDuration"), error_code=form.get("ErrorCode"), now=utcnow())
        session.commit()
    return "", 204
