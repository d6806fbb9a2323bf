"""Choose the sender from configuration: Twilio with credentials, the console without."""
from __future__ import annotations

from typing import Any

from bot.channels import Sender
from bot.channels.console import ConsoleSender


def make_sender(config: dict[str, Any]) -> Sender:
    """Twilio when both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are set, else the console transport."""
    if config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN"):
        from bot.channels.twilio_sender import make_twilio_sender

        return make_twilio_sender(config)
    return ConsoleSender()
