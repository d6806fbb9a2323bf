"""Twilio transport: the real twilio Client for texts and calls, and the audio of call recordings."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import requests

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.channels import RecordingError, SendError, SendResult

# Error codes by meaning (https://www.twilio.com/docs/api/errors).
OPTED_OUT = {"21610"}
INVALID_NUMBER = {"21211", "21614", "21217", "21401", "21407", "21408", "21612"}
RETRYABLE = {"20429", "20500", "20503", "30001", "30008"}
REQUEST_TIMEOUT = 30.0  # seconds; a hung connection must not hang the worker (the outcome is then "unknown")
MAX_RECORDING_BYTES = 32 * 1024 * 1024  # a 120 s voicemail is about 1 MB as mp3
MEDIA_SUFFIX = re.compile(r"\.(mp3|wav|json)$", re.IGNORECASE)


class _RedirectingHttpClient(TwilioHttpClient):
    """Sends every request to another base URL (a local Prism mock of Twilio's API in tests)."""

    def __init__(self, base: str, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self._base = urlsplit(base)

    def redirect(self, url: str) -> str:
        """The same URL on the other base."""
        return urlsplit(url)._replace(scheme=self._base.scheme, netloc=self._base.netloc).geturl()

    def request(self, method, url, params=None, data=None, headers=None, auth=None,  # type: ignore[no-untyped-def]
                timeout=None, allow_redirects=False):
        url = self.redirect(url)
        return super().request(method, url, params=params, data=data, headers=headers, auth=auth,
                               timeout=timeout, allow_redirects=allow_redirects)


def recording_media_url(url: str) -> str:
    """The .mp3 form of a Twilio RecordingUrl; RecordingError unless it is one (our credentials go
    with the request, so they must go nowhere but Twilio's API over HTTPS)."""
    parts = urlsplit((url or "").strip())
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not (host == "api.twilio.com" or host.endswith(".twilio.com")) \
            or parts.username or parts.password or parts.port not in (None, 443) or "/Recordings/" not in parts.path:
        raise RecordingError("not_twilio", "not a Twilio recording URL")
    return urlunsplit(("https", host, MEDIA_SUFFIX.sub("", parts.path) + ".mp3", "", ""))


def classify_error(error: TwilioRestException) -> SendError:
    """Turn a Twilio error into a SendError with the right retry decision."""
    code = str(error.code) if error.code is not None else None
    retryable = code in RETRYABLE or error.status == 429 or error.status >= 500
    return SendError(code, error.msg or str(error), retryable=retryable)


class TwilioSender:
    """Sends through Twilio's REST API with a status callback to /twilio/status."""

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, *, from_number: str | None,
                 messaging_service_sid: str | None, public_url: str | None, api_base: str | None = None) -> None:
        http_client = (_RedirectingHttpClient(api_base, timeout=REQUEST_TIMEOUT) if api_base
                       else TwilioHttpClient(timeout=REQUEST_TIMEOUT))
        self.client = Client(account_sid, auth_token, http_client=http_client)
        self._auth = (account_sid, auth_token)
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.public_url = public_url

    def _callback(self, path: str) -> str | None:
        return f"{self.public_url}{path}" if self.public_url else None

    def send_text(self, to: str, body: str, *, message_id: int) -> SendResult:
        """Create a Message with our status callback."""
        kwargs: dict[str, str] = {"to": to, "body": body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        elif self.from_number:
            kwargs["from_"] = self.from_number
        else:
            raise SendError(None, "neither TWILIO_MESSAGING_SERVICE_SID nor TWILIO_FROM_NUMBER is set",
                            retryable=False)
        callback = self._callback("/twilio/status")
        if callback:
            kwargs["status_callback"] = callback
        try:
            created = self.client.messages.create(**kwargs)
        except TwilioRestException as error:
            raise classify_error(error) from error
        return SendResult(provider_sid=created.sid, status=created.status or "queued")

    def place_call(self, to: str, *, message_id: int) -> SendResult:
        """Create a Call that fetches our IVR from /twilio/voice."""
        if not self.from_number:
            raise SendError(None, "TWILIO_FROM_NUMBER is needed to place calls", retryable=False)
        if not self.public_url:
            raise SendError(None, "PUBLIC_URL is needed to place calls", retryable=False)
        try:
            created = self.client.calls.create(
                to=to, from_=self.from_number, url=f"{self.public_url}/twilio/voice",
                status_callback=f"{self.public_url}/twilio/voice/status",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                method="POST", status_callback_method="POST",
            )
        except TwilioRestException as error:
            raise classify_error(error) from error
        return SendResult(provider_sid=created.sid, status=created.status or "queued")

    def fetch_recording(self, url: str) -> tuple[bytes, str]:
        """A call recording's audio (the .mp3 form) and its content type, with the account's credentials.

        Through the twilio client's http_client (its pooled session, proxy and timeout; the API base
        of tests), but not its ``request``, which decodes bodies as text. A redirect to a media host
        is followed without the credentials (requests drops them on another host)."""
        media = recording_media_url(url)
        http = self.client.http_client
        if isinstance(http, _RedirectingHttpClient):
            media = http.redirect(media)
        session = getattr(http, "session", None) or requests.Session()
        try:
            response = session.get(media, auth=self._auth, timeout=getattr(http, "timeout", None) or REQUEST_TIMEOUT,
                                   headers={"Accept": "audio/mpeg"}, proxies=getattr(http, "proxy", None) or None,
                                   allow_redirects=True, stream=True)
        except requests.RequestException as error:
            raise RecordingError("unreachable", str(error)) from error
        with response:
            if response.status_code == 404:
                raise RecordingError("not_found", "Twilio has no such recording")
            if response.status_code >= 400:
                raise RecordingError("provider", f"Twilio answered {response.status_code}")
            content_type = (response.headers.get("Content-Type") or "audio/mpeg").split(";")[0].strip().lower()
            if not content_type.startswith("audio/"):
                raise RecordingError("not_audio", f"Twilio sent {content_type}")
            chunks, size = [], 0
            try:
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > MAX_RECORDING_BYTES:
                        raise RecordingError("too_large", f"more than {MAX_RECORDING_BYTES} bytes")
                    chunks.append(chunk)
            except requests.RequestException as error:
                raise RecordingError("unreachable", str(error)) from error
        return b"".join(chunks), content_type

    def lookup(self, *, provider_sid: str | None, to: str, body: str, since: datetime | None,
               channel: str = "sms") -> tuple[str, str, str | None] | None:
        """What Twilio knows of a message whose send outcome we lost: (sid, status, error code), or None
        when Twilio affirms it has none. Without a SID, the messages to that number created after the
        claim are listed and matched by body. Raises when Twilio cannot be asked."""
        resource = self.client.calls if channel == "voice" else self.client.messages
        if provider_sid:
            try:
                found = resource(provider_sid).fetch()
            except TwilioRestException as error:
                if error.status == 404:
                    return None
                raise
            return found.sid, str(found.status), _code(found)
        after = (since - timedelta(minutes=2)) if since else None
        for item in resource.list(to=to, limit=100):
            created = getattr(item, "date_created", None)
            if after is not None and created is not None and created < after:
                continue
            if channel != "voice" and (item.body or "") != body:
                continue
            return item.sid, str(item.status), _code(item)
        return None


def _code(item: object) -> str | None:
    code = getattr(item, "error_code", None)
    return str(code) if code else None


def make_twilio_sender(config: dict) -> TwilioSender:  # type: ignore[type-arg]
    """A TwilioSender from the app configuration."""
    return TwilioSender(
        config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
        from_number=config.get("TWILIO_FROM_NUMBER"),
        messaging_service_sid=config.get("TWILIO_MESSAGING_SERVICE_SID"),
        public_url=config.get("PUBLIC_URL"), api_base=config.get("TWILIO_API_BASE"),
    )
