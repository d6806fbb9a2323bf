"""A worker SIGKILLed in the middle of a dispatch batch, then restarted: nothing is sent twice, and a
message whose fate was lost is reconciled from the provider, not blindly re-sent."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import get_database
from bot.outbox import queue_text
from bot.reconcile import ProviderStatus, reconcile_unknown
from bot.schedule import run_due
from models import Message
from tests.builders import contact

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from journal_sender import JournalSender  # noqa: E402

N = 40
STALL_AT = 15


def _queue(session: Session, now: datetime, n: int = N) -> list[int]:
    ids = []
    for i in range(n):
        person = contact(session, f"+86139{i:08d}", now=now)
        ids.append(queue_text(session, contact=person, template="sms.welcome", now=now,
                              variables={"township": f"镇{i}"}).id)
    session.commit()
    return ids


def _journal(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _statuses(session: Session) -> Counter:
    session.expire_all()
    return Counter(session.scalars(select(Message.status).where(Message.direction == "outbound")).all())


def test_sigkill_mid_batch_then_restart_sends_each_message_once(app: Flask, session: Session, now: datetime,
                                                                 tmp_path: Path) -> None:
    _queue(session, now)
    journal = tmp_path / "provider.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, str(HERE / "journal_sender.py"), app.config["DATABASE_URL"],
                               str(journal), now.isoformat(), str(STALL_AT)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(_journal(journal)) < STALL_AT:
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:] if worker.stderr else ""
            assert time.monotonic() < deadline, "worker never reached the stall point"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    assert len(_journal(journal)) == STALL_AT
    # The provider has STALL_AT messages; the outbox recorded one fewer; the rest of the batch is claimed.
    assert _statuses(session) == {"sent": STALL_AT - 1, "sending": N - STALL_AT + 1}

    db, sender = get_database(app), JournalSender(journal)
    # Restarted at once: the claimed rows are not stuck yet, so nothing is touched, nothing re-sent.
    run_due(db, sender, now=now + timedelta(minutes=1), config=app.config)
    assert len(_journal(journal)) == STALL_AT
    assert _statuses(session)["sending"] == N - STALL_AT + 1

    # Later: the stuck rows become unknown and are reconciled; only those the provider lacks are sent.
    run_due(db, sender, now=now + timedelta(minutes=11), config=app.config)
    sent = Counter(entry["id"] for entry in _journal(journal))
    assert len(sent) == N and set(sent.values()) == {1}, "a message reached the provider twice"
    assert _statuses(session) == {"sent": N}
    session.expire_all()
    by_id = {m.id: m for m in session.scalars(select(Message).where(Message.direction == "outbound"))}
    stalled = _journal(journal)[STALL_AT - 1]
    assert by_id[stalled["id"]].provider_sid == stalled["sid"]  # adopted from the provider, not re-sent
    assert "reconciled" in (by_id[stalled["id"]].error_message or "")


def test_reconcile_never_resends_when_the_provider_cannot_be_asked(session: Session, now: datetime) -> None:
    ids = _queue(session, now, 3)
    for message in session.scalars(select(Message).where(Message.id.in_(ids))):
        message.status, message.claimed_at = "unknown", now
    session.commit()

    def unavailable(_message: Message) -> ProviderStatus | None:
        raise TimeoutError("api.twilio.com timed out")

    report = reconcile_unknown(session, unavailable, now + timedelta(hours=1))
    assert report.unresolved == 3 and _statuses(session) == {"unknown": 3}
    report = reconcile_unknown(session, None, now + timedelta(hours=2))
    assert report.unresolved == 3 and _statuses(session) == {"unknown": 3}
    # After two days nobody could tell: failed for a caseworker to decide, still never re-sent.
    report = reconcile_unknown(session, unavailable, now + timedelta(days=3))
    assert report.given_up == 3 and _statuses(session) == {"failed": 3}


def test_reconcile_adopts_provider_status_and_requeues_only_confirmed_absence(session: Session,
                                                                              now: datetime) -> None:
    ids = _queue(session, now, 4)
    for message in session.scalars(select(Message).where(Message.id.in_(ids))):
        message.status, message.claimed_at = "unknown", now
    session.commit()
    answers = {ids[0]: ProviderStatus("SMa", "delivered"), ids[1]: ProviderStatus("SMb", "undelivered", "30003"),
               ids[2]: None, ids[3]: ProviderStatus("SMc", "queued")}
    report = reconcile_unknown(session, lambda m: answers[m.id], now + timedelta(minutes=15))
    assert (report.adopted, report.requeued) == (3, 1)
    session.expire_all()
    got = {m.id: (m.status, m.provider_sid, m.error_code)
           for m in session.scalars(select(Message).where(Message.id.in_(ids)))}
    assert got[ids[0]] == ("delivered", "SMa", None)
    assert got[ids[1]] == ("undelivered", "SMb", "30003")
    assert got[ids[2]][0] == "queued" and got[ids[2]][1] is None
    assert got[ids[3]] == ("sent", "SMc", None)
