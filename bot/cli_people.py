"""People on the command line: `caseworker create` and the `demo` township (see INTERFACE.md)."""
from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from bot.clock import utcnow
from bot.db import get_database

caseworker_cli = AppGroup("caseworker", help="Dashboard users.")


@caseworker_cli.command("create")
@click.option("--name", required=True, help="the person's name, as shown on the dashboard")
@click.option("--login", required=True, help="the login name")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
@click.option("--township", "townships", multiple=True, help="a township this user works in (repeatable)")
@click.option("--role", type=click.Choice(["caseworker", "supervisor", "admin"]), default="caseworker")
@click.option("--county", default=None, help="a supervisor's county (also filled into new townships)")
@click.option("--phone", default=None, help="mobile number for urgent alerts")
@click.option("--language", type=click.Choice(["zh_Hans", "en"]), default="zh_Hans")
def create(name: str, login: str, password_stdin: bool, townships: tuple[str, ...], role: str,
           county: str | None, phone: str | None, language: str) -> None:
    """Add a dashboard user (the password is never taken from the command line)."""
    from bot.accounts import AccountError, create_caseworker

    if not password_stdin:
        raise click.UsageError("give the password on stdin with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    with get_database().session() as session:
        try:
            user = create_caseworker(session, name=name, login=login, password=password, now=utcnow(),
                                     townships=list(townships), role=role, county=county, phone=phone,
                                     language=language)
        except AccountError as error:
            raise click.ClickException(f"cannot create {login!r}: {error}") from error
        session.commit()
        click.echo(f"created {user.role} {user.login} (id {user.id}) for "
                   f"{', '.join(t.name for t in user.townships) or user.county or 'all townships'}")


@click.command("demo")
@with_appcontext
def demo() -> None:
    """Load a small demo township with households and print a caseworker login."""
    from bot.demo import load_demo

    with get_database().session() as session:
        result = load_demo(session, utcnow())
        session.commit()
    click.echo(f"demo township {result['township']} ({result['county']}): {result['children']} children"
               f"{' (already loaded)' if result['existing'] else ''}")
    for person in result["people"]:
        click.echo(f"  {person}")
    click.echo(f"dashboard login: {result['login']}  password: {result['password']}")
    click.echo("demo contacts have no quiet hours, so texts go out at once, day or night")


def register(app: Flask) -> None:
    """Attach the commands to the app's CLI."""
    app.cli.add_command(caseworker_cli)
    app.cli.add_command(demo)
