"""Risk classes (分类分级, DOMAIN.md): type from who guards the child, level from harm, with reasons.

Type (plan 14): **1** no parent, grandparent or relative guards (unattended, or one parent away and
the other unable); **2** another relative guards; **3** grandparents guard.

Level (1 is the most serious):

1. no guardianship at all: unattended, or an open ``unattended`` / ``missing`` flag;
2. the guardian fails badly, the child cannot live normally: dropped out of school, or an open flag
   of abuse, injury, self-harm or a guardian who lost capacity;
3. neglect with serious harm: guardianship recorded as poor (差), or an open flag of distress or
   bullying;
4. the guardian lacks ability: guardianship only fair (一般), one parent unable to act as guardian,
   a school-age child not enrolled, serious illness, or any other open flag;

no level (None) when none of these holds. The level is the most serious that applies; every fact
that applies is a reason (a message key in ``messages/*/LC_MESSAGES/reports.po``), most serious
first. A caseworker may override the level with a reason: ``set_override`` is the one way to write
``Child.risk_level_override`` (the dashboard's child edit page and code alike), one ``risk.override``
audit event per change.

Guardian evaluation (监护评估) good / fair / poor: the recorded guardianship quality, made worse
when the facts say so (level 1–2 → poor, level 3 → at least fair); unknown quality with no level
is ``None``.

``children --json`` and the dashboard lists call ``assess`` per child (with the open flags loaded
in one query); it is the one definition of the levels.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models import Child

TYPE_BY_GUARDIANSHIP = {"unattended": 1, "one_parent_incapable": 1, "relatives": 2, "grandparents": 3}
LEVELS = (1, 2, 3, 4)
EVALUATIONS = ("good", "fair", "poor")
FLAG_LEVEL = {"unattended": 1, "missing": 1, "abuse": 2, "injury": 2, "self_harm": 2, "guardian_incapable": 2,
              "dropout": 2, "distress": 3, "bullying": 3}
OTHER_FLAG_LEVEL = 4


def risk_type(child: Child) -> int:
    """Type 1: no parent, grandparent or relative guards; 2: another relative; 3: grandparents."""
    return TYPE_BY_GUARDIANSHIP.get(child.guardianship_type, 1)


@dataclass(frozen=True)
class Reason:
    """One fact behind a level: a message key (``risk.reason.*``) and its parameters.

    ``str(reason)`` is the key, so a page can translate it like any other key."""

    key: str
    level: int | None
    params: dict[str, Any] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True)
class RiskAssessment:
    """Type, level (effective: the override when there is one), evaluation and why."""

    type: int
    level: int | None
    evaluation: str | None
    reasons: list[Reason]
    overridden: bool = False
    computed_level: int | None = None
    override_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"type": self.type, "level": self.level, "evaluation": self.evaluation,
                "computed_level": self.computed_level, "overridden": self.overridden,
                "override_reason": self.override_reason,
                "reasons": [{"key": r.key, "level": r.level, **({"params": r.params} if r.params else {})}
                            for r in self.reasons]}


def _flag_category(flag: Any) -> str:
    return flag if isinstance(flag, str) else getattr(flag, "category", "other")


def facts(child: Child, open_flags: Iterable[Any] = ()) -> list[Reason]:
    """Every fact that gives a level, most serious first (open_flags: Flag objects or categories)."""
    found: list[Reason] = []
    if child.guardianship_type == "unattended":
        found.append(Reason("risk.reason.unattended", 1))
    if child.school_status == "dropout":
        found.append(Reason("risk.reason.dropout", 2))
    if child.guardianship_quality == "poor":
        found.append(Reason("risk.reason.quality_poor", 3))
    elif child.guardianship_quality == "fair":
        found.append(Reason("risk.reason.quality_fair", 4))
    if child.guardianship_type == "one_parent_incapable":
        found.append(Reason("risk.reason.one_parent_incapable", 4))
    if child.school_status == "not_enrolled":
        found.append(Reason("risk.reason.not_enrolled", 4))
    if "seriously_ill" in (child.special_flags or []):
        found.append(Reason("risk.reason.seriously_ill", 4))
    seen: set[str] = set()
    for flag in open_flags:
        category = _flag_category(flag)
        if category in seen:
            continue
        seen.add(category)
        level = FLAG_LEVEL.get(category, OTHER_FLAG_LEVEL)
        params = {"category": category}
        if getattr(flag, "id", None) is not None:
            params["flag_id"] = flag.id
        key = f"risk.reason.flag.{category}" if category in FLAG_LEVEL else "risk.reason.flag.other"
        found.append(Reason(key, level, params))
    found.sort(key=lambda reason: reason.level or 9)
    return found


def evaluate(quality: str | None, level: int | None) -> str | None:
    """Guardian evaluation: the recorded quality, made worse when the level says so."""
    implied = "poor" if level in (1, 2) else "fair" if level == 3 else None
    candidates = [q for q in (quality, implied) if q in EVALUATIONS]
    if not candidates:
        return None
    return max(candidates, key=EVALUATIONS.index)


def assess(child: Child, open_flags: Iterable[Any] = ()) -> RiskAssessment:
    """Type, level, evaluation and the reasons for them; the caseworker's override wins, and says so."""
    reasons = facts(child, open_flags)
    computed = min((r.level for r in reasons if r.level), default=None)
    override = child.risk_level_override if child.risk_level_override in LEVELS else None
    level = override if override is not None else computed
    if override is not None:
        reasons = [Reason("risk.reason.override", override,
                          {"reason": child.risk_override_reason or "", "computed": computed}), *reasons]
    elif not reasons:
        reasons = [Reason("risk.reason.none", None)]
    return RiskAssessment(type=risk_type(child), level=level, evaluation=evaluate(child.guardianship_quality, level),
                          reasons=reasons, overridden=override is not None, computed_level=computed,
                          override_reason=child.risk_override_reason if override is not None else None)


