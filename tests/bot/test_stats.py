"""Statistics: the published Tianjin breakdown to the hundredth of a percent, bands, rounding, scope."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.stats import age_on, compute_stats, jsonable, monthly_activity, percent, years_before
from models import Answer, Child, Township
from tests.bot.reports_helpers import tianjin_app  # noqa: F401  (fixture)
from tests.builders import household

AS_OF = "2026-06-30"


def stats_json(app: Flask, *args: str) -> dict:
    result = app.test_cli_runner().invoke(args=["stats", "--as-of", AS_OF, "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_tianjin_reproduces_the_published_breakdown(tianjin_app: Flask) -> None:  # noqa: F811
    data = stats_json(tianjin_app)
    assert data["total"] == 1236
    assert data["by_guardianship"] == {
        "grandparents": {"count": 970, "percent": 78.48}, "relatives": {"count": 33, "percent": 2.67},
        "unattended": {"count": 35, "percent": 2.83}, "one_parent_incapable": {"count": 198, "percent": 16.02}}
    assert data["by_age"] == {"0-5": {"count": 279, "percent": 22.57}, "6-13": {"count": 834, "percent": 67.48},
                              "14-16": {"count": 123, "percent": 9.95}}
    assert (data["dropout"], data["no_hukou"], data["poor_guardianship"], data["over_16"]) == (7, 13, 356, 0)


def test_township_filter_splits_the_total(tianjin_app: Flask) -> None:  # noqa: F811
    with tianjin_app.extensions["xiangban_db"].session() as session:
        names = list(session.scalars(select(Township.name).order_by(Township.name)))
        counts = {name: len(session.scalars(select(Child.id).join(Township, Township.id == Child.township_id)
                                            .where(Township.name == name)).all()) for name in names}
    assert len(names) == 6
    totals = {}
    for name in names:
        data = stats_json(tianjin_app, "--township", name)
        assert data["township"] == name
        assert data["total"] == counts[name]
        assert sum(e["count"] for e in data["by_guardianship"].values()) == data["total"]
        totals[name] = data["total"]
    assert sum(totals.values()) == 1236
    county = stats_json(tianjin_app, "--county", "蓟州区")
    assert county["total"] == totals["下营镇"] + totals["罗庄子镇"]
    unknown = tianjin_app.test_cli_runner().invoke(args=["stats", "--township", "不存在镇", "--json"])
    assert unknown.exit_code == 2


@pytest.mark.parametrize(("count", "total", "expected"), [
    (1, 8, "12.50"), (1, 32, "3.13"), (3, 32, "9.38"), (1, 16, "6.25"), (1, 400, "0.25"), (1, 800, "0.13"),
    (1, 3, "33.33"), (2, 3, "66.67"), (0, 0, "0.00"), (5, 5, "100.00"), (970, 1236, "78.48"), (123, 1236, "9.95"),
])
def test_percent_rounds_half_up(count: int, total: int, expected: str) -> None:
    assert percent(count, total) == Decimal(expected)
    assert str(jsonable(percent(count, total))) == str(float(Decimal(expected)))


@given(st.integers(0, 10**6), st.integers(1, 10**6))
def test_percent_is_exact_half_up(count: int, total: int) -> None:
    exact = Fraction(count * 100, total)
    cents = exact * 100
    expected = Fraction(int(cents + Fraction(1, 2)), 100)  # half up for non-negative numbers
    assert Fraction(percent(count, total)) == expected
    assert percent(count, total) == (Decimal(count) * 100 / total).quantize(Decimal("0.01"), ROUND_HALF_UP)


@given(st.dates(date(1990, 1, 1), date(2030, 12, 31)), st.dates(date(2000, 1, 1), date(2031, 12, 31)),
       st.integers(0, 20))
def test_birth_date_thresholds_agree_with_whole_years(birth: date, day: date, years: int) -> None:
    assert (birth <= years_before(day, years)) == (age_on(birth, day) >= years)


def test_age_bands_at_their_edges(session: Session, app: Flask) -> None:
    now = datetime(2026, 6, 30, 2, tzinfo=timezone.utc)
    on = date(2026, 6, 30)
    births = {
        "six_today": date(2020, 6, 30), "five": date(2020, 7, 1), "fourteen_today": date(2012, 6, 30),
        "thirteen": date(2012, 7, 1), "sixteen_today": date(2010, 6, 30), "fifteen": date(2010, 7, 1),
        "newborn": on, "unborn": on + timedelta(days=1), "leap": date(2012, 2, 29),
    }
    for i, (name, birth) in enumerate(births.items()):
        household(session, now=now, name=name, birth=birth, village_name=f"村{i}",
                  father_phone=f"+86138000001{i:02d}", guardian_phone=f"+86139000001{i:02d}")
    session.commit()
    data = jsonable(compute_stats(session, as_of=on))
    assert data["total"] == 8  # the unborn child is not counted
    assert data["by_age"]["0-5"]["count"] == 2  # five, newborn
    assert data["by_age"]["6-13"]["count"] == 2  # six_today, thirteen
    assert data["by_age"]["14-16"]["count"] == 3  # fourteen_today, fifteen, leap (14)
    assert data["over_16"] == 1  # sixteen_today
    assert data["by_age"]["14-16"]["percent"] == 37.5
    leap = compute_stats(session, as_of=date(2026, 2, 28))  # born 29 Feb 2012: still 13 on 28 Feb 2026
    ages = {n: age_on(b, date(2026, 2, 28)) for n, b in births.items() if b <= date(2026, 2, 28)}
    assert ages["leap"] == 13
    assert leap["by_age"]["6-13"]["count"] == sum(1 for a in ages.values() if 6 <= a < 14)


def test_monthly_activity_counts_checkins_and_flags(session: Session, app: Flask) -> None:
    from bot.flags import raise_flag

    now = datetime(2026, 6, 15, 2, tzinfo=timezone.utc)
    home = household(session, now=now)
    other = household(session, now=now, name="李四", township_name="罗庄子镇", father_phone="+8613800000091",
                      guardian_phone="+8613800000092")
    for moment, child, guardian in ((now, home.child, home.guardian), (now - timedelta(days=40), home.child, home.guardian),
                                    (now, other.child, other.guardian)):
        session.add(Answer(contact_id=guardian.id, child_id=child.id, question="checkin", value="well", at=moment))
    flag, _ = raise_flag(session, category="illness", now=now, child=home.child)
    flag.status, flag.resolved_at = "resolved", now + timedelta(days=1)
    session.commit()
    months = monthly_activity(session, last_day=date(2026, 6, 30), months=3)
    assert [m["month"] for m in months] == ["2026-04", "2026-05", "2026-06"]
    assert [m["checkins"] for m in months] == [0, 1, 2]
    assert months[-1]["flags_raised"] == 1 and months[-1]["flags_closed"] == 1
    mine = monthly_activity(session, last_day=date(2026, 6, 30), months=3, township_ids=[home.child.township_id])
    assert [m["checkins"] for m in mine] == [0, 1, 1]
