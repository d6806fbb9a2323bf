"""Who still needs attention: per child the arrangement state, risk class and open flags.

The arrangement state is computed in SQL (the newest arrangement that has not ended, else
``ended`` when there was one, else ``none``), so the dashboard can filter and page on it at county
size; the first thing a caseworker asks is which households have not confirmed yet.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.risk import assess
from models import ACTIVE_FLAG_STATUSES, Arrangement, Child, Flag, Township, Village

ARRANGEMENT_STATES = ("none", "proposed", "parent_confirmed", "guardian_confirmed", "confirmed", "declined", "ended")
UNCONFIRMED = ("none", "proposed", "parent_confirmed", "guardian_confirmed", "declined", "ended")


def arrangement_state_column() -> Any:
    """A column expression: the child's arrangement state, and the subqueries it needs joined."""
    live_id = (select(Arrangement.child_id, func.max(Arrangement.id).label("arrangement_id"))
               .where(Arrangement.status != "ended").group_by(Arrangement.child_id).subquery("live_arrangement"))
    any_id = (select(Arrangement.child_id, func.max(Arrangement.id).label("arrangement_id"))
              .group_by(Arrangement.child_id).subquery("any_arrangement"))
    live = select(Arrangement.id, Arrangement.status).subquery("live_status")
    state = case((live.c.status.is_not(None), live.c.status), (any_id.c.arrangement_id.is_not(None), "ended"),
                 else_="none")
    return state, live_id, any_id, live


def overview_query(*, township_ids: Sequence[int] | None = None, arrangements: Sequence[str] | None = None,
                   guardianship_type: str | None = None, name_like: str | None = None) -> Any:
    """SELECT Child, township name, county, village name, arrangement state — filtered."""
    state, live_id, any_id, live = arrangement_state_column()
    query = (select(Child, Township.name, Township.county, Village.name, state.label("arrangement"))
             .join(Township, Township.id == Child.township_id).join(Village, Village.id == Child.village_id)
             .outerjoin(live_id, live_id.c.child_id == Child.id)
             .outerjoin(live, live.c.id == live_id.c.arrangement_id)
             .outerjoin(any_id, any_id.c.child_id == Child.id))
    if township_ids is not None:
        query = query.where(Child.township_id.in_(list(township_ids)))
    if arrangements:
        query = query.where(state.in_(list(arrangements)))
    if guardianship_type:
        query = query.where(Child.guardianship_type == guardianship_type)
    if name_like:
        escaped = name_like.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Child.name.like(f"%{escaped}%", escape="\\"))
    return query.order_by(Township.county, Township.name, Village.name, Child.name, Child.id)


def open_flags_by_child(session: Session, child_ids: Sequence[int]) -> dict[int, list[Flag]]:
    """Active flags of some children, oldest first."""
    found: dict[int, list[Flag]] = {}
    ids = list(child_ids)
    for start in range(0, len(ids), 1000):
        query = (select(Flag).where(Flag.child_id.in_(ids[start:start + 1000]),
                                    Flag.status.in_(ACTIVE_FLAG_STATUSES)).order_by(Flag.id))
        for flag in session.scalars(query):
            found.setdefault(flag.child_id, []).append(flag)  # type: ignore[arg-type]
    return found


def overview_rows(session: Session, query: Any) -> list[dict[str, Any]]:
    """The rows of an overview query as dicts (risk assessed with each child's open flags)."""
    rows = session.execute(query).all()
    flags = open_flags_by_child(session, [row[0].id for row in rows])
    result = []
    for child, township, county, village, arrangement in rows:
        child_flags = flags.get(child.id, [])
        risk = assess(child, child_flags)
        result.append({
            "id": child.id, "name": child.name, "county": county, "township": township, "village": village,
            "guardianship_type": child.guardianship_type, "arrangement": arrangement,
            "risk_type": risk.type, "risk_level": risk.level, "risk_evaluation": risk.evaluation,
            "risk_overridden": risk.overridden, "open_flags": len(child_flags),
            "open_flag_categories": sorted({f.category for f in child_flags}),
        })
    return result


def children_overview(session: Session, *, township_ids: Sequence[int] | None = None,
                      arrangements: Sequence[str] | None = None, guardianship_type: str | None = None,
                      name_like: str | None = None, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """One dict per child: id, name, township, village, guardianship_type, arrangement, risk_type,
    risk_level, open_flags (a count) and extras (county, risk_evaluation, open_flag_categories)."""
    query = overview_query(township_ids=township_ids, arrangements=arrangements,
                           guardianship_type=guardianship_type, name_like=name_like)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return overview_rows(session, query)


def count_by_arrangement(session: Session, *, township_ids: Sequence[int] | None = None) -> dict[str, int]:
    """How many children are in each arrangement state (for the filter's counts)."""
    state, live_id, any_id, live = arrangement_state_column()
    query = (select(state.label("state"), func.count(Child.id)).select_from(Child)
             .outerjoin(live_id, live_id.c.child_id == Child.id)
             .outerjoin(live, live.c.id == live_id.c.arrangement_id)
             .outerjoin(any_id, any_id.c.child_id == Child.id).group_by(state))
    if township_ids is not None:
        query = query.where(Child.township_id.in_(list(township_ids)))
    counts = {s: 0 for s in ARRANGEMENT_STATES}
    counts.update({s: int(n) for s, n in session.execute(query)})
    return counts
