"""Roster parsing and validation (bot/roster/parse.py) against the rules of ROSTER.md."""
from __future__ import annotations

import collections
import csv
import random
import re
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import phonenumbers
import pytest
from babel.messages.pofile import read_po
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.roster import parse as roster_parse
from bot.roster.parse import (
    ChildRow, FieldError, PersonRow, RosterFileError, RowRejected, format_file_error, format_row_error,
    normalize_header, normalize_phone, open_roster, parse_date, roster_gettext,
)

TODAY = date(2026, 6, 30)  # roster_gen.py's AS_OF
ROOT = Path(__file__).resolve().parents[3]
ROSTER_GEN = ROOT / "tests" / "data" / "roster_gen.py"  # a copy of the acceptance generator
needs_generator = pytest.mark.skipif(not ROSTER_GEN.exists(), reason="acceptance roster generator not present")

BASE_HEADER = ["儿童姓名", "性别", "出生日期", "身份证号", "乡镇", "村", "监护类型", "父亲电话", "监护人姓名",
               "监护人关系", "监护人电话"]
BASE_ROW = {"儿童姓名": "王子涵", "性别": "男", "出生日期": "2012-03-05", "身份证号": "", "乡镇": "下营镇",
            "村": "东庄村", "监护类型": "祖父母监护", "父亲电话": "13800138000", "监护人姓名": "王国庆",
            "监护人关系": "奶奶", "监护人电话": "13900139000"}


def id_check(body17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(body17, weights, strict=True)) % 11]


def make_id(birth: str, seq: str = "123") -> str:
    body = "120221" + birth + seq
    return body + id_check(body)


