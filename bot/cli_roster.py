"""Roster commands: `flask --app bot roster import FILE [--dry-run] [--strict]`."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from bot.clock import local_date, utcnow
from bot.db import get_database
from bot.i18n import make_gettext

roster_cli = AppGroup("roster", help="Roster (花名册) import.")


@roster_cli.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="check and report, write nothing")
@click.option("--strict", is_flag=True, help="import nothing when any row is rejected")
@click.option("--language", default=None, help="language of the report (zh_Hans, en)")
def import_command(path: Path, dry_run: bool, strict: bool, language: str | None) -> None:
    """Import a roster: exit 0 when every row imported, 1 when some were rejected, 2 when unreadable."""
    from bot.roster.parse import RosterFileError, format_file_error, format_row_error, open_roster
    from bot.roster.store import import_rows

    gettext = make_gettext(language or current_app.config["DEFAULT_LANGUAGE"])
    now = utcnow()
    try:
        reader = open_roster(path, today=local_date(now, current_app.config["TIMEZONE"]))
    except RosterFileError as error:
        click.echo(format_file_error(error, gettext), err=True)
        sys.exit(2)
    if reader.unknown_columns:
        click.echo(gettext("roster.unknown_columns") % {"columns": "、".join(reader.unknown_columns)})
    with get_database().session() as session:
        try:
            with click.progressbar(length=reader.total_rows or 0, label=str(path.name), file=sys.stderr,
                                   show_pos=True) as bar:
                report = import_rows(session, reader, now=now, config=current_app.config, progress=bar.update)
        except RosterFileError as error:
            session.rollback()
            click.echo(format_file_error(error, gettext), err=True)
            sys.exit(2)
        finally:
            close = getattr(reader, "close", None)
            if close:
                close()
        for rejected in report.rejected:
            for line in format_row_error(rejected, gettext):
                click.echo(line)
        for row, key, params in report.warnings:
            click.echo(gettext("roster.row_prefix") % {"row": row} + " " + gettext(key) % params)
        for row, name, fields in report.changes:
            click.echo(gettext("roster.changed") % {"row": row, "name": name, "fields": ", ".join(fields)})
        if dry_run or (strict and report.rejected):
            session.rollback()
        else:
            session.commit()
    click.echo(gettext("roster.summary") % {"new": report.new, "updated": report.updated,
                                            "unchanged": report.unchanged, "rejected": len(report.rejected)})
    if dry_run:
        click.echo(gettext("roster.summary_dry_run"))
    elif strict and report.rejected:
        click.echo(gettext("roster.summary_strict"))
    sys.exit(report.exit_status)


def register(app: Flask) -> None:
    """Attach the roster commands."""
    app.cli.add_command(roster_cli)
