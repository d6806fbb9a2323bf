"""Report pages: statistics with SVG charts, who needs attention, list exports and roster upload, in scope."""
from __future__ import annotations

import io
import re


import openpyxl
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Arrangement, AuditEvent, Child
from tests.bot.reports_helpers import generate
from tests.handlers.dashboard_helpers import World, csrf_token, login


@pytest.fixture(autouse=True)
def _fast_hashing(fast_hashing: None) -> None:
    """Every test here logs in: hash passwords cheaply."""


def test_pages_need_a_login(client: FlaskClient, world: World) -> None:
    for path in ("/reports/stats", "/reports/attention", "/reports/lists", "/reports/upload"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.post("/reports/lists/export", data={"kind": "roster", "scope": "all"}).status_code in (302, 400)


def test_stats_page_shows_numbers_and_svg_charts(client: FlaskClient, world: World) -> None:
    login(client, "super_j")
    html = client.get("/reports/stats").get_data(as_text=True)
    assert '<span id="stats-total">2</span>' in html  # 下营镇 and 罗庄子镇, not 黄庄镇 of 宝坻区
    assert html.count("<svg") >= 4 and "<script" not in html.split("</main>")[0].split("<main>")[1]
    assert "黄庄镇" not in html
    one = client.get(f"/reports/stats?township={world.a.child.township_id}").get_data(as_text=True)
    assert '<span id="stats-total">1</span>' in one


def test_caseworker_cannot_ask_for_another_township(client: FlaskClient, world: World) -> None:
    login(client, "worker_a")
    other = world.b.child.township_id
    assert client.get(f"/reports/stats?township={other}").status_code == 404
    assert client.get(f"/reports/attention?township={other}", follow_redirects=True).status_code == 404
    assert client.get(f"/children?township={other}").status_code == 404
    token = csrf_token(client, "/reports/lists")
    for scope in (f"township:{other}", "county:蓟州区", "all", "county:宝坻区"):
        response = client.post("/reports/lists/export", data={"kind": "roster", "scope": scope, "format": "csv",
                                                              "csrf_token": token})
        assert response.status_code == 404, scope


def test_attention_lists_unconfirmed_households_first(client: FlaskClient, session: Session, world: World) -> None:
    """Who needs attention is the children list (/children); the old address redirects there, query and all."""
    arrangement = session.scalars(select(Arrangement).where(Arrangement.child_id == world.b.child.id)).first()
    arrangement.status = "confirmed"
    session.commit()
    login(client, "super_j")
    moved = client.get("/reports/attention?arrangement=confirmed&q=%E9%99%88")
    assert moved.status_code == 302 and moved.headers["Location"] == "/children?arrangement=confirmed&q=%E9%99%88"
    assert client.get("/reports/attention").headers["Location"] == "/children"
    html = client.get("/reports/attention", follow_redirects=True).get_data(as_text=True)
    assert world.a.child.name in html and world.b.child.name not in html
    assert '<option value="unconfirmed" selected>' in html
    confirmed = client.get("/children?arrangement=confirmed").get_data(as_text=True)
    assert world.b.child.name in confirmed and world.a.child.name not in confirmed
    assert world.c.child.name not in client.get("/children?arrangement=any").get_data(as_text=True)
    assert session.scalar(select(func.count()).where(AuditEvent.action == "view_children_list")) == 3
    nav = re.search(r"<nav.*?</nav>", html, re.S).group(0)
    assert "/reports/attention" not in nav and nav.count('href="/children"') == 1


def test_list_export_downloads_an_audited_workbook(client: FlaskClient, session: Session, world: World) -> None:
    login(client, "worker_a")
    page = client.get("/reports/lists").get_data(as_text=True)
    assert f'value="township:{world.a.child.township_id}"' in page and "county:" not in page
    token = csrf_token(client, "/reports/lists")
    response = client.post("/reports/lists/export", data={"kind": "roster", "format": "xlsx", "csrf_token": token,
                                                          "scope": f"township:{world.a.child.township_id}"})
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(openpyxl.load_workbook(io.BytesIO(response.data)).worksheets[0].iter_rows(values_only=True))
    assert [r[5] for r in rows[1:]] == [world.a.child.name]
    csv_response = client.post("/reports/lists/export", data={"kind": "no_hukou", "format": "csv",
                                                              "csrf_token": token,
                                                              "scope": f"township:{world.a.child.township_id}"})
    assert csv_response.data.startswith(b"\xef\xbb\xbf")
    session.expire_all()
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "lists.export")).all()
    assert [(e.actor_id, e.detail["kind"]) for e in events] == [(world.users["worker_a"].id, "roster"),
                                                                (world.users["worker_a"].id, "no_hukou")]
    assert "roster" in client.get("/reports/lists").get_data(as_text=True) or events


def test_upload_names_bad_rows_and_imports_the_rest(client: FlaskClient, session: Session, world: World,
                                                    tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    bad = [int(line.split("\t")[0]) for line in generate("bad", path).splitlines() if line.strip()]
    before = session.scalar(select(func.count()).select_from(Child))
    login(client, "admin")
    token = csrf_token(client, "/reports/upload")
    response = client.post("/reports/upload", data={"csrf_token": token, "file": (path.open("rb"), "bad.csv")},
                           content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for row in bad:
        assert re.search(rf"第 ?{row} ?行", html), row
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Child)) == before + 50
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "roster.import")).one()
    assert event.detail["new"] == 50 and event.detail["rejected"] == 8


def test_upload_rejects_rows_outside_the_caseworkers_townships(client: FlaskClient, session: Session,
                                                               world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    generate("bad", path)
    mine = world.a.child.township_id
    outside = select(func.count()).select_from(Child).where(Child.township_id != mine)
    before = session.scalar(outside)
    login(client, "worker_a")
    token = csrf_token(client, "/reports/upload")
    html = client.post("/reports/upload", data={"csrf_token": token, "file": (path.open("rb"), "bad.csv")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "不在您的管辖范围" in html
    session.expire_all()
    assert session.scalar(outside) == before  # nothing outside 下营镇 imported
    assert session.scalar(select(func.count()).select_from(Child).where(Child.township_id == mine)) > 1
    dry = client.post("/reports/upload", data={"csrf_token": token, "dry_run": "1",
                                               "file": (io.BytesIO(b"foo,bar\n"), "x.csv")},
                      content_type="multipart/form-data")
    assert dry.status_code == 400


