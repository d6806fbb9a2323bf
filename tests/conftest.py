"""Fixtures: app → client → runner, on SQLite and (with TEST_DATABASE_URL) on PostgreSQL."""
from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from models import Base

TOKEN = "test-auth-token"
PUBLIC_URL = "https://xiangban.example.org"
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def reset_postgres(url: str) -> None:
    """Drop and recreate the public schema of the test database."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def worker_postgres_url() -> str:
    """TEST_DATABASE_URL, or under pytest-xdist a database of this worker's own beside it."""
    url = make_url(os.environ["TEST_DATABASE_URL"])
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url.render_as_string(hide_password=False)
    own = url.set(database=f"{url.database}_{worker}")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                    {"name": own.database}).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{own.database}"'))
    engine.dispose()
    return own.render_as_string(hide_password=False)


def database_url(backend: str, tmp_path: Path) -> str:
    """A clean database of the given backend for one test."""
    if backend == "postgresql":
        url = worker_postgres_url()
        reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'test.db'}"


def make_app(url: str, **overrides: object) -> Flask:
    """An app bound to a database URL, schema created from the models."""
    from bot import create_app

    config = {"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret", "TWILIO_AUTH_TOKEN": TOKEN,
              "TWILIO_ACCOUNT_SID": None, "PUBLIC_URL": PUBLIC_URL, "WTF_CSRF_ENABLED": True,
              "TWILIO_SKIP_SIGNATURE": False, **overrides}
    app = create_app(config)
    Base.metadata.create_all(app.extensions["xiangban_db"].engine)
    return app


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each database backend under test (PostgreSQL only with TEST_DATABASE_URL)."""
    if request.param == "postgresql" and not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("PostgreSQL test: set TEST_DATABASE_URL (CI does)")
    return request.param


@pytest.fixture
def app(backend: str, tmp_path: Path) -> Iterator[Flask]:
    """The application on a fresh database."""
    application = make_app(database_url(backend, tmp_path))
    yield application
    application.extensions["xiangban_db"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner of the app."""
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A database session on the app's database."""
    with app.extensions["xiangban_db"].session() as db_session:
        yield db_session


@pytest.fixture
def now() -> datetime:
    """A fixed daytime instant: 2026-11-30 10:00 in Shanghai."""
    return datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
