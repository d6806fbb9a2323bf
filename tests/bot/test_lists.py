"""Lists (花名册): each kind as .xlsx and CSV (UTF-8 BOM), audit-logged, roster marked since the last."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.lists import KINDS, export_list, resolve_scope
from models import AuditEvent, Child
from tests.builders import household

AS_OF = date(2026, 11, 30)


@pytest.fixture
def children(session: Session, now: datetime) -> dict[str, Child]:
    """One child per list kind in 下营镇 (蓟州区), and an ordinary one in 黄庄镇 (宝坻区)."""
    made = {}
    specs = {
        "no_hukou": {"has_hukou": False}, "dropout": {"school_status": "dropout"},
        "disabled": {"special_flags": ["disabled"]}, "ill": {"special_flags": ["seriously_ill"]},
        "poor_guardianship": {"guardianship_quality": "poor"}, "unattended": {"guardianship_type": "unattended"},
    }
    for i, (kind, values) in enumerate(specs.items()):
        home = household(session, now=now, name=f"儿童{i}", village_name=f"村{i}", father_phone=f"+861380000{i:04d}",
                         guardian_phone=f"+861390000{i:04d}")
        for key, value in values.items():
            setattr(home.child, key, value)
        home.child.id_number = f"12022120160504{i:03d}X"[:18]
        made[kind] = home.child
    other = household(session, now=now, name="=HYPERLINK(\"http://x\")", township_name="黄庄镇",
                      father_phone="+8613800009999", guardian_phone="+8613900009999")
    other.child.township.county = "宝坻区"
    made["other"] = other.child
    session.commit()
    return made


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "roster"])
def test_each_list_holds_its_children_in_xlsx(session: Session, children: dict[str, Child], kind: str,
                                              now: datetime) -> None:
    out = io.BytesIO()
    result = export_list(session, kind=kind, scope=resolve_scope(session, county="蓟州区"), fmt="xlsx", out=out,
                         actor=None, now=now, as_of=AS_OF)
    session.commit()
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("序号", "县(市、区)", "乡镇(街道)", "村(社区)", "儿童姓名")
    names = [r[4] for r in rows[1:]]
    assert children[kind].name in names and result.rows == len(names)
    assert "=HYPERLINK" not in " ".join(map(str, names))
    assert book.worksheets[1].title == "说明"


def test_csv_has_a_bom_keeps_numbers_as_text_and_defuses_formulas(session: Session, children: dict[str, Child],
                                                                   now: datetime) -> None:
    out = io.BytesIO()
    export_list(session, kind="roster", scope=resolve_scope(session), fmt="csv", out=out, actor=None, now=now,
                as_of=AS_OF)
    data = out.getvalue()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][0] == "较上期变动" and len(rows) == 1 + len(children)
    header = rows[0]
    formula_row = next(r for r in rows[1:] if "HYPERLINK" in r[header.index("儿童姓名")])
    assert formula_row[header.index("儿童姓名")].startswith("'=")
    assert formula_row[header.index("父亲电话")] == "\t+8613800009999"
    assert all(r[0] == "新增" for r in rows[1:])


def test_xlsx_never_writes_a_formula(session: Session, children: dict[str, Child], now: datetime) -> None:
    out = io.BytesIO()
    export_list(session, kind="roster", scope=resolve_scope(session, township="黄庄镇"), fmt="xlsx", out=out,
                actor=None, now=now, as_of=AS_OF)
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    cell = sheet.cell(row=2, column=6)
    assert cell.value.startswith("=HYPERLINK") and cell.data_type == "s"


def test_roster_marks_what_changed_since_the_last_export(session: Session, children: dict[str, Child],
                                                         now: datetime) -> None:
    scope = resolve_scope(session, township="下营镇")
    first = export_list(session, kind="roster", scope=scope, fmt="csv", out=io.BytesIO(), actor=None, now=now,
                        as_of=AS_OF)
    session.commit()
    assert first.since is None and first.rows == 6
    later = now + timedelta(days=90)
    children["dropout"].school_status = "in_school"
    children["dropout"].updated_at = later - timedelta(days=1)
    household(session, now=later - timedelta(days=2), name="新来的", village_name="新村",
              father_phone="+8613800077777", guardian_phone="+8613900077777")
    session.commit()
    out = io.BytesIO()
    second = export_list(session, kind="roster", scope=scope, fmt="csv", out=out, actor=None, now=later, as_of=AS_OF)
    session.commit()
    assert second.since == now
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    change = {r[rows[0].index("儿童姓名")]: r[0] for r in rows[1:]}
    assert change["新来的"] == "新增" and change[children["dropout"].name] == "变更"
    assert sorted(change.values()).count("无变化") == 5
    other_scope = export_list(session, kind="roster", scope=resolve_scope(session, county="蓟州区"), fmt="csv",
                              out=io.BytesIO(), actor=None, now=later, as_of=AS_OF)
    assert other_scope.since is None  # each scope keeps its own history


def test_cli_export_is_audited_with_the_os_user(app: Flask, session: Session, children: dict[str, Child],
                                                tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    out = tmp_path / "no_hukou.xlsx"
    result = runner.invoke(args=["lists", "export", "--kind", "no_hukou", "--township", "下营镇", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert openpyxl.load_workbook(out).worksheets[0].max_row == 2
    csv_out = tmp_path / "ill.csv"
    result = runner.invoke(args=["lists", "export", "--kind", "ill", "--county", "蓟州区", "--format", "csv",
                                 "--out", str(csv_out)])
    assert result.exit_code == 0 and csv_out.read_bytes().startswith(b"\xef\xbb\xbf")
    bad = runner.invoke(args=["lists", "export", "--kind", "ill", "--township", "无此镇", "--out", str(csv_out)])
    assert bad.exit_code == 2
    session.expire_all()
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "lists.export")
                             .order_by(AuditEvent.id)).all()
    assert [e.detail["kind"] for e in events] == ["no_hukou", "ill"]
    assert all(e.actor_id is None and e.detail["os_user"] and e.detail["via"] == "cli" for e in events)
    assert events[0].township_id == children["no_hukou"].township_id and events[0].detail["rows"] == 1
    assert events[1].detail["scope"] == "county:蓟州区"
    assert not list(tmp_path.glob("*.part"))
