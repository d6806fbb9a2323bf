"""A small demo township (下营镇, 蓟州区) with four households and a caseworker login.

`flask --app bot demo` loads it; running it again adds nothing twice and sets a new password for
the `demo` login (the only way to print one: passwords are stored hashed).
"""
from __future__ import annotations

import secrets
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Caseworker, Child, ChildContact, Contact, Township, Village

TOWNSHIP, COUNTY = "下营镇", "蓟州区"
DEMO_LOGIN = "demo"

# (key, child, sex, birth, village, guardianship type, quality, school, people)
# people: (role, name, phone, relationship label, workplace, channel)
HOUSEHOLDS: list[dict[str, Any]] = [
    {"key": "demo:xiaying:1", "name": "刘子涵", "sex": "female", "birth": date(2016, 3, 12), "village": "东庄村",
     "type": "grandparents", "quality": "good", "school": "下营镇中心小学",
     "people": [("father", "刘建华", "+8613800001001", "父亲", "北京", "sms"),
                ("mother", "张丽娟", "+8613800001002", "母亲", "天津滨海新区", "sms"),
                ("guardian", "王秀英", "+8613800001003", "奶奶", None, "sms"),
                ("helper", "李春燕", "+8613800001004", "班主任", None, "sms")]},
    {"key": "demo:xiaying:2", "name": "赵雨桐", "sex": "female", "birth": date(2013, 9, 1), "village": "西沟村",
     "type": "relatives", "quality": "fair", "school": "下营镇中学",
     "people": [("father", "赵国庆", "+8613800001011", "父亲", "江苏苏州", "sms"),
                ("guardian", "赵春梅", "+8613800001012", "姑姑", None, "sms"),
                ("helper", "何文博", "+8613800001013", "志愿者", None, "sms")]},
    {"key": "demo:xiaying:3", "name": "孙浩宇", "sex": "male", "birth": date(2012, 11, 20), "village": "前营村",
     "type": "unattended", "quality": "poor", "school": "下营镇中学",
     "people": [("father", "孙志强", "+8613800001021", "父亲", "河北廊坊", "sms"),
                ("mother", "马丽", "+8613800001022", "母亲", "河北廊坊", "sms"),
                ("helper", "郭晨曦", "+8613800001023", "村儿童主任", None, "sms")]},
    {"key": "demo:xiaying:4", "name": "周欣怡", "sex": "female", "birth": date(2019, 6, 8), "village": "东庄村",
     "type": "grandparents", "quality": "fair", "school": None,
     "people": [("father", "周明", "+8613800001031", "父亲", "山东济南", "sms"),
                ("guardian", "周德福", "+8613800001032", "爷爷", None, "voice")]},
]


ANY_HOUR = time(0, 0)


def _contact(session: Session, phone: str, name: str, workplace: str | None, channel: str, now: datetime) -> Contact:
    found = session.scalars(select(Contact).where(Contact.phone == phone)).first()
    if found is None:
        # Demo people take texts at any hour (an empty window), so the demo can be tried at night too.
        found = Contact(phone=phone, name=name, language="zh_Hans", channel=channel, workplace=workplace,
                        quiet_start=ANY_HOUR, quiet_end=ANY_HOUR, created_at=now)
        session.add(found)
        session.flush()
    return found


def _village(session: Session, township: Township, name: str) -> Village:
    found = session.scalars(select(Village).where(Village.township_id == township.id, Village.name == name)).first()
    if found is None:
        found = Village(township=township, name=name)
        session.add(found)
        session.flush()
    return found


def load_demo(session: Session, now: datetime) -> dict[str, Any]:
    """Create (once) the demo township, households and enrolment; (re)set the demo login's password."""
    from bot.accounts import create_caseworker, get_or_create_township, set_password
    from bot.enrollment import enroll_child

    township = get_or_create_township(session, TOWNSHIP, COUNTY)
    created = 0
    people: list[str] = []
    for spec in HOUSEHOLDS:
        child = session.scalars(select(Child).where(Child.identity_key == spec["key"])).first()
        if child is None:
            child = Child(identity_key=spec["key"], name=spec["name"], sex=spec["sex"], birth_date=spec["birth"],
                          has_hukou=True, school_status="in_school" if spec["school"] else "preschool",
                          school=spec["school"], township=township, village=_village(session, township, spec["village"]),
                          guardianship_type=spec["type"], guardianship_quality=spec["quality"], special_flags=[],
                          created_at=now, updated_at=now)
            session.add(child)
            for role, name, phone, label, workplace, channel in spec["people"]:
                person = _contact(session, phone, name, workplace, channel, now)
                child.links.append(ChildContact(contact=person, role=role, relationship_label=label))
            session.flush()
            enroll_child(session, child=child, now=now, first_checkin_at=now)
            created += 1
        for role, name, phone, label, _workplace, channel in spec["people"]:
            people.append(f"{spec['name']}: {label} {name} {phone}{' (voice)' if channel == 'voice' else ''}")
    password = secrets.token_urlsafe(12)
    user = session.scalars(select(Caseworker).where(Caseworker.login == DEMO_LOGIN)).first()
    if user is None:
        user = create_caseworker(session, name="演示督导员", login=DEMO_LOGIN, password=password, now=now,
                                 townships=[TOWNSHIP], role="caseworker", county=COUNTY)
    else:
        set_password(user, password)
        user.active = True
        if township not in user.townships:
            user.townships.append(township)
    session.flush()
    return {"township": TOWNSHIP, "county": COUNTY, "children": len(HOUSEHOLDS), "created": created,
            "existing": created == 0, "people": people, "login": DEMO_LOGIN, "password": password}
