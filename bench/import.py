"""Roster import at Jilin's size: our importer next to a bare baseline, in the same run.

    .venv/bin/python bench/import.py [--rows 50108] [--postgres URL] [--keep DIR]

Generates the Jilin roster (50,108 children, UTF-8 with BOM) with the acceptance generator, then
on SQLite (a fresh file) and on PostgreSQL (TEST_DATABASE_URL or --postgres, when reachable):

- baseline: the same file read with ``csv``, every phone number normalised with ``phonenumbers``
  (parse + is_valid_number + format E.164), and the rows inserted with one ``executemany`` into
  one flat table, committed;
- ours: ``bot.roster.parse.open_roster`` + ``bot.roster.store.import_rows`` into a fresh schema
  (children, contacts shared by siblings, links, arrangements, planned reminders, flags for the
  unattended), committed — what ``flask --app bot roster import`` does.

Prints rows/s for both and the ratio of times (the goal is at most 5x on SQLite).
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GENERATOR = ROOT / "tests" / "data" / "roster_gen.py"  # a copy of the acceptance roster generator
PHONE_COLUMNS = ("父亲电话", "母亲电话", "监护人电话", "帮扶人电话")


def generate(path: Path, rows: int | None) -> int:
    """The Jilin roster, optionally cut to its first `rows` children."""
    subprocess.run([sys.executable, str(GENERATOR), "jilin", str(path)], check=True)
    if rows:
        with path.open(encoding="utf-8-sig") as handle:
            lines = handle.readlines()[: rows + 1]
        path.write_text("".join(lines), encoding="utf-8-sig")
    with path.open(encoding="utf-8-sig") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def baseline(path: Path, url: str) -> float:
    """csv + phonenumbers + executemany into one flat table; seconds."""
    import phonenumbers
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bench_flat"))
    start = time.perf_counter()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        phone_at = [i for i, name in enumerate(header) if name in PHONE_COLUMNS]
        rows = []
        for record in reader:
            record = list(record)
            for i in phone_at:
                if record[i]:
                    try:
                        number = phonenumbers.parse(record[i], "CN")
                        record[i] = (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                                     if phonenumbers.is_valid_number(number) else None)
                    except phonenumbers.NumberParseException:
                        record[i] = None
            rows.append(record)
    columns = [f"c{i}" for i in range(len(header))]
    with engine.begin() as connection:
        key = "INTEGER PRIMARY KEY" if engine.dialect.name == "sqlite" else "SERIAL PRIMARY KEY"
        connection.execute(text(f"CREATE TABLE bench_flat (id {key}, "
                                f"{', '.join(c + ' TEXT' for c in columns)})"))
        raw = connection.connection.driver_connection
        marks = ", ".join(["?" if engine.dialect.name == "sqlite" else "%s"] * len(columns))
        cursor = raw.cursor()
        cursor.executemany(f"INSERT INTO bench_flat ({', '.join(columns)}) VALUES ({marks})", rows)
    elapsed = time.perf_counter() - start
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE bench_flat"))
    engine.dispose()
    return elapsed


def ours(path: Path, url: str) -> tuple[float, int]:
    """open_roster + import_rows into a fresh schema, committed; (seconds, children imported)."""
    from tests.conftest import make_app
    from bot.roster.parse import open_roster
    from bot.roster.store import import_rows

    app = make_app(url)
    now = datetime(2026, 6, 30, 2, 0, tzinfo=timezone.utc)
    database = app.extensions["xiangban_db"]
    start = time.perf_counter()
    with database.session() as session:
        reader = open_roster(path, today=now.date())
        report = import_rows(session, reader, now=now, config=app.config)
        session.commit()
    elapsed = time.perf_counter() - start
    database.engine.dispose()
    return elapsed, report.new + report.updated + report.unchanged


def reset_postgres(url: str) -> bool:
    """Create the database when missing, drop and recreate its schema; False when unreachable."""
    try:
        from sqlalchemy import create_engine, make_url, text

        from tests.conftest import reset_postgres as reset

        target = make_url(url)
        engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                      {"n": target.database}).first():
                connection.execute(text(f'CREATE DATABASE "{target.database}"'))
        engine.dispose()
        reset(url)
        return True
    except Exception as error:  # noqa: BLE001 - any connection problem means "skip"
        print(f"postgresql: not reachable ({type(error).__name__}: {str(error).splitlines()[0]})")
        return False


def report(backend: str, n: int, base: float, mine: float, imported: int) -> None:
    print(f"{backend:10}  baseline {n / base:9.0f} rows/s ({base:6.2f} s)   ours {n / mine:9.0f} rows/s "
          f"({mine:6.2f} s, {imported} imported)   ours/baseline time {mine / base:4.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="only the first N children (default: all 50,108)")
    parser.add_argument("--postgres", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/xiangban_bench"),
        help="a PostgreSQL database of its own (its schema is dropped); created when missing")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--keep", default=None, help="folder to keep the generated file and SQLite databases in")
    args = parser.parse_args()
    import logging

    logging.disable(logging.INFO)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="xiangban-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "jilin.csv"
    n = generate(path, args.rows)
    print(f"roster: {n} children, {path.stat().st_size / 1e6:.1f} MB UTF-8 CSV; Python {platform.python_version()} "
          f"on {platform.machine()}, {os.cpu_count()} CPUs; each side timed once, file read from page cache")
    base = baseline(path, f"sqlite:///{folder / 'baseline.db'}")
    mine, imported = ours(path, f"sqlite:///{folder / 'ours.db'}")
    report("sqlite", n, base, mine, imported)
    if not args.no_postgres and reset_postgres(args.postgres):
        base = baseline(path, args.postgres)
        reset_postgres(args.postgres)
        mine, imported = ours(path, args.postgres)
        report("postgresql", n, base, mine, imported)
        reset_postgres(args.postgres)


if __name__ == "__main__":
    main()
