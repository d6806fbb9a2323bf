"""Report pages: statistics with charts, list (花名册) exports, roster upload.

Who needs attention (children by arrangement state) is the dashboard's children list, ``/children``;
``/reports/attention`` redirects there.

Every route needs a login and works inside the user's scope (caseworker: own townships, supervisor:
the county, admin: everything); a township outside it is 404. Charts are inline SVG drawn on the
server (no JavaScript, no CDN). Exports and imports are audit-logged; so are views of child lists.
"""
from __future__ import annotations

import io
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from bot.clock import local_date, utcnow
from bot.db import request_session
from handlers.dashboard import audit_event, client_ip, login_required, register_nav, ui_locale, ui_text
from handlers.dashboard.access import current_scope, scoped_townships
from models import AuditEvent, Caseworker, Township
from models.people import GUARDIANSHIP_TYPES

bp = Blueprint("reports", __name__, url_prefix="/reports", template_folder="templates")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
CHART_COLORS = ("#1f6f5c", "#b26a00", "#b3261e", "#4a6fa5")


# --- helpers ---------------------------------------------------------------------------------

def _today() -> date:
    return local_date(utcnow(), current_app.config["TIMEZONE"])


def _scope_ids() -> list[int] | None:
    scope = current_scope()
    return None if scope.everything else sorted(scope.township_ids or ())


def _township_filter() -> tuple[Township | None, list[int] | None]:
    """The township asked for (404 when outside scope) and the ids to count."""
    township_id = request.args.get("township", type=int) or request.form.get("township", type=int)
    if township_id:
        township = request_session().get(Township, township_id)
        if township is None or not current_scope().allows_township(township.id):
            abort(404)
        return township, [township.id]
    return None, _scope_ids()


def hbar_chart(items: list[tuple[str, int, str]], width: int = 640) -> dict[str, Any]:
    """A horizontal bar chart as SVG geometry: (label, value, note) per bar."""
    label_w, bar_h, gap, value_w = 190, 22, 8, 110
    top = max((v for _, v, _ in items), default=0) or 1
    span = width - label_w - value_w
    bars = []
    for i, (label, value, note) in enumerate(items):
        y = i * (bar_h + gap)
        bars.append({"label": label, "value": value, "note": note, "y": y, "text_y": y + bar_h * 0.72,
                     "x": label_w, "w": max(1 if value else 0, round(span * value / top)), "h": bar_h,
                     "value_x": label_w + max(1 if value else 0, round(span * value / top)) + 6,
                     "color": CHART_COLORS[i % len(CHART_COLORS)]})
    return {"width": width, "height": max(1, len(items)) * (bar_h + gap), "bars": bars, "label_w": label_w}


def month_chart(months: list[dict[str, Any]], series: list[tuple[str, str]], width: int = 640) -> dict[str, Any]:
    """Grouped vertical bars, one group per month, one bar per series."""
    plot_h, axis_h, left = 160, 34, 30
    top = max((m[key] for m in months for key, _ in series), default=0) or 1
    group_w = (width - left) / max(1, len(months))
    bar_w = max(2.0, (group_w - 6) / len(series))
    bars, labels = [], []
    for i, month in enumerate(months):
        x0 = left + i * group_w + 3
        for j, (key, _) in enumerate(series):
            h = round(plot_h * month[key] / top)
            bars.append({"x": round(x0 + j * bar_w, 1), "y": plot_h - h, "w": round(bar_w - 1, 1), "h": h,
                         "color": CHART_COLORS[j % len(CHART_COLORS)], "title": f"{month['month']} {month[key]}"})
        labels.append({"x": round(x0 + group_w / 2 - 3, 1), "text": month["month"][2:]})
    legend = [{"label": label, "color": CHART_COLORS[j % len(CHART_COLORS)], "x": left + j * 170}
              for j, (_, label) in enumerate(series)]
    return {"width": width, "height": plot_h + axis_h + 24, "plot_h": plot_h, "bars": bars, "labels": labels,
            "legend": legend, "top": top, "left": left}


# --- statistics --------------------------------------------------------------------------------

