"""Reconciling outbound messages whose fate is unknown, from what the provider says.

A worker that dies between handing a message to the provider and recording the answer leaves the
row in ``sending``; after ``STUCK_AFTER`` the tick marks it ``unknown`` (bot.outbox). Such a
message is never re-sent blindly. Each tick asks the provider about it (``fetch_status``):

- the provider has it → we take its SID and status (``sent``, ``delivered``, ``failed`` ...); the
  status callbacks move it on from there;
- the provider affirms it has no such message (looked up by SID, or without a SID by listing the
  messages to that number created after the claim) → it never left, so it is queued again;
- the provider cannot be asked (no lookup, network trouble) → it stays ``unknown``, where a
  caseworker sees it; after ``GIVE_UP_AFTER`` it is marked ``failed`` with that reason and a
  caseworker decides.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Message

log = logging.getLogger("xiangban.reconcile")
GIVE_UP_AFTER = timedelta(days=2)
BATCH = 200


@dataclass(frozen=True)
class ProviderStatus:
    """What the provider knows about one message."""

    sid: str
    status: str  # the provider's status: queued, accepted, sending, sent, delivered, undelivered, failed ...
    error_code: str | None = None


class LookupUnavailable(Exception):
    """The provider could not be asked; try again on a later tick."""


# fetch_status(message) -> ProviderStatus when the provider has it, None when it affirms it has
# no such message; raises LookupUnavailable (or anything else) when it cannot tell.
FetchStatus = Callable[[Message], "ProviderStatus | None"]

# Provider statuses mapped onto ours: everything the provider holds counts as sent at least.
_ADOPT = {"queued": "sent", "accepted": "sent", "scheduled": "sent", "sending": "sent", "sent": "sent",
          "delivered": "delivered", "read": "delivered", "received": "delivered", "undelivered": "undelivered",
          "failed": "failed", "canceled": "failed", "completed": "delivered", "in-progress": "sent",
          "ringing": "sent", "initiated": "sent", "busy": "failed", "no-answer": "failed"}


@dataclass
class ReconcileReport:
    """What one pass did."""

    adopted: int = 0
    requeued: int = 0
    unresolved: int = 0
    given_up: int = 0


def reconcile_unknown(session: Session, fetch_status: FetchStatus | None, now: datetime, *,
                      limit: int = BATCH) -> ReconcileReport:
    """Settle outbound messages in status ``unknown`` from the provider's answer; commits per message."""
    report = ReconcileReport()
    messages = list(session.scalars(select(Message).where(
        Message.direction == "outbound", Message.status == "unknown").order_by(Message.id).limit(limit)).all())
    for message in messages:
        if fetch_status is None:
            found: ProviderStatus | None | object = _UNAVAILABLE
        else:
            try:
                found = fetch_status(message)
            except Exception as error:  # the provider cannot tell now; never guess
                log.warning("could not look up message %s at the provider: %s", message.id, error)
                found = _UNAVAILABLE
        if found is _UNAVAILABLE:
            since = message.claimed_at or message.updated_at or message.created_at
            if since is not None and now - since > GIVE_UP_AFTER:
                message.status, message.updated_at = "failed", now
                message.error_message = "fate unknown and the provider could not be asked; not re-sent"
                report.given_up += 1
                session.commit()
            else:
                report.unresolved += 1
            continue
        if found is None:
            # The provider affirms it never accepted this message: it did not leave, send it now.
            message.status, message.next_attempt_at, message.updated_at = "queued", None, now
            message.error_message = "reconciled: the provider has no such message; queued again"
            report.requeued += 1
        else:
            assert isinstance(found, ProviderStatus)
            owner = session.scalars(select(Message.id).where(Message.provider_sid == found.sid,
                                                             Message.id != message.id)).first()
            if owner is not None:  # that provider message is another row's: ours stays for a person
                report.unresolved += 1
                continue
            message.provider_sid = found.sid
            message.status = _ADOPT.get(found.status.lower(), "sent")
            message.error_code = found.error_code or message.error_code
            message.error_message = f"reconciled from provider status {found.status}"
            message.sent_at = message.sent_at or message.claimed_at or now
            if message.status == "delivered":
                message.delivered_at = message.delivered_at or now
            message.updated_at = now
            report.adopted += 1
        session.commit()
    return report


_UNAVAILABLE = object()


def provider_lookup(sender: object) -> FetchStatus | None:
    """A fetch_status for a sender that can look messages up (Twilio); None for one that cannot."""
    lookup = getattr(sender, "lookup", None)
    if lookup is None:
        return None

    def fetch_status(message: Message) -> ProviderStatus | None:
        found = lookup(provider_sid=message.provider_sid, to=message.to_number or "", body=message.body or "",
                       since=message.claimed_at, channel=message.channel)
        return None if found is None else ProviderStatus(*found)

    return fetch_status
