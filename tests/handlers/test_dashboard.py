"""The caseworker dashboard: scope on every route, CSRF, escaping, audit, and every flag action."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import utcnow
from bot.flags import raise_flag
from models import AuditEvent, Caseworker, Child, Flag, FlagEvent, Message
from tests.builders import contact as make_contact
from tests.handlers.dashboard_helpers import (MP3, PASSWORDS, PROBES, RECORDING_URL, RecordingSender, World,
                                              csrf_token, leave_voicemail, login,
                                              send_alarm)

# Values for every URL parameter a dashboard route may take; a new parameter must be added here,
# so no route escapes the out-of-scope walk.
ACTIONS = ("take", "acknowledge", "police", "visit", "resolve", "reopen")
PUBLIC_ENDPOINTS = {"dashboard.login", "dashboard.logout", "dashboard.set_language", "dashboard.static"}


@pytest.fixture(autouse=True)
def _fast_hashing(fast_hashing: None) -> None:
    """Every test here logs in: hash passwords cheaply."""


@pytest.fixture
def alarm(client: FlaskClient, session: Session, world: World) -> Flag:
    flag = send_alarm(client, session)
    assert flag is not None and flag.child_id == world.a.child.id
    return flag


@pytest.fixture
def voicemail(client: FlaskClient, session: Session, world: World) -> Message:
    """A message left on a call by child A's guardian (a voice message with a recording URL)."""
    message = leave_voicemail(client, session)
    assert message.child_id == world.a.child.id
    return message


@pytest.fixture
def recordings(app: Flask, monkeypatch: pytest.MonkeyPatch) -> RecordingSender:
    """A transport that keeps recordings (the tests' app otherwise has the console transport)."""
    sender = RecordingSender()
    monkeypatch.setitem(app.extensions, "xiangban_sender", sender)
    return sender


