"""Raising flags: one active flag per child and category, urgent ones on the report clock."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.triage import SEVERITY_RANK
from models import ACTIVE_FLAG_STATUSES, CATEGORY_SEVERITY, Child, Contact, Flag, FlagEvent, Message


def subject_key(child: Child | None, contact: Contact | None) -> str:
    """What a flag is about: the child, or for an unknown sender the contact."""
    if child is not None:
        return f"child:{child.id}"
    if contact is not None:
        return f"contact:{contact.id}"
    return "none"


def raise_flag(session: Session, *, category: str, now: datetime, child: Child | None = None,
               contact: Contact | None = None, message: Message | None = None, severity: str | None = None,
               evidence: Sequence[dict[str, Any]] = (), summary: str = "", report_minutes: int = 60,
               detail: dict[str, Any] | None = None) -> tuple[Flag, bool]:
    """Open a flag, or add this occurrence to the active one; returns (flag, created)."""
    severity = severity or CATEGORY_SEVERITY.get(category, "normal")
    key = subject_key(child, contact)
    existing = session.scalars(
        select(Flag).where(Flag.subject_key == key, Flag.category == category,
                           Flag.status.in_(ACTIVE_FLAG_STATUSES))
    ).first()
    event_detail = {"severity": severity, "summary": summary[:500], **(detail or {})}
    if existing is not None:
        existing.occurrences += 1
        existing.updated_at = now
        if SEVERITY_RANK[severity] > SEVERITY_RANK[existing.severity]:
            existing.severity = severity
            if severity == "urgent":
                existing.due_at = now + timedelta(minutes=report_minutes)
                existing.next_escalation_at = now
        if evidence:
            existing.evidence = [*existing.evidence, *evidence][:50]
        session.add(FlagEvent(flag=existing, at=now, action="repeated", message_id=message.id if message else None,
                              detail=event_detail))
        return existing, False
    township_id = child.township_id if child is not None else None
    flag = Flag(subject_key=key, child_id=child.id if child else None, contact_id=contact.id if contact else None,
                message_id=message.id if message else None, township_id=township_id, severity=severity,
                category=category, status="open", summary=summary[:500] or None, evidence=list(evidence),
                occurrences=1, created_at=now, updated_at=now, escalation_level=0)
    if severity == "urgent":
        flag.due_at = now + timedelta(minutes=report_minutes)
        flag.next_escalation_at = now  # the caseworker is alerted on the spot, whatever the hour
    session.add(flag)
    session.add(FlagEvent(flag=flag, at=now, action="raised", message_id=message.id if message else None,
                          detail=event_detail))
    session.flush()
    return flag, True