def write_csv(path: Path, table: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        csv.writer(handle).writerows(table)
    return path


def roster(tmp_path: Path, *rows: dict[str, str], header: list[str] | None = None,
           encoding: str = "utf-8", name: str = "roster.csv") -> Path:
    """A CSV roster of BASE_ROW variants: each dict overrides some cells of BASE_ROW."""
    header = header or BASE_HEADER
    table = [header] + [[{**BASE_ROW, **row}.get(column, "") for column in header] for row in rows]
    return write_csv(tmp_path / name, table, encoding)


def parse_all(path: Path, today: date = TODAY) -> list[ChildRow | RowRejected]:
    return list(open_roster(path, today=today))


def only_child(path: Path) -> ChildRow:
    (row,) = parse_all(path)
    assert isinstance(row, ChildRow), row
    return row


def only_rejection(path: Path) -> RowRejected:
    (row,) = parse_all(path)
    assert isinstance(row, RowRejected), row
    return row


def codes_by_column(rejected: RowRejected) -> dict[str, set[str]]:
    found: dict[str, set[str]] = collections.defaultdict(set)
    for problem in rejected.errors:
        found[problem.column].add(problem.code)
    return dict(found)


def run_generator(kind: str, out: Path) -> str:
    result = subprocess.run([sys.executable, str(ROSTER_GEN), kind, str(out)], capture_output=True, text=True,
                            check=True)
    return result.stderr


# ---------------------------------------------------------------------------------------------
# A good row, and the ChildRow it becomes


def test_good_row_becomes_child_with_people(tmp_path: Path) -> None:
    child = only_child(roster(tmp_path, {}))
    assert child.row_number == 2
    assert (child.name, child.sex, child.birth_date) == ("王子涵", "male", date(2012, 3, 5))
    assert (child.township, child.village, child.county) == ("下营镇", "东庄村", None)
    assert child.guardianship_type == "grandparents"
    assert child.has_hukou is True and child.id_number is None and child.school_status is None
    assert child.people == (
        PersonRow("father", None, "+8613800138000", None, None, "sms"),
        PersonRow("guardian", "王国庆", "+8613900139000", "奶奶", None, "sms"),
    )
    assert child.identity() == ("nbtv", "王子涵", "2012-03-05", "下营镇", "东庄村")


def test_identity_prefers_id_number(tmp_path: Path) -> None:
    number = make_id("20120305", "123")
    child = only_child(roster(tmp_path, {"身份证号": number}))
    assert child.identity() == ("id", number)


def test_every_value_is_stripped_and_full_width_digits_normalised(tmp_path: Path) -> None:
    header = [*BASE_HEADER, "特殊情况", "学校"]
    child = only_child(roster(tmp_path, {"儿童姓名": "  王子涵\u3000", "出生日期": "２０１２－０３－０５",
                                         "父亲电话": "１３８ ００１３ ８０００", "乡镇": " 下营镇 ",
                                         "特殊情况": "患病（哮喘），需照顾", "学校": "第１小学",
                                         "监护类型": "（外）祖父母监护"}, header=header))
    assert (child.name, child.birth_date, child.township) == ("王子涵", date(2012, 3, 5), "下营镇")
    assert child.people[0].phone == "+8613800138000"
    assert child.special_circumstances == "患病（哮喘），需照顾"  # Chinese punctuation kept in free text
    assert child.school == "第1小学"
    assert child.guardianship_type == "grandparents"


def test_people_without_name_or_phone_are_left_out(tmp_path: Path) -> None:
    header = [*BASE_HEADER, "母亲务工地", "帮扶人姓名", "帮扶人电话"]
    child = only_child(roster(tmp_path, {"父亲电话": "", "监护人姓名": "", "监护人电话": "", "母亲务工地": "北京",
                                         "帮扶人姓名": "李老师", "监护类型": "无人监护"}, header=header))
    assert [p.role for p in child.people] == ["helper"]
    assert child.people[0] == PersonRow("helper", "李老师", None, None, None, "sms")


def test_placeholder_cells_count_as_blank(tmp_path: Path) -> None:
    child = only_child(roster(tmp_path, {"父亲电话": "无", "监护人电话": "/", "监护人姓名": "-"}))
    assert child.people == ()  # a relationship alone does not make a person


def test_blank_rows_are_skipped_but_keep_row_numbers(tmp_path: Path) -> None:
    table = [BASE_HEADER, [BASE_ROW[c] for c in BASE_HEADER], [], ["", " ", ""],
             [BASE_ROW[c] if c != "儿童姓名" else "李四" for c in BASE_HEADER]]
    rows = parse_all(write_csv(tmp_path / "r.csv", table))
    assert [r.row_number for r in rows] == [2, 5]


def test_a_quoted_line_break_is_one_spreadsheet_row(tmp_path: Path) -> None:
    header = [*BASE_HEADER, "特殊情况"]
    rows = parse_all(roster(tmp_path, {"特殊情况": "第一行\n第二行"}, {"儿童姓名": "李四", "父亲电话": "123"},
                            header=header))
    assert isinstance(rows[0], ChildRow) and rows[0].special_circumstances == "第一行 第二行"
    assert isinstance(rows[1], RowRejected) and rows[1].row_number == 3


# ---------------------------------------------------------------------------------------------
# Encodings and file-level errors


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_encodings(tmp_path: Path, encoding: str) -> None:
    child = only_child(roster(tmp_path, {"儿童姓名": "欧阳娜娜", "村": "后沟村"}, encoding=encoding))
    assert (child.name, child.village) == ("欧阳娜娜", "后沟村")


def test_bom_does_not_leak_into_the_first_header(tmp_path: Path) -> None:
    reader = open_roster(roster(tmp_path, {}, encoding="utf-8-sig"), today=TODAY)
    assert reader.columns["child_name"] == "儿童姓名"
    assert reader.unknown_columns == []


def test_undecodable_file_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes("儿童姓名,乡镇\n".encode() + b"\x80\xff\x80\xff,\xfe\n")
    with pytest.raises(RosterFileError) as caught:
        open_roster(path, today=TODAY)
    assert caught.value.code == "roster.file.encoding"


def test_garbage_binary_file_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(random.Random(5).randbytes(20000))
    with pytest.raises(RosterFileError) as caught:
        open_roster(path, today=TODAY)
    assert caught.value.code in ("roster.file.binary", "roster.file.encoding", "roster.file.missing_columns")


def test_binary_file_without_nul_bytes_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    rng = random.Random(6)
    path.write_bytes(bytes(rng.randrange(1, 256) for _ in range(20000)))
    with pytest.raises(RosterFileError):
        open_roster(path, today=TODAY)


@pytest.mark.parametrize("content, code", [
    (b"", "roster.file.empty"),
    (b"\r\n\r\n , \r\n", "roster.file.empty"),
    ("儿童姓名,出生日期,乡镇,村,监护类型\r\n".encode("gbk"), "roster.file.no_rows"),
    ("儿童姓名,出生日期,乡镇,村,监护类型\r\n,,,,\r\n\r\n".encode(), "roster.file.no_rows"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "roster.file.xls_unsupported"),
    ("\ufeff儿童姓名,出生日期".encode("utf-16"), "roster.file.binary"),
])
def test_file_errors(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(content)
    with pytest.raises(RosterFileError) as caught:
        open_roster(path, today=TODAY)
    assert caught.value.code == code


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(RosterFileError) as caught:
        open_roster(tmp_path / "nope.csv", today=TODAY)
    assert caught.value.code == "roster.file.not_found"
    with pytest.raises(RosterFileError) as caught:
        open_roster(tmp_path, today=TODAY)
    assert caught.value.code == "roster.file.unreadable"


def test_huge_csv_is_a_file_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(roster_parse, "_MAX_CSV_BYTES", 100)
    with pytest.raises(RosterFileError) as caught:
        open_roster(roster(tmp_path, {}, {}, {}), today=TODAY)
    assert caught.value.code == "roster.file.too_large"


def test_xlsx_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(b"this is not a workbook")
    with pytest.raises(RosterFileError) as caught:
        open_roster(path, today=TODAY)
    assert caught.value.code == "roster.file.xlsx_invalid"


def test_truncated_xlsx_is_a_file_error(tmp_path: Path) -> None:
    good = build_xlsx(tmp_path / "good.xlsx", [BASE_HEADER, [BASE_ROW[c] for c in BASE_HEADER]])
    path = tmp_path / "cut.xlsx"
    path.write_bytes(good.read_bytes()[:600])
    with pytest.raises(RosterFileError) as caught:
        list(open_roster(path, today=TODAY))
    assert caught.value.code == "roster.file.xlsx_invalid"


def test_malformed_csv_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("儿童姓名,出生日期,乡镇,村,监护类型\n" + "a," * 3 + '"' + "x" * 200_000 + '"\n', encoding="utf-8")
    with pytest.raises(RosterFileError) as caught:
        open_roster(path, today=TODAY)
    assert caught.value.code == "roster.file.csv_invalid"


# ---------------------------------------------------------------------------------------------
# Headers


def test_aliases_any_order_and_unknown_columns_reported_once(tmp_path: Path) -> None:
    header = ["备注", "村(居)", "留守类型", "出生年月日", "联系电话", "受委托监护人", "与儿童关系", "监护人手机",
              "乡镇(街道)", "留守儿童姓名", "县(市、区)", "父亲联系电话", "序号"]
    row = ["肢体残疾", "东庄村", "(外)祖父母监护", "2012年3月5日", "010-1", "王国庆", "外公", "+86 139 0013 9000",
           "下营镇", "王子涵", "蓟州区", "138-0013-8000", "1"]
    reader = open_roster(write_csv(tmp_path / "r.csv", [header, row]), today=TODAY)
    assert reader.unknown_columns == ["联系电话", "序号"]
    assert reader.columns["child_name"] == "留守儿童姓名"
    assert reader.columns["village"] == "村(居)"
    assert reader.columns["special_circumstances"] == "备注"
    (child,) = list(reader)
    assert isinstance(child, ChildRow)
    assert (child.name, child.village, child.county, child.guardianship_type) == (
        "王子涵", "东庄村", "蓟州区", "grandparents")
    assert child.special_flags == frozenset({"disabled"})
    assert child.people[1].relationship == "外公"


@pytest.mark.parametrize("written, canonical", [
    ("儿童姓名（必填）", "儿童姓名"), ("儿童姓名(必填)", "儿童姓名"), (" 儿 童 姓 名 ", "儿童姓名"),
    ("*儿童姓名", "儿童姓名"), ("出生日期\n（必填）", "出生日期"), ("乡镇（街道）", "乡镇"), ("村（社区）", "村"),
    ("县（市、区）", "县"), ("父亲电话(选填)", "父亲电话"), ("父亲电话（手机）", "父亲电话"),
    ("ＦＵ父亲电话", None), ("姓名", "儿童姓名"), ("村居", "村"),
])
def test_header_matching(written: str, canonical: str | None) -> None:
    key = roster_parse._match_header(written)
    assert (roster_parse.FIELD_BY_KEY[key].header if key else None) == canonical


def test_normalize_header_folds_width_and_notes() -> None:
    assert normalize_header("乡镇（街道）（必填）") == "乡镇(街道)"
    assert normalize_header("ＡＢＣ １２") == "ABC12"


def test_missing_required_columns_is_a_file_error_naming_them(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [["儿童姓名", "出生日期", "监护类型"], ["王子涵", "2012-03-05", "无人监护"]])
    with pytest.raises(RosterFileError) as caught:
        open_roster(path, today=TODAY)
    assert caught.value.code == "roster.file.missing_columns"
    assert caught.value.params["columns"] == "乡镇、村"


def test_birth_date_column_needed_unless_id_column(tmp_path: Path) -> None:
    header = ["儿童姓名", "乡镇", "村", "监护类型"]
    with pytest.raises(RosterFileError) as caught:
        open_roster(write_csv(tmp_path / "a.csv", [header, ["王", "镇", "村", "无人监护"]]), today=TODAY)
    assert "出生日期" in str(caught.value.params["columns"])
    number = make_id("20150101", "124")
    child = only_child(write_csv(tmp_path / "b.csv", [[*header, "身份证号"], ["王", "镇", "村", "无人监护", number]]))
    assert child.birth_date == date(2015, 1, 1) and child.sex == "female"
    blank_id = [[*header, "身份证号"], ["王", "镇", "村", "无人监护", ""]]
    rejected = only_rejection(write_csv(tmp_path / "c.csv", blank_id))
    assert codes_by_column(rejected) == {"身份证号": {"roster.error.birth_or_id_required"}}


def test_title_rows_above_the_header_are_skipped(tmp_path: Path) -> None:
    table = [["XX镇农村留守儿童花名册"], ["填报单位：XX镇", "", "日期：2026年6月"],
             BASE_HEADER, [BASE_ROW[c] for c in BASE_HEADER]]
    reader = open_roster(write_csv(tmp_path / "r.csv", table), today=TODAY)
    assert reader.header_row == 3
    (child,) = list(reader)
    assert isinstance(child, ChildRow) and child.row_number == 4


def test_duplicate_header_keeps_the_first(tmp_path: Path) -> None:
    header = [*BASE_HEADER, "姓名"]
    reader = open_roster(roster(tmp_path, {"姓名": "别人"}, header=header), today=TODAY)
    assert reader.duplicate_columns == ["姓名"]
    (child,) = list(reader)
    assert isinstance(child, ChildRow) and child.name == "王子涵"


def test_thousand_columns_with_the_required_ones(tmp_path: Path) -> None:
    header = BASE_HEADER + [f"列{i}" for i in range(1000 - len(BASE_HEADER))]
    row = [BASE_ROW[c] for c in BASE_HEADER] + ["x"] * (1000 - len(BASE_HEADER))
    reader = open_roster(write_csv(tmp_path / "wide.csv", [header, row, row[:5]]), today=TODAY)
    assert len(reader.unknown_columns) == 1000 - len(BASE_HEADER)
    rows = list(reader)
    assert isinstance(rows[0], ChildRow)
    assert isinstance(rows[1], RowRejected)  # a short row: its missing cells are blank
    assert "roster.error.required" in codes_by_column(rows[1])["监护类型"]


def test_thousand_unknown_columns_is_a_file_error(tmp_path: Path) -> None:
    header = [f"column {i}" for i in range(1000)]
    path = write_csv(tmp_path / "wide.csv", [header, ["1"] * 1000])
    with pytest.raises(RosterFileError) as caught:
        open_roster(path, today=TODAY)
    assert caught.value.code == "roster.file.missing_columns"


def test_total_rows_counts_data_rows(tmp_path: Path) -> None:
    reader = open_roster(roster(tmp_path, {}, {"儿童姓名": "李四"}, {"儿童姓名": ""}), today=TODAY)
    assert reader.total_rows == 3


# ---------------------------------------------------------------------------------------------
# Dates


@pytest.mark.parametrize("text", ["2012-03-05", "2012/3/5", "2012年3月5日", "20120305", "2012.3.5", "2012-3-5",
                                  "2012年03月05日", "2012-03-05 00:00:00", " 2012 - 3 - 5 ", "２０１２年３月５日",
                                  "40973", "40973.0"])
def test_date_forms(tmp_path: Path, text: str) -> None:
    assert only_child(roster(tmp_path, {"出生日期": text})).birth_date == date(2012, 3, 5)


@pytest.mark.parametrize("raw", [datetime(2012, 3, 5, 0, 0), date(2012, 3, 5), 40973, 40973.25, 20120305])
def test_parse_date_from_cell_values(raw: object) -> None:
    assert parse_date(raw) == date(2012, 3, 5)


@pytest.mark.parametrize("text", ["2010-13-45", "2012-02-30", "2012-03", "12-3-5", "三月五日", "2012年3月", "abc",
                                  "201203051", "0"])
def test_bad_dates(tmp_path: Path, text: str) -> None:
    rejected = only_rejection(roster(tmp_path, {"出生日期": text}))
    assert codes_by_column(rejected) == {"出生日期": {"roster.error.date_invalid"}}
    assert rejected.errors[0].params["value"] == text


def test_future_birth_date(tmp_path: Path) -> None:
    rejected = only_rejection(roster(tmp_path, {"出生日期": "2026-07-01"}))
    assert codes_by_column(rejected) == {"出生日期": {"roster.error.date_in_future"}}
    assert isinstance(parse_all(roster(tmp_path, {"出生日期": "2026-06-30"}))[0], ChildRow)  # born today


def test_eighteenth_birthday_rejects(tmp_path: Path) -> None:
    rejected = only_rejection(roster(tmp_path, {"出生日期": "2008-06-30"}))
    assert codes_by_column(rejected) == {"出生日期": {"roster.error.too_old"}}
    assert rejected.errors[0].params["age"] == "18"
    assert only_child(roster(tmp_path, {"出生日期": "2008-07-01"})).birth_date == date(2008, 7, 1)


def test_blank_birth_date_without_id(tmp_path: Path) -> None:
    rejected = only_rejection(roster(tmp_path, {"出生日期": ""}))
    assert codes_by_column(rejected) == {"出生日期": {"roster.error.birth_or_id_required"}}
    header = [c for c in BASE_HEADER if c != "身份证号"]
    rejected = only_rejection(roster(tmp_path, {"出生日期": ""}, header=header))
    assert codes_by_column(rejected) == {"出生日期": {"roster.error.required"}}


# ---------------------------------------------------------------------------------------------
# ID numbers


def test_id_fills_blank_birth_date_and_sex(tmp_path: Path) -> None:
    number = make_id("20150607", "246")  # 17th digit 6: female
    child = only_child(roster(tmp_path, {"身份证号": number, "出生日期": "", "性别": ""}))
    assert (child.birth_date, child.sex, child.id_number) == (date(2015, 6, 7), "female", number)
    number = make_id("20150607", "135")
    assert only_child(roster(tmp_path, {"身份证号": number, "出生日期": "", "性别": ""})).sex == "male"


def test_id_with_lower_case_x_and_spaces() -> None:
    seq = next(f"{n:03d}" for n in range(1000) if id_check(f"12022120120305{n:03d}") == "X")
    number = "12022120120305" + seq + "X"
    assert roster_parse._ID_RE.fullmatch(number)


def test_id_check_digit_x(tmp_path: Path) -> None:
    seq = next(f"{n:03d}" for n in range(1000) if id_check(f"12022120120305{n:03d}") == "X")
    number = "12022120120305" + seq + "X"
    spaced = f"{number[:6]} {number[6:14]} {number[14:-1]}x"
    child = only_child(roster(tmp_path, {"身份证号": spaced, "出生日期": "", "性别": ""}))
    assert child.id_number == number


def test_id_agreeing_with_birth_date_and_sex(tmp_path: Path) -> None:
    number = make_id("20120305", "135")
    child = only_child(roster(tmp_path, {"身份证号": number, "出生日期": "2012/3/5", "性别": "男"}))
    assert child.id_number == number


def test_id_disagreeing_with_birth_date_and_sex(tmp_path: Path) -> None:
    number = make_id("20120306", "246")
    rejected = only_rejection(roster(tmp_path, {"身份证号": number, "出生日期": "2012-03-05", "性别": "男"}))
    assert codes_by_column(rejected) == {"出生日期": {"roster.error.id_birth_mismatch"},
                                         "性别": {"roster.error.id_sex_mismatch"}}
    assert rejected.errors[0].params["id_birth"] == "2012-03-06"


@pytest.mark.parametrize("number, code", [
    (make_id("20120305")[:-1] + ("0" if make_id("20120305")[-1] != "0" else "1"), "roster.error.id_checksum"),
    (make_id("20120230"), "roster.error.id_birth_invalid"),
    ("120221120305123", "roster.error.id_format"),  # an old 15-digit number
    ("12022120120305123", "roster.error.id_format"),
    ("1202212012030512345", "roster.error.id_format"),
    ("12022120120305123A", "roster.error.id_format"),
    ("1.20221E+17", "roster.error.scientific_notation"),
])
def test_bad_id_numbers(tmp_path: Path, number: str, code: str) -> None:
    rejected = only_rejection(roster(tmp_path, {"身份证号": number, "出生日期": ""}))
    assert codes_by_column(rejected) == {"身份证号": {code}}


def test_id_birth_date_too_old_is_reported_on_the_id_column(tmp_path: Path) -> None:
    rejected = only_rejection(roster(tmp_path, {"身份证号": make_id("19900101"), "出生日期": ""}))
    assert codes_by_column(rejected) == {"身份证号": {"roster.error.too_old"}}


# ---------------------------------------------------------------------------------------------
# Phones


@pytest.mark.parametrize("text", ["13800138000", "+86 138 0013 8000", "+8613800138000", "8613800138000",
                                  "86 13800138000", "138-0013-8000", "138 0013 8000", "(+86)138-0013-8000",
                                  "0086 138 0013 8000", "１３８００１３８０００", "'13800138000", "13800138000.0"])
def test_phone_forms(tmp_path: Path, text: str) -> None:
    child = only_child(roster(tmp_path, {"父亲电话": text}))
    assert child.people[0].phone == "+8613800138000"


@pytest.mark.parametrize("text, code", [
    ("1380013", "roster.error.phone_invalid"), ("138001380001", "roster.error.phone_invalid"),
    ("12345678901", "roster.error.phone_invalid"), ("abc", "roster.error.phone_invalid"),
    ("+852 9123 4567", "roster.error.phone_invalid"), ("+1 650 253 0000", "roster.error.phone_invalid"),
    ("010-62345678", "roster.error.phone_landline"), ("13800138000/13900139000", "roster.error.phone_multiple"),
    ("13800138000 13900139000", "roster.error.phone_multiple"), ("1.38001E+10", "roster.error.scientific_notation"),
])
def test_bad_phones(tmp_path: Path, text: str, code: str) -> None:
    rejected = only_rejection(roster(tmp_path, {"父亲电话": text}))
    assert codes_by_column(rejected) == {"父亲电话": {code}}
    assert rejected.errors[0].params["value"] == text


def test_fast_phone_path_agrees_with_phonenumbers() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        national = f"1{rng.randrange(10**10):010d}"
        try:
            parsed = phonenumbers.parse(national, "CN")
        except phonenumbers.NumberParseException:
            expected = False
        else:
            expected = (phonenumbers.is_valid_number(parsed)
                        and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE)
        e164, _ = normalize_phone(national)
        assert (e164 is not None) == expected, national
        if e164:
            assert e164 == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def test_every_bad_cell_of_a_row_is_reported(tmp_path: Path) -> None:
    rejected = only_rejection(roster(tmp_path, {"儿童姓名": "", "出生日期": "2030-01-01", "父亲电话": "1",
                                                "监护人电话": "2", "监护类型": "不知道", "性别": "未知"}))
    assert codes_by_column(rejected) == {
        "儿童姓名": {"roster.error.required"}, "出生日期": {"roster.error.date_in_future"},
        "父亲电话": {"roster.error.phone_invalid"}, "监护人电话": {"roster.error.phone_invalid"},
        "监护类型": {"roster.error.guardianship_type_invalid"}, "性别": {"roster.error.sex_invalid"}}


# ---------------------------------------------------------------------------------------------
# Vocabularies


GUARDIANSHIP_LABELS = {"祖父母监护": "grandparents", "外祖父母监护": "grandparents", "(外)祖父母监护": "grandparents",
                       "（外）祖父母监护": "grandparents", "由(外)祖父母监护": "grandparents",
                       "亲戚朋友监护": "relatives", "亲属监护": "relatives", "无人监护": "unattended",
                       "父母一方外出另一方无监护能力": "one_parent_incapable", "一方无监护能力": "one_parent_incapable"}


@pytest.mark.parametrize("label, key", GUARDIANSHIP_LABELS.items())
def test_guardianship_type_labels(tmp_path: Path, label: str, key: str) -> None:
    assert only_child(roster(tmp_path, {"监护类型": label})).guardianship_type == key


@pytest.mark.parametrize("label", ["不知道", "父母监护", "祖父母"])
def test_unknown_guardianship_type(tmp_path: Path, label: str) -> None:
    rejected = only_rejection(roster(tmp_path, {"监护类型": label}))
    assert codes_by_column(rejected) == {"监护类型": {"roster.error.guardianship_type_invalid"}}


def vocabulary_case(column: str, text: str, attribute: str, expected: object) -> tuple[str, str, str, object]:
    return column, text, attribute, expected


@pytest.mark.parametrize("column, text, attribute, expected", [
    vocabulary_case("户口登记", "是", "has_hukou", True), vocabulary_case("户口登记", "", "has_hukou", True),
    vocabulary_case("户口登记", "有", "has_hukou", True), vocabulary_case("户口登记", "否", "has_hukou", False),
    vocabulary_case("户口登记", "无", "has_hukou", False), vocabulary_case("户口登记", "/", "has_hukou", True),
    vocabulary_case("是否登记户口", "否", "has_hukou", False), vocabulary_case("有无户口", "没有", "has_hukou", False),
    vocabulary_case("就学状态", "学龄前", "school_status", "preschool"),
    vocabulary_case("就学状态", "在读", "school_status", "in_school"),
    vocabulary_case("就学状态", "辍学", "school_status", "dropout"),
    vocabulary_case("就学状态", "未入学", "school_status", "not_enrolled"),
    vocabulary_case("就学状态", "", "school_status", None),
    vocabulary_case("监护情况", "较好", "guardianship_quality", "good"),
    vocabulary_case("监护情况", "一般", "guardianship_quality", "fair"),
    vocabulary_case("监护情况", "差", "guardianship_quality", "poor"),
    vocabulary_case("监护状况", "", "guardianship_quality", None),
    vocabulary_case("性别", "女", "sex", "female"), vocabulary_case("性别", "", "sex", None),
    vocabulary_case("学校", " 下营镇中心小学 ", "school", "下营镇中心小学"),
    vocabulary_case("县", "蓟州区", "county", "蓟州区"),
])
def test_vocabularies(tmp_path: Path, column: str, text: str, attribute: str, expected: object) -> None:
    child = only_child(roster(tmp_path, {column: text}, header=[*BASE_HEADER, column]))
    assert getattr(child, attribute) == expected


@pytest.mark.parametrize("column, text, code", [
    ("户口登记", "也许", "roster.error.hukou_invalid"), ("就学状态", "毕业", "roster.error.school_status_invalid"),
    ("监护情况", "很好很好", "roster.error.guardianship_quality_invalid"),
    ("联系方式", "微信", "roster.error.channel_invalid"), ("性别", "X", "roster.error.sex_invalid"),
    ("儿童姓名", "王" * 51, "roster.error.too_long"),
])
def test_vocabulary_errors(tmp_path: Path, column: str, text: str, code: str) -> None:
    header = BASE_HEADER if column in BASE_HEADER else [*BASE_HEADER, column]
    rejected = only_rejection(roster(tmp_path, {column: text}, header=header))
    assert codes_by_column(rejected) == {column: {code}}


@pytest.mark.parametrize("text, channel", [("", "sms"), ("短信", "sms"), ("电话", "voice"), ("语音", "voice"),
                                           ("短信和电话", "both"), ("短信 和 电话", "both")])
def test_channel_applies_to_the_guardian(tmp_path: Path, text: str, channel: str) -> None:
    child = only_child(roster(tmp_path, {"联系方式": text}, header=[*BASE_HEADER, "联系方式"]))
    channels = {p.role: p.channel for p in child.people}
    assert channels == {"father": "sms", "guardian": channel}


@pytest.mark.parametrize("text, flags", [
    ("残疾", {"disabled"}), ("肢体残疾", {"disabled"}), ("患病", {"ill"}), ("重病", {"seriously_ill", "ill"}),
    ("残疾，患病", {"disabled", "ill"}), ("无残疾", set()), ("父亲外出", set()), ("", set()),
])
def test_special_flags(tmp_path: Path, text: str, flags: set[str]) -> None:
    child = only_child(roster(tmp_path, {"特殊情况": text}, header=[*BASE_HEADER, "特殊情况"]))
    assert child.special_flags == frozenset(flags)
    assert child.special_circumstances == (text or None)


def test_relationship_kept_as_written(tmp_path: Path) -> None:
    for label in ["祖母", "奶奶", "外公", "母亲"]:
        child = only_child(roster(tmp_path, {"监护人关系": f" {label} "}))
        assert child.people[-1].relationship == label


def test_workplaces_belong_to_parents(tmp_path: Path) -> None:
    header = [*BASE_HEADER, "父亲姓名", "父亲务工地点", "母亲姓名", "母亲手机", "母亲务工地"]
    child = only_child(roster(tmp_path, {"父亲姓名": "王强", "父亲务工地点": "江苏苏州", "母亲姓名": "李丽",
                                         "母亲手机": "15012345678", "母亲务工地": "北京"}, header=header))
    by_role = {p.role: p for p in child.people}
    assert by_role["father"] == PersonRow("father", "王强", "+8613800138000", None, "江苏苏州", "sms")
    assert by_role["mother"] == PersonRow("mother", "李丽", "+8615012345678", None, "北京", "sms")


def test_the_same_child_twice_is_rejected(tmp_path: Path) -> None:
    rows = parse_all(roster(tmp_path, {}, {"监护人姓名": "别人"}))
    assert isinstance(rows[0], ChildRow)
    assert isinstance(rows[1], RowRejected)
    assert rows[1].errors[0].code == "roster.error.duplicate_row" and rows[1].errors[0].params == {"row": "2"}


# ---------------------------------------------------------------------------------------------
# .xlsx


def build_xlsx(path: Path, table: list[list[object]], *, title_rows: int = 0) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for _ in range(title_rows):
        sheet.append(["花名册"])
    for row in table:
        sheet.append(row)
    workbook.save(path)
    return path


def test_xlsx_with_date_cells_and_numeric_phones(tmp_path: Path) -> None:
    import openpyxl

    number = make_id("20150607", "246")
    header = [*BASE_HEADER, "联系方式"]
    rows = [
        ["王子涵", "男", datetime(2012, 3, 5), None, "下营镇", "东庄村", "祖父母监护", 13800138000, "王国庆", "奶奶",
         13900139000.0, "电话"],
        ["李四", None, None, number, "下营镇", "东庄村", "无人监护", "+86 138 0013 8001", None, None, None, None],
        ["张三", "女", 40973, None, "下营镇", "西庄村", "亲属监护", 12345, None, None, None, None],
        ["赵六", "女", date(2013, 1, 2), 120221201501011230, "下营镇", "西庄村", "亲属监护", None, None, None, None,
         None],
    ]
    path = build_xlsx(tmp_path / "r.xlsx", [header, *rows])
    workbook = openpyxl.load_workbook(path)
    workbook.active["C4"].number_format = "General"  # a bare serial number, not a date cell
    workbook.save(path)
    reader = open_roster(path, today=TODAY)
    assert reader.total_rows == 4
    first, second, third, fourth = list(reader)
    assert isinstance(first, ChildRow) and first.birth_date == date(2012, 3, 5)
    assert [p.phone for p in first.people] == ["+8613800138000", "+8613900139000"]
    assert first.people[1].channel == "voice"
    assert isinstance(second, ChildRow) and second.birth_date == date(2015, 6, 7) and second.sex == "female"
    assert isinstance(third, RowRejected) and third.row_number == 4
    assert codes_by_column(third) == {"父亲电话": {"roster.error.phone_invalid"}}
    assert isinstance(fourth, RowRejected)  # an ID typed as a number has lost its last digits
    assert codes_by_column(fourth)["身份证号"] == {"roster.error.scientific_notation"}


def test_xlsx_float_id_cells_and_serial_dates() -> None:
    assert roster_parse._digit_text(13800000001.0) == ("13800000001", False)
    assert roster_parse._digit_text(13800000001) == ("13800000001", False)
    assert roster_parse._digit_text(1.2022120150101123e17)[1] is True
    assert parse_date(40973.0) == date(2012, 3, 5)


def test_xlsx_merged_cells_and_formulas_without_cached_values(tmp_path: Path) -> None:
    import openpyxl

    header = BASE_HEADER
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    sheet.append([BASE_ROW[c] for c in header])
    sheet.append([BASE_ROW[c] if c != "儿童姓名" else "李四" for c in header])
    sheet.append([BASE_ROW[c] if c != "儿童姓名" else "=A2&\"二\"" for c in header])
    sheet.merge_cells("E2:E3")  # 乡镇 merged over two rows: only E2 keeps its value
    path = tmp_path / "merged.xlsx"
    workbook.save(path)
    rows = list(open_roster(path, today=TODAY))
    assert isinstance(rows[0], ChildRow)
    assert isinstance(rows[1], RowRejected) and codes_by_column(rows[1]) == {"乡镇": {"roster.error.required"}}
    assert isinstance(rows[2], RowRejected) and codes_by_column(rows[2]) == {"儿童姓名": {"roster.error.required"}}


def test_xlsx_with_title_row_and_wrong_dimension(tmp_path: Path) -> None:
    path = build_xlsx(tmp_path / "r.xlsx", [BASE_HEADER, [BASE_ROW[c] for c in BASE_HEADER]], title_rows=1)
    reader = open_roster(path, today=TODAY)
    (child,) = list(reader)
    assert isinstance(child, ChildRow) and child.row_number == 3


def test_xlsx_header_only(tmp_path: Path) -> None:
    with pytest.raises(RosterFileError) as caught:
        open_roster(build_xlsx(tmp_path / "r.xlsx", [BASE_HEADER]), today=TODAY)
    assert caught.value.code == "roster.file.no_rows"


def test_xlsx_with_a_thousand_columns(tmp_path: Path) -> None:
    header = BASE_HEADER + [f"列{i}" for i in range(1000 - len(BASE_HEADER))]
    path = build_xlsx(tmp_path / "wide.xlsx", [header, [BASE_ROW[c] for c in BASE_HEADER] + [1] * 989])
    reader = open_roster(path, today=TODAY)
    assert len(reader.unknown_columns) == 989
    assert isinstance(next(iter(reader)), ChildRow)


# ---------------------------------------------------------------------------------------------
# The generated rosters of the acceptance checks


@needs_generator
def test_bad_roster_rows_are_rejected_on_the_right_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    stderr = run_generator("bad", path)
    expected = {int(line.split("\t")[0]): line.split("\t")[1] for line in stderr.splitlines() if line.strip()}
    assert len(expected) == 8
    rows = parse_all(path)
    rejected = {r.row_number: r for r in rows if isinstance(r, RowRejected)}
    assert sorted(rejected) == sorted(expected)
    assert sum(isinstance(r, ChildRow) for r in rows) == 50
    zh, en = roster_gettext("zh_Hans"), roster_gettext("en")
    for row_number, column in expected.items():
        row = rejected[row_number]
        assert column in {e.column for e in row.errors}, (row_number, row)
        assert any(line.startswith(f"第{row_number}行 {column}: ") for line in format_row_error(row, zh))
        assert any(line.startswith(f"Row {row_number} {column}: ") for line in format_row_error(row, en))


@needs_generator
def test_tianjin_roster(tmp_path: Path) -> None:
    path = tmp_path / "tianjin.csv"
    run_generator("tianjin", path)
    reader = open_roster(path, today=TODAY)
    assert reader.unknown_columns == []
    rows = list(reader)
    assert [r for r in rows if isinstance(r, RowRejected)] == []
    assert len(rows) == reader.total_rows == 1236
    counts = collections.Counter(r.guardianship_type for r in rows if isinstance(r, ChildRow))
    assert counts == {"grandparents": 970, "relatives": 33, "unattended": 35, "one_parent_incapable": 198}
    children = [r for r in rows if isinstance(r, ChildRow)]
    assert sum(c.school_status == "dropout" for c in children) == 7
    assert sum(not c.has_hukou for c in children) == 13
    assert sum(c.guardianship_quality == "poor" for c in children) == 356
    bands = collections.Counter(
        "0-5" if age < 6 else "6-13" if age < 14 else "14-16"
        for age in (roster_parse._age_on(c.birth_date, TODAY) for c in children))
    assert bands == {"0-5": 279, "6-13": 834, "14-16": 123}


@needs_generator
def test_jilin_roster_is_parsed_quickly(tmp_path: Path) -> None:
    path = tmp_path / "jilin.csv"
    run_generator("jilin", path)
    started = time.perf_counter()
    reader = open_roster(path, today=TODAY)
    assert reader.total_rows == 50108
    counts: collections.Counter[str] = collections.Counter()
    rejected = 0
    for row in reader:
        if isinstance(row, ChildRow):
            counts[row.guardianship_type] += 1
        else:
            rejected += 1
    elapsed = time.perf_counter() - started
    assert rejected == 0
    assert counts == {"grandparents": 40757, "relatives": 1187, "unattended": 1374, "one_parent_incapable": 6790}
    assert elapsed < 20, f"parsing 50,108 rows took {elapsed:.1f}s"


# ---------------------------------------------------------------------------------------------
# Robustness


cell_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "无", "/", "2012-03-05", "20120305", "2012年3月5日", "13800138000", "+86 138",
                     "祖父母监护", "无人监护", "是", "否", "男", "女", "短信", "电话", "X", "1.2E+17", "40973",
                     make_id("20120305"), "\x00", "\ufeff", "\r\n", '"', "=A1"]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra_header=st.lists(st.text(max_size=12), max_size=4),
       rows=st.lists(st.lists(cell_text, max_size=18), min_size=0, max_size=6),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
def test_random_cells_never_crash(tmp_path: Path, extra_header: list[str], rows: list[list[str]],
                                  encoding: str) -> None:
    header = [*BASE_HEADER, "户口登记", "就学状态", "监护情况", "联系方式", "特殊情况", "性别", *extra_header]
    path = tmp_path / "random.csv"
    write_csv(path, [header, *rows], encoding)
    try:
        reader = open_roster(path, today=TODAY)
        results = list(reader)
    except RosterFileError as err:
        assert format_file_error(err, roster_gettext("en"))
        return
    numbers = [r.row_number for r in results]
    assert numbers == sorted(set(numbers)) and all(n >= 2 for n in numbers)
    for result in results:
        assert isinstance(result, (ChildRow, RowRejected))
        if isinstance(result, RowRejected):
            assert result.errors
            assert all(e.code != "roster.error.unexpected" for e in result.errors), result
            assert all(isinstance(e, FieldError) and e.column for e in result.errors)
            format_row_error(result, roster_gettext("zh_Hans"))
        else:
            assert result.name and result.township and result.village
            assert all(p.phone is None or re.fullmatch(r"\+861\d{10}", p.phone) for p in result.people)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_crash(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.csv"
    path.write_bytes(data)
    try:
        results = list(open_roster(path, today=TODAY))
    except RosterFileError:
        return
    assert all(isinstance(r, (ChildRow, RowRejected)) for r in results)


# ---------------------------------------------------------------------------------------------
# Messages


def read_catalog(locale: str) -> dict[str, str]:
    with open(ROOT / "messages" / locale / "LC_MESSAGES" / "roster.po", "rb") as handle:
        return {m.id: m.string for m in read_po(handle) if m.id}


def codes_used_in_parse_module() -> set[str]:
    source = Path(roster_parse.__file__).read_text(encoding="utf-8")
    codes = set(re.findall(r'"(roster\.(?:file|error)\.\w+|roster\.row_prefix|roster\.value_suffix)"', source))
    codes |= {"roster.error." + c for c in re.findall(r'_E \+ "(\w+)"', source)}
    codes |= {"roster.error." + c for c in re.findall(r'\berror\("\w+", "(\w+)"', source)}
    return codes


@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_every_code_has_a_message(locale: str) -> None:
    catalog = read_catalog(locale)
    used = codes_used_in_parse_module()
    assert {"roster.error.phone_invalid", "roster.file.missing_columns", "roster.row_prefix"} <= used
    declared = set(roster_parse.ERROR_CODES) | set(roster_parse.FILE_ERROR_CODES)
    assert used - {"roster.row_prefix", "roster.value_suffix"} <= declared
    for code in used | declared:
        assert catalog.get(code), f"{code} has no {locale} text"


@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_messages_format_with_their_params(locale: str) -> None:
    params = {"row": 12, "value": "x", "max": "50", "age": "18", "id_birth": "2012-03-05", "id_sex": "男",
              "path": "/tmp/a.csv", "reason": "oops", "columns": "乡镇、村", "max_mb": "256"}
    for text in read_catalog(locale).values():
        assert text % params  # no unknown or malformed placeholder
        if "%(" in text:
            assert set(re.findall(r"%\((\w+)\)", text)) <= set(params)


def test_format_row_error_in_both_languages() -> None:
    rejected = RowRejected(12, (FieldError("父亲电话", "roster.error.phone_invalid", {"value": "1380013"}),
                                FieldError("出生日期", "roster.error.too_old", {"value": "1990-01-01", "age": "36"})))
    zh = format_row_error(rejected, roster_gettext("zh_Hans"))
    assert zh[0].startswith("第12行 父亲电话: 不是有效的手机号")
    assert "1380013" in zh[0]
    assert zh[1].startswith("第12行 出生日期: 已满36周岁")
    en = format_row_error(rejected, roster_gettext("en"))
    assert en[0].startswith("Row 12 父亲电话: not a valid mobile number")
    untranslated = format_row_error(rejected, lambda s: s)[0]
    assert untranslated.startswith("roster.row_prefix 父亲电话: roster.error.phone_invalid")


def test_format_file_error() -> None:
    err = RosterFileError("roster.file.missing_columns", columns="乡镇、村", row=1)
    assert format_file_error(err, roster_gettext("zh_Hans")) == "表头（第1行）缺少必需的列：乡镇、村"
    assert "乡镇、村" in format_file_error(err, roster_gettext("en"))
    assert format_file_error(RosterFileError("roster.file.no_rows"), roster_gettext("en")) == \
        "the file has a header but no rows"
