"""Log in, log out, and the language switch."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, redirect, render_template, request, url_for
from flask import session as web_session
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from bot.accounts import authenticate
from bot.clock import utcnow
from bot.db import request_session
from bot.i18n import LOCALES
from handlers.dashboard import DashboardUser, audit_event, client_ip
from handlers.dashboard.blueprint import bp



def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //): otherwise the queue."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target:
            return target
    return url_for("dashboard.flag_queue")


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
def login() -> str | Response | tuple[str, int]:
    """The login form; five wrong passwords lock the account for 15 minutes."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    if request.method == "GET":
        return render_template("dashboard/login.html", error=None, login_name="")
    now = utcnow()
    address = client_ip() or "-"
    throttle = current_app.extensions["dashboard_throttle"]
    login_name = (request.form.get("login") or "").strip()[:80]
    password = request.form.get("password") or ""
    if throttle.blocked(address, now):
        return render_template("dashboard/login.html", error="ui.login.throttled", login_name=login_name), 429
    session = request_session()
    result = authenticate(session, login=login_name, password=password[:1024], now=now)
    if result.user is None:
        throttle.failed(address, now)
        audit_event("login_failed", "caseworker", None, None, {"login": login_name, "reason": result.reason}, now)
        session.commit()
        return render_template("dashboard/login.html", error="ui.login.failed", login_name=login_name), 401
    lang = web_session.get("lang")
    web_session.clear()  # a fresh session on login (no fixation)
    if lang:
        web_session["lang"] = lang
    login_user(DashboardUser(result.user))
    throttle.reset(address)
    audit_event("login", "caseworker", result.user.id, None, {}, now)
    session.commit()
    return redirect(safe_next(request.args.get("next")))


@bp.post("/logout", endpoint="logout")
def logout() -> Response:
    """Log out (a POST with the CSRF token)."""
    if current_user.is_authenticated:
        audit_event("logout", "caseworker", current_user.record.id)
        request_session().commit()
    logout_user()
    lang = web_session.get("lang")
    web_session.clear()
    if lang:
        web_session["lang"] = lang
    return redirect(url_for("dashboard.login"))


@bp.get("/lang/<code>", endpoint="set_language")
def set_language(code: str) -> Response:
    """Switch the interface language (zh_Hans or en) and go back."""
    if code in LOCALES:
        web_session["lang"] = code
        if current_user.is_authenticated and current_user.record.language != code:
            current_user.record.language = code
            request_session().commit()
    return redirect(safe_next(request.args.get("next")))
