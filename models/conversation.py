"""Conversation state per contact, and the answers people gave."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class ConversationState(Base):
    """The open question a contact is expected to answer (one row per contact)."""

    __tablename__ = "conversation_state"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class Answer(Base):
    """A recorded answer: check-in result, parent contact with the child, quarterly update."""

    __tablename__ = "answer"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), index=True)
    question: Mapped[str] = mapped_column(String(40))  # checkin, parent_contact, quarterly ...
    value: Mapped[str] = mapped_column(String(40))
    text: Mapped[str | None] = mapped_column(String(2000))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminder.id"))
    at: Mapped[datetime] = mapped_column(index=True)
