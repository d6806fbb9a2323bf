"""Flag actions: each step recorded with who and when; the report clock; what each step requires."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from bot import casework
from bot.audit import audit
from bot.casework import CaseworkError
from bot.flags import raise_flag
from models import AuditEvent, Caseworker, Flag
from tests.builders import Household, household


@pytest.fixture
def home(session: Session, now: datetime) -> Household:
    return household(session, now=now)


@pytest.fixture
def worker(session: Session, now: datetime) -> Caseworker:
    user = Caseworker(login="w", name="甲", password_hash="x", role="caseworker", language="zh_Hans", active=True,
                      failed_logins=0, created_at=now)
    session.add(user)
    session.flush()
    return user


@pytest.fixture
def urgent(session: Session, home: Household, now: datetime) -> Flag:
    flag, _ = raise_flag(session, category="abuse", now=now, child=home.child, contact=home.guardian,
                         report_minutes=60, evidence=[{"start": 2, "end": 4, "text": "被打", "rule": "r"}])
    return flag


def actions(flag: Flag) -> list[str]:
    return [e.action for e in flag.events]


def test_acknowledge_stops_escalation_and_records_who(session: Session, urgent: Flag, worker: Caseworker,
                                                      now: datetime) -> None:
    assert urgent.next_escalation_at is not None
    later = now + timedelta(minutes=3)
    casework.acknowledge(session, urgent, worker, later)
    assert urgent.status == "acknowledged" and urgent.next_escalation_at is None
    assert urgent.acknowledged_at == later and urgent.acknowledged_by_id == worker.id
    assert urgent.assignee_id == worker.id
    assert actions(urgent) == ["raised", "acknowledged"] and urgent.events[-1].actor_id == worker.id
    with pytest.raises(CaseworkError, match="not_open"):
        casework.acknowledge(session, urgent, worker, later)


def test_take_assigns(session: Session, urgent: Flag, worker: Caseworker, now: datetime) -> None:
    casework.take(session, urgent, worker, now)
    assert urgent.assignee_id == worker.id and urgent.status == "open"
    assert urgent.events[-1].action == "taken" and urgent.events[-1].detail == {"previous_assignee_id": None}


def test_police_report_is_recorded_and_stops_the_clock(session: Session, urgent: Flag, worker: Caseworker,
                                                       now: datetime) -> None:
    assert casework.report_clock(urgent, now + timedelta(minutes=20))["minutes_left"] == 40
    reported = now + timedelta(minutes=45)
    casework.record_police_report(session, urgent, worker, now + timedelta(minutes=50), reported_at=reported,
                                  station=" 下营派出所 ", reference="JJ1", officer="张警官")
    assert urgent.status == "reported" and urgent.police_station == "下营派出所"
    assert urgent.police_reported_at == reported and urgent.police_recorded_by_id == worker.id
    assert urgent.acknowledged_by_id == worker.id and urgent.next_escalation_at is None
    assert urgent.assignee_id == worker.id, "whoever acts first on an unassigned flag holds it"
    event = urgent.events[-1]
    assert event.action == "police_reported" and event.detail["on_time"] is True
    clock = casework.report_clock(urgent, now + timedelta(hours=3))
    assert clock["met"] and clock["stopped"] and not clock["late"]


def test_police_report_needs_a_station_and_a_real_time(session: Session, urgent: Flag, worker: Caseworker,
                                                       now: datetime) -> None:
    with pytest.raises(CaseworkError, match="station_required"):
        casework.record_police_report(session, urgent, worker, now, reported_at=now, station="  ")
    with pytest.raises(CaseworkError, match="time_future"):
        casework.record_police_report(session, urgent, worker, now, reported_at=now + timedelta(hours=1),
                                      station="所")
    with pytest.raises(CaseworkError, match="time_before_flag"):
        casework.record_police_report(session, urgent, worker, now, reported_at=now - timedelta(days=3),
                                      station="所")
    assert urgent.status == "open" and actions(urgent) == ["raised"]


def test_late_clock(urgent: Flag, now: datetime) -> None:
    clock = casework.report_clock(urgent, now + timedelta(minutes=75))
    assert clock["late"] and clock["minutes_left"] == -15 and not clock["reported"]


def test_a_late_report_is_marked_late(session: Session, urgent: Flag, worker: Caseworker, now: datetime) -> None:
    casework.record_police_report(session, urgent, worker, now + timedelta(hours=2),
                                  reported_at=now + timedelta(hours=2), station="所")
    assert urgent.events[-1].detail["on_time"] is False
    assert not casework.report_clock(urgent, now + timedelta(hours=3))["met"]


def test_home_visit_needs_a_note(session: Session, urgent: Flag, worker: Caseworker, now: datetime) -> None:
    with pytest.raises(CaseworkError, match="note_required"):
        casework.record_home_visit(session, urgent, worker, now, visited_at=now, note="")
    casework.record_home_visit(session, urgent, worker, now, visited_at=now, note="孩子在家，情况稳定")
    assert urgent.events[-1].action == "home_visit" and urgent.status == "acknowledged"


def test_resolve_an_urgent_flag_without_a_report_needs_a_reason(session: Session, urgent: Flag,
                                                                worker: Caseworker, now: datetime) -> None:
    with pytest.raises(CaseworkError, match="outcome_required"):
        casework.resolve(session, urgent, worker, now, outcome=" ")
    with pytest.raises(CaseworkError, match="no_report_reason_required"):
        casework.resolve(session, urgent, worker, now, outcome="误报")
    casework.resolve(session, urgent, worker, now, outcome="误报", no_report_reason="上门核实，孩子说的是游戏")
    assert urgent.status == "resolved" and urgent.resolved_at == now and urgent.outcome == "误报"
    with pytest.raises(CaseworkError, match="not_active"):
        casework.take(session, urgent, worker, now)


def test_a_high_flag_resolves_with_an_outcome_only(session: Session, home: Household, worker: Caseworker,
                                                   now: datetime) -> None:
    flag, _ = raise_flag(session, category="dropout", now=now, child=home.child, contact=home.guardian)
    casework.resolve(session, flag, worker, now, outcome="已劝返，下周复学")
    assert flag.status == "resolved"


def test_reopen(session: Session, urgent: Flag, worker: Caseworker, home: Household, now: datetime) -> None:
    with pytest.raises(CaseworkError, match="not_resolved"):
        casework.reopen(session, urgent, worker, now, reason="x")
    casework.record_police_report(session, urgent, worker, now, reported_at=now, station="所")
    casework.resolve(session, urgent, worker, now, outcome="处理完毕")
    session.flush()
    with pytest.raises(CaseworkError, match="reason_required"):
        casework.reopen(session, urgent, worker, now, reason="")
    casework.reopen(session, urgent, worker, now, reason="又发生了")
    assert urgent.status == "reported" and urgent.resolved_at is None
    assert urgent.events[-1].detail["previous_outcome"] == "处理完毕"
    assert actions(urgent)[-1] == "reopened"


def test_reopen_is_refused_while_another_flag_of_the_kind_is_active(session: Session, urgent: Flag,
                                                                    worker: Caseworker, home: Household,
                                                                    now: datetime) -> None:
    casework.resolve(session, urgent, worker, now, outcome="好了", no_report_reason="误报")
    session.flush()
    raise_flag(session, category="abuse", now=now, child=home.child, contact=home.guardian)
    session.flush()
    with pytest.raises(CaseworkError, match="already_active"):
        casework.reopen(session, urgent, worker, now, reason="x")


def test_audit_records_actor_object_and_place(session: Session, worker: Caseworker, home: Household,
                                              now: datetime) -> None:
    event = audit(session, worker, "view_child", "child", home.child.id, home.child.township_id, {"a": 1},
                  "10.0.0.1", now=now)
    session.flush()
    stored = session.get(AuditEvent, event.id)
    assert (stored.actor_id, stored.action, stored.object_id, stored.ip, stored.at) == (
        worker.id, "view_child", home.child.id, "10.0.0.1", now)