@bp.get("/stats")
@login_required
def stats() -> str:
    """The INTERFACE.md statistics for the user's scope, with charts."""
    from bot.stats import by_township, compute_stats, monthly_activity

    township, ids = _township_filter()
    as_of_text = request.args.get("as_of") or ""
    try:
        as_of = date.fromisoformat(as_of_text) if as_of_text else _today()
    except ValueError:
        as_of = _today()
    session = request_session()
    result = compute_stats(session, as_of=as_of, township_ids=ids)
    townships = by_township(session, as_of=as_of, township_ids=ids)
    months = monthly_activity(session, last_day=_today(), months=12, township_ids=ids,
                              timezone=current_app.config["TIMEZONE"])
    charts = {
        "guardianship": hbar_chart([(ui_text(f"report.value.guardianship_type.{g}"), e["count"], f"{e['percent']}%")
                                    for g, e in result["by_guardianship"].items()]),
        "age": hbar_chart([(ui_text(f"report.value.age.{a}"), e["count"], f"{e['percent']}%")
                           for a, e in result["by_age"].items()]),
        "townships": hbar_chart([(t["name"], t["total"], "") for t in townships]),
        "monthly": month_chart(months, [("checkins", ui_text("ui.reports.stats.checkins")),
                                        ("flags_raised", ui_text("ui.reports.stats.flags_raised")),
                                        ("flags_closed", ui_text("ui.reports.stats.flags_closed"))]),
    }
    return render_template("reports/stats.html", result=result, townships=townships, months=months, charts=charts,
                           township=township, all_townships=scoped_townships(), as_of=as_of.isoformat(),
                           gtypes=GUARDIANSHIP_TYPES)


# --- who needs attention ---------------------------------------------------------------------

@bp.get("/attention")
@login_required
def attention() -> Response:
    """Moved: the children list (/children) filters by arrangement state, default not yet confirmed by both."""
    query = request.query_string.decode("latin-1")
    return redirect(url_for("dashboard.children") + (f"?{query}" if query else ""))


# --- lists (花名册) -----------------------------------------------------------------------------

def _scope_choices() -> list[tuple[str, str]]:
    """(value, label): each township in scope, each county wholly in scope, and everything for admins."""
    townships = scoped_townships()
    choices = [(f"township:{t.id}", t.name) for t in townships]
    scope = current_scope()
    counties = sorted({t.county for t in townships if t.county})
    for county in counties:
        ids = set(request_session().scalars(select(Township.id).where(Township.county == county)))
        if scope.everything or ids <= set(scope.township_ids or ()):
            choices.append((f"county:{county}", ui_text("ui.reports.lists.county", county=county)))
    if scope.everything:
        choices.append(("all", ui_text("ui.reports.lists.all")))
    return choices


def _list_scope(value: str):  # type: ignore[no-untyped-def]
    """The ListScope of a choice, 404 when outside the user's scope."""
    from bot.lists import ListScope, ScopeError, resolve_scope

    scope = current_scope()
    session = request_session()
    kind, _, arg = value.partition(":")
    if kind == "township" and arg.isdigit():
        township = session.get(Township, int(arg))
        if township is None or not scope.allows_township(township.id):
            abort(404)
        return ListScope(f"township:{township.name}", (township.id,), township.name)
    if kind == "county" and arg:
        try:
            found = resolve_scope(session, county=arg)
        except ScopeError:
            abort(404)
        if not scope.everything and not set(found.township_ids or ()) <= set(scope.township_ids or ()):
            abort(404)
        return found
    if value == "all" and scope.everything:
        return resolve_scope(session)
    abort(404)


@bp.get("/lists")
@login_required
def lists() -> str:
    """Choose a list, a scope and a format; recent exports."""
    from bot.lists import EXPORT_ACTION, KINDS

    session = request_session()
    query = (select(AuditEvent, Caseworker.name).outerjoin(Caseworker, Caseworker.id == AuditEvent.actor_id)
             .where(AuditEvent.action == EXPORT_ACTION).order_by(AuditEvent.id.desc()).limit(20))
    if not current_scope().everything:
        query = query.where(AuditEvent.actor_id == current_user.record.id)
    recent = [{"at": e.at, "by": name or (e.detail or {}).get("os_user") or "", "file": (e.detail or {}).get("file"),
               "rows": (e.detail or {}).get("rows")} for e, name in session.execute(query)]
    return render_template("reports/lists.html", kinds=KINDS, scopes=_scope_choices(), recent=recent)


