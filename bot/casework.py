"""What caseworkers do with a flag, each step recorded as a FlagEvent with who and when.

    open ──acknowledge──► acknowledged ──record_police_report──► reported ──resolve──► resolved
      │                                                                                │
      └──record_police_report / record_home_visit also acknowledge an open flag        │
      └──resolve (urgent and not reported: a reason why no report was needed) ─────────┤
                                           reopen ◄─────────────────────────────────────┘

Acknowledging (or anything that implies it) stops the escalation alerts: ``next_escalation_at``
is cleared. The report clock (``due_at``) is not changed by any action; it shows whether the
mandatory report (强制报告) was recorded in time. Services take ``session``, the flag, the acting
caseworker and ``now``; nothing here commits.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ACTIVE_FLAG_STATUSES, Caseworker, Flag, FlagEvent

MAX_TEXT = 2000
CLOCK_SKEW = timedelta(minutes=5)


class CaseworkError(ValueError):
    """An action that does not fit the flag's state or lacks what it needs; `code` is an i18n key suffix."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _event(session: Session, flag: Flag, actor: Caseworker, now: datetime, action: str,
           detail: dict[str, Any] | None = None) -> FlagEvent:
    event = FlagEvent(flag=flag, at=now, action=action, actor_id=actor.id, detail=dict(detail or {}))
    session.add(event)
    flag.updated_at = now
    return event


def _clean(text: str | None, limit: int = MAX_TEXT) -> str:
    return (text or "").replace("\x00", "").strip()[:limit]


def _mark_acknowledged(flag: Flag, actor: Caseworker, now: datetime) -> None:
    if flag.acknowledged_at is None:
        flag.acknowledged_at, flag.acknowledged_by_id = now, actor.id
    flag.next_escalation_at = None
    if flag.assignee_id is None:  # whoever acts first on an unassigned flag holds it
        flag.assignee_id = actor.id
    if flag.status == "open":
        flag.status = "acknowledged"


def _require_active(flag: Flag) -> None:
    if flag.status not in ACTIVE_FLAG_STATUSES:
        raise CaseworkError("not_active")


def report_clock(flag: Flag, now: datetime) -> dict[str, Any] | None:
    """The mandatory-report countdown of an urgent flag: due, minutes left (negative: late), met."""
    if flag.due_at is None:
        return None
    reported = flag.police_reported_at is not None
    left = int((flag.due_at - now).total_seconds() // 60)
    met = reported and flag.police_reported_at <= flag.due_at  # type: ignore[operator]
    return {"due_at": flag.due_at, "minutes_left": left, "late": not reported and now > flag.due_at,
            "reported": reported, "met": met, "stopped": reported or flag.status == "resolved"}


def take(session: Session, flag: Flag, actor: Caseworker, now: datetime) -> FlagEvent:
    """Assign the flag to the actor ("I take it")."""
    _require_active(flag)
    previous = flag.assignee_id
    flag.assignee_id = actor.id
    return _event(session, flag, actor, now, "taken", {"previous_assignee_id": previous})


def acknowledge(session: Session, flag: Flag, actor: Caseworker, now: datetime) -> FlagEvent:
    """The caseworker has seen it and is on it; escalation alerts stop."""
    if flag.status != "open":
        raise CaseworkError("not_open")
    _mark_acknowledged(flag, actor, now)
    return _event(session, flag, actor, now, "acknowledged")


def record_police_report(session: Session, flag: Flag, actor: Caseworker, now: datetime, *,
                         reported_at: datetime, station: str, reference: str = "",
                         officer: str = "") -> FlagEvent:
    """Record the mandatory report to the police (强制报告): when, which station, reference, officer."""
    _require_active(flag)
    station, reference, officer = _clean(station, 200), _clean(reference, 100), _clean(officer, 100)
    if not station:
        raise CaseworkError("station_required")
    if reported_at.tzinfo is None:
        raise CaseworkError("time_invalid")
    if reported_at > now + CLOCK_SKEW:
        raise CaseworkError("time_future")
    if reported_at < flag.created_at - timedelta(days=1):
        raise CaseworkError("time_before_flag")
    _mark_acknowledged(flag, actor, now)
    previous = None
    if flag.police_reported_at is not None:
        previous = {"at": flag.police_reported_at.isoformat(), "station": flag.police_station,
                    "reference": flag.police_reference, "officer": flag.police_officer}
    flag.police_reported_at, flag.police_station = reported_at, station
    flag.police_reference, flag.police_officer = reference or None, officer or None
    flag.police_recorded_by_id = actor.id
    flag.status = "reported"
    detail = {"reported_at": reported_at.isoformat(), "station": station, "reference": reference,
              "officer": officer, "on_time": flag.due_at is None or reported_at <= flag.due_at}
    if previous:
        detail["corrects"] = previous
    return _event(session, flag, actor, now, "police_reported", detail)


def record_home_visit(session: Session, flag: Flag, actor: Caseworker, now: datetime, *,
                      visited_at: datetime, note: str) -> FlagEvent:
    """Record a home visit (入户走访) and what was found."""
    _require_active(flag)
    note = _clean(note)
    if not note:
        raise CaseworkError("note_required")
    if visited_at.tzinfo is None:
        raise CaseworkError("time_invalid")
    if visited_at > now + CLOCK_SKEW:
        raise CaseworkError("time_future")
    _mark_acknowledged(flag, actor, now)
    return _event(session, flag, actor, now, "home_visit", {"visited_at": visited_at.isoformat(), "note": note})


def resolve(session: Session, flag: Flag, actor: Caseworker, now: datetime, *, outcome: str,
            no_report_reason: str = "") -> FlagEvent:
    """Close the flag with an outcome; an urgent flag without a police report needs a reason why."""
    _require_active(flag)
    outcome, no_report_reason = _clean(outcome), _clean(no_report_reason)
    if not outcome:
        raise CaseworkError("outcome_required")
    if flag.severity == "urgent" and flag.police_reported_at is None and not no_report_reason:
        raise CaseworkError("no_report_reason_required")
    _mark_acknowledged(flag, actor, now)
    flag.status, flag.resolved_at, flag.outcome = "resolved", now, outcome
    detail: dict[str, Any] = {"outcome": outcome}
    if no_report_reason:
        detail["no_report_reason"] = no_report_reason
    return _event(session, flag, actor, now, "resolved", detail)


def reopen(session: Session, flag: Flag, actor: Caseworker, now: datetime, *, reason: str) -> FlagEvent:
    """Open a resolved flag again (at most one active flag per subject and category)."""
    if flag.status != "resolved":
        raise CaseworkError("not_resolved")
    reason = _clean(reason)
    if not reason:
        raise CaseworkError("reason_required")
    other = session.scalars(select(Flag.id).where(
        Flag.subject_key == flag.subject_key, Flag.category == flag.category,
        Flag.status.in_(ACTIVE_FLAG_STATUSES), Flag.id != flag.id)).first()
    if other is not None:
        raise CaseworkError("already_active")
    flag.status = "reported" if flag.police_reported_at is not None else (
        "acknowledged" if flag.acknowledged_at is not None else "open")
    flag.resolved_at = None
    return _event(session, flag, actor, now, "reopened", {"reason": reason, "previous_outcome": flag.outcome})


ACTIONS = ("take", "acknowledge", "police", "visit", "resolve", "reopen")
