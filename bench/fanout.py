"""Fan-out bench: a Jilin-size roster (50,108 children) imported, then the first tick: how long it takes
to plan and queue the welcome and confirmation messages, against a bare insert of the same number of
message rows; then the dispatch rate through the console transport.

    .venv/bin/python bench/fanout.py                       # SQLite, 5,000 children (a few minutes)
    .venv/bin/python bench/fanout.py --children 50108      # the full Jilin roster (the first tick is long)
    .venv/bin/python bench/fanout.py --db postgresql       # PostgreSQL on 127.0.0.1:5432
    options: --children N
"""
from __future__ import annotations

import argparse
import csv
import logging
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import create_schema, database_url, git_revision, machine, show  # noqa: E402

HEADER = ["儿童姓名", "性别", "出生日期", "身份证号", "户口登记", "就学状态", "县", "乡镇", "村", "监护类型", "监护情况",
          "特殊情况", "父亲姓名", "父亲电话", "父亲务工地", "母亲姓名", "母亲电话", "母亲务工地", "监护人姓名", "监护人关系",
          "监护人电话"]
GUARDIANSHIP = ["祖父母监护"] * 81 + ["亲戚朋友监护"] * 3 + ["父母一方外出另一方无监护能力"] * 13 + ["无人监护"] * 3
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai, a Tuesday


def write_roster(path: Path, n: int) -> None:
    """n children in 20 townships; father and guardian each, a mother for every third child."""
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        for i in range(n):
            birth = date(2012 + i % 12, 1 + i % 12, 1 + i % 28)
            mother = f"139{i:08d}" if i % 3 == 0 else ""
            out.writerow([f"王{i:05d}", "男女"[i % 2], birth.isoformat(), "", "是", "在读", "示范县", f"第{i % 20}镇",
                          f"{i % 300}村", GUARDIANSHIP[i % 100], "一般", "", "王父", f"137{i:08d}", "浙江",
                          "李母" if mother else "", mother, "", "奶奶", "奶奶", f"136{i:08d}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--children", type=int, default=5000,
                        help="children in the roster (the full Jilin size is 50108; see docs/performance.md)")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the console transport logs each text; measured here without log I/O

    from sqlalchemy import func, insert, select

    from bot.channels.console import ConsoleSender
    from bot.config import load_config
    from bot.db import Database
    from bot.outbox import dispatch
    from bot.roster.parse import open_roster
    from bot.roster.store import import_rows
    from bot.schedule import run_due
    from models import Message, Reminder

    scratch = Path(tempfile.mkdtemp(prefix="xiangban-fanout-"))
    url = database_url(args.db, scratch, "xiangban_bench_fanout")
    create_schema(url)
    config = load_config({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    db = Database(url)
    print(f"fan-out bench — {machine()}; commit {git_revision()}")
    print(f"database {args.db}; {args.children} children; tick at {NOW.isoformat()} (10:00 Shanghai)")
    roster = scratch / "roster.csv"
    write_roster(roster, args.children)
    rows = []

    started = time.perf_counter()
    with db.session() as session:
        report = import_rows(session, open_roster(roster, today=NOW.date()), now=NOW - timedelta(hours=1),
                             config=config)
        session.commit()
        reminders = session.scalar(select(func.count()).select_from(Reminder))
    took = time.perf_counter() - started
    rows.append({"step": "roster import (parse, store, plan reminders)", "rows": f"{report.new} children",
                 "seconds": f"{took:.1f}", "rate /s": f"{report.new / took:.0f}"})
    rows.append({"step": "  reminders planned by the import", "rows": reminders, "seconds": "", "rate /s": ""})

    started = time.perf_counter()
    tick = run_due(db, ConsoleSender(), now=NOW, config=config, dispatch_limit=1)
    took_tick = time.perf_counter() - started
    with db.session() as session:
        queued = session.scalar(select(func.count()).select_from(Message).where(Message.direction == "outbound"))
    rows.append({"step": "first tick: plan and queue (welcome, confirmations)", "rows": f"{queued} messages",
                 "seconds": f"{took_tick:.1f}", "rate /s": f"{queued / took_tick:.0f}"})

    # The floor: the same number of message rows in one bulk insert.
    template = {"direction": "outbound", "channel": "sms", "to_number": "+8613600000000", "body": "x" * 60,
                "kind": "bench", "template_vars": {}, "language": "zh_Hans", "status": "failed", "segments": 1,
                "attempts": 0, "urgent": False, "created_at": NOW}
    started = time.perf_counter()
    with db.session() as session:
        for start in range(0, queued, 5000):
            session.execute(insert(Message), [template] * min(5000, queued - start))
        session.commit()
    took_bare = time.perf_counter() - started
    rows.append({"step": "bare insert of as many message rows", "rows": queued, "seconds": f"{took_bare:.1f}",
                 "rate /s": f"{queued / took_bare:.0f}"})
    rows.append({"step": "ratio bare/tick (1.0 = as fast as a bare insert)", "rows": "",
                 "seconds": f"{took_bare / took_tick:.3f}", "rate /s": ""})

    sent = 0
    started = time.perf_counter()
    with db.session() as session:
        while True:
            result = dispatch(session, ConsoleSender(), now=NOW, config=config, limit=2000)
            done = result.sent + result.failed + result.deferred + result.retried
            sent += result.sent
            if done == 0:
                break
    took_send = time.perf_counter() - started
    rows.append({"step": "dispatch through the console transport", "rows": f"{sent} sent",
                 "seconds": f"{took_send:.1f}", "rate /s": f"{sent / took_send:.0f}"})
    show("results", rows)
    print(f"\ntick report: {tick.as_dict()}\nscratch: {scratch}")


if __name__ == "__main__":
    main()