@bp.post("/lists/export")
@login_required
def lists_export() -> Response:
    """Write the chosen list and send it as a download; audit-logged with who and when."""
    from bot.lists import KINDS, export_list

    kind = request.form.get("kind", "")
    fmt = request.form.get("format", "xlsx")
    if kind not in KINDS or fmt not in ("xlsx", "csv"):
        abort(400)
    scope = _list_scope(request.form.get("scope", ""))
    session = request_session()
    buffer = io.BytesIO()
    now = utcnow()
    result = export_list(session, kind=kind, scope=scope, fmt=fmt, out=buffer, actor=current_user.record, now=now,
                         as_of=_today(), locale=ui_locale(), ip=client_ip(), detail={"via": "dashboard"})
    session.commit()
    mimetype = ("text/csv; charset=utf-8" if fmt == "csv" else
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    from urllib.parse import quote

    response = Response(buffer.getvalue(), mimetype=mimetype)
    ascii_name = f"{kind}_{now:%Y%m%d}.{fmt}"
    response.headers["Content-Disposition"] = (f"attachment; filename=\"{ascii_name}\"; "
                                               f"filename*=UTF-8''{quote(result.filename)}")
    response.headers["Cache-Control"] = "no-store"
    return response


# --- roster upload -----------------------------------------------------------------------------

class _ScopeFilter:
    """Rows of townships outside the uploader's scope become rejected rows (never imported)."""

    def __init__(self, reader: Any, allowed: set[str] | None, county: str | None) -> None:
        self.reader, self.allowed, self.county = reader, allowed, county

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        from bot.roster.parse import ChildRow, FieldError, RowRejected

        for item in self.reader:
            if isinstance(item, ChildRow) and self.allowed is not None and item.township not in self.allowed \
                    and not (self.county and item.county == self.county):
                yield RowRejected(item.row_number, (FieldError("乡镇", "report.error.out_of_scope",
                                                               {"value": item.township}),))
            else:
                yield item


@bp.route("/upload", methods=["GET", "POST"])
@login_required
def upload() -> str | tuple[str, int]:
    """Upload a roster: the same import as `flask roster import`, per-row errors shown."""
    from bot.i18n import make_gettext
    from bot.roster.parse import RosterFileError, format_file_error, format_row_error, open_roster
    from bot.roster.store import import_rows

    if request.method == "GET":
        return render_template("reports/upload.html", result=None, error=None)
    upload_file = request.files.get("file")
    if upload_file is None or not upload_file.filename:
        return render_template("reports/upload.html", result=None, error=ui_text("ui.reports.upload.no_file")), 400
    if request.content_length and request.content_length > MAX_UPLOAD_BYTES:
        return render_template("reports/upload.html", result=None,
                               error=ui_text("ui.reports.upload.too_large")), 413
    dry_run, strict = bool(request.form.get("dry_run")), bool(request.form.get("strict"))
    gettext = make_gettext(ui_locale())
    suffix = Path(upload_file.filename).suffix.lower()
    suffix = suffix if suffix in (".csv", ".xlsx", ".xlsm") else ".csv"
    user = current_user.record
    scope = current_scope()
    allowed = None if scope.everything else {t.name for t in scoped_townships()}
    county = user.county if user.role == "supervisor" else None
    now = utcnow()
    session = request_session()
    with tempfile.TemporaryDirectory(prefix="roster-") as folder:
        path = Path(folder) / f"upload{suffix}"
        upload_file.save(path)
        try:
            reader = open_roster(path, today=local_date(now, current_app.config["TIMEZONE"]))
        except RosterFileError as error:
            return render_template("reports/upload.html", result=None, error=format_file_error(error, gettext)), 400
        try:
            report = import_rows(session, _ScopeFilter(reader, allowed, county), now=now, config=current_app.config)
        except RosterFileError as error:
            session.rollback()
            return render_template("reports/upload.html", result=None, error=format_file_error(error, gettext)), 400
        finally:
            close = getattr(reader, "close", None)
            if close:
                close()
    written = not (dry_run or (strict and report.rejected))
    if not written:
        session.rollback()
    audit_event("roster.import", None, None, None,
                {"file": upload_file.filename[:200], "new": report.new, "updated": report.updated,
                 "unchanged": report.unchanged, "rejected": len(report.rejected), "dry_run": dry_run,
                 "strict": strict, "written": written}, now)
    session.commit()
    result = {
        "summary": ui_text("ui.reports.upload.summary", new=report.new, updated=report.updated,
                           unchanged=report.unchanged, rejected=len(report.rejected)),
        "errors": [line for rejected in report.rejected for line in format_row_error(rejected, gettext)],
        "warnings": [gettext("roster.row_prefix") % {"row": row} + " " + gettext(key) % params
                     for row, key, params in report.warnings],
        "changes": [gettext("roster.changed") % {"row": row, "name": name, "fields": ", ".join(fields)}
                    for row, name, fields in report.changes],
        "unknown_columns": list(getattr(reader, "unknown_columns", []) or []),
        "dry_run": dry_run, "strict_stopped": strict and bool(report.rejected) and not dry_run,
    }
    return render_template("reports/upload.html", result=result, error=None)


def init_app(app: Flask) -> None:
    """Register the pages and their links."""
    app.register_blueprint(bp)
    register_nav(app, "reports.stats", "ui.nav.stats")
    register_nav(app, "reports.lists", "ui.nav.lists")
    register_nav(app, "reports.upload", "ui.nav.upload")


__all__ = ["bp", "hbar_chart", "init_app", "month_chart"]
