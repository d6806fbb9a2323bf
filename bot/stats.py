"""Statistics in the published surveys' shape (INTERFACE.md ``stats --json``), by SQL aggregates.

Everything is counted in the database with ``SUM(CASE ...)`` over one scan of ``child`` (no row
reaches Python), so it stays fast at a million children. Ages are whole years (周岁) on ``as_of``,
computed by birth-date thresholds: a child is at least N years old on D exactly when born on or
before ``D`` minus N years (29 February falls back to 28 February: a leap-day child becomes a year
older on 1 March in common years, as ``age_on`` says). Bands 0–5, 6–13, 14–16 (inclusive lower
bounds); 16 or older is ``over_16``. Children born after ``as_of`` did not exist yet and are left
out entirely. ``total`` is every child in scope on that date, over_16 included; every percentage is
of that total, rounded half up (``ROUND_HALF_UP``) to two decimals as the surveys print them.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select, true
from sqlalchemy.orm import Session

from models import Answer, Child, Flag, Township
from models.people import GUARDIANSHIP_TYPES

AGE_BANDS = (("0-5", 0, 6), ("6-13", 6, 14), ("14-16", 14, 16))  # (label, from age, below age)
ADULT_AGE = 16
CENT = Decimal("0.01")


def percent(count: int, total: int) -> Decimal:
    """count / total as a percentage, rounded half up to two decimals (0 of 0 is 0.00)."""
    if not total:
        return Decimal("0.00")
    return (Decimal(count) * 100 / Decimal(total)).quantize(CENT, rounding=ROUND_HALF_UP)


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February → 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def age_on(birth: date, day: date) -> int:
    """Whole years (周岁) on a day."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def scope_clause(township_ids: Sequence[int] | None) -> ColumnElement[bool]:
    """Children of the given townships (None: all)."""
    if township_ids is None:
        return true()
    return Child.township_id.in_(list(township_ids))


def _sum(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def compute_stats(session: Session, *, as_of: date, township_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """The INTERFACE.md breakdown for the children of some townships (None: all) on a date."""
    born = Child.birth_date
    columns: dict[str, Any] = {"total": func.count(Child.id)}
    for gtype in GUARDIANSHIP_TYPES:
        columns[f"g_{gtype}"] = _sum(Child.guardianship_type == gtype)
    for label, low, high in AGE_BANDS:
        # age >= low  <=>  born <= as_of - low years;  age < high  <=>  born > as_of - high years
        columns[f"a_{label}"] = _sum(and_(born <= years_before(as_of, low), born > years_before(as_of, high)))
    columns["over_16"] = _sum(born <= years_before(as_of, ADULT_AGE))
    columns["dropout"] = _sum(Child.school_status == "dropout")
    columns["no_hukou"] = _sum(Child.has_hukou.is_(False))
    columns["poor"] = _sum(Child.guardianship_quality == "poor")
    query = select(*(c.label(k.replace("-", "_")) for k, c in columns.items())).where(
        born <= as_of, scope_clause(township_ids))
    row = session.execute(query).one()._mapping
    counts = {k: int(row[k.replace("-", "_")] or 0) for k in columns}
    total = counts["total"]

    def entry(count: int) -> dict[str, Any]:
        return {"count": count, "percent": percent(count, total)}

    return {
        "total": total,
        "by_guardianship": {g: entry(counts[f"g_{g}"]) for g in GUARDIANSHIP_TYPES},
        "by_age": {label: entry(counts[f"a_{label}"]) for label, _, _ in AGE_BANDS},
        "over_16": counts["over_16"],
        "dropout": counts["dropout"],
        "no_hukou": counts["no_hukou"],
        "poor_guardianship": counts["poor"],
        "percent": {"over_16": percent(counts["over_16"], total), "dropout": percent(counts["dropout"], total),
                    "no_hukou": percent(counts["no_hukou"], total),
                    "poor_guardianship": percent(counts["poor"], total)},
        "as_of": as_of.isoformat(),
    }


def jsonable(value: Any) -> Any:
    """Decimals as JSON numbers (78.48), recursively."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def by_township(session: Session, *, as_of: date, township_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Per township: name, county, total and counts by guardianship type (one GROUP BY)."""
    columns = [_sum(Child.guardianship_type == g).label(f"g_{g}") for g in GUARDIANSHIP_TYPES]
    query = (select(Township.id, Township.name, Township.county, func.count(Child.id).label("total"), *columns)
             .join(Child, Child.township_id == Township.id)
             .where(Child.birth_date <= as_of, scope_clause(township_ids))
             .group_by(Township.id, Township.name, Township.county)
             .order_by(Township.county, Township.name))
    return [{"id": r.id, "name": r.name, "county": r.county, "total": int(r.total),
             "by_guardianship": {g: int(getattr(r, f"g_{g}")) for g in GUARDIANSHIP_TYPES}}
            for r in session.execute(query)]


def month_starts(last: date, months: int, zone: ZoneInfo) -> list[datetime]:
    """The local starts of `months` consecutive months ending with the one holding `last`, plus the end."""
    index = last.year * 12 + last.month - 1 - (months - 1)  # months since year 0, of the first month
    return [datetime.combine(date(i // 12, i % 12 + 1, 1), time(0), zone) for i in range(index, index + months + 1)]


def monthly_activity(session: Session, *, last_day: date, months: int = 12, township_ids: Sequence[int] | None = None,
                     timezone: str = "Asia/Shanghai") -> list[dict[str, Any]]:
    """Month by month (local calendar): check-ins answered, flags raised, flags closed.

    One query per series with a ``SUM(CASE)`` per month over the UTC instants of the month's
    bounds, so it is portable and uses the time indexes."""
    zone = ZoneInfo(timezone)
    bounds = month_starts(last_day, months, zone)
    spans = list(zip(bounds[:-1], bounds[1:]))

    def series(column: Any, *where: Any, join: Any = None) -> list[int]:
        sums = [_sum(and_(column >= start, column < end)).label(f"m{i}") for i, (start, end) in enumerate(spans)]
        query = select(*sums)
        if join is not None:
            query = query.select_from(join)
        query = query.where(column >= spans[0][0], column < spans[-1][1], *where)
        row = session.execute(query).one()
        return [int(v or 0) for v in row]

    answer_scope = [] if township_ids is None else [scope_clause(township_ids)]
    checkins = series(Answer.at, Answer.question == "checkin", *answer_scope,
                      join=Answer.__table__.join(Child.__table__, Child.id == Answer.child_id)
                      if township_ids is not None else None)
    flag_scope = [] if township_ids is None else [Flag.township_id.in_(list(township_ids))]
    raised = series(Flag.created_at, *flag_scope)
    closed = series(Flag.resolved_at, Flag.status == "resolved", *flag_scope)
    return [{"month": f"{start:%Y-%m}", "checkins": c, "flags_raised": r, "flags_closed": x}
            for (start, _), c, r, x in zip(spans, checkins, raised, closed)]


