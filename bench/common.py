"""Shared helpers of the benches: scratch databases, bulk households, machine description."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def machine() -> str:
    """One line about where the bench ran."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} CPUs ({cpu}){mem}, Python {platform.python_version()}, {platform.system()}"


def fresh_postgres(name: str) -> str:
    """Drop and create a scratch PostgreSQL database; its URL."""
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def database_url(kind: str, scratch: Path, name: str) -> str:
    """A fresh database of the given kind (sqlite or postgresql)."""
    if kind == "postgresql":
        return fresh_postgres(name)
    path = scratch / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def create_schema(url: str) -> None:
    """The schema from the models (what `db upgrade` builds)."""
    from sqlalchemy import create_engine

    from models import Base

    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def bulk_households(url: str, n: int, *, phone_base: int = 13000000000) -> list[str]:
    """n children, each with an entrusted guardian (a distinct phone) in one township; the guardians' phones."""
    from sqlalchemy import create_engine, insert

    from models import Child, ChildContact, Contact, Township, Village

    now = datetime.now(timezone.utc)
    engine = create_engine(url)
    phones = [f"+86{phone_base + i * 7}" for i in range(n)]
    with engine.begin() as connection:
        town = connection.execute(insert(Township).values(name="压测镇", county="压测县", settings={})
                                  .returning(Township.id)).scalar_one()
        village = connection.execute(insert(Village).values(township_id=town, name="一村")
                                     .returning(Village.id)).scalar_one()
        contact_ids = connection.execute(insert(Contact).returning(Contact.id, sort_by_parameter_order=True), [
            {"phone": p, "name": "奶奶", "language": "zh_Hans", "channel": "sms", "opted_out": False,
             "invalid_number": False, "created_at": now} for p in phones]).scalars().all()
        child_ids = connection.execute(insert(Child).returning(Child.id, sort_by_parameter_order=True), [
            {"identity_key": f"bench:{i}", "name": f"王{i}", "sex": "male", "birth_date": date(2016, 1, 1),
             "has_hukou": True, "township_id": town, "village_id": village, "guardianship_type": "grandparents",
             "special_flags": [], "created_at": now, "updated_at": now} for i in range(n)]).scalars().all()
        connection.execute(insert(ChildContact), [
            {"child_id": c, "contact_id": k, "role": "guardian", "relationship_label": "奶奶"}
            for c, k in zip(child_ids, contact_ids)])
    engine.dispose()
    return phones


def git_revision() -> str:
    """The checkout's short commit, for the record."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def show(title: str, rows: list[dict[str, Any]]) -> None:
    """Print rows as an aligned table."""
    if not rows:
        return
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    print(f"\n{title}")
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for row in rows:
        print("  ".join(str(row.get(k, "")).ljust(widths[k]) for k in keys))
