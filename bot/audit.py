"""The audit log: who saw or did what to which record, when, from where (PIPL accountability).

Every view of a child's record, every export and every action on the dashboard writes one
``AuditEvent``. Nothing here commits: the caller commits with the work it records.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models import AuditEvent, Caseworker


def audit(session: Session, actor: Caseworker | int | None, action: str, object_type: str | None = None,
          object_id: int | None = None, township_id: int | None = None, detail: dict[str, Any] | None = None,
          ip: str | None = None, *, now: datetime | None = None) -> AuditEvent:
    """Record one audit event (added to the session, not committed); pass `now` from the edge."""
    if now is None:
        from bot.clock import utcnow

        now = utcnow()
    actor_id = actor.id if isinstance(actor, Caseworker) else actor
    event = AuditEvent(at=now, actor_id=actor_id, action=action[:50], object_type=object_type,
                       object_id=object_id, township_id=township_id, ip=(ip or None) and ip[:64],
                       detail=dict(detail or {}))
    session.add(event)
    return event
