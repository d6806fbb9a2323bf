"""PostgreSQL at scale: 1,000,000 planned reminders claimed by two workers at once (throughput, and
zero duplicates), and the statistics over 1,000,000 children; plus table sizes per row, for the
"beyond one machine" arithmetic.

    .venv/bin/python bench/pg_scale.py                    # needs PostgreSQL on 127.0.0.1:5432
    options: --reminders N  --children N  --workers N  --batch N
    (BENCH_PG_ADMIN=postgresql+psycopg://user@host:port/postgres to use another server)

The workers are separate processes using the scheduler's own claim (bot.schedule: a batch of due rows
read with FOR UPDATE SKIP LOCKED, then a conditional UPDATE planned → claimed), exactly as `tick` does
before it fires each claimed reminder; firing (queueing the texts) is measured by bench/fanout.py.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import create_schema, fresh_postgres, git_revision, machine, show  # noqa: E402

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


def seed(url: str, reminders: int, children: int) -> dict[str, float]:
    """Contacts, children and reminders made inside PostgreSQL (generate_series)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    contacts = max(1, reminders // 5)
    took = {}
    with engine.begin() as c:
        started = time.perf_counter()
        c.execute(text("INSERT INTO township (id, name, county, settings) SELECT g, '镇' || g, '县' || (g / 20), '{}' "
                       "FROM generate_series(1, 1000) g"))
        c.execute(text("INSERT INTO village (id, township_id, name) SELECT g, 1 + g % 1000, '村' || g "
                       "FROM generate_series(1, 20000) g"))
        c.execute(text("INSERT INTO contact (id, phone, language, channel, opted_out, invalid_number, created_at) "
                       "SELECT g, '+86138' || lpad(g::text, 8, '0'), 'zh_Hans', 'sms', false, false, now() "
                       "FROM generate_series(1, :n) g"), {"n": contacts})
        # Five kinds per contact; 90 % due now, 10 % next week (must not be claimed).
        c.execute(text(
            "INSERT INTO reminder (contact_id, kind, period_key, due_at, state, ladder_step, detail, created_at) "
            "SELECT 1 + (g - 1) / 5, (ARRAY['checkin','parent_contact','quarterly','home_visit','welcome'])[1 + g % 5], "
            "'p' || g, CASE WHEN g % 10 = 0 THEN :later ELSE :due END, 'planned', 0, '{}', now() "
            "FROM generate_series(1, :n) g"), {"n": reminders, "due": NOW - timedelta(hours=1),
                                                 "later": NOW + timedelta(days=7)})
        took["seed reminders"] = time.perf_counter() - started
        started = time.perf_counter()
        c.execute(text(
            "INSERT INTO child (identity_key, name, sex, birth_date, has_hukou, school_status, township_id, village_id, "
            "guardianship_type, guardianship_quality, special_flags, created_at, updated_at) "
            "SELECT 'bench:' || g, '王' || g, 'male', date '2010-01-01' + (g % 6000), g % 250 <> 0, "
            "CASE WHEN g % 400 = 0 THEN 'dropout' ELSE 'in_school' END, 1 + g % 1000, 1 + g % 20000, "
            "(ARRAY['grandparents','grandparents','grandparents','grandparents','grandparents','grandparents',"
            "'grandparents','relatives','unattended','one_parent_incapable'])[1 + g % 10], "
            "CASE WHEN g % 4 = 0 THEN 'poor' ELSE 'fair' END, '[]', now(), now() FROM generate_series(1, :n) g"),
            {"n": children})
        took["seed children"] = time.perf_counter() - started
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return took


def worker(url: str, name: str, batch: int, out: "mp.Queue[tuple[str, list[int], float]]") -> None:
    import os

    from sqlalchemy import select

    from bot.db import Database
    from bot.schedule import _claim_ids, _due_candidates
    from models import Reminder

    db = Database(url)
    mine: list[int] = []
    started = time.perf_counter()
    with db.session() as session:
        last_id = 0
        while True:
            candidates = _due_candidates(session, select(Reminder).where(
                Reminder.state == "planned", Reminder.due_at <= NOW, Reminder.id > last_id
            ).order_by(Reminder.id).limit(batch))
            if not candidates:
                session.commit()
                break
            last_id = candidates[-1].id
            mine.extend(_claim_ids(session, [r.id for r in candidates], from_state="planned",
                                   to_values={"state": "claimed", "claimed_by": f"{name}:{os.getpid()}",
                                              "claimed_at": NOW}))
            session.expunge_all()
    out.put((name, mine, time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reminders", type=int, default=1_000_000)
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    from sqlalchemy import create_engine, text

    url = fresh_postgres("xiangban_bench_scale")
    create_schema(url)
    print(f"PostgreSQL scale bench — {machine()}; commit {git_revision()}")
    engine = create_engine(url)
    with engine.connect() as c:
        print(f"server: {c.execute(text('SHOW server_version')).scalar()}; "
              f"{args.reminders} reminders, {args.children} children, {args.workers} workers, batch {args.batch}")
    rows = []
    for step, seconds in seed(url, args.reminders, args.children).items():
        rows.append({"step": step, "figure": f"{seconds:.1f} s", "note": "generate_series inside PostgreSQL"})

    due = int(engine.connect().execute(text("SELECT count(*) FROM reminder WHERE due_at <= :now"),
                                       {"now": NOW}).scalar())
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    started = time.perf_counter()
    procs = [ctx.Process(target=worker, args=(url, f"w{i}", args.batch, queue))
             for i in range(args.workers)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    wall = time.perf_counter() - started
    claimed = [rid for _, ids, _ in results for rid in ids]
    duplicates = len(claimed) - len(set(claimed))
    with engine.connect() as c:
        in_db = c.execute(text("SELECT count(*) FROM reminder WHERE state = 'claimed'")).scalar()
        early = c.execute(text("SELECT count(*) FROM reminder WHERE state = 'claimed' AND due_at > :now"),
                          {"now": NOW}).scalar()
    rows.append({"step": "claim due rows, workers at once", "figure": f"{len(claimed) / wall:,.0f} rows/s",
                 "note": f"{len(claimed)} of {due} due claimed in {wall:.1f} s; split "
                         + " / ".join(f"{n}={len(ids)}" for n, ids, _ in sorted(results))})
    rows.append({"step": "duplicates (claimed twice)", "figure": duplicates,
                 "note": f"claimed in the table: {in_db}; claimed before due: {early}"})

    from bot.db import Database
    from bot.stats import compute_stats

    db = Database(url)
    with db.session() as session:
        compute_stats(session, as_of=date(2026, 12, 1))  # warm the cache, as a running server would be
        started = time.perf_counter()
        stats = compute_stats(session, as_of=date(2026, 12, 1))
        took = time.perf_counter() - started
        started = time.perf_counter()
        compute_stats(session, as_of=date(2026, 12, 1), township_ids=[1, 2, 3])
        one = time.perf_counter() - started
    rows.append({"step": "stats over all children", "figure": f"{took * 1000:.0f} ms",
                 "note": f"total {stats['total']}; grandparents {stats['by_guardianship']['grandparents']['percent']} %"})
    rows.append({"step": "stats for 3 townships", "figure": f"{one * 1000:.0f} ms", "note": "one caseworker's scope"})
    with engine.connect() as c:
        for table in ("reminder", "child", "contact", "message"):
            size, count = c.execute(text(f"SELECT pg_total_relation_size('{table}'), (SELECT count(*) FROM {table})")).one()
            rows.append({"step": f"size of {table}", "figure": f"{size / 2**20:,.0f} MB",
                         "note": f"{count} rows" + (f", {size / count:.0f} bytes/row with indexes" if count else "")})
    show("results", rows)
    assert duplicates == 0 and early == 0, "a reminder was claimed twice or before it was due"


if __name__ == "__main__":
    main()
