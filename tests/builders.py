"""Builders for test data: households, contacts and signed Twilio requests."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from models import Child, ChildContact, Contact, Township, Village

TOKEN = "test-auth-token"
PUBLIC_URL = "https://xiangban.example.org"


@dataclass
class Household:
    """A child with its father, mother (optional) and entrusted guardian."""

    child: Child
    father: Contact | None
    mother: Contact | None
    guardian: Contact | None
    helper: Contact | None = None


def township(session: Session, name: str = "下营镇", county: str = "蓟州区") -> Township:
    """Get or create a township."""
    from sqlalchemy import select

    found = session.scalars(select(Township).where(Township.name == name)).first()
    if found is None:
        found = Township(name=name, county=county, settings={})
        session.add(found)
        session.flush()
    return found


def contact(session: Session, phone: str, *, name: str | None = None, language: str = "zh_Hans",
            channel: str = "sms", now: datetime | None = None) -> Contact:
    """Get or create a contact by E.164 phone."""
    from sqlalchemy import select

    found = session.scalars(select(Contact).where(Contact.phone == phone)).first()
    if found is None:
        found = Contact(phone=phone, name=name, language=language, channel=channel,
                        created_at=now or datetime(2026, 1, 1).astimezone())
        session.add(found)
        session.flush()
    return found


def household(session: Session, *, now: datetime, name: str = "王小明", birth: date = date(2016, 5, 4),
              township_name: str = "下营镇", village_name: str = "东庄村", guardianship_type: str = "grandparents",
              father_phone: str | None = "+8613800000001", mother_phone: str | None = None,
              guardian_phone: str | None = "+8613800000002", relation: str = "奶奶", helper_phone: str | None = None,
              guardian_channel: str = "sms", language: str = "zh_Hans", enroll: bool = False) -> Household:
    """A child and its people, linked; optionally enrolled (arrangement and reminders planned)."""
    town = township(session, township_name)
    village = Village(township=town, name=village_name)
    session.add(village)
    child = Child(identity_key=f"test:{uuid.uuid4().hex}", name=name, sex="male", birth_date=birth, has_hukou=True,
                  school_status="in_school", township=town, village=village, guardianship_type=guardianship_type,
                  guardianship_quality="fair", special_flags=[], created_at=now, updated_at=now)
    session.add(child)
    people: dict[str, Contact | None] = {}
    for role, phone, label in (("father", father_phone, "父亲"), ("mother", mother_phone, "母亲"),
                               ("guardian", guardian_phone, relation), ("helper", helper_phone, None)):
        person = contact(session, phone, language=language, now=now,
                         channel=guardian_channel if role == "guardian" else "sms") if phone else None
        people[role] = person
        if person is not None:
            child.links.append(ChildContact(contact=person, role=role, relationship_label=label))
    session.flush()
    if enroll:
        from bot.enrollment import enroll_child

        enroll_child(session, child=child, now=now, first_checkin_at=now + timedelta(days=7))
    session.flush()
    return Household(child, people["father"], people["mother"], people["guardian"], people["helper"])


def sign(url: str, form: dict[str, str], token: str = TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for a form posted to a URL."""
    return RequestValidator(token).compute_signature(url, form)


def post_signed(client: FlaskClient, path: str, form: dict[str, str], *, base: str = PUBLIC_URL,
                token: str = TOKEN, headers: dict[str, str] | None = None) -> Any:
    """POST a form to the app signed as Twilio signs it (against the public URL)."""
    signature = sign(base + path, form, token)
    return client.post(path, data=urlencode(form), content_type="application/x-www-form-urlencoded",
                       headers={"X-Twilio-Signature": signature, **(headers or {})})


def sms_form(sender: str, body: str, sid: str | None = None, to: str = "+8610690000000") -> dict[str, str]:
    """The form Twilio posts for an inbound SMS."""
    sid = sid or "SM" + uuid.uuid4().hex
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "0" * 32, "From": sender, "To": to,
            "Body": body, "NumMedia": "0", "NumSegments": "1"}
