"""Fixtures shared by the dashboard tests: a world of two townships and fast password hashing."""
from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from bot.clock import utcnow
from tests.handlers.dashboard_helpers import World, build_world, fast_password_hashing


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters, so logging in many times stays fast."""
    fast_password_hashing(monkeypatch)


@pytest.fixture
def world(session: Session, fast_hashing: None) -> World:
    """Two townships, their caseworkers, a supervisor, an admin and households."""
    return build_world(session, utcnow())
