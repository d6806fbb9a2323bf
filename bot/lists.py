"""The lists (花名册) the plans send each quarter to police, education bureau and township.

Kinds: children without hukou, dropped out, disabled, ill (患病 or 重病), poorly guarded, unattended,
and the full quarterly roster (``roster``) marked with what changed since the last one. Each as
.xlsx (openpyxl write-only mode: rows stream out, memory stays flat at county size) or CSV in UTF-8
with a BOM (so Excel on Chinese Windows opens it as Chinese, not mojibake). Headers and sheet texts
come from ``messages/*/LC_MESSAGES/reports.po`` in the reader's language.

Spreadsheet safety: a text starting with ``= + - @`` is written as text, never as a formula
(xlsx: a string cell; CSV: a leading apostrophe). In CSV, ID and phone numbers carry a leading tab
so Excel keeps all 18 digits instead of turning them into 1.20221E+17.

What changed since the last roster
----------------------------------
Every export writes an ``AuditEvent`` (``lists.export``: who, when, kind, scope, format, rows). The
quarterly roster compares each child's ``created_at`` / ``updated_at`` with the time of the last
roster export *of the same scope* (``township:<name>``, ``county:<name>`` or ``all``): created since
→ 新增 (new), updated since → 变更 (changed), else unchanged; the first export marks everything new.
We chose this over a snapshot table: no second copy of 50,000 children's personal data to keep and
protect, nothing to migrate, and the audit log is already the record of what was sent when. The
price: it says *that* a record changed (an import or a caseworker's edit touched it), not which
fields; the record's audit trail and import reports say which.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from bot.i18n import gettext
from bot.risk import assess
from bot.stats import age_on
from models import ACTIVE_FLAG_STATUSES, AuditEvent, Child, ChildContact, Flag, Township

KINDS = ("no_hukou", "dropout", "disabled", "ill", "poor_guardianship", "unattended", "roster")
FORMATS = ("xlsx", "csv")
EXPORT_ACTION = "lists.export"
COLUMNS = ("no", "county", "township", "village", "name", "sex", "birth_date", "age", "id_number", "hukou",
           "school_status", "school", "guardianship_type", "guardianship_quality", "special", "guardian_name",
           "guardian_relationship", "guardian_phone", "father_name", "father_phone", "mother_name",
           "mother_phone", "helper_name", "helper_phone", "arrangement", "risk_type", "risk_level")
TEXT_NUMBER_COLUMNS = frozenset({"id_number", "guardian_phone", "father_phone", "mother_phone", "helper_phone"})
WIDTHS = {"no": 6, "name": 10, "birth_date": 12, "id_number": 21, "special": 24, "school": 18, "township": 14,
          "village": 12, "guardianship_type": 22}
FORMULA_START = ("=", "+", "-", "@")


def kind_clause(kind: str) -> Any:
    """The WHERE clause of a list kind on ``Child``."""
    flags = cast(Child.special_flags, String)
    clauses = {
        "no_hukou": Child.has_hukou.is_(False),
        "dropout": Child.school_status == "dropout",
        "disabled": flags.like('%"disabled"%'),
        "ill": or_(flags.like('%"ill"%'), flags.like('%"seriously_ill"%')),
        "poor_guardianship": Child.guardianship_quality == "poor",
        "unattended": Child.guardianship_type == "unattended",
    }
    if kind == "roster":
        return None
    if kind not in clauses:
        raise ValueError(f"unknown list kind {kind!r}")
    return clauses[kind]


@dataclass(frozen=True)
class ListScope:
    """Which children a list covers: a key for the audit log, the township ids (None: all), a label."""

    key: str
    township_ids: tuple[int, ...] | None
    label: str


class ScopeError(LookupError):
    """No township or county of that name."""


def resolve_scope(session: Session, *, township: str | None = None, county: str | None = None) -> ListScope:
    """A township by name, a county by name, or everything."""
    if township:
        found = session.scalars(select(Township).where(Township.name == township.strip())).first()
        if found is None:
            raise ScopeError(township)
        return ListScope(f"township:{found.name}", (found.id,), found.name)
    if county:
        ids = tuple(session.scalars(select(Township.id).where(Township.county == county.strip())
                                    .order_by(Township.id)))
        if not ids:
            raise ScopeError(county)
        return ListScope(f"county:{county.strip()}", ids, county.strip())
    return ListScope("all", None, "")


def last_roster_export(session: Session, scope_key: str, before: datetime | None = None) -> datetime | None:
    """When the full roster of this scope was last exported (from the audit log)."""
    query = (select(AuditEvent.at, AuditEvent.detail).where(AuditEvent.action == EXPORT_ACTION)
             .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()))
    if before is not None:
        query = query.where(AuditEvent.at <= before)
    for at, detail in session.execute(query):
        if (detail or {}).get("kind") == "roster" and (detail or {}).get("scope") == scope_key:
            return at
    return None


def _t(key: str, locale: str | None) -> str:
    return gettext(key, locale)


def _label(group: str, value: Any, locale: str | None) -> str:
    if value is None or value == "":
        return ""
    return _t(f"report.value.{group}.{value}", locale)


def header(kind: str, locale: str | None) -> list[str]:
    """The column titles of a list (the roster adds a change column first)."""
    titles = [_t(f"report.column.{c}", locale) for c in COLUMNS]
    return ([_t("report.column.change", locale)] + titles) if kind == "roster" else titles


def list_rows(session: Session, kind: str, scope: ListScope, *, as_of: date, locale: str | None,
              since: datetime | None = None) -> Iterator[list[Any]]:
    """The rows of a list, in county, township, village, name order; streamed in chunks."""
    clause = kind_clause(kind)
    query = (select(Child).join(Township, Township.id == Child.township_id)
             .options(joinedload(Child.township), joinedload(Child.village),
                      selectinload(Child.links).joinedload(ChildContact.contact), selectinload(Child.arrangements))
             .order_by(Township.county, Township.name, Child.village_id, Child.name, Child.id))
    if clause is not None:
        query = query.where(clause)
    if scope.township_ids is not None:
        query = query.where(Child.township_id.in_(scope.township_ids))
    flag_query = select(Flag.child_id, Flag.category).where(Flag.status.in_(ACTIVE_FLAG_STATUSES),
                                                            Flag.child_id.is_not(None))
    if scope.township_ids is not None:
        flag_query = flag_query.join(Child, Child.id == Flag.child_id).where(Child.township_id.in_(scope.township_ids))
    open_flags: dict[int, list[str]] = {}
    for child_id, category in session.execute(flag_query):
        open_flags.setdefault(child_id, []).append(category)
    number = 0
    for child in session.scalars(query.execution_options(yield_per=1000)):
        number += 1
        people: dict[str, tuple[str, str, str]] = {}
        for link in sorted(child.links, key=lambda l: l.id):
            people.setdefault(link.role, (link.contact.name or "", link.contact.phone or "",
                                          link.relationship_label or ""))
        risk = assess(child, open_flags.get(child.id, ()))
        arrangement = child.current_arrangement()
        special = [_label("special", f, locale) for f in (child.special_flags or [])]
        if child.special_circumstances and not special:
            special = [child.special_circumstances]
        values = {
            "no": number, "county": child.township.county or "", "township": child.township.name,
            "village": child.village.name, "name": child.name, "sex": _label("sex", child.sex, locale),
            "birth_date": child.birth_date, "age": age_on(child.birth_date, as_of), "id_number": child.id_number or "",
            "hukou": _t("report.value.yes" if child.has_hukou else "report.value.no", locale),
            "school_status": _label("school_status", child.school_status, locale), "school": child.school or "",
            "guardianship_type": _label("guardianship_type", child.guardianship_type, locale),
            "guardianship_quality": _label("guardianship_quality", child.guardianship_quality, locale),
            "special": "、".join(special),
            "guardian_name": people.get("guardian", ("", "", ""))[0],
            "guardian_relationship": people.get("guardian", ("", "", ""))[2],
            "guardian_phone": people.get("guardian", ("", "", ""))[1],
            "father_name": people.get("father", ("", "", ""))[0], "father_phone": people.get("father", ("", "", ""))[1],
            "mother_name": people.get("mother", ("", "", ""))[0], "mother_phone": people.get("mother", ("", "", ""))[1],
            "helper_name": people.get("helper", ("", "", ""))[0], "helper_phone": people.get("helper", ("", "", ""))[1],
            "arrangement": _label("arrangement", arrangement.status if arrangement else "none", locale),
            "risk_type": risk.type, "risk_level": risk.level or "",
        }
        row = [values[c] for c in COLUMNS]
        if kind == "roster":
            if since is None or child.created_at > since:
                change = "new"
            elif child.updated_at > since:
                change = "updated"
            else:
                change = "unchanged"
            row.insert(0, _label("change", change, locale))
        yield row


def _safe_text(value: str) -> bool:
    return not value.startswith(FORMULA_START)


def write_csv(out: IO[bytes], head: list[str], rows: Iterator[list[Any]], kind: str) -> int:
    """CSV in UTF-8 with a BOM; ID and phone numbers kept as text for Excel. Returns the row count."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(head)
    offset = 1 if kind == "roster" else 0
    as_text = {i + offset for i, c in enumerate(COLUMNS) if c in TEXT_NUMBER_COLUMNS}
    count = 0
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            value = "" if value is None else value.isoformat() if isinstance(value, date) else value
            if isinstance(value, str) and value:
                if i in as_text:
                    value = "\t" + value
                elif not _safe_text(value):
                    value = "'" + value
            cells.append(value)
        writer.writerow(cells)
        count += 1
    text.flush()
    text.detach()
    return count


