"""Alembic migrations create exactly the schema the models describe."""
from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import Result
from flask.testing import FlaskCliRunner
from sqlalchemy import create_engine, inspect

from models import Base
from tests.conftest import database_url, make_app


def test_db_upgrade_creates_every_table_and_matches_the_models(backend: str, tmp_path: Path) -> None:
    url = database_url(backend, tmp_path)
    from bot import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x", "TESTING": True})
    runner: FlaskCliRunner = app.test_cli_runner()
    result: Result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(args=["db", "upgrade"])
    assert again.exit_code == 0, again.output
    engine = create_engine(url)
    with engine.connect() as connection:
        assert set(Base.metadata.tables) <= set(inspect(connection).get_table_names())
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": False}), Base.metadata)
    engine.dispose()
    app.extensions["xiangban_db"].engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
    assert make_app is not None
