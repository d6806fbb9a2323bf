"""The inbound webhook when the database fails, and when Twilio delivers the same message at once
several times."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from models import Flag, Message
from tests.builders import household, post_signed, sms_form


@contextmanager
def database_down(app: Flask, when: str = "connect") -> Iterator[None]:
    """Make the database fail: refuse new connections, or fail a write in the middle of a transaction."""
    engine = app.extensions["xiangban_db"].engine
    dbapi_error = engine.dialect.loaded_dbapi.OperationalError

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise dbapi_error("connection refused (test: database down)")

    def fail_late_write(_conn, _cursor, statement, *_args: object) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("INSERT INTO FLAG", "INSERT INTO CONVERSATION_STATE",
                                                  'INSERT INTO "FLAG"', "UPDATE CONVERSATION_STATE")):
            raise dbapi_error("server closed the connection unexpectedly (test)")

    if when == "connect":
        engine.dispose()
        event.listen(engine, "do_connect", refuse)
    else:
        event.listen(engine, "before_cursor_execute", fail_late_write)
    try:
        yield
    finally:
        if when == "connect":
            event.remove(engine, "do_connect", refuse)
        else:
            event.remove(engine, "before_cursor_execute", fail_late_write)
        engine.dispose()


def _counts(session: Session) -> tuple[int, int, int]:
    session.expire_all()
    inbound = session.scalar(select(func.count()).select_from(Message).where(Message.direction == "inbound"))
    outbound = session.scalar(select(func.count()).select_from(Message).where(Message.direction == "outbound"))
    return inbound, outbound, session.scalar(select(func.count()).select_from(Flag))


def test_database_down_answers_503_then_recovers(app: Flask, client: FlaskClient, session: Session,
                                                 now: datetime) -> None:
    household(session, now=now)
    session.commit()
    form = sms_form("+8613800000002", "孩子发烧了，住院了")
    with database_down(app):
        response = post_signed(client, "/twilio/sms", form)
        assert response.status_code == 503
        assert client.get("/healthz").status_code == 503
    assert _counts(session) == (0, 0, 0)
    # Back up: Twilio's retry of the same message is handled normally, once.
    assert post_signed(client, "/twilio/sms", form).status_code == 200
    assert post_signed(client, "/twilio/sms", form).status_code == 200
    assert client.get("/healthz").status_code == 200
    inbound, outbound, flags = _counts(session)
    assert (inbound, flags) == (1, 1) and outbound >= 1


def test_failure_mid_transaction_leaves_nothing_half_written(app: Flask, client: FlaskClient, session: Session,
                                                            now: datetime) -> None:
    household(session, now=now)
    session.commit()
    form = sms_form("+8613800000002", "孩子发烧了，住院了")
    with database_down(app, when="late_write"):
        response = post_signed(client, "/twilio/sms", form)
    assert response.status_code == 503
    assert _counts(session) == (0, 0, 0), "the inbound message was stored without its flag and reply"
    assert post_signed(client, "/twilio/sms", form).status_code == 200
    inbound, outbound, flags = _counts(session)
    assert (inbound, flags) == (1, 1) and outbound >= 1


def test_same_inbound_delivered_five_times_at_once(app: Flask, session: Session, now: datetime) -> None:
    household(session, now=now)
    session.commit()
    form = sms_form("+8613800000002", "孩子不见了，找不到了")
    barrier = threading.Barrier(5)
    results: list[int] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            own = app.test_client()
            barrier.wait(timeout=10)
            results.append(post_signed(own, "/twilio/sms", form).status_code)
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and sorted(results) == [200] * 5
    session.expire_all()
    inbound = session.scalars(select(Message).where(Message.direction == "inbound")).all()
    assert len(inbound) == 1
    replies = session.scalars(select(Message).where(Message.in_reply_to_id == inbound[0].id)).all()
    assert len(replies) == 1, [r.kind for r in replies]
    assert [r.status for r in replies] == ["sent"]
    flags = session.scalars(select(Flag)).all()
    assert len(flags) == 1 and flags[0].occurrences == 1
