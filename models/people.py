"""Children, the people around them, and the guardianship arrangement between them."""
from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.place import Township, Village

ROLES = ("father", "mother", "guardian", "helper")
PARENT_ROLES = ("father", "mother")
GUARDIANSHIP_TYPES = ("grandparents", "relatives", "unattended", "one_parent_incapable")
CHANNELS = ("sms", "voice", "both")


class Child(Base):
    """One record per child (一人一档)."""

    __tablename__ = "child"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Roster identity: "id:<ID number>" or "nbtv:<name>|<birth>|<township>|<village>" (ROSTER.md).
    identity_key: Mapped[str] = mapped_column(String(300), unique=True)
    roster_fingerprint: Mapped[str | None] = mapped_column(String(64))  # what the last import said
    name: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str | None] = mapped_column(String(10))
    birth_date: Mapped[date] = mapped_column(Date)
    id_number: Mapped[str | None] = mapped_column(String(18), index=True)  # not unique: rosters carry typos
    has_hukou: Mapped[bool] = mapped_column(Boolean, default=True)
    school_status: Mapped[str | None] = mapped_column(String(20))
    school: Mapped[str | None] = mapped_column(String(200))
    township_id: Mapped[int] = mapped_column(ForeignKey("township.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    guardianship_type: Mapped[str] = mapped_column(String(30), index=True)
    guardianship_quality: Mapped[str | None] = mapped_column(String(10))
    special_circumstances: Mapped[str | None] = mapped_column(Text)
    special_flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A caseworker may override the computed risk level, with a reason (audit-logged).
    risk_level_override: Mapped[int | None] = mapped_column(Integer)
    risk_override_reason: Mapped[str | None] = mapped_column(Text)
    enrolled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    township: Mapped[Township] = relationship()
    village: Mapped[Village] = relationship()
    links: Mapped[list[ChildContact]] = relationship(back_populates="child", cascade="all, delete-orphan")
    arrangements: Mapped[list[Arrangement]] = relationship(
        back_populates="child", order_by="Arrangement.id", cascade="all, delete-orphan"
    )

    def contacts_with_role(self, *roles: str) -> list[Contact]:
        """The people linked to this child in any of the given roles."""
        return [link.contact for link in self.links if link.role in roles]

    def current_arrangement(self) -> Arrangement | None:
        """The newest guardianship arrangement that has not ended."""
        live = [a for a in self.arrangements if a.status != "ended"]
        return live[-1] if live else None

    @property
    def given_name(self) -> str:
        """The name without the (one-character) surname, used in texts instead of the full name."""
        return self.name[1:] if len(self.name) >= 2 else self.name


class Contact(Base):
    """A person reachable by phone: one row per phone number (siblings share their parents)."""

    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)  # E.164
    name: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(10), default="zh_Hans")
    channel: Mapped[str] = mapped_column(String(10), default="sms")
    workplace: Mapped[str | None] = mapped_column(String(200))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None]
    invalid_number: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str | None] = mapped_column(String(50))
    quiet_start: Mapped[time | None] = mapped_column(Time)  # start of the allowed window (default 08:00)
    quiet_end: Mapped[time | None] = mapped_column(Time)  # end of the allowed window (default 21:00)
    created_at: Mapped[datetime]

    links: Mapped[list[ChildContact]] = relationship(back_populates="contact")

    @property
    def reachable(self) -> bool:
        """Whether anything may be sent to this contact at all."""
        return not self.opted_out and not self.invalid_number


class ChildContact(Base):
    """A person's role for one child (father, mother, entrusted guardian, paired helper)."""

    __tablename__ = "child_contact"
    __table_args__ = (UniqueConstraint("child_id", "contact_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    relationship_label: Mapped[str | None] = mapped_column(String(20))  # 奶奶, 外公 ...

    child: Mapped[Child] = relationship(back_populates="links")
    contact: Mapped[Contact] = relationship(back_populates="links")


class Arrangement(Base):
    """A two-party guardianship confirmation (委托监护责任确认书 made digital).

    Status: proposed → parent_confirmed | guardian_confirmed → confirmed; either side saying no
    makes it declined; a new guardian or a new arrangement makes the old one ended.
    """

    __tablename__ = "arrangement"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    parent_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    guardian_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    guardian_relationship: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="proposed", index=True)
    parent_confirmed_at: Mapped[datetime | None]
    guardian_confirmed_at: Mapped[datetime | None]
    parent_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    guardian_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    declined_at: Mapped[datetime | None]
    declined_by: Mapped[str | None] = mapped_column(String(20))  # parent | guardian
    confirmed_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    child: Mapped[Child] = relationship(back_populates="arrangements")
    parent: Mapped[Contact | None] = relationship(foreign_keys=[parent_contact_id])
    guardian: Mapped[Contact | None] = relationship(foreign_keys=[guardian_contact_id])
