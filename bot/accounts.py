"""Dashboard accounts: argon2id password hashes, creation, and login with a lockout.

Five wrong passwords in a row lock the account for 15 minutes (``Caseworker.locked_until``); the
dashboard adds a per-address throttle in memory. Nothing here commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ACCOUNT_ROLES, Caseworker, Township

MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_dummy_hashes: dict[int, str] = {}


def _dummy_hash() -> str:
    """A hash to verify against for unknown logins, so they take as long as known ones."""
    key = id(_hasher)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = _hasher.hash("xiangban-dummy-password")
    return _dummy_hashes[key]


class AccountError(ValueError):
    """A caseworker cannot be created as asked; `code` names why."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def get_or_create_township(session: Session, name: str, county: str | None = None) -> Township:
    """The township of that name, created when missing (its county filled in when unknown)."""
    name = name.strip()
    township = session.scalars(select(Township).where(Township.name == name)).first()
    if township is None:
        township = Township(name=name, county=county, settings={})
        session.add(township)
        session.flush()
    elif county and not township.county:
        township.county = county
    return township


def create_caseworker(session: Session, *, name: str, login: str, password: str, now: datetime,
                      townships: list[str] = (), role: str = "caseworker", county: str | None = None,  # type: ignore[assignment]
                      phone: str | None = None, language: str = "zh_Hans") -> Caseworker:
    """Add a dashboard user; townships are created when missing."""
    from bot.phones import normalize_phone

    login = login.strip()
    if not login or len(login) > 80:
        raise AccountError("login_invalid")
    if role not in ACCOUNT_ROLES:
        raise AccountError("role_invalid", role)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError("password_too_short", str(MIN_PASSWORD_LENGTH))
    if role == "caseworker" and not townships:
        raise AccountError("township_required")
    if role == "supervisor" and not county:
        raise AccountError("county_required")
    if session.scalars(select(Caseworker).where(func.lower(Caseworker.login) == login.lower())).first():
        raise AccountError("login_taken", login)
    e164 = None
    if phone:
        e164 = normalize_phone(phone)
        if e164 is None:
            raise AccountError("phone_invalid", phone)
    user = Caseworker(login=login, name=name.strip() or login, password_hash=hash_password(password), role=role,
                      county=county or None, phone=e164, language=language, active=True, failed_logins=0,
                      created_at=now)
    user.townships = [get_or_create_township(session, t, county)
                      for t in dict.fromkeys(t.strip() for t in townships if t.strip())]
    session.add(user)
    session.flush()
    return user


def set_password(user: Caseworker, password: str) -> None:
    """Replace a user's password (and lift any lock)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError("password_too_short", str(MIN_PASSWORD_LENGTH))
    user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until = 0, None


@dataclass
class LoginResult:
    """The user when the login succeeded; otherwise why not (unknown, wrong, locked, inactive)."""

    user: Caseworker | None
    reason: str


def authenticate(session: Session, *, login: str, password: str, now: datetime) -> LoginResult:
    """Check a login; count failures and lock the account after five in a row."""
    user = session.scalars(select(Caseworker).where(func.lower(Caseworker.login) == login.strip().lower())).first()
    if user is None:
        verify_password(_dummy_hash(), password)
        return LoginResult(None, "unknown")
    if user.locked_until is not None and user.locked_until > now:
        return LoginResult(None, "locked")
    if not verify_password(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until, user.failed_logins = now + timedelta(minutes=LOCK_MINUTES), 0
            return LoginResult(None, "locked")
        return LoginResult(None, "wrong")
    if not user.active:
        return LoginResult(None, "inactive")
    user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return LoginResult(user, "ok")
