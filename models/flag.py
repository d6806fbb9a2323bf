"""Flags: what a caseworker must look at, with the mandatory-report clock."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.triage import CATEGORY_SEVERITY as TRIAGE_CATEGORY_SEVERITY
from models.base import Base
from models.message import Message
from models.people import Child, Contact

SEVERITIES = ("urgent", "high", "normal")
# The content categories come from triage; the rest are raised by the service itself.
CATEGORY_SEVERITY: dict[str, str] = {
    **TRIAGE_CATEGORY_SEVERITY,
    "no_response": "high",
    "opted_out": "high",
    "invalid_number": "high",
    "voicemail": "high",
    "undeliverable": "high",  # a text failed on every retry: the family may be unreachable
}
FLAG_STATUSES = ("open", "acknowledged", "reported", "resolved")
ACTIVE_FLAG_STATUSES = ("open", "acknowledged", "reported")


class Flag(Base):
    """Something a caseworker must act on.

    Status: open → acknowledged → reported (the police report is recorded) → resolved; a resolved
    flag may be reopened. At most one active flag per (subject, category): a repeated report adds
    an occurrence to it. ``subject_key`` is ``child:<id>`` or, for an unknown sender, ``contact:<id>``.
    An urgent flag is due (``due_at``) within the mandatory-report window; ``escalation_level``
    counts the alerts sent about it.
    """

    __tablename__ = "flag"
    __table_args__ = (
        Index(
            "uq_flag_active_subject_category",
            "subject_key",
            "category",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_key: Mapped[str] = mapped_column(String(40))
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    township_id: Mapped[int | None] = mapped_column(ForeignKey("township.id"), index=True)
    severity: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    summary: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("caseworker.id"))
    notes: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("caseworker.id"))
    police_reported_at: Mapped[datetime | None]
    police_station: Mapped[str | None] = mapped_column(String(200))
    police_reference: Mapped[str | None] = mapped_column(String(100))
    police_officer: Mapped[str | None] = mapped_column(String(100))
    police_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("caseworker.id"))
    resolved_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(index=True)

    child: Mapped[Child | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    message: Mapped[Message | None] = relationship()
    events: Mapped[list[FlagEvent]] = relationship(
        back_populates="flag", order_by="FlagEvent.id", cascade="all, delete-orphan"
    )

    @property
    def is_active(self) -> bool:
        """Whether the flag still needs work."""
        return self.status in ACTIVE_FLAG_STATUSES


class FlagEvent(Base):
    """One step in a flag's life: raised, repeated, alerted, acknowledged, reported, visited, resolved."""

    __tablename__ = "flag_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flag.id"), index=True)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("caseworker.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    flag: Mapped[Flag] = relationship(back_populates="events")
