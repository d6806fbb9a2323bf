"""Broken roster files through `roster import`: a clear error or per-row report, never a traceback."""
from __future__ import annotations

import traceback
from pathlib import Path

import openpyxl
import pytest
from flask.testing import FlaskCliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HEADER = ["儿童姓名", "性别", "出生日期", "身份证号", "户口登记", "就学状态", "县", "乡镇", "村", "监护类型", "监护情况",
          "特殊情况", "父亲姓名", "父亲电话", "父亲务工地", "母亲姓名", "母亲电话", "母亲务工地", "监护人姓名", "监护人关系",
          "监护人电话"]
ROW = ["王小明", "男", "2016-05-04", "", "是", "在读", "蓟州区", "下营镇", "东庄村", "祖父母监护", "一般", "", "王大", "13800000001",
       "北京", "", "", "", "李奶奶", "奶奶", "13800000002"]
GOOD = ("\n".join(",".join(r) for r in [HEADER, ROW, [c.replace("小明", "小红").replace("0001", "0011") for c in ROW]])
        + "\n").encode("utf-8")


def _import(runner: FlaskCliRunner, path: Path) -> tuple[int, str]:
    result = runner.invoke(args=["roster", "import", str(path)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(result.exception)))
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    if result.exit_code == 2:
        assert result.output.strip(), "an unreadable file must be explained"
    return result.exit_code, result.output


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([GOOD, GOOD.decode().encode("gb18030"), b"\xef\xbb\xbf" + GOOD])))
    for _ in range(draw(st.integers(0, 6))):
        action = draw(st.integers(0, 4))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == 0:
            data[at:at + 1] = draw(st.binary(min_size=1, max_size=4))  # bytes that break the encoding
        elif action == 1:
            del data[at:]  # truncated mid-character
        elif action == 2:
            data[at:at] = draw(st.sampled_from([b'"', b",", b"\r", b"\n\n", b"=SUM(A1:A9)", b"\x00", b"\xa1"]))
        elif action == 3:
            data[at:at] = draw(st.text(max_size=20)).encode("utf-8", "surrogatepass")
        else:
            data[at:at] = draw(st.text(max_size=8)).encode("gb18030", "replace")
    return bytes(data)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=mangled())
def test_mangled_csv_is_reported_never_a_traceback(runner: FlaskCliRunner, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(data)
    _import(runner, path)


def _xlsx(path: Path, rows: list[list[object]], merge: list[str] = ()) -> Path:  # type: ignore[assignment]
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for cells in merge:
        sheet.merge_cells(cells)
    book.save(path)
    return path


@pytest.mark.parametrize("case", ["merged", "formulas", "thousand_columns", "header_only", "title_merged",
                                  "numbers_everywhere", "empty_sheet"])
def test_awkward_workbooks_are_reported_never_a_traceback(runner: FlaskCliRunner, tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.xlsx"
    if case == "merged":  # a village written once for a block of rows, as offices do
        rows = [HEADER, ROW, [*ROW[:8], None, *ROW[9:]], [*ROW[:8], None, *ROW[9:]]]
        _xlsx(path, rows, merge=["I2:I4", "A3:B3"])
    elif case == "formulas":
        rows = [HEADER, ROW, ["=A2&\"弟\"", *ROW[1:3], "=1/0", *ROW[4:13], "=13800000000+21", *ROW[14:]]]
        _xlsx(path, rows)
    elif case == "thousand_columns":
        rows = [[*HEADER, *(f"备注{i}" for i in range(1000))], [*ROW, *(["x"] * 1000)]]
        _xlsx(path, rows)
    elif case == "header_only":
        _xlsx(path, [HEADER])
    elif case == "title_merged":
        _xlsx(path, [["某某县留守儿童花名册"], HEADER, ROW], merge=["A1:U1"])
    elif case == "numbers_everywhere":
        _xlsx(path, [HEADER, [12345, 1, 42461, 1.5e17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13800000001, 1, 2, 3, 4, 5, 6,
                              13800000002]])
    else:
        _xlsx(path, [])
    code, output = _import(runner, path)
    if case in ("merged", "title_merged"):
        assert code in (0, 1)
    if case == "thousand_columns":
        assert code == 0
