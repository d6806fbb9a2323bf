"""Planned contacts: every reminder and check-in is a row with a due time."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.people import Child, Contact


class Reminder(Base):
    """A planned contact with a due time, unique per (contact, kind, period key).

    State: planned → (claimed atomically by one worker) → sent → answered | escalated steps of
    the unanswered ladder (``ladder_step``, ``next_step_at``) → no_response; or skipped /
    cancelled (opted out, parent already reported contact, arrangement ended).
    """

    __tablename__ = "reminder"
    __table_args__ = (
        UniqueConstraint("contact_id", "kind", "period_key"),
        Index("ix_reminder_due", "state", "due_at"),
        Index("ix_reminder_step", "state", "next_step_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    period_key: Mapped[str] = mapped_column(String(60))
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), default="planned")
    ladder_step: Mapped[int] = mapped_column(Integer, default=0)
    next_step_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]

    contact: Mapped[Contact] = relationship()
    child: Mapped[Child | None] = relationship()
