"""The command line: `flask --app bot ...` (see ../shared/INTERFACE.md)."""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from bot.clock import parse_now, utcnow
from bot.db import get_database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _now_option(value: str | None) -> datetime:
    return parse_now(value, current_app.config["TIMEZONE"]) if value else utcnow()


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    """An Alembic configuration for our migrations folder and a database URL."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


db_cli = AppGroup("db", help="Database migrations (Alembic).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Create or migrate the database to the latest schema."""
    from alembic import command

    command.upgrade(alembic_config(current_app.config["DATABASE_URL"]), revision)
    click.echo("database is at the latest schema")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (developers)."""
    from alembic import command

    command.revision(alembic_config(current_app.config["DATABASE_URL"]), message=message, autogenerate=True)


@click.command("tick")
@click.option("--now", "now_text", default=None, help="ISO-8601 time to run as (default: now)")
def tick(now_text: str | None) -> None:
    """Run everything that is due once, as if at that time."""
    from bot.schedule import run_due

    now = _now_option(now_text)
    report = run_due(get_database(), current_app.extensions["xiangban_sender"], now=now, config=current_app.config)
    click.echo(json.dumps({"now": now.isoformat(), **report.as_dict()}))


@click.command("worker")
def worker() -> None:
    """Run the scheduler: `tick` every minute, in exactly one process."""
    from bot.scheduler import run_worker

    run_worker(current_app._get_current_object())  # type: ignore[attr-defined]


def _dump(rows: list[dict[str, Any]]) -> None:
    click.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))


@click.command("outbox")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--limit", default=0, help="only the newest N")
def outbox(as_json: bool, limit: int) -> None:
    """Outbound messages, newest last: to, body, status, kind."""
    from models import Message

    with get_database().session() as session:
        query = select(Message).where(Message.direction == "outbound").order_by(Message.id)
        rows = [{"id": m.id, "to": m.to_number, "body": m.body, "status": m.status, "kind": m.kind,
                 "channel": m.channel, "created_at": m.created_at.isoformat(),
                 "error_code": m.error_code} for m in session.scalars(query)]
    rows = rows[-limit:] if limit else rows
    if as_json:
        _dump(rows)
    else:
        for row in rows:
            click.echo(f"{row['created_at']}  {row['to']}  [{row['status']}] {row['kind']}: {row['body']}")


@click.command("flags")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--status", default=None, help="open (every unresolved flag), or an exact status")
def flags(as_json: bool, status: str | None) -> None:
    """Flags: id, child, contact, severity, category, status, created_at, due_at."""
    from models import ACTIVE_FLAG_STATUSES, Flag

    with get_database().session() as session:
        query = select(Flag).order_by(Flag.id)
        if status == "open":
            query = query.where(Flag.status.in_(ACTIVE_FLAG_STATUSES))
        elif status:
            query = query.where(Flag.status == status)
        rows = [{"id": f.id, "child": f.child_id, "contact": f.contact_id, "severity": f.severity,
                 "category": f.category, "status": f.status, "created_at": f.created_at.isoformat(),
                 "due_at": f.due_at.isoformat() if f.due_at else None, "occurrences": f.occurrences}
                for f in session.scalars(query)]
    if as_json:
        _dump(rows)
    else:
        for row in rows:
            click.echo(f"#{row['id']} {row['severity']:6} {row['category']:20} {row['status']:12} child={row['child']}")


@click.command("triage")
@click.option("--warm", is_flag=True, help="only build the rules and the learned net (run once after a deploy)")
def triage(warm: bool) -> None:
    """Classify JSON lines from stdin: {"id", "text"} in, {"id", "severity", "category"} out."""
    from bot.triage import classify_lines, warm_up

    if warm:
        click.echo(f"triage ready in {warm_up():.1f} s")
        return
    for line in classify_lines(sys.stdin):
        click.echo(line)


@click.command("chat")
@click.option("--as", "phone", required=True, help="the phone number to text as (e.g. 13800000002)")
@click.option("--now", "now_text", default=None, help="ISO-8601 time of the messages (default: now)")
def chat(phone: str, now_text: str | None) -> None:
    """Play the texts as a contact: each line you type is an inbound SMS; the replies are printed."""
    import uuid

    from bot.inbox import receive
    from bot.outbox import dispatch
    from bot.phones import normalize_phone

    number = normalize_phone(phone) or phone
    click.echo(f"texting as {number}; an empty line or Ctrl-D ends")
    database, sender = get_database(), current_app.extensions["xiangban_sender"]
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        if not line.strip():
            break
        now = _now_option(now_text)
        with database.session() as session:
            result = receive(session, provider_sid=f"CHAT{uuid.uuid4().hex}", from_number=number,
                             to_number="console", body=line, now=now, config=current_app.config)
            session.commit()
            dispatch(session, sender, now=now, config=current_app.config, ids=[m.id for m in result.replies])
            for reply in result.replies:
                click.echo(f"< {reply.body}")


def register(app: Flask) -> None:
    """Attach every command to the app's CLI."""
    from bot import cli_people, cli_roster

    for command in (db_cli, tick, worker, outbox, flags, triage, chat):
        app.cli.add_command(command)
    cli_people.register(app)
    cli_roster.register(app)
