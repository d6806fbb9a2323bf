"""Enrolling a household for outreach: the arrangement to confirm and the first planned contacts."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.reminders import compute_period_key, plan_reminders
from models import Arrangement, Child, Contact

PARENTS = ("father", "mother")
QUARTER_DAYS = 91


def migrant_parents(child: Child) -> list[Contact]:
    """The child's parents who can be texted (father first)."""
    order = {"father": 0, "mother": 1}
    links = sorted((link for link in child.links if link.role in PARENTS), key=lambda link: order[link.role])
    return [link.contact for link in links]


def first_checkin_time(now: datetime, config: dict[str, Any]) -> datetime:
    """When a new household's rhythm starts: one check-in period after enrollment, at the sending hour."""
    zone = ZoneInfo(config["TIMEZONE"])
    cadence = config["CADENCE"]
    day = now.astimezone(zone).date() + timedelta(days=cadence["checkin_days"])
    return datetime.combine(day, time(cadence["send_hour"]), tzinfo=zone)


def confirmation_rows(*, arrangement_id: int, child_id: int, parent_id: int | None, guardian_id: int | None,
                      now: datetime) -> list[dict[str, Any]]:
    """Planned confirmations of one arrangement: the parent's and the guardian's."""
    rows = []
    detail = {"arrangement_id": arrangement_id}
    if parent_id is not None and guardian_id is not None:
        rows.append(_row(parent_id, child_id, "confirm_parent", f"arr{arrangement_id}", now, now, detail))
    if guardian_id is not None:
        rows.append(_row(guardian_id, child_id, "confirm_guardian", f"arr{arrangement_id}", now, now, detail))
    return rows


def enrollment_rows(*, child_id: int, links: Iterable[tuple[int, str]], now: datetime,
                    first_checkin_at: datetime) -> list[dict[str, Any]]:
    """Planned contacts of a newly enrolled child: welcome once per person, then the rhythm."""
    rows = []
    quarter_at = first_checkin_at + timedelta(days=QUARTER_DAYS - 7)
    for contact_id, role in links:
        rows.append(_row(contact_id, None, "welcome", "once", now, now))
        if role == "guardian":
            rows.append(_row(contact_id, child_id, "checkin", None, first_checkin_at, now))
        elif role in PARENTS:
            rows.append(_row(contact_id, child_id, "parent_contact", None, first_checkin_at, now))
            rows.append(_row(contact_id, None, "quarterly", None, quarter_at, now))
        elif role == "helper":
            rows.append(_row(contact_id, child_id, "home_visit", None, first_checkin_at, now))
    return rows


def _row(contact_id: int, child_id: int | None, kind: str, period_key: str | None, due_at: datetime,
         now: datetime, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"contact_id": contact_id, "child_id": child_id, "kind": kind,
            "period_key": period_key or compute_period_key(kind, due_at, child_id), "due_at": due_at,
            "state": "planned", "ladder_step": 0, "detail": detail or {}, "created_at": now}


def start_arrangement(session: Session, *, child: Child, now: datetime, parent: Contact | None = None) -> Arrangement:
    """End the current arrangement and propose a new one; plan both confirmations now."""
    guardian_link = next((link for link in child.links if link.role == "guardian"), None)
    parents = migrant_parents(child)
    parent = parent or (parents[0] if parents else None)
    for old in child.arrangements:
        if old.status != "ended":
            old.status, old.ended_at = "ended", now
    arrangement = Arrangement(child=child, parent_contact_id=parent.id if parent else None,
                              guardian_contact_id=guardian_link.contact_id if guardian_link else None,
                              guardian_relationship=guardian_link.relationship_label if guardian_link else None,
                              status="proposed", created_at=now, history=[])
    session.add(arrangement)
    session.flush()
    plan_reminders(session, confirmation_rows(arrangement_id=arrangement.id, child_id=child.id,
                                              parent_id=parent.id if parent else None,
                                              guardian_id=guardian_link.contact_id if guardian_link else None,
                                              now=now))
    return arrangement


def enroll_child(session: Session, *, child: Child, now: datetime, first_checkin_at: datetime) -> None:
    """Enroll a new child: welcome everyone once, propose the arrangement, plan the rhythm."""
    child.enrolled_at = now
    rows = enrollment_rows(child_id=child.id, links=[(l.contact_id, l.role) for l in child.links], now=now,
                           first_checkin_at=first_checkin_at)
    # Planned in the order people should hear them: welcome, the confirmation, then the rhythm.
    plan_reminders(session, [row for row in rows if row["kind"] == "welcome"])
    start_arrangement(session, child=child, now=now)
    plan_reminders(session, [row for row in rows if row["kind"] != "welcome"])
    if child.guardianship_type == "unattended":
        flag_unattended(session, child=child, now=now)


def flag_unattended(session: Session, *, child: Child, now: datetime) -> None:
    """A child with nobody caring for them is an urgent case for the caseworker (无人监护)."""
    from bot.flags import raise_flag

    raise_flag(session, category="unattended", now=now, child=child, severity="urgent", report_minutes=60,
               detail={"source": "roster"})
