"""The channel boundary: one small interface to send a text, place a call and parse inbound.

A transport that keeps call recordings (Twilio) also implements `RecordingSource`: the dashboard
plays a voicemail through it, since the provider's recording URL needs the account's credentials.

Adding a provider (a domestic two-way SMS gateway, say) means one module here implementing
`Sender`, chosen in `make_sender`; nothing else in the service knows which provider it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def segment_count(text: str) -> int:
    """SMS segments a text costs: GSM-7 160/153 characters, UCS-2 70/67."""
    if all(ch in GSM7 for ch in text):
        single, multi = 160, 153
    else:
        single, multi = 70, 67
    length = len(text)
    if length <= single:
        return 1
    return -(-length // multi)


@dataclass(frozen=True)
class SendResult:
    """What a provider said about one send."""

    provider_sid: str | None
    status: str  # queued | sent | accepted ...


class SendError(Exception):
    """A provider refused a send; `code` is the provider's error code, `retryable` says what to do."""

    def __init__(self, code: str | None, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class Sender(Protocol):
    """Sends texts and places calls through one provider."""

    name: str

    def send_text(self, to: str, body: str, *, message_id: int) -> SendResult:
        """Send one text; raise SendError when the provider refuses."""
        ...

    def place_call(self, to: str, *, message_id: int) -> SendResult:
        """Place one outbound voice call to our IVR; raise SendError when refused."""
        ...


class RecordingError(Exception):
    """A recording could not be fetched; `code` says why (not_twilio, not_found, not_audio, too_large,
    unreachable, provider)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


class RecordingSource(Protocol):
    """A transport that can fetch the audio of a call recording it made."""

    def fetch_recording(self, url: str) -> tuple[bytes, str]:
        """The recording's audio and its content type; raise RecordingError when it cannot."""
        ...


def fetches_recordings(sender: Any) -> bool:
    """Whether a transport can play recordings back (the console transport has none)."""
    return callable(getattr(sender, "fetch_recording", None))
