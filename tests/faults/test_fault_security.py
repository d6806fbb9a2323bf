"""Nobody gets in where they do not belong: every dashboard route and export, walked from the app's own
URL map, as an anonymous visitor, as a caseworker of another township and without a CSRF token.
And nothing secret reaches the logs: no password, no full phone number."""
from __future__ import annotations

import logging
import re
from datetime import datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.flags import raise_flag
from models import Flag
from tests.builders import household, post_signed, sms_form

PASSWORD_A = "Correct-Horse-Battery-Staple-9"
PASSWORD_B = "Another-Long-Passphrase-7"
# What must never leak from township A's child: the name, the people's numbers, the flag's words.
SECRETS = ("王小明", "13800000001", "13800000002", "孩子被打得很厉害")
SKIP_PREFIXES = ("/twilio/", "/healthz", "/static")


def _token(client: FlaskClient, path: str = "/login") -> str:
    html = client.get(path, follow_redirects=True).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    return found.group(1) if found else ""


def _login(client: FlaskClient, login: str, password: str) -> None:
    response = client.post("/login", data={"login": login, "password": password, "csrf_token": _token(client)})
    assert response.status_code in (302, 303), response.status_code


@pytest.fixture
def world(app: Flask, runner: FlaskCliRunner, session: Session, now: datetime) -> dict[str, object]:
    home = household(session, now=now, township_name="下营镇", father_phone="+8613800000001",
                     guardian_phone="+8613800000002")
    other = household(session, now=now, name="李四", township_name="罗庄子镇", village_name="西村",
                      father_phone="+8613900000001", guardian_phone="+8613900000002")
    flag, _ = raise_flag(session, category="abuse", now=now, child=home.child, contact=home.guardian,
                         summary="孩子被打得很厉害")
    session.commit()
    for login, password, town in (("cw_a", PASSWORD_A, "下营镇"), ("cw_b", PASSWORD_B, "罗庄子镇")):
        result = runner.invoke(args=["caseworker", "create", "--name", login, "--login", login, "--password-stdin",
                                     "--township", town], input=password + "\n")
        assert result.exit_code == 0, result.output
    return {"flag": flag.id, "child": home.child.id, "contact": home.guardian.id, "other_child": other.child.id}


def _dashboard_rules(app: Flask) -> list[tuple[str, set[str]]]:
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(SKIP_PREFIXES) or rule.endpoint == "static":
            continue
        rules.append((rule, (rule.methods or set()) & {"GET", "POST"}))
    assert len(rules) >= 3, "the dashboard's routes were not found"
    return rules


def _url(rule: object, world: dict[str, object]) -> str:
    values: dict[str, object] = {}
    for arg in rule.arguments:  # type: ignore[attr-defined]
        converter = rule._converters[arg]  # type: ignore[attr-defined]
        if "flag" in arg:
            values[arg] = world["flag"]
        elif "child" in arg:
            values[arg] = world["child"]
        elif "contact" in arg or arg in ("id", "object_id"):
            values[arg] = world["contact"]
        elif type(converter).__name__ in ("IntegerConverter", "NumberConverter"):
            values[arg] = world["flag"]
        elif arg == "action":
            values[arg] = "acknowledge"
        elif arg in ("code", "lang", "language"):
            values[arg] = "en"
        else:
            values[arg] = "x"
    return rule.build(values, append_unknown=False)[1]  # type: ignore[attr-defined]


def _leaks(body: str) -> list[str]:
    return [secret for secret in SECRETS if secret in body]


def _flag_state(session: Session, flag_id: int) -> tuple:
    session.expire_all()
    flag = session.get(Flag, flag_id)
    return flag.status, flag.notes, flag.assignee_id, flag.acknowledged_at, flag.police_reported_at


