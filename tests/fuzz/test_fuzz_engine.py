"""Any text against the conversation engine, triage and the inbox: never an exception, always a reply
that renders, a flag only of a known category, and evidence spans inside the text."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import engine
from bot.i18n import render
from bot.triage import classify
from models import CATEGORY_SEVERITY, Message
from tests.builders import household

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
FAST = settings(max_examples=200, deadline=None, derandomize=True)
texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=200),
    st.text(st.sampled_from("是否好不行1２一二TDSTOP退订帮助救命孩子打骂发烧不见了 ，。!?\x00\u200b\u202e"), max_size=40),
    st.builds(lambda s, n: (s * n)[:n], st.text(min_size=1, max_size=8), st.integers(1000, 10000)),
)
kinds = st.sampled_from([None, "confirm_parent", "confirm_guardian", "checkin", "parent_contact", "quarterly"])


@st.composite
def situations(draw: st.DrawFn) -> tuple[engine.ContactInfo, engine.State]:
    known = draw(st.booleans())
    children = tuple(engine.ChildInfo(id=i + 1, given_name=draw(st.sampled_from(["小明", "", "X"])),
                                      role=draw(st.sampled_from(["father", "mother", "guardian", "helper"])),
                                      relation=draw(st.sampled_from([None, "奶奶"])))
                     for i in range(draw(st.integers(0, 3)))) if known else ()
    contact = engine.ContactInfo(id=7 if known else None, language=draw(st.sampled_from(["zh_Hans", "en", "xx"])),
                                 opted_out=draw(st.booleans()), children=children,
                                 caseworker_phone=draw(st.sampled_from([None, "+8613800000009"])))
    kind = draw(kinds)
    if kind is None:
        return contact, engine.State()
    child = children[0] if children else None
    asked = NOW - timedelta(hours=draw(st.integers(0, 400)))
    state = engine.ask(contact, kind, child, asked, reminder_id=3, arrangement_id=5).state
    return contact, state


@FAST
@given(situation=situations(), text=texts, stale=st.booleans())
def test_engine_answers_any_text(situation: tuple[engine.ContactInfo, engine.State], text: str, stale: bool) -> None:
    contact, state = situation
    result = engine.step(contact, state, text, NOW, question_ref="old" if stale else None)
    assert isinstance(result, engine.Step)
    for reply in result.replies:
        assert render(reply.template, contact.language, reply.variables).strip()
    for flag in result.flags:
        assert flag.category in CATEGORY_SEVERITY
    if result.triage is not None:
        for span in result.triage.evidence if hasattr(result.triage, "evidence") else ():
            start, end = getattr(span, "start", 0), getattr(span, "end", 0)
            assert 0 <= start <= end <= len(text)


@FAST
@given(text=texts, language=st.sampled_from(["zh_Hans", "en", "", "fr"]))
def test_triage_classifies_any_text(text: str, language: str) -> None:
    found = classify(text, language)
    assert found.severity in ("urgent", "high", "normal")


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=texts, who=st.sampled_from(["+8613800000001", "+8613800000002", "+8613900000077"]))
def test_inbox_stores_and_answers_any_text(session: Session, text: str, who: str) -> None:
    from bot.conversation import ask_question
    from bot.inbox import receive
    from models import Child, Contact

    config = {"HELP_PHONE": "+8613800000009", "CONVERSATION_TTL_HOURS": 168, "URGENT_REPORT_MINUTES": 60,
              "DEFAULT_LANGUAGE": "zh_Hans", "TIMEZONE": "Asia/Shanghai"}
    if session.scalar(select(func.count()).select_from(Child)) == 0:
        home = household(session, now=NOW)
        ask_question(session, contact=home.guardian, kind="checkin", child=home.child, now=NOW, config=config)
        session.commit()
    before = session.scalar(select(func.count()).select_from(Message).where(Message.direction == "inbound"))
    result = receive(session, provider_sid=None, from_number=who, to_number="+8610690000000", body=text, now=NOW,
                     config=config)
    session.commit()
    assert result.message.body == text.replace("\x00", "")
    assert session.scalar(select(func.count()).select_from(Message).where(Message.direction == "inbound")) == before + 1
    assert all(reply.body.strip() for reply in result.replies)
    assert session.scalar(select(Contact.id).where(Contact.phone == who)) is not None
