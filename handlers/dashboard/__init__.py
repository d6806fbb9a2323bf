"""The caseworker dashboard: server-rendered pages, Chinese first, scoped to the user's townships.

Adding a page (the rosters pages, say)
--------------------------------------
Put a module in ``handlers/dashboard/pages/`` defining a blueprint and ``init_app(app)``; it is
registered automatically. Reuse what is here::

    from flask import Blueprint, render_template
    from handlers.dashboard import audit_event, login_required, register_nav
    from handlers.dashboard.access import child_or_404, current_scope, scoped_townships

    bp = Blueprint("rosters", __name__, url_prefix="/rosters", template_folder="templates")

    @bp.get("/")
    @login_required
    def index():
        children = session.scalars(select(Child).where(current_scope().child_clause()))
        return render_template("rosters/index.html", children=children)  # {% extends "dashboard/base.html" %}

    def init_app(app):
        app.register_blueprint(bp)
        register_nav(app, "rosters.index", "ui.nav.rosters")           # a link in the shared nav

Rules every page keeps: ``@login_required`` on every route; objects loaded through the
``*_or_404`` loaders or filtered with ``current_scope()`` clauses (out of scope is 404); every
view of a child's data, every export and every action calls ``audit_event``; forms carry
``{{ csrf_token() }}`` (every POST outside ``/twilio/`` is checked); texts come from
``messages/*/LC_MESSAGES/*.po`` through ``_("ui....")`` in templates and ``ui_text`` in code.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections import deque
from datetime import datetime, timedelta
from threading import Lock
from typing import Any

from flask import Flask, current_app, request
from flask import session as web_session
from flask_login import LoginManager, UserMixin, current_user
from flask_login import login_required as _flask_login_required
from flask_wtf.csrf import CSRFError, CSRFProtect

from bot.audit import audit
from bot.clock import local, utcnow
from bot.db import request_session
from bot.i18n import gettext, normalize_locale
from models import AuditEvent, Caseworker

login_required = _flask_login_required
login_manager = LoginManager()
csrf = CSRFProtect()
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
WEBHOOK_PREFIX = "/twilio/"


class DashboardUser(UserMixin):
    """The logged-in caseworker; the session id includes a piece of the password hash, so a
    password change ends every other session."""

    def __init__(self, record: Caseworker) -> None:
        self.record = record

    def get_id(self) -> str:
        return f"{self.record.id}:{self.record.password_hash[-12:]}"

    @property
    def is_active(self) -> bool:
        return bool(self.record.active)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def role(self) -> str:
        return self.record.role


@login_manager.user_loader
def _load_user(user_id: str) -> DashboardUser | None:
    ident, _, version = user_id.partition(":")
    if not ident.isdigit():
        return None
    record = request_session().get(Caseworker, int(ident))
    if record is None or not record.active or record.password_hash[-12:] != version:
        return None
    return DashboardUser(record)


# --- texts -----------------------------------------------------------------------------------

def ui_locale() -> str:
    """The reader's locale: the session's choice, else the user's, else Chinese."""
    chosen = web_session.get("lang")
    if chosen:
        return normalize_locale(chosen)
    if current_user and current_user.is_authenticated:
        return normalize_locale(current_user.record.language)
    return "zh_Hans"


def ui_text(key: str, **variables: Any) -> str:
    """A UI text in the reader's locale; named variables filled in (the result is escaped later)."""
    text = gettext(key, ui_locale())
    return text % variables if variables else text


def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant in the service's time zone."""
    if moment is None:
        return ""
    return local(moment, current_app.config["TIMEZONE"]).strftime(fmt)


# --- navigation and audit helpers for pages --------------------------------------------------

def register_nav(app: Flask, endpoint: str, label_key: str, roles: tuple[str, ...] | None = None) -> None:
    """Add a link to the shared navigation (shown to the given roles, or to everyone)."""
    app.extensions.setdefault("dashboard_nav", []).append(
        {"endpoint": endpoint, "label_key": label_key, "roles": roles})


