"""Caseworker accounts, their townships, and the audit log."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.place import Township

ACCOUNT_ROLES = ("caseworker", "supervisor", "admin")

caseworker_township = Table(
    "caseworker_township",
    Base.metadata,
    Column("caseworker_id", ForeignKey("caseworker.id"), primary_key=True),
    Column("township_id", ForeignKey("township.id"), primary_key=True),
)


class Caseworker(Base):
    """A dashboard user: caseworker (own townships), supervisor (a county) or admin."""

    __tablename__ = "caseworker"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="caseworker")
    county: Mapped[str | None] = mapped_column(String(100))  # a supervisor's county
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164, for urgent alerts
    language: Mapped[str] = mapped_column(String(10), default="zh_Hans")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]

    townships: Mapped[list[Township]] = relationship(secondary=caseworker_township)


class AuditEvent(Base):
    """Who did or saw what, when: every view or export of a child's record and every action."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("caseworker.id"), index=True)
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str | None] = mapped_column(String(30))
    object_id: Mapped[int | None] = mapped_column(Integer)
    township_id: Mapped[int | None] = mapped_column(ForeignKey("township.id"))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
