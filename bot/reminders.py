"""Planned contacts as rows: period keys and idempotent planning (unique per contact, kind, period)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import Reminder

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
PERIOD_DAYS = {"checkin": "checkin_days", "parent_contact": "parent_contact_days", "quarterly": "quarterly_days",
               "home_visit": "home_visit_days", "confirm_parent": "quarterly_days", "confirm_guardian": "quarterly_days"}


def compute_period_key(kind: str, due_at: datetime, child_id: int | None) -> str:
    """The period a planned contact belongs to: ISO week, fortnight or quarter (local calendar)."""
    day = due_at.astimezone(DEFAULT_ZONE).date()
    suffix = f":c{child_id}" if child_id else ""
    if kind == "quarterly":
        return f"{day.year}Q{(day.month - 1) // 3 + 1}{suffix}"
    year, week, _ = day.isocalendar()
    if kind == "home_visit":
        return f"{year}F{(week - 1) // 2}{suffix}"
    return f"{year}W{week:02d}{suffix}"


def plan_reminders(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert planned contacts, skipping any (contact, kind, period) already planned."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Reminder.__table__).on_conflict_do_nothing(index_elements=["contact_id", "kind", "period_key"])
    session.execute(statement, list(rows))


def plan_reminder(session: Session, *, contact_id: int, child_id: int | None, kind: str, period_key: str | None,
                  due_at: datetime, detail: dict[str, Any] | None = None, now: datetime | None = None) -> None:
    """Plan one contact unless the same (contact, kind, period) is already planned."""
    plan_reminders(session, [{
        "contact_id": contact_id, "child_id": child_id, "kind": kind,
        "period_key": period_key or compute_period_key(kind, due_at, child_id), "due_at": due_at,
        "state": "planned", "ladder_step": 0, "detail": detail or {}, "created_at": now or due_at}])
