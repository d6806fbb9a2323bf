"""Console transport: nothing leaves the machine; the outbox row is the record."""
from __future__ import annotations

import logging

from bot.channels import SendResult
from bot.phones import mask_phone

log = logging.getLogger("xiangban.console")


class ConsoleSender:
    """Records sends in the log; used without Twilio credentials (development, demo, tests)."""

    name = "console"

    def send_text(self, to: str, body: str, *, message_id: int) -> SendResult:
        """Log the text and report it sent."""
        log.info("SMS to %s (message %s): %s", mask_phone(to), message_id, body)
        return SendResult(provider_sid=f"CONSOLE-SM-{message_id}", status="sent")

    def place_call(self, to: str, *, message_id: int) -> SendResult:
        """Log the call and report it placed."""
        log.info("CALL to %s (message %s)", mask_phone(to), message_id)
        return SendResult(provider_sid=f"CONSOLE-CA-{message_id}", status="sent")
