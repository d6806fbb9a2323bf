"""A provider stand-in for fault tests: every accepted send is journalled durably (fsync) before the
call returns, so a test can tell exactly what "the provider" got even when the worker is SIGKILLed.

Run as a script it is the worker that gets killed: ``python journal_sender.py DB_URL JOURNAL NOW STALL_AT``
dispatches everything due and, after journalling the STALL_AT-th send, stalls before returning it,
so the provider has the message and the outbox does not know yet.
"""
from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.channels import SendResult  # noqa: E402


class JournalSender:
    """Sends by appending to a journal file; looks messages up by reading it back (like Twilio's list)."""

    name = "journal"

    def __init__(self, journal: Path, stall_at: int = 0) -> None:
        self.journal = Path(journal)
        self.stall_at = stall_at

    def _entries(self) -> list[dict]:
        if not self.journal.exists():
            return []
        return [json.loads(line) for line in self.journal.read_text().splitlines() if line.strip()]

    def send_text(self, to: str, body: str, *, message_id: int) -> SendResult:
        sid = f"SMJ{message_id:030d}"
        with self.journal.open("a") as handle:
            handle.write(json.dumps({"id": message_id, "sid": sid, "to": to, "body": body}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self.stall_at and len(self._entries()) >= self.stall_at:
            time.sleep(60)  # killed here: the provider has it, the outbox does not know
        return SendResult(provider_sid=sid, status="sent")

    def place_call(self, to: str, *, message_id: int) -> SendResult:
        return self.send_text(to, "<call>", message_id=message_id)

    def lookup(self, *, provider_sid: str | None, to: str, body: str, since: datetime | None,
               channel: str = "sms") -> tuple[str, str, str | None] | None:
        for entry in self._entries():
            if (provider_sid and entry["sid"] == provider_sid) or (entry["to"] == to and entry["body"] == body):
                return entry["sid"], "sent", None
        return None


def main() -> None:
    from bot.config import load_config
    from bot.db import Database
    from bot.schedule import run_due

    url, journal, now_text, stall_at = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    config = load_config({"DATABASE_URL": url, "SECRET_KEY": "x", "SEND_RATE_PER_SECOND": 100000.0})
    run_due(Database(url), JournalSender(journal, stall_at), now=datetime.fromisoformat(now_text), config=config,
            dispatch_limit=1000)


if __name__ == "__main__":
    main()
