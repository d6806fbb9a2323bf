"""Shared by the report tests: generated rosters (tests/data/roster_gen.py) and a Tianjin database."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, make_url, text

from tests.conftest import BACKENDS, make_app, reset_postgres, worker_postgres_url

GENERATOR = Path(__file__).resolve().parent.parent / "data" / "roster_gen.py"


def roster_gen():  # type: ignore[no-untyped-def]
    """The roster generator as a module (children(), render(), write())."""
    spec = importlib.util.spec_from_file_location("roster_gen", GENERATOR)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def generate(kind: str, path: Path) -> str:
    """Write a generated roster (tianjin, bad, ...); the generator's stderr (bad rows) is returned."""
    done = subprocess.run([sys.executable, str(GENERATOR), kind, str(path)], capture_output=True, text=True,
                          check=True)
    return done.stderr


def own_postgres_url(suffix: str) -> str:
    """A PostgreSQL database of its own beside the worker's, so module-scoped data survives other tests."""
    base = make_url(worker_postgres_url())
    own = base.set(database=f"{base.database}_{suffix}")
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": own.database}).first():
            connection.execute(text(f'CREATE DATABASE "{own.database}"'))
    engine.dispose()
    url = own.render_as_string(hide_password=False)
    reset_postgres(url)
    return url


@pytest.fixture(scope="module", params=BACKENDS)
def tianjin_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """An app whose database holds the Tianjin roster, imported once through `flask roster import`."""
    folder = tmp_path_factory.mktemp("tianjin")
    url = own_postgres_url("tianjin") if request.param == "postgresql" else f"sqlite:///{folder / 'tianjin.db'}"
    app = make_app(url)
    path = folder / "tianjin.csv"
    generate("tianjin", path)
    result = app.test_cli_runner().invoke(args=["roster", "import", str(path)])
    assert result.exit_code == 0, result.output[-2000:]
    app.config["TIANJIN_IMPORT_OUTPUT"] = result.output
    yield app
    app.extensions["xiangban_db"].engine.dispose()


__all__ = ["generate", "roster_gen", "tianjin_app"]
