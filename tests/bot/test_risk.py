"""Risk classes: type from the guardian, level from the facts (with reasons), override with a reason."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.i18n import gettext
from bot.risk import FLAG_LEVEL, OverrideError, Reason, assess, describe, evaluate, risk_type, set_override
from models import AuditEvent, Child

NOW = datetime(2026, 6, 30, 2, tzinfo=timezone.utc)


def child(**values: object) -> Child:
    base = {"guardianship_type": "grandparents", "guardianship_quality": "good", "school_status": "in_school",
            "special_flags": [], "risk_level_override": None, "risk_override_reason": None}
    return Child(**{**base, **values})


@pytest.mark.parametrize(("gtype", "expected"), [("unattended", 1), ("one_parent_incapable", 1), ("relatives", 2),
                                                 ("grandparents", 3)])
def test_type_follows_the_guardian(gtype: str, expected: int) -> None:
    assert risk_type(child(guardianship_type=gtype)) == expected
    assert assess(child(guardianship_type=gtype)).type == expected


@pytest.mark.parametrize(("values", "flags", "level", "first_reason"), [
    ({}, [], None, "risk.reason.none"),
    ({"guardianship_type": "unattended", "guardianship_quality": None}, [], 1, "risk.reason.unattended"),
    ({"school_status": "dropout"}, [], 2, "risk.reason.dropout"),
    ({"guardianship_quality": "poor"}, [], 3, "risk.reason.quality_poor"),
    ({"guardianship_quality": "fair"}, [], 4, "risk.reason.quality_fair"),
    ({"guardianship_type": "one_parent_incapable"}, [], 4, "risk.reason.one_parent_incapable"),
    ({"school_status": "not_enrolled"}, [], 4, "risk.reason.not_enrolled"),
    ({"special_flags": ["seriously_ill"]}, [], 4, "risk.reason.seriously_ill"),
    ({}, ["missing"], 1, "risk.reason.flag.missing"),
    ({}, ["abuse"], 2, "risk.reason.flag.abuse"),
    ({}, ["bullying"], 3, "risk.reason.flag.bullying"),
    ({}, ["no_response"], 4, "risk.reason.flag.other"),
    ({"guardianship_quality": "fair", "school_status": "dropout"}, ["bullying"], 2, "risk.reason.dropout"),
])
def test_level_is_the_most_serious_fact(values: dict, flags: list[str], level: int | None, first_reason: str) -> None:
    result = assess(child(**values), flags)
    assert result.level == level
    assert result.computed_level == level and not result.overridden
    assert result.reasons[0].key == first_reason
    assert [r.level for r in result.reasons if r.level] == sorted(r.level for r in result.reasons if r.level)


def test_every_fact_is_a_reason_and_every_reason_has_text() -> None:
    result = assess(child(guardianship_quality="poor", school_status="dropout"), ["distress", "abuse", "abuse"])
    keys = [r.key for r in result.reasons]
    assert keys == ["risk.reason.dropout", "risk.reason.flag.abuse", "risk.reason.quality_poor",
                    "risk.reason.flag.distress"]
    assert str(result.reasons[0]) == "risk.reason.dropout"
    all_keys = {f"risk.reason.flag.{c}" for c in FLAG_LEVEL} | {
        "risk.reason.flag.other", "risk.reason.override", "risk.reason.none", "risk.reason.unattended",
        "risk.reason.dropout", "risk.reason.quality_poor", "risk.reason.quality_fair",
        "risk.reason.one_parent_incapable", "risk.reason.not_enrolled", "risk.reason.seriously_ill"}
    for key in all_keys:
        for locale in ("zh_Hans", "en"):
            assert gettext(key, locale) != key, (key, locale)
    assert describe(result, "zh_Hans")[0] == "已辍学"


@pytest.mark.parametrize(("quality", "level", "expected"), [
    ("good", None, "good"), ("good", 2, "poor"), ("good", 3, "fair"), ("fair", 4, "fair"), ("poor", 4, "poor"),
    (None, None, None), (None, 1, "poor")])
def test_evaluation(quality: str | None, level: int | None, expected: str | None) -> None:
    assert evaluate(quality, level) == expected


def test_override_wins_and_says_why() -> None:
    result = assess(child(guardianship_quality="fair", risk_level_override=2, risk_override_reason="家访发现长期独自在家"))
    assert (result.level, result.computed_level, result.overridden) == (2, 4, True)
    assert result.reasons[0] == Reason("risk.reason.override", 2)
    assert result.reasons[0].params["reason"] == "家访发现长期独自在家"
    assert "家访发现长期独自在家" in describe(result, "en")[0]
    assert result.as_dict()["override_reason"] == "家访发现长期独自在家"


def test_set_override_needs_a_reason_and_is_audited(session: Session, now: datetime) -> None:
    from tests.builders import household

    home = household(session, now=now)
    with pytest.raises(OverrideError):
        set_override(session, home.child, 2, "  ", actor=None, now=now)
    with pytest.raises(OverrideError):
        set_override(session, home.child, 7, "why", actor=None, now=now)
    assert set_override(session, home.child, 2, "家访：监护人长期卧床", actor=None, now=now)
    session.commit()
    assert assess(home.child).level == 2
    assert not set_override(session, home.child, 2, " 家访：监护人长期卧床 ", actor=None, now=now)  # no change, no event
    set_override(session, home.child, None, None, actor=None, now=now)
    session.commit()
    assert assess(home.child).level == 4  # fair quality from the builder
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "risk.override")
                             .order_by(AuditEvent.id)).all()
    assert [e.detail["new"]["level"] for e in events] == [2, None]
    assert events[1].detail["old"] == {"level": 2, "reason": "家访：监护人长期卧床"}


def test_check_override_cleans_the_reason_and_says_what_is_wrong() -> None:
    from bot.risk import MAX_OVERRIDE_REASON, check_override

    assert check_override(3, "  长期独自在家\x00 ") == "长期独自在家"
    assert check_override(None, "ignored") is None
    assert len(check_override(1, "字" * 5000) or "") == MAX_OVERRIDE_REASON
    for level, reason, code in ((2, " ", "reason"), (0, "x", "level"), (5, "x", "level")):
        with pytest.raises(OverrideError) as error:
            check_override(level, reason)
        assert str(error.value) == code
