"""Every message in or out, SMS or voice: the outbox and the conversation record."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.people import Child, Contact

# Outbound statuses in lifecycle order; a status never moves to an earlier rank.
STATUS_RANK: dict[str, int] = {
    "queued": 0,
    "sending": 1,
    "unknown": 2,
    "accepted": 2,
    "scheduled": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "received": 4,
    "read": 5,
}
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "received", "read"})


class Message(Base):
    """A message, inbound or outbound, text or voice.

    Inbound messages are stored with status ``received`` before anything answers them; the
    provider's MessageSid (or CallSid) is unique, so a webhook delivered twice is stored once.

    Outbound lifecycle (the outbox)::

        queued ──claim──► sending ──provider accepted──► sent ──callback──► delivered
           ▲                 │                              └──callback──► undelivered / failed
           └──retry (429/5xx, backoff: next_attempt_at)     │
                             └──error 21610/21211/21614──► failed (contact opted out / invalid)
                             └──worker died mid-send────► unknown (reconciled from provider, never re-sent blindly)

    A row is written as ``queued`` and committed before any provider call; a dispatcher claims it
    atomically (``queued`` → ``sending``) so nothing is sent twice. Status callbacks only move a
    message forward (STATUS_RANK): a late ``sent`` never overwrites ``delivered``.
    """

    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_outbox", "direction", "status", "next_attempt_at"),
        Index("ix_message_contact_created", "contact_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(10))  # inbound | outbound
    channel: Mapped[str] = mapped_column(String(10), default="sms")  # sms | voice
    from_number: Mapped[str | None] = mapped_column(String(32))
    to_number: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(50), default="reply")  # template key, or "inbound"
    template_vars: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    language: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    urgent: Mapped[bool] = mapped_column(default=False)  # bypasses quiet hours (a child in danger)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), index=True)
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"), index=True)
    reminder_id: Mapped[int | None] = mapped_column(Integer, index=True)
    recording_url: Mapped[str | None] = mapped_column(Text)
    triage: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # severity, category, evidence spans
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]

    contact: Mapped[Contact | None] = relationship(foreign_keys=[contact_id])
    child: Mapped[Child | None] = relationship(foreign_keys=[child_id])