def describe(assessment: RiskAssessment, locale: str | None = None) -> list[str]:
    """The reasons as sentences in a locale (the override's own reason appended)."""
    from bot.i18n import gettext

    lines = []
    for reason in assessment.reasons:
        text = gettext(reason.key, locale)
        if reason.key == "risk.reason.override" and reason.params.get("reason"):
            text = f"{text}: {reason.params['reason']}"
        lines.append(text)
    return lines


MAX_OVERRIDE_REASON = 1000


class OverrideError(ValueError):
    """An override without a reason (``str(error) == "reason"``), or to a level that does not exist ("level")."""


def check_override(level: int | None, reason: str | None) -> str | None:
    """The cleaned reason an override would keep (None when clearing); OverrideError when it is not valid."""
    reason = (reason or "").replace("\x00", "").strip()[:MAX_OVERRIDE_REASON] or None
    if level is not None and level not in LEVELS:
        raise OverrideError("level")
    if level is not None and not reason:
        raise OverrideError("reason")
    return reason if level is not None else None


def set_override(session: Any, child: Child, level: int | None, reason: str | None, *, actor: Any,
                 now: datetime, ip: str | None = None) -> bool:
    """Override (or, with level None, clear) a child's risk level; the reason is required; one audit event.

    Returns whether anything changed (nothing is written, nor audited, when the level and reason
    are already those)."""
    from bot.audit import audit

    reason = check_override(level, reason)
    old = {"level": child.risk_level_override, "reason": child.risk_override_reason}
    if old == {"level": level, "reason": reason}:
        return False
    child.risk_level_override = level
    child.risk_override_reason = reason
    child.updated_at = now
    audit(session, actor, "risk.override", "child", child.id, child.township_id,
          {"old": old, "new": {"level": level, "reason": reason}}, ip, now=now)
    return True
