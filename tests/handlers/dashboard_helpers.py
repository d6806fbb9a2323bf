"""Shared by the dashboard tests: two townships, their caseworkers, an alarming SMS, logging in."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.accounts import create_caseworker
from models import Caseworker, Flag, Message
from tests.builders import Household, household, post_signed, sms_form, township

PASSWORDS = {"worker_a": "pw-A-correct-horse-7", "worker_b": "pw-B-correct-horse-7",
             "super_j": "pw-S-correct-horse-7", "super_x": "pw-X-correct-horse-7", "admin": "pw-Z-correct-horse-7"}
ALARM = '孩子被打了 <img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
PROBES = ("王小明", "孩子被打了")
RECORDING_URL = "https://api.twilio.com/2010-04-01/Accounts/AC" + "0" * 32 + "/Recordings/RE" + "7" * 32
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 4


@dataclass
class World:
    """Child A (王小明, 下营镇) and child B (陈小花, 罗庄子镇), both in 蓟州区; C (黄庄镇, 宝坻区)."""

    a: Household
    b: Household
    c: Household
    users: dict[str, Caseworker]


def build_world(session: Session, now: datetime) -> World:
    """Three households in three townships and five dashboard users."""
    a = household(session, now=now, enroll=True)
    b = household(session, now=now, name="陈小花", birth=date(2014, 2, 1), township_name="罗庄子镇",
                  village_name="北沟村", father_phone="+8613800000031", guardian_phone="+8613800000032",
                  relation="外婆", enroll=True)
    township(session, "黄庄镇", county="宝坻区")
    c = household(session, now=now, name="张晨曦", birth=date(2015, 7, 7), township_name="黄庄镇",
                  village_name="前屯村", father_phone="+8613800000041", guardian_phone="+8613800000042")
    users = {
        "worker_a": create_caseworker(session, name="甲", login="worker_a", password=PASSWORDS["worker_a"], now=now,
                                      townships=["下营镇"]),
        "worker_b": create_caseworker(session, name="乙", login="worker_b", password=PASSWORDS["worker_b"], now=now,
                                      townships=["罗庄子镇"]),
        "super_j": create_caseworker(session, name="蓟州督导", login="super_j", password=PASSWORDS["super_j"],
                                     now=now, role="supervisor", county="蓟州区"),
        "super_x": create_caseworker(session, name="宝坻督导", login="super_x", password=PASSWORDS["super_x"],
                                     now=now, role="supervisor", county="宝坻区"),
        "admin": create_caseworker(session, name="管理员", login="admin", password=PASSWORDS["admin"], now=now,
                                   role="admin"),
    }
    session.commit()
    return World(a, b, c, users)


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    html = client.get(path, follow_redirects=True).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def login(client: FlaskClient, name: str, password: str | None = None) -> None:
    """Log the client in (and check it worked)."""
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"login": name, "password": password or PASSWORDS[name],
                                           "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def send_alarm(client: FlaskClient, session: Session, sender: str = "+8613800000002", body: str = ALARM) -> Flag:
    """Text the alarming message through the signed webhook; the urgent flag it raised."""
    assert post_signed(client, "/twilio/sms", sms_form(sender, body)).status_code == 200
    session.expire_all()
    return session.scalars(select(Flag).where(Flag.severity == "urgent").order_by(Flag.id.desc())).first()


def fast_password_hashing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Cheap argon2 parameters in tests (production keeps the library's recommended ones)."""
    from argon2 import PasswordHasher

    import bot.accounts

    monkeypatch.setattr(bot.accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def leave_voicemail(client: FlaskClient, session: Session, caller: str = "+8613800000002",
                    url: str = RECORDING_URL) -> Message:
    """A message left on a call through the signed voice webhook; the stored voice message."""
    form = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32, "From": caller,
            "To": "+8610690000000", "Direction": "inbound", "RecordingUrl": url, "RecordingDuration": "7",
            "RecordingSid": "RE" + uuid.uuid4().hex}
    assert post_signed(client, "/twilio/voice/recorded?q=&s=2&n=0", form).status_code == 200
    session.expire_all()
    message = session.scalars(select(Message).where(Message.recording_url == url)
                              .order_by(Message.id.desc())).first()
    assert message is not None and message.channel == "voice"
    return message


@dataclass
class RecordingSender:
    """The console transport plus recordings (as Twilio would give them); remembers what it fetched."""

    audio: bytes = MP3
    error: Exception | None = None
    fetched: list[str] = field(default_factory=list)
    name: str = "recording-test"

    def __post_init__(self) -> None:
        from bot.channels.console import ConsoleSender

        self._console = ConsoleSender()

    def send_text(self, to: str, body: str, *, message_id: int):  # type: ignore[no-untyped-def]
        return self._console.send_text(to, body, message_id=message_id)

    def place_call(self, to: str, *, message_id: int):  # type: ignore[no-untyped-def]
        return self._console.place_call(to, message_id=message_id)

    def fetch_recording(self, url: str) -> tuple[bytes, str]:
        self.fetched.append(url)
        if self.error is not None:
            raise self.error
        return self.audio, "audio/mpeg"