def dashboard_urls(app: Flask, values: dict[str, object]) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every dashboard route, parameters filled from `values`."""
    urls = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith("dashboard") or rule.endpoint in PUBLIC_ENDPOINTS:
                continue
            missing = set(rule.arguments) - set(values) - {"action"}
            assert not missing, f"the route walk does not know {missing} of {rule.rule}: add them to the test"
            choices = [{}]
            if "action" in rule.arguments:
                choices = [{"action": a} for a in ACTIONS]
            for extra in choices:
                args = {k: values[k] for k in rule.arguments if k != "action"} | extra
                for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                    urls.append((rule.endpoint, method, url_for(rule.endpoint, **args)))
    return urls


def scope_values(world: World, flag: Flag, voicemail: Message) -> dict[str, object]:
    return {"flag_id": flag.id, "child_id": world.a.child.id, "contact_id": world.a.guardian.id,
            "message_id": voicemail.id}


def walk(client: FlaskClient, app: Flask, values: dict[str, object]) -> dict[str, tuple[int, str]]:
    token = csrf_token(client, "/login")
    results = {}
    for endpoint, method, url in dashboard_urls(app, values):
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data={"csrf_token": token, "station": "x", "note": "x", "outcome": "x",
                                              "reason": "x", "no_report_reason": "x", "text": "hello"})
        results[f"{method} {url}"] = (response.status_code, response.get_data().decode("utf-8", "replace"))
    return results


# --- scope -----------------------------------------------------------------------------------

@pytest.mark.parametrize("outsider", ["worker_b", "super_x"])
def test_every_route_is_404_for_an_out_of_scope_user(app: Flask, client: FlaskClient, session: Session,
                                                     world: World, alarm: Flag, voicemail: Message,
                                                     recordings: RecordingSender, outsider: str) -> None:
    login(client, outsider)
    results = walk(client, app, scope_values(world, alarm, voicemail))
    assert len(results) >= 15
    for url, (status, body) in results.items():
        has_object = re.search(r"/\d+", url) is not None
        if has_object or "/audit" in url:
            assert status == 404, f"{outsider} got {status} at {url}"
        else:
            assert status in (200, 302), f"{outsider} got {status} at {url}"
        for probe in PROBES:
            assert probe not in body, f"{outsider} saw {probe} at {url}"
    session.expire_all()
    flag = session.get(Flag, alarm.id)
    assert flag.status == "open" and flag.assignee_id is None and flag.police_reported_at is None
    assert not session.scalars(select(Message).where(Message.kind == "sms.caseworker_reply")).all()
    assert not recordings.fetched


def test_the_same_walk_reaches_every_page_in_scope(app: Flask, client: FlaskClient, world: World,
                                                   alarm: Flag, voicemail: Message, recordings: RecordingSender) -> None:
    login(client, "worker_a")
    results = walk(client, app, scope_values(world, alarm, voicemail))
    for url, (status, body) in results.items():
        if "/audit" in url:
            assert status == 404, "the audit log is for admins only"
        else:
            assert status in (200, 302), f"worker_a got {status} at {url}"
        assert not re.search(r"ui\.[a-z_]+\.", body), f"an untranslated key on {url}"
    assert any(PROBES[1] in body for _status, body in results.values())


def test_anonymous_visitors_are_sent_to_login_and_see_nothing(app: Flask, client: FlaskClient, world: World,
                                                              alarm: Flag, voicemail: Message) -> None:
    results = walk(client, app, scope_values(world, alarm, voicemail))
    for url, (status, body) in results.items():
        assert status == 302, f"anonymous got {status} at {url}"
        for probe in PROBES:
            assert probe not in body
    response = client.get(f"/flags/{alarm.id}")
    assert response.headers["Location"].startswith("/login")


def test_supervisor_sees_the_county_and_admin_everything(client: FlaskClient, session: Session, world: World,
                                                        alarm: Flag) -> None:
    login(client, "super_j")
    assert client.get(f"/flags/{alarm.id}").status_code == 200
    assert client.get(f"/children/{world.b.child.id}").status_code == 200
    assert client.get(f"/children/{world.c.child.id}").status_code == 404
    children = client.get("/children").get_data(as_text=True)
    assert "王小明" in children and "陈小花" in children and "张晨曦" not in children
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "admin")
    assert client.get(f"/children/{world.c.child.id}").status_code == 200
    assert client.get("/audit").status_code == 200


def test_caseworker_sees_only_own_township_in_lists(client: FlaskClient, session: Session, world: World,
                                                    alarm: Flag) -> None:
    send_alarm(client, session, sender="+8613800000032", body="孩子不见了，找不到人")
    login(client, "worker_b")
    queue = client.get("/").get_data(as_text=True)
    assert "陈小花" in queue and "王小明" not in queue
    conversations = client.get("/conversations").get_data(as_text=True)
    assert "+8613800000032" in conversations and "+8613800000002" not in conversations
    assert "王小明" not in client.get("/children").get_data(as_text=True)


def test_unknown_sender_flags_are_visible_to_every_user(client: FlaskClient, session: Session, world: World) -> None:
    flag = send_alarm(client, session, sender="+8613911112222", body="救命 孩子被打了")
    assert flag is not None and flag.child_id is None and flag.township_id is None
    for name in ("worker_a", "worker_b"):
        with client.session_transaction() as web:
            web.clear()
        login(client, name)
        assert client.get(f"/flags/{flag.id}").status_code == 200
        assert client.get(f"/conversations/{flag.contact_id}").status_code == 200
        assert f"/flags/{flag.id}" in client.get("/").get_data(as_text=True)


# --- CSRF, escaping, headers -------------------------------------------------------------------

def test_every_post_without_a_csrf_token_is_400(app: Flask, client: FlaskClient, session: Session, world: World,
                                                alarm: Flag, voicemail: Message) -> None:
    assert client.post("/login", data={"login": "worker_a", "password": PASSWORDS["worker_a"]}).status_code == 400
    login(client, "worker_a")
    for endpoint, method, url in dashboard_urls(app, scope_values(world, alarm, voicemail)):
        if method == "POST":
            assert client.post(url, data={"station": "x", "text": "hi"}).status_code == 400, url
    assert client.post("/logout").status_code == 400
    session.expire_all()
    assert session.get(Flag, alarm.id).status == "open"


def test_sms_bodies_are_escaped_everywhere(client: FlaskClient, world: World, alarm: Flag) -> None:
    login(client, "worker_a")
    for path in (f"/flags/{alarm.id}", f"/conversations/{world.a.guardian.id}", "/conversations", "/"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>window.__xss" not in html, path
        assert "<img src=x" not in html, path
    flag_page = client.get(f"/flags/{alarm.id}").get_data(as_text=True)
    assert "&lt;script&gt;window.__xss=2&lt;/script&gt;" in flag_page
    assert re.search(r"<mark[^>]*>被打</mark>", flag_page), "the triage evidence is highlighted"


def test_pages_carry_security_headers_and_cookies_are_httponly(client: FlaskClient, world: World) -> None:
    token = csrf_token(client)
    response = client.post("/login", data={"login": "worker_a", "password": PASSWORDS["worker_a"],
                                           "csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "/dashboard-static/countdown.js" in page.get_data(as_text=True)
    assert client.get("/dashboard-static/countdown.js").status_code == 200
    assert page.headers["Cache-Control"] == "no-store"


def test_webhooks_need_no_csrf_token(client: FlaskClient, session: Session, world: World) -> None:
    assert send_alarm(client, session) is not None


# --- login -------------------------------------------------------------------------------------

def test_five_wrong_passwords_lock_the_account(client: FlaskClient, session: Session, world: World) -> None:
    token = csrf_token(client)
    for _ in range(5):
        response = client.post("/login", data={"login": "worker_a", "password": "wrong", "csrf_token": token})
        assert response.status_code == 401
    response = client.post("/login", data={"login": "worker_a", "password": PASSWORDS["worker_a"],
                                           "csrf_token": token})
    assert response.status_code == 401, "locked for 15 minutes even with the right password"
    session.expire_all()
    user = session.scalars(select(Caseworker).where(Caseworker.login == "worker_a")).one()
    assert user.locked_until is not None and user.locked_until > utcnow() + timedelta(minutes=14)
    failures = session.scalars(select(AuditEvent).where(AuditEvent.action == "login_failed")).all()
    assert len(failures) == 6


def test_addresses_are_throttled(app: Flask, client: FlaskClient, world: World) -> None:
    app.extensions["dashboard_throttle"].limit = 3
    token = csrf_token(client)
    codes = [client.post("/login", data={"login": f"nobody{i}", "password": "x", "csrf_token": token}).status_code
             for i in range(4)]
    assert codes == [401, 401, 401, 429]


def test_passwords_are_argon2_hashes(world: World) -> None:
    assert world.users["worker_a"].password_hash.startswith("$argon2id$")


def test_login_redirects_only_to_local_paths(client: FlaskClient, world: World) -> None:
    token = csrf_token(client)
    response = client.post("/login?next=https://evil.example/", data={
        "login": "worker_a", "password": PASSWORDS["worker_a"], "csrf_token": token})
    assert response.headers["Location"] == "/"


# --- flag actions --------------------------------------------------------------------------------

def post_action(client: FlaskClient, flag: Flag, action: str, **form: str) -> str:
    token = csrf_token(client, f"/flags/{flag.id}")
    response = client.post(f"/flags/{flag.id}/{action}", data={"csrf_token": token, **form})
    assert response.status_code == 302
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_urgent_flag_shows_its_clock_and_every_action_is_recorded(client: FlaskClient, session: Session,
                                                                       world: World, alarm: Flag) -> None:
    login(client, "worker_a")
    queue = client.get("/").get_data(as_text=True)
    assert "报告时限还剩" in queue and f'id="flag-{alarm.id}"' in queue
    post_action(client, alarm, "take")
    post_action(client, alarm, "acknowledge")
    page = post_action(client, alarm, "police", reported_at="", station="下营派出所", reference="JJ-2026-001",
                       officer="张警官")
    assert "下营派出所" in page and "JJ-2026-001" in page
    post_action(client, alarm, "visit", visited_at="", note="孩子在奶奶家，手臂有淤青，已送医")
    post_action(client, alarm, "resolve", outcome="已报警并由派出所处理，孩子暂住姑姑家")
    session.expire_all()
    flag = session.get(Flag, alarm.id)
    assert flag.status == "resolved" and flag.police_station == "下营派出所"
    assert flag.next_escalation_at is None
    actor = world.users["worker_a"].id
    assert flag.assignee_id == actor and flag.acknowledged_by_id == actor and flag.police_recorded_by_id == actor
    steps = [(e.action, e.actor_id) for e in flag.events if e.actor_id is not None]
    assert [s[0] for s in steps] == ["taken", "acknowledged", "police_reported", "home_visit", "resolved"]
    assert {s[1] for s in steps} == {actor}
    page = post_action(client, alarm, "reopen", reason="家长来电说又发生了")
    session.expire_all()
    assert session.get(Flag, alarm.id).status == "reported"
    audited = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.object_type == "flag")
                                                  .order_by(AuditEvent.id))]
    for action in ACTIONS:
        assert f"flag.{action}" in audited
    assert "view_flag" in audited


def test_a_late_urgent_flag_turns_red_and_sorts_first(client: FlaskClient, session: Session, world: World) -> None:
    now = utcnow()
    late, _ = raise_flag(session, category="unattended", now=now - timedelta(hours=2), child=world.a.child,
                         contact=world.a.guardian, report_minutes=60)
    high, _ = raise_flag(session, category="dropout", now=now, child=world.a.child, contact=world.a.guardian)
    soon, _ = raise_flag(session, category="injury", now=now, child=world.a.child, contact=world.a.guardian,
                         report_minutes=60)
    session.commit()
    login(client, "worker_a")
    queue = client.get("/").get_data(as_text=True)
    order = [int(i) for i in re.findall(r'id="flag-(\d+)"', queue)]
    assert order == [late.id, soon.id, high.id]
    card = queue[queue.index(f'id="flag-{late.id}"'):queue.index(f'id="flag-{soon.id}"')]
    assert 'class="clock late"' in card and "已超过报告时限" in card


def test_queue_filters(client: FlaskClient, session: Session, world: World, alarm: Flag) -> None:
    raise_flag(session, category="dropout", now=utcnow(), child=world.a.child, contact=world.a.guardian)
    session.commit()
    login(client, "worker_a")
    ids = lambda html: re.findall(r'id="flag-(\d+)"', html)  # noqa: E731
    assert len(ids(client.get("/").get_data(as_text=True))) == 2
    assert ids(client.get("/?category=dropout").get_data(as_text=True)) != ids(
        client.get("/?category=abuse").get_data(as_text=True))
    assert ids(client.get("/?status=resolved").get_data(as_text=True)) == []
    town = world.a.child.township_id
    assert len(ids(client.get(f"/?township={town}").get_data(as_text=True))) == 2


def test_a_resolve_of_an_unreported_urgent_flag_needs_a_reason(client: FlaskClient, session: Session,
                                                               world: World, alarm: Flag) -> None:
    login(client, "worker_a")
    page = post_action(client, alarm, "resolve", outcome="误报")
    assert "紧急预警未报警" in page
    session.expire_all()
    assert session.get(Flag, alarm.id).status == "open"
    post_action(client, alarm, "resolve", outcome="误报", no_report_reason="孩子说的是游戏，已上门核实")
    session.expire_all()
    assert session.get(Flag, alarm.id).status == "resolved"


# --- conversations, replies ------------------------------------------------------------------------

def test_reply_goes_through_the_outbox_and_shows_its_status(client: FlaskClient, session: Session, world: World,
                                                            alarm: Flag) -> None:
    login(client, "worker_a")
    token = csrf_token(client, f"/conversations/{world.a.guardian.id}")
    response = client.post(f"/conversations/{world.a.guardian.id}/reply",
                           data={"csrf_token": token, "text": "奶奶您好，我马上过来 <b>"})
    assert response.status_code == 302
    sent = session.scalars(select(Message).where(Message.kind == "sms.caseworker_reply")).one()
    assert sent.body == "奶奶您好，我马上过来 <b>" and sent.status == "sent" and sent.to_number == "+8613800000002"
    page = client.get(f"/conversations/{world.a.guardian.id}").get_data(as_text=True)
    assert "我马上过来 &lt;b&gt;" in page and "已发出" in page
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "reply")).one().object_id == world.a.guardian.id


def test_failed_messages_say_why(client: FlaskClient, session: Session, world: World) -> None:
    now = utcnow()
    session.add(Message(direction="outbound", channel="sms", to_number=world.a.guardian.phone, body="测试",
                        kind="sms.checkin_ask", template_vars={}, status="undelivered", error_code="30003",
                        contact_id=world.a.guardian.id, created_at=now, updated_at=now))
    session.commit()
    login(client, "worker_a")
    assert "发送失败 — 对方手机无法接通" in client.get(f"/conversations/{world.a.guardian.id}").get_data(as_text=True)


def test_reply_to_an_opted_out_contact_is_refused(client: FlaskClient, session: Session, world: World) -> None:
    world.a.guardian.opted_out = True
    session.commit()
    login(client, "worker_a")
    token = csrf_token(client, f"/children/{world.a.child.id}")
    client.post(f"/conversations/{world.a.guardian.id}/reply", data={"csrf_token": token, "text": "hi"})
    assert not session.scalars(select(Message).where(Message.kind == "sms.caseworker_reply")).all()


# --- a contact's settings ----------------------------------------------------------------------------

def settings_form(token: str, **values: str) -> dict[str, str]:
    return {"csrf_token": token, "channel": "sms", "language": "zh_Hans", "quiet_start": "08:00",
            "quiet_end": "21:00", "timezone": "Asia/Shanghai", **values}


def test_a_caseworker_sets_a_contacts_channel_language_and_window(client: FlaskClient, session: Session,
                                                                  world: World) -> None:
    from datetime import time

    from bot.outbox import next_window_start
    from models import Contact

    parent = world.a.father
    login(client, "worker_a")
    page = client.get(f"/conversations/{parent.id}").get_data(as_text=True)
    assert 'name="quiet_start" value="08:00"' in page and 'name="timezone" value="Asia/Shanghai"' in page
    token = csrf_token(client, f"/conversations/{parent.id}")
    url = f"/conversations/{parent.id}/settings"
    # the defaults sent back as shown change nothing and keep "the default" stored
    assert "没有改动" in client.post(url, data=settings_form(token), follow_redirects=True).get_data(as_text=True)
    response = client.post(url, data=settings_form(token, channel="both", language="en", quiet_start="09:30",
                                                   quiet_end="20:00:00", timezone=" asia/dubai "))
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/conversations/{parent.id}#settings")
    session.expire_all()
    saved = session.get(Contact, parent.id)
    assert (saved.channel, saved.language, saved.quiet_start, saved.quiet_end, saved.timezone) == (
        "both", "en", time(9, 30), time(20, 0), "Asia/Dubai")
    page = client.get(f"/conversations/{parent.id}").get_data(as_text=True)
    assert "短信和语音 · 英文 · 09:30–20:00 Asia/Dubai" in page
    # 07:00 in Dubai is 11:00 in Shanghai: inside the default window, outside the parent's own
    morning = datetime(2026, 6, 1, 3, 0, tzinfo=timezone.utc)
    assert next_window_start(saved, morning, default_zone="Asia/Shanghai", start="08:00", end="21:00") == \
        datetime(2026, 6, 1, 9, 30, tzinfo=ZoneInfo("Asia/Dubai"))
    # empty fields go back to the defaults
    client.post(url, data=settings_form(token, channel="both", language="en", quiet_start="", quiet_end="",
                                        timezone=""))
    session.expire_all()
    saved = session.get(Contact, parent.id)
    assert (saved.quiet_start, saved.quiet_end, saved.timezone) == (None, None, None)
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.settings")
                             .order_by(AuditEvent.id)).all()
    assert len(events) == 2
    assert events[0].detail["changes"] == {"channel": ["sms", "both"], "language": ["zh_Hans", "en"],
                                           "quiet_start": [None, "09:30"], "quiet_end": [None, "20:00"],
                                           "timezone": [None, "Asia/Dubai"]}
    assert events[1].detail["changes"] == {"quiet_start": ["09:30", None], "quiet_end": ["20:00", None],
                                           "timezone": ["Asia/Dubai", None]}
    assert {(e.object_type, e.object_id, e.actor_id, e.township_id) for e in events} == {
        ("contact", parent.id, world.users["worker_a"].id, world.a.child.township_id)}


@pytest.mark.parametrize("values, error", [
    ({"timezone": "Mars/Olympus"}, "不认识这个时区"),
    ({"timezone": "../../etc/passwd"}, "不认识这个时区"),
    ({"timezone": "x" * 80}, "不认识这个时区"),
    ({"quiet_start": "21:00", "quiet_end": "08:00"}, "开始须早于结束"),
    ({"quiet_start": "22:00", "quiet_end": ""}, "开始须早于结束"),
    ({"quiet_start": "25:00"}, "时间格式不对"),
    ({"quiet_end": "8pm"}, "时间格式不对"),
    ({"channel": "fax"}, "请选择联系方式"),
    ({"channel": ""}, "请选择联系方式"),
    ({"language": "fr"}, "请选择语言"),
])
def test_contact_settings_that_are_not_valid_change_nothing(client: FlaskClient, session: Session, world: World,
                                                            values: dict[str, str], error: str) -> None:
    from models import Contact

    parent = world.a.father
    login(client, "worker_a")
    token = csrf_token(client, f"/conversations/{parent.id}")
    form = settings_form(token, channel="voice", language="en", quiet_start="09:00") | values
    page = client.post(f"/conversations/{parent.id}/settings", data=form, follow_redirects=True)
    assert error in page.get_data(as_text=True)
    session.expire_all()
    saved = session.get(Contact, parent.id)
    assert (saved.channel, saved.language, saved.quiet_start, saved.timezone) == ("sms", "zh_Hans", None, None)
    assert not session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.settings")).all()


def test_contact_settings_follow_the_contacts_children(client: FlaskClient, session: Session, world: World) -> None:
    from models import Contact

    login(client, "worker_b")
    token = csrf_token(client, "/conversations")
    response = client.post(f"/conversations/{world.a.father.id}/settings", data=settings_form(token, channel="voice"))
    assert response.status_code == 404
    session.expire_all()
    assert session.get(Contact, world.a.father.id).channel == "sms"
    unknown = make_contact(session, "+8613911113333")
    session.commit()
    assert client.post(f"/conversations/{unknown.id}/settings",
                       data=settings_form(token, channel="voice")).status_code == 302
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.settings")).one()
    assert event.object_id == unknown.id and event.township_id is None


def test_opted_out_and_invalid_numbers_are_shown_not_edited(client: FlaskClient, session: Session,
                                                            world: World) -> None:
    from models import Contact

    parent = session.get(Contact, world.a.father.id)
    parent.opted_out, parent.opted_out_at, parent.invalid_number = True, utcnow(), True
    session.commit()
    login(client, "worker_a")
    page = client.get(f"/conversations/{parent.id}").get_data(as_text=True)
    settings = page.split('id="settings"')[1].split("</details>")[0]
    assert settings.count('<span class="badge status-open">是</span>') == 2 and "不能在此修改" in settings
    token = csrf_token(client, f"/conversations/{parent.id}")
    client.post(f"/conversations/{parent.id}/settings",
                data=settings_form(token, channel="voice", opted_out="0", invalid_number="0"))
    session.expire_all()
    parent = session.get(Contact, parent.id)
    assert parent.channel == "voice" and parent.opted_out and parent.invalid_number


# --- call recordings ---------------------------------------------------------------------------------

def test_a_voicemail_plays_in_scope_and_every_play_is_audited(client: FlaskClient, session: Session, world: World,
                                                             voicemail: Message, recordings: RecordingSender) -> None:
    flag = session.scalars(select(Flag).where(Flag.category == "voicemail")).one()
    player = f'<audio controls preload="none" src="/messages/{voicemail.id}/recording">'
    login(client, "worker_a")
    for page in (f"/flags/{flag.id}", f"/conversations/{world.a.guardian.id}"):
        html = client.get(page).get_data(as_text=True)
        assert player in html and RECORDING_URL not in html, page
    assert not recordings.fetched, "showing the player fetches nothing (preload none)"
    played = client.get(f"/messages/{voicemail.id}/recording")
    assert played.status_code == 200 and played.data == MP3 and played.mimetype == "audio/mpeg"
    assert played.headers["Cache-Control"] == "no-store" and played.headers["Accept-Ranges"] == "bytes"
    part = client.get(f"/messages/{voicemail.id}/recording", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == MP3[10:20]
    assert recordings.fetched == [RECORDING_URL, RECORDING_URL]
    session.expire_all()
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "play_recording")).all()
    assert len(events) == 2 and {(e.object_type, e.object_id, e.actor_id, e.township_id) for e in events} == {
        ("message", voicemail.id, world.users["worker_a"].id, world.a.child.township_id)}
    assert events[0].detail["ok"] is True and events[0].detail["bytes"] == len(MP3)


@pytest.mark.parametrize("outsider", ["worker_b", "super_x", None])
def test_a_voicemail_is_not_played_outside_scope(client: FlaskClient, session: Session, world: World,
                                                 voicemail: Message, recordings: RecordingSender,
                                                 outsider: str | None) -> None:
    if outsider:
        login(client, outsider)
    response = client.get(f"/messages/{voicemail.id}/recording")
    assert response.status_code == (404 if outsider else 302) and MP3 not in response.data
    assert not recordings.fetched
    assert not session.scalars(select(AuditEvent).where(AuditEvent.action == "play_recording")).all()


def test_only_messages_with_a_recording_play(client: FlaskClient, session: Session, world: World, alarm: Flag,
                                             recordings: RecordingSender) -> None:
    login(client, "worker_a")
    assert client.get(f"/messages/{alarm.message_id}/recording").status_code == 404
    assert client.get("/messages/999999/recording").status_code == 404
    assert not recordings.fetched


def test_an_unknown_callers_voicemail_plays_for_everyone(client: FlaskClient, session: Session, world: World,
                                                         recordings: RecordingSender) -> None:
    message = leave_voicemail(client, session, caller="+8613911112222", url=RECORDING_URL + "0")
    assert message.child_id is None
    login(client, "worker_b")
    assert client.get(f"/messages/{message.id}/recording").data == MP3
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "play_recording")).one()
    assert event.township_id is None and event.detail["contact_id"] == message.contact_id


def test_a_recording_the_provider_will_not_give_is_a_502_and_audited(client: FlaskClient, session: Session,
                                                                     world: World, voicemail: Message,
                                                                     recordings: RecordingSender) -> None:
    from bot.channels import RecordingError

    recordings.error = RecordingError("not_found", "gone")
    login(client, "worker_a")
    response = client.get(f"/messages/{voicemail.id}/recording")
    assert response.status_code == 502 and "录音" in response.get_data(as_text=True)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "play_recording")).one()
    assert event.detail == {"contact_id": voicemail.contact_id, "ok": False, "error": "not_found"}


def test_the_console_transport_shows_the_recording_address_and_says_why(client: FlaskClient, session: Session,
                                                                        world: World, voicemail: Message) -> None:
    login(client, "worker_a")
    html = client.get(f"/conversations/{world.a.guardian.id}").get_data(as_text=True)
    assert "<audio" not in html and f'<code class="recording-url">{RECORDING_URL}</code>' in html
    assert "本环境未接入 Twilio" in html and "（语音留言）" in html
    assert client.get(f"/messages/{voicemail.id}/recording").status_code == 404


def test_twilio_is_imported_only_by_the_channel_layer_and_the_webhooks() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    allowed = {"bot/channels", "handlers/twilio.py", "handlers/twilio_auth.py", "handlers/voice.py"}
    offenders = []
    for folder in ("bot", "handlers", "models"):
        for path in (root / folder).rglob("*.py"):
            name = path.relative_to(root).as_posix()
            if any(name == a or name.startswith(a + "/") for a in allowed):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                           else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(m == "twilio" or m.startswith("twilio.") for m in modules):
                    offenders.append(name)
    assert not offenders


# --- child record ----------------------------------------------------------------------------------

def test_child_record_view_edit_and_export_are_audited(client: FlaskClient, session: Session, world: World,
                                                       alarm: Flag) -> None:
    arrangement = world.a.child.arrangements[-1]
    arrangement.status = "parent_confirmed"
    arrangement.history = [{"at": utcnow().isoformat(), "side": "parent", "answer": "yes", "message_id": None}]
    session.commit()
    login(client, "worker_a")
    child_id = world.a.child.id
    page = client.get(f"/children/{child_id}").get_data(as_text=True)
    for text in ("王小明", "奶奶", "+8613800000002", "由（外）祖父母监护", "3 类", "委托监护确认", "疑似遭受侵害",
                 "父母已确认，待监护人确认", "父母 · 回复确认"):
        assert text in page, text
    token = csrf_token(client, f"/children/{child_id}/edit")
    form = {"csrf_token": token, "school_status": "dropout", "school": "下营镇中心小学", "has_hukou": "yes",
            "guardianship_quality": "poor", "special_circumstances": "<b>患病</b>", "risk_level_override": "2",
            "risk_override_reason": ""}
    assert client.post(f"/children/{child_id}/edit", data=form).status_code == 400
    form["risk_override_reason"] = "长期无人照料"
    assert client.post(f"/children/{child_id}/edit", data=form).status_code == 302
    page = client.get(f"/children/{child_id}").get_data(as_text=True)
    assert "辍学" in page and "&lt;b&gt;患病&lt;/b&gt;" in page and "2 级" in page
    export = client.get(f"/children/{child_id}/export.json")
    assert export.json["name"] == "王小明" and "attachment" in export.headers["Content-Disposition"]
    session.expire_all()
    events = session.scalars(select(AuditEvent).where(AuditEvent.object_type == "child",
                                                      AuditEvent.object_id == child_id)).all()
    actions = [e.action for e in events]
    assert actions.count("view_child") == 2 and "export" in actions
    edit = next(e for e in events if e.action == "child.edit")
    assert edit.detail["changes"]["school_status"] == ["in_school", "dropout"]
    assert edit.actor_id == world.users["worker_a"].id and edit.township_id == world.a.child.township_id
    assert not any("risk" in field for field in edit.detail["changes"]), "the override is audited once, by itself"
    [override] = [e for e in events if e.action == "risk.override"]
    assert override.detail == {"old": {"level": None, "reason": None}, "new": {"level": 2, "reason": "长期无人照料"}}
    assert override.actor_id == world.users["worker_a"].id


def test_the_risk_override_goes_through_bot_risk(client: FlaskClient, session: Session, world: World) -> None:
    login(client, "worker_a")
    child_id = world.a.child.id
    token = csrf_token(client, f"/children/{child_id}/edit")
    unchanged = {"csrf_token": token, "school_status": world.a.child.school_status or "",
                 "school": world.a.child.school or "", "has_hukou": "yes" if world.a.child.has_hukou else "no",
                 "guardianship_quality": world.a.child.guardianship_quality or "",
                 "special_circumstances": world.a.child.special_circumstances or ""}
    for bad in ({"risk_level_override": "7", "risk_override_reason": "x"},
                {"risk_level_override": "1", "risk_override_reason": "   "}):
        assert client.post(f"/children/{child_id}/edit", data=unchanged | bad).status_code == 400
    assert "调整风险等级须写明原因" in client.post(f"/children/{child_id}/edit", data=unchanged | {
        "risk_level_override": "1", "risk_override_reason": ""}).get_data(as_text=True)
    set_one = unchanged | {"risk_level_override": "1", "risk_override_reason": " 家访：独自在家 "}
    assert client.post(f"/children/{child_id}/edit", data=set_one).status_code == 302
    assert client.post(f"/children/{child_id}/edit", data=set_one).status_code == 302  # the same again: no event
    assert client.post(f"/children/{child_id}/edit", data=unchanged | {"risk_level_override": "",
                                                                         "risk_override_reason": "ignored"}
                       ).status_code == 302
    session.expire_all()
    child = session.get(Child, child_id)
    assert child.risk_level_override is None and child.risk_override_reason is None
    events = session.scalars(select(AuditEvent).where(AuditEvent.object_id == child_id,
                                                      AuditEvent.action.in_(("risk.override", "child.edit")))
                             .order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["risk.override", "risk.override"]
    assert [e.detail["new"] for e in events] == [{"level": 1, "reason": "家访：独自在家"}, {"level": None, "reason": None}]


def test_children_is_one_list_filtered_by_arrangement_state(client: FlaskClient, session: Session, world: World,
                                                            alarm: Flag, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.dashboard import views

    world.b.child.arrangements[-1].status = "confirmed"
    session.commit()
    login(client, "super_j")
    page = client.get("/children").get_data(as_text=True)
    assert "王小明" in page and "陈小花" not in page, "default: not yet confirmed by both"
    assert '<option value="unconfirmed" selected>尚未双方确认 (1)</option>' in page
    assert "双方已确认 (1)" in page and "待双方确认" in page
    row = re.search(r'<tr data-arrangement="proposed">.*?</tr>', page, re.S).group(0)
    assert "王小明" in row and "3 类" in row and ">1</td>" in row, "risk class and the open flag"
    assert "陈小花" in client.get("/children?arrangement=any").get_data(as_text=True)
    assert "陈小花" in client.get("/children?arrangement=confirmed").get_data(as_text=True)
    assert "王小明" not in client.get("/children?q=小花&arrangement=any").get_data(as_text=True)
    assert "王小明" not in client.get("/children?type=relatives").get_data(as_text=True)
    only_b = client.get(f"/children?arrangement=any&township={world.b.child.township_id}").get_data(as_text=True)
    assert "陈小花" in only_b and "王小明" not in only_b
    assert client.get(f"/children?township={world.c.child.township_id}").status_code == 404
    assert "王小明" in client.get("/children?arrangement=bogus&type=bogus&page=x").get_data(as_text=True)
    monkeypatch.setattr(views, "CHILDREN_PAGE", 1)
    first = client.get("/children?arrangement=any").get_data(as_text=True)
    assert "王小明" in first and "陈小花" not in first and "page=2" in first
    second = client.get("/children?arrangement=any&page=2").get_data(as_text=True)
    assert "陈小花" in second and "王小明" not in second and "page=1" in second
    session.expire_all()
    seen = session.scalars(select(AuditEvent).where(AuditEvent.action == "view_children_list")
                           .order_by(AuditEvent.id)).all()
    assert seen[0].detail["arrangement"] == "unconfirmed" and seen[0].actor_id == world.users["super_j"].id


def test_admin_reads_the_audit_log(client: FlaskClient, world: World) -> None:
    login(client, "worker_a")
    client.get(f"/children/{world.a.child.id}")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "admin")
    page = client.get("/audit?action=view_child").get_data(as_text=True)
    assert "view_child" in page and "甲" in page


def test_language_switch_to_english(client: FlaskClient, world: World, alarm: Flag) -> None:
    login(client, "worker_a")
    assert "预警待办" in client.get("/").get_data(as_text=True)
    response = client.get("/lang/en?next=/")
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Flag queue" in page and "min left to report" in page
    for path in (f"/flags/{alarm.id}", f"/children/{world.a.child.id}", f"/conversations/{world.a.guardian.id}"):
        assert not re.search(r"ui\.[a-z_]+\.", client.get(path).get_data(as_text=True)), path


def test_every_dashboard_text_exists_in_both_languages() -> None:
    from pathlib import Path

    from bot.i18n import gettext

    root = Path(__file__).resolve().parents[2] / "handlers" / "dashboard"
    keys = set()
    for path in root.rglob("*"):
        if path.suffix in (".py", ".html"):
            keys |= set(re.findall(r"""['"](ui\.[a-z_]+(?:\.[a-z_]*[a-z])+)['"]""", path.read_text(encoding="utf-8")))
    assert len(keys) > 100
    for key in keys:
        for locale in ("zh_Hans", "en"):
            assert gettext(key, locale) != key, f"{key} missing in {locale}"