def write_xlsx(out: IO[bytes], head: list[str], rows: Iterator[list[Any]], kind: str, *, title: str,
               notes: Sequence[tuple[str, str]], about_title: str = "About") -> int:
    """An .xlsx workbook (write-only, streamed): the list on the first sheet, what it is on the second."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    columns = (["change"] if kind == "roster" else []) + list(COLUMNS)
    for i, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = WIDTHS.get(column, 13)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    head_cells = []
    for text in head:
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = bold
        head_cells.append(cell)
    sheet.append(head_cells)
    count = 0
    for row in rows:
        cells: list[Any] = []
        for value in row:
            if isinstance(value, str) and value and not _safe_text(value):
                cell = WriteOnlyCell(sheet, value=value)
                cell.data_type = "s"  # never a formula
                cells.append(cell)
            elif isinstance(value, date):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = "yyyy-mm-dd"
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
        count += 1
    about = book.create_sheet(title=about_title[:31])
    about.column_dimensions["A"].width = 18
    about.column_dimensions["B"].width = 60
    for key, value in notes:
        about.append([key, value])
    book.save(out)
    return count


@dataclass
class ExportResult:
    """What an export wrote."""

    kind: str
    scope: ListScope
    format: str
    rows: int
    since: datetime | None
    filename: str


def filename(kind: str, scope: ListScope, fmt: str, when: date, locale: str | None) -> str:
    """A file name people recognise: 乡镇_无户口儿童花名册_2026-09-30.xlsx."""
    parts = [p for p in (scope.label, _t(f"report.list.{kind}", locale), when.isoformat()) if p]
    return "_".join(parts).replace("/", "-") + f".{fmt}"


def export_list(session: Session, *, kind: str, scope: ListScope, fmt: str, out: IO[bytes], actor: Any,
                now: datetime, as_of: date, locale: str | None = None, ip: str | None = None,
                detail: dict[str, Any] | None = None) -> ExportResult:
    """Write one list to `out` and audit-log the export (the caller commits)."""
    from bot.audit import audit

    if kind not in KINDS:
        raise ValueError(f"unknown list kind {kind!r}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    since = last_roster_export(session, scope.key) if kind == "roster" else None
    head = header(kind, locale)
    rows = list_rows(session, kind, scope, as_of=as_of, locale=locale, since=since)
    title = _t(f"report.list.{kind}", locale)
    if fmt == "csv":
        count = write_csv(out, head, rows, kind)
    else:
        notes = [(_t("report.note.list", locale), title),
                 (_t("report.note.scope", locale), scope.label or _t("report.note.scope_all", locale)),
                 (_t("report.note.as_of", locale), as_of.isoformat()),
                 (_t("report.note.generated", locale), now.isoformat(timespec="seconds"))]
        if kind == "roster":
            notes.append((_t("report.note.since", locale),
                          since.isoformat(timespec="seconds") if since else _t("report.note.first_roster", locale)))
        count = write_xlsx(out, head, rows, kind, title=title, notes=notes,
                           about_title=_t("report.note.sheet", locale))
    name = filename(kind, scope, fmt, as_of, locale)
    township_id = scope.township_ids[0] if scope.township_ids and len(scope.township_ids) == 1 else None
    audit(session, actor, EXPORT_ACTION, "list", None, township_id,
          {"kind": kind, "scope": scope.key, "format": fmt, "rows": count, "file": name,
           "since": since.isoformat() if since else None, **(detail or {})}, ip, now=now)
    return ExportResult(kind, scope, fmt, count, since, name)
