"""The production app plus one bench-only route, ``POST /bench/bare``: an empty TwiML answer with no
database and no signature check, the ceiling of Flask + gunicorn on this machine. Never shipped:
gunicorn loads it only from the benches (``gunicorn --pythonpath bench bench_app:app``)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Response  # noqa: E402
from twilio.twiml.messaging_response import MessagingResponse  # noqa: E402

from bot import create_app  # noqa: E402

app = create_app()


@app.post("/bench/bare")
def bare() -> Response:
    """What the SMS webhook answers, without doing anything."""
    return Response(str(MessagingResponse()), mimetype="application/xml")


# The dashboard checks a CSRF token on every POST outside /twilio/; this bench route is no form.
app.config["WTF_CSRF_ENABLED"] = False