def nav_items() -> list[dict[str, Any]]:
    """The links the current user sees."""
    role = current_user.record.role if current_user.is_authenticated else None
    return [item for item in current_app.extensions.get("dashboard_nav", [])
            if item["roles"] is None or role in item["roles"]]


def client_ip() -> str | None:
    """The requester's address (put ProxyFix in front when behind a proxy)."""
    return request.remote_addr


def audit_event(action: str, object_type: str | None = None, object_id: int | None = None,
                township_id: int | None = None, detail: dict[str, Any] | None = None,
                now: datetime | None = None) -> AuditEvent:
    """Record what the current user saw or did (the view commits)."""
    actor = current_user.record if current_user.is_authenticated else None
    return audit(request_session(), actor, action, object_type, object_id, township_id, detail, client_ip(),
                 now=now or utcnow())


# --- login throttling per address (the per-account lock lives in bot.accounts) ----------------

class AddressThrottle:
    """At most `limit` failed logins per address in `window`; in memory, per process."""

    def __init__(self, limit: int = 20, window: timedelta = timedelta(minutes=15)) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = Lock()

    def _recent(self, address: str, now: datetime) -> deque[datetime]:
        times = self._failures.setdefault(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, address: str, now: datetime) -> bool:
        with self._lock:
            return len(self._recent(address, now)) >= self.limit

    def failed(self, address: str, now: datetime) -> None:
        with self._lock:
            self._recent(address, now).append(now)
            if len(self._failures) > 10000:  # forget the quietest addresses
                for key in [k for k, v in self._failures.items() if not v][:5000]:
                    del self._failures[key]

    def reset(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


def init_app(app: Flask) -> None:
    """Wire login, CSRF, texts and security headers; register the dashboard and its pages."""
    from handlers.dashboard import auth, views  # noqa: F401  (routes attach to the blueprint)
    from handlers.dashboard.blueprint import bp

    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked below for every POST outside /twilio/
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "dashboard.login"
    login_manager.session_protection = "basic"
    login_manager.login_message = None  # type: ignore[assignment]
    app.extensions["dashboard_throttle"] = AddressThrottle(
        limit=int(app.config.get("LOGIN_ATTEMPTS_PER_ADDRESS", 20)))
    app.extensions.setdefault("dashboard_nav", [])

    @app.before_request
    def _csrf_protect() -> None:
        if not app.config.get("WTF_CSRF_ENABLED", True):
            return
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and not request.path.startswith(WEBHOOK_PREFIX):
            csrf.protect()

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError):  # type: ignore[no-untyped-def]
        from flask import render_template

        return render_template("dashboard/error.html", code=400, message_key="ui.error.csrf"), 400

    @app.context_processor
    def _texts() -> dict[str, Any]:
        return {"_": ui_text, "ui_locale": ui_locale, "local_time": local_time, "nav_items": nav_items}

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.register_blueprint(bp)
    register_nav(app, "dashboard.flag_queue", "ui.nav.flags")
    register_nav(app, "dashboard.conversations", "ui.nav.conversations")
    register_nav(app, "dashboard.children", "ui.nav.children")
    _register_pages(app)
    register_nav(app, "dashboard.audit_log", "ui.nav.audit", roles=("admin",))


def _register_pages(app: Flask) -> None:
    """Every module in handlers/dashboard/pages/ with an init_app (pages added by other issues)."""
    try:
        pages = importlib.import_module("handlers.dashboard.pages")
    except ModuleNotFoundError:
        return
    for info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"handlers.dashboard.pages.{info.name}")
        if hasattr(module, "init_app"):
            module.init_app(app)


__all__ = ["DashboardUser", "audit_event", "csrf", "init_app", "local_time", "login_required", "register_nav",
           "ui_locale", "ui_text"]