# --- command line --------------------------------------------------------------------------------

def test_caseworker_create_from_the_command_line(runner, session: Session) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(args=["caseworker", "create", "--name", "甲", "--login", "worker_a", "--password-stdin",
                                 "--township", "下营镇", "--township", "罗庄子镇", "--phone", "13800000099"],
                           input="pw-A-correct-horse-7\n")
    assert result.exit_code == 0, result.output
    user = session.scalars(select(Caseworker).where(Caseworker.login == "worker_a")).one()
    assert sorted(t.name for t in user.townships) == ["下营镇", "罗庄子镇"] and user.phone == "+8613800000099"
    again = runner.invoke(args=["caseworker", "create", "--name", "甲", "--login", "worker_a", "--password-stdin",
                                "--township", "下营镇"], input="pw-A-correct-horse-7\n")
    assert again.exit_code != 0 and "login_taken" in again.output
    short = runner.invoke(args=["caseworker", "create", "--name", "x", "--login", "x", "--password-stdin",
                                "--township", "下营镇"], input="short\n")
    assert short.exit_code != 0


def test_demo_loads_once_and_prints_a_working_login(runner, client: FlaskClient, session: Session) -> None:  # type: ignore[no-untyped-def]
    from models import Child

    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and "already loaded" in second.output
    assert len(session.scalars(select(Child)).all()) == 4
    password = re.search(r"password: (\S+)", second.output).group(1)
    login(client, "demo", password)
    assert "刘子涵" in client.get("/children").get_data(as_text=True)
