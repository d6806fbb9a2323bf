"""Twilio webhook signatures, checked against the URL Twilio used (behind a TLS proxy too)."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator

log = logging.getLogger("xiangban.twilio")


def public_request_url() -> str:
    """The URL as Twilio called it: PUBLIC_URL with the raw (still %-escaped) path and query."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        query = request.environ.get("QUERY_STRING", "")
        raw = request.environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
    if raw.startswith("http://") or raw.startswith("https://"):
        from urllib.parse import urlsplit

        parts = urlsplit(raw)
        raw = parts.path + (f"?{parts.query}" if parts.query else "")
    base = current_app.config.get("PUBLIC_URL") or request.host_url.rstrip("/")
    return base + raw


def signature_is_valid() -> bool:
    """Whether X-Twilio-Signature matches this request."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    validator = RequestValidator(token)
    return validator.validate(public_request_url(), request.form, signature)


def twilio_signed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse (403) any request whose Twilio signature does not validate."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_app.config.get("TWILIO_SKIP_SIGNATURE"):
            return view(*args, **kwargs)
        if not signature_is_valid():
            log.warning("refused a webhook with a bad or missing signature: %s", request.path)
            abort(403)
        return view(*args, **kwargs)

    return wrapper
