"""Roster commands: `roster import`, `stats`, `children`, `lists export` (INTERFACE.md)."""
from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

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


# --- statistics, who needs attention, lists ------------------------------------------------------

def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in a bare container is not an error
        return "unknown"


def _today() -> date:
    return local_date(utcnow(), current_app.config["TIMEZONE"])


def _scope(session, township: str | None, county: str | None):  # type: ignore[no-untyped-def]
    from bot.lists import ScopeError, resolve_scope

    try:
        return resolve_scope(session, township=township, county=county)
    except ScopeError as error:
        raise click.UsageError(f"no township or county named {error.args[0]!r}") from None


@click.command("stats")
@with_appcontext
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="ages on this date (default: today)")
@click.option("--township", default=None, help="only this township")
@click.option("--county", default=None, help="only this county")
@click.option("--json", "as_json", is_flag=True, help="print JSON (the INTERFACE.md shape)")
@click.option("--language", default=None, help="language of the text report (zh_Hans, en)")
def stats_command(as_of: datetime | None, township: str | None, county: str | None, as_json: bool,
                  language: str | None) -> None:
    """Counts and percentages by guardianship type and age band; dropout, no hukou, poor guardianship."""
    from bot.stats import compute_stats, jsonable

    day = as_of.date() if as_of else _today()
    with get_database().session() as session:
        scope = _scope(session, township, county)
        result = compute_stats(session, as_of=day, township_ids=scope.township_ids)
    if scope.label:
        result["township" if township else "county"] = scope.label
    if as_json:
        click.echo(json.dumps(jsonable(result), ensure_ascii=False))
        return
    gettext = make_gettext(language or current_app.config["DEFAULT_LANGUAGE"])
    click.echo(gettext("report.stats.total") % {"total": result["total"], "as_of": result["as_of"]})
    for group, entries in (("guardianship_type", result["by_guardianship"]), ("age", result["by_age"])):
        for key, entry in entries.items():
            click.echo(f"  {gettext(f'report.value.{group}.{key}')}: {entry['count']} ({entry['percent']}%)")
    for key in ("over_16", "dropout", "no_hukou", "poor_guardianship"):
        click.echo(f"  {gettext(f'report.stats.{key}')}: {result[key]} ({result['percent'][key]}%)")


@click.command("children")
@with_appcontext
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--township", default=None, help="only this township")
@click.option("--county", default=None, help="only this county")
@click.option("--arrangement", "arrangement_states", multiple=True,
              help="only these arrangement states (none, proposed, ..., confirmed); repeatable")
def children_command(as_json: bool, township: str | None, county: str | None,
                     arrangement_states: tuple[str, ...]) -> None:
    """One object per child: arrangement state, risk class, open flags."""
    from bot.attention import children_overview

    with get_database().session() as session:
        scope = _scope(session, township, county)
        rows = children_overview(session, township_ids=scope.township_ids,
                                 arrangements=list(arrangement_states) or None)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    for row in rows:
        click.echo(f"#{row['id']} {row['name']} {row['township']}/{row['village']} {row['guardianship_type']} "
                   f"arrangement={row['arrangement']} risk={row['risk_type']}/{row['risk_level'] or '-'} "
                   f"open_flags={row['open_flags']}")


lists_cli = AppGroup("lists", help="Lists (花名册) for police, education bureau and township.")


@lists_cli.command("export")
@click.option("--kind", required=True, type=click.Choice(
    ["no_hukou", "dropout", "disabled", "ill", "poor_guardianship", "unattended", "roster"]))
@click.option("--township", default=None, help="one township")
@click.option("--county", default=None, help="a whole county")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default=None,
              help="default: from the file name, else xlsx")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="ages on this date (default: today)")
@click.option("--language", default=None, help="language of headers (zh_Hans, en)")
def lists_export(kind: str, township: str | None, county: str | None, fmt: str | None, out_path: Path,
                 as_of: datetime | None, language: str | None) -> None:
    """Write a list as .xlsx or CSV (UTF-8 with BOM); audit-logged with the OS user."""
    from bot.lists import export_list

    if township and county:
        raise click.UsageError("give --township or --county, not both")
    fmt = fmt or ("csv" if out_path.suffix.lower() == ".csv" else "xlsx")
    now = utcnow()
    day = as_of.date() if as_of else local_date(now, current_app.config["TIMEZONE"])
    locale = language or current_app.config["DEFAULT_LANGUAGE"]
    with get_database().session() as session:
        scope = _scope(session, township, county)
        partial = out_path.with_name(out_path.name + ".part")
        try:
            with partial.open("wb") as handle:
                result = export_list(session, kind=kind, scope=scope, fmt=fmt, out=handle, actor=None, now=now,
                                     as_of=day, locale=locale,
                                     detail={"via": "cli", "os_user": _os_user(), "out": str(out_path)})
            partial.replace(out_path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        session.commit()
    click.echo(f"{out_path}: {result.rows}")


def register(app: Flask) -> None:
    """Attach the roster, statistics, children and lists commands."""
    app.cli.add_command(roster_cli)
    app.cli.add_command(stats_command)
    app.cli.add_command(children_command)
    app.cli.add_command(lists_cli)
