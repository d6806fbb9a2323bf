"""Storing rosters through `flask roster import`: whole rows, re-imports, updates, exit codes, GBK aliases."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Arrangement, Child, ChildContact, Contact
from tests.bot.reports_helpers import generate, roster_gen


def count(session: Session, model: type) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def small_roster(path: Path, *, n: int = 30, seed: int = 3, encoding: str = "gb18030", alias: bool = True) -> int:
    gen = roster_gen()
    per = {"grandparents": n - 6, "relatives": 2, "unattended": 2, "one_parent_incapable": 2}
    rng, rows = gen.children(per, {"0-5": 5, "6-13": n - 10, "14-16": 5}, 1, 1, 3, seed=seed)
    gen.write(path, gen.render(rng, rows, alias=alias, shuffle=alias), encoding)
    return n


def test_gbk_csv_with_other_column_names_imports_whole(runner: FlaskCliRunner, session: Session,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "乡镇花名册.csv"
    n = small_roster(path)
    with path.open(encoding="gb18030") as handle:
        header = next(csv.reader(handle))
    assert any(h in header for h in ("姓名", "留守儿童姓名", "乡镇(街道)", "监护方式", "留守类型", "与儿童关系"))
    result = runner.invoke(args=["roster", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert count(session, Child) == n
    assert count(session, Arrangement) == n
    assert count(session, ChildContact) >= 2 * n - 2


def test_reimport_changes_nothing_and_an_update_says_what_changed(runner: FlaskCliRunner, session: Session,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    small_roster(path, encoding="utf-8-sig", alias=False)
    assert runner.invoke(args=["roster", "import", str(path)]).exit_code == 0
    before = (count(session, Child), count(session, Contact), count(session, ChildContact))
    again = runner.invoke(args=["roster", "import", str(path)])
    assert again.exit_code == 0 and "新增0，更新0，未变30，拒绝0" in again.output
    assert (count(session, Child), count(session, Contact), count(session, ChildContact)) == before
    with path.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    school = table[0].index("就学状态")
    table[2][school] = "辍学"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(table)
    updated = runner.invoke(args=["roster", "import", str(path)])
    assert updated.exit_code == 0
    assert re.search(r"第 ?3 ?行", updated.output) and "school_status" in updated.output
    assert count(session, Child) == before[0]
    assert session.scalar(select(func.count()).where(Child.school_status == "dropout")) >= 1


def test_bad_rows_are_named_and_the_rest_import(runner: FlaskCliRunner, session: Session, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    bad = [int(line.split("\t")[0]) for line in generate("bad", path).splitlines() if line.strip()]
    assert len(bad) == 8
    result = runner.invoke(args=["roster", "import", str(path)])
    assert result.exit_code == 1
    for row in bad:
        assert re.search(rf"第 ?{row} ?行", result.output), row
    assert count(session, Child) == 50


def test_strict_and_dry_run_write_nothing(runner: FlaskCliRunner, session: Session, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    generate("bad", path)
    strict = runner.invoke(args=["roster", "import", str(path), "--strict"])
    assert strict.exit_code == 1 and count(session, Child) == 0
    dry_bad = runner.invoke(args=["roster", "import", str(path), "--dry-run"])
    assert dry_bad.exit_code == 1 and count(session, Child) == 0
    good = tmp_path / "good.csv"
    small_roster(good)
    dry = runner.invoke(args=["roster", "import", str(good), "--dry-run"])
    assert dry.exit_code == 0 and count(session, Child) == 0


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02garbage\xff" * 10, b"foo,bar\n1,2\n"])
def test_unreadable_file_exits_2(runner: FlaskCliRunner, session: Session, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    assert runner.invoke(args=["roster", "import", str(path)]).exit_code == 2
    assert runner.invoke(args=["roster", "import", str(tmp_path / "missing.xlsx")]).exit_code == 2
    assert count(session, Child) == 0