def test_anonymous_visitors_get_nothing(app: Flask, client: FlaskClient, session: Session,
                                        world: dict[str, object]) -> None:
    before = _flag_state(session, world["flag"])
    for rule, methods in _dashboard_rules(app):
        url = _url(rule, world)
        for method in methods:
            data = {"csrf_token": _token(client), "note": "x", "outcome": "x", "station": "x"}
            response = client.open(url, method=method, data=data if method == "POST" else None)
            body = response.get_data(as_text=True)
            assert not _leaks(body), (method, url, _leaks(body))
            if rule.endpoint.endswith(("login", "set_language")):
                continue
            assert response.status_code in (302, 303, 401, 403, 404), (method, url, response.status_code)
            if response.status_code in (302, 303):
                assert "/login" in response.headers["Location"], (method, url, response.headers["Location"])
    assert _flag_state(session, world["flag"]) == before


def test_another_townships_caseworker_gets_nothing(app: Flask, client: FlaskClient, session: Session,
                                                   world: dict[str, object]) -> None:
    _login(client, "cw_b", PASSWORD_B)
    before = _flag_state(session, world["flag"])
    for rule, methods in _dashboard_rules(app):
        if rule.endpoint.endswith(("logout",)):
            continue
        url = _url(rule, world)
        for method in methods:
            data = {"csrf_token": _token(client, "/"), "note": "x", "outcome": "x", "station": "x",
                    "reference": "x", "officer": "x", "reason": "x"}
            response = client.open(url, method=method, data=data if method == "POST" else None)
            body = response.get_data(as_text=True)
            assert not _leaks(body), (method, url, response.status_code, _leaks(body))
            if rule.arguments & {"flag_id", "child_id", "contact_id"}:
                assert response.status_code in (403, 404), (method, url, response.status_code)
    assert _flag_state(session, world["flag"]) == before


def test_posts_without_a_csrf_token_change_nothing(app: Flask, client: FlaskClient, session: Session,
                                                   world: dict[str, object]) -> None:
    _login(client, "cw_a", PASSWORD_A)
    assert "王小明" in client.get(f"/flags/{world['flag']}").get_data(as_text=True)  # in scope, it is visible
    before = _flag_state(session, world["flag"])
    posts = [(rule, _url(rule, world)) for rule, methods in _dashboard_rules(app) if "POST" in methods]
    assert posts
    for rule, url in posts:
        response = client.post(url, data={"note": "x", "outcome": "x", "station": "x", "reference": "x"})
        assert response.status_code == 400, (url, response.status_code)
        assert not _leaks(response.get_data(as_text=True))
        forged = client.post(url, data={"csrf_token": "forged-token", "note": "x"})
        assert forged.status_code == 400, (url, forged.status_code)
    assert _flag_state(session, world["flag"]) == before
    assert client.get("/").status_code == 200  # still logged in: the refusals did no harm


def test_logs_carry_no_password_and_no_full_phone_number(app: Flask, client: FlaskClient, session: Session,
                                                         world: dict[str, object], now: datetime,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.post("/login", data={"login": "cw_a", "password": "Wrong-" + PASSWORD_A, "csrf_token": _token(client)})
    _login(client, "cw_a", PASSWORD_A)
    client.post("/logout", data={"csrf_token": _token(client, "/")})
    client.post("/login", data={"login": "nobody", "password": PASSWORD_B, "csrf_token": _token(client)})
    for sender, body in (("+8613800000002", "孩子发烧了"), ("+8613800000002", "帮助"), ("+8613700000077", "你好"),
                         ("+8613800000001", "TD")):
        assert post_signed(client, "/twilio/sms", sms_form(sender, body)).status_code == 200
    from bot.db import get_database
    from bot.schedule import run_due
    from datetime import timedelta

    run_due(get_database(app), app.extensions["xiangban_sender"], now=now + timedelta(days=30), config=app.config)
    text = caplog.text + "\n".join(str(record.args) for record in caplog.records)
    assert PASSWORD_A not in text and PASSWORD_B not in text
    full_numbers = set(re.findall(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)", text))
    assert not full_numbers, f"unmasked phone numbers in the logs: {sorted(full_numbers)[:5]}"
    assert session.scalars(select(Flag)).first() is not None
