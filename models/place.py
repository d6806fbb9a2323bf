"""Townships and villages: the unit of access for caseworkers."""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base


class Township(Base):
    """A township (乡镇/街道); caseworkers are scoped to townships, supervisors to a county."""

    __tablename__ = "township"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    county: Mapped[str | None] = mapped_column(String(100), index=True)
    # Per-township overrides of cadence and ladder durations (see bot.config.DEFAULT_CADENCE).
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    villages: Mapped[list[Village]] = relationship(back_populates="township")


class Village(Base):
    """A village (村/社区) inside a township."""

    __tablename__ = "village"
    __table_args__ = (UniqueConstraint("township_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    township_id: Mapped[int] = mapped_column(ForeignKey("township.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))

    township: Mapped[Township] = relationship(back_populates="villages")
