"""Storing parsed roster rows: new children in bulk, changed ones updated, each row whole or not at all."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bot.enrollment import (confirmation_rows, enrollment_rows, first_checkin_time, flag_unattended,
                            start_arrangement)
from bot.reminders import plan_reminders
from bot.roster.parse import ChildRow, FieldError, PersonRow, RowRejected
from models import Arrangement, Child, ChildContact, Contact, Township, Village

CHUNK = 2000
PARENT_ORDER = ("father", "mother")
CHILD_FIELDS = ("name", "sex", "birth_date", "id_number", "has_hukou", "school_status", "school",
                "guardianship_type", "guardianship_quality", "special_circumstances")


@dataclass
class ImportReport:
    """What an import did: counts, the rejected rows, and what changed in updated records."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowRejected] = field(default_factory=list)
    changes: list[tuple[int, str, list[str]]] = field(default_factory=list)  # (row, child name, fields)
    unknown_columns: list[str] = field(default_factory=list)
    warnings: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)  # (row, message key, params)

    @property
    def exit_status(self) -> int:
        """0 when every row imported, 1 when some were rejected."""
        return 1 if self.rejected else 0


def identity_key(row: ChildRow) -> str:
    """The stored form of a row's identity (ROSTER.md)."""
    kind, *parts = row.identity()
    return f"{kind}:" + "|".join(parts)


def fingerprint(row: ChildRow) -> str:
    """A digest of everything a row says, to tell unchanged re-imports from updates."""
    parts = [repr(getattr(row, name)) for name in (*CHILD_FIELDS, "county", "township", "village")]
    parts.append(repr(sorted(row.special_flags)))
    parts.extend(repr(person) for person in sorted(row.people, key=lambda p: p.role))
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class RosterStore:
    """Imports parsed rows into the database, caching places and contacts across rows."""

    def __init__(self, session: Session, *, now: datetime, config: dict[str, Any]) -> None:
        self.session = session
        self.now = now
        self.config = config
        self.first_checkin_at = first_checkin_time(now, config)
        self.townships = {t.name: t for t in session.scalars(select(Township))}
        self.villages = {(v.township_id, v.name): v.id for v in session.scalars(select(Village))}
        self.contacts = {phone: contact_id for phone, contact_id in session.execute(select(Contact.phone, Contact.id))}
        self.children = {key: (cid, fp) for key, cid, fp in session.execute(
            select(Child.identity_key, Child.id, Child.roster_fingerprint))}
        self.seen_rows: dict[str, int] = {}
        self.seen_names: dict[str, str] = {}
        self.row_keys: dict[int, str] = {}

    # -- places and people -------------------------------------------------------------------------

    def _township(self, name: str, county: str | None) -> Township:
        township = self.townships.get(name)
        if township is None:
            township = Township(name=name, county=county, settings={})
            self.session.add(township)
            self.session.flush()
            self.townships[name] = township
        elif county and not township.county:
            township.county = county
        return township

    def _village(self, township: Township, name: str) -> int:
        key = (township.id, name)
        if key not in self.villages:
            village = Village(township_id=township.id, name=name)
            self.session.add(village)
            self.session.flush()
            self.villages[key] = village.id
        return self.villages[key]

    def _new_contacts(self, people: Iterable[PersonRow]) -> None:
        fresh: dict[str, dict[str, Any]] = {}
        for person in people:
            if person.phone and person.phone not in self.contacts and person.phone not in fresh:
                fresh[person.phone] = {"phone": person.phone, "name": person.name, "language": "zh_Hans",
                                       "channel": person.channel, "workplace": person.workplace,
                                       "opted_out": False, "invalid_number": False, "created_at": self.now}
        if fresh:
            rows = list(fresh.values())
            ids = _insert_returning_ids(self.session, Contact.__table__, rows)
            for row, contact_id in zip(rows, ids):
                self.contacts[row["phone"]] = contact_id

    # -- rows --------------------------------------------------------------------------------------

    def add_rows(self, rows: list[ChildRow], report: ImportReport) -> None:
        """Insert new children in bulk and update changed ones; every row whole."""
        new_rows: list[ChildRow] = []
        for row in rows:
            key = self._key(row, report)
            if key in self.seen_rows:
                report.rejected.append(RowRejected(row.row_number, (FieldError(
                    "儿童姓名", "roster.error.duplicate_in_file", {"row": str(self.seen_rows[key])}),)))
                continue
            self.seen_rows[key] = row.row_number
            self.row_keys[row.row_number] = key
            known = self.children.get(key)
            if known is None:
                new_rows.append(row)
            elif known[1] == fingerprint(row):
                report.unchanged += 1
            else:
                changed = self._update(known[0], row)
                self.children[key] = (known[0], fingerprint(row))
                report.updated += 1
                report.changes.append((row.row_number, row.name, changed))
        if new_rows:
            self._insert(new_rows)
            report.new += len(new_rows)

    def _key(self, row: ChildRow, report: ImportReport) -> str:
        """The row's identity; an ID number already used by a child of another name is kept apart and reported."""
        key = identity_key(row)
        if row.id_number and (key in self.seen_names and self.seen_names[key] != row.name):
            report.warnings.append((row.row_number, "roster.warning.shared_id_number",
                                    {"row": str(self.seen_rows.get(key, "")), "value": row.id_number}))
            key = f"{key}|{row.name}"
        elif row.id_number and key in self.children and key not in self.seen_names:
            stored_name = self.session.scalar(select(Child.name).where(Child.identity_key == key))
            if stored_name is not None and stored_name != row.name:
                key = f"{key}|{row.name}"
        self.seen_names.setdefault(key, row.name)
        return key

    def _insert(self, rows: list[ChildRow]) -> None:
        self._new_contacts(person for row in rows for person in row.people)
        child_rows = []
        for row in rows:
            township = self._township(row.township, row.county)
            child_rows.append({
                "identity_key": self.row_keys[row.row_number], "roster_fingerprint": fingerprint(row),
                **{name: getattr(row, name) for name in CHILD_FIELDS},
                "special_flags": sorted(row.special_flags), "township_id": township.id,
                "village_id": self._village(township, row.village), "enrolled_at": self.now,
                "created_at": self.now, "updated_at": self.now})
        child_ids = _insert_returning_ids(self.session, Child.__table__, child_rows)
        links, arrangements, plans = [], [], []
        for row, child_id, child_row in zip(rows, child_ids, child_rows):
            self.children[child_row["identity_key"]] = (child_id, child_row["roster_fingerprint"])
            row_links = self._links(row)
            links.extend({"child_id": child_id, "contact_id": cid, "role": role, "relationship_label": label}
                         for cid, role, label in row_links)
            parent = next((cid for cid, role, _ in sorted(row_links, key=lambda l: PARENT_ORDER.index(l[1])
                                                          if l[1] in PARENT_ORDER else 9)
                           if role in PARENT_ORDER), None)
            guardian = next(((cid, label) for cid, role, label in row_links if role == "guardian"), (None, None))
            arrangements.append({"child_id": child_id, "parent_contact_id": parent, "guardian_contact_id": guardian[0],
                                 "guardian_relationship": guardian[1], "status": "proposed",
                                 "created_at": self.now, "history": []})
            plans.extend(enrollment_rows(child_id=child_id, links=[(cid, role) for cid, role, _ in row_links],
                                         now=self.now, first_checkin_at=self.first_checkin_at))
        if links:
            self.session.execute(insert(ChildContact.__table__), links)
        arrangement_ids = _insert_returning_ids(self.session, Arrangement.__table__, arrangements)
        for arrangement, arrangement_id in zip(arrangements, arrangement_ids):
            plans.extend(confirmation_rows(arrangement_id=arrangement_id, child_id=arrangement["child_id"],
                                           parent_id=arrangement["parent_contact_id"],
                                           guardian_id=arrangement["guardian_contact_id"], now=self.now))
        plan_reminders(self.session, plans)
        for row, child_id in zip(rows, child_ids):
            if row.guardianship_type == "unattended":
                flag_unattended(self.session, child=self.session.get(Child, child_id), now=self.now)

    def _links(self, row: ChildRow) -> list[tuple[int, str, str | None]]:
        labels = {"father": "父亲", "mother": "母亲"}
        seen: set[tuple[int, str]] = set()
        links = []
        for person in row.people:
            if not person.phone:
                continue
            contact_id = self.contacts[person.phone]
            if (contact_id, person.role) in seen:
                continue
            seen.add((contact_id, person.role))
            label = person.relationship if person.role == "guardian" else labels.get(person.role)
            links.append((contact_id, person.role, label))
        return links

    def _update(self, child_id: int, row: ChildRow) -> list[str]:
        """Apply an updated row to a known child; a new guardian starts a new confirmation."""
        child = self.session.get(Child, child_id)
        assert child is not None
        changed = [name for name in CHILD_FIELDS if getattr(child, name) != getattr(row, name)]
        for name in changed:
            setattr(child, name, getattr(row, name))
        if sorted(child.special_flags) != sorted(row.special_flags):
            child.special_flags = sorted(row.special_flags)
            changed.append("special_flags")
        township = self._township(row.township, row.county)
        village_id = self._village(township, row.village)
        if (child.township_id, child.village_id) != (township.id, village_id):
            child.township_id, child.village_id = township.id, village_id
            changed.append("village")
        self._new_contacts(row.people)
        wanted = {(cid, role): label for cid, role, label in self._links(row)}
        current = {(link.contact_id, link.role): link for link in child.links}
        guardian_changed = False
        for key, link in current.items():
            if key not in wanted:
                child.links.remove(link)
                changed.append(f"{link.role}_phone")
                guardian_changed |= link.role == "guardian"
        for (contact_id, role), label in wanted.items():
            if (contact_id, role) not in current:
                child.links.append(ChildContact(contact_id=contact_id, role=role, relationship_label=label))
                changed.append(f"{role}_phone")
                guardian_changed |= role == "guardian"
                plan_reminders(self.session, enrollment_rows(child_id=child.id, links=[(contact_id, role)],
                                                             now=self.now, first_checkin_at=self.first_checkin_at))
            elif current[(contact_id, role)].relationship_label != label:
                current[(contact_id, role)].relationship_label = label
                changed.append(f"{role}_relationship")
        for person in row.people:
            if person.phone and person.workplace:
                contact = self.session.get(Contact, self.contacts[person.phone])
                if contact is not None and contact.workplace != person.workplace:
                    contact.workplace = person.workplace
                    changed.append(f"{person.role}_workplace")
        child.roster_fingerprint = fingerprint(row)
        child.updated_at = self.now
        self.session.flush()
        if guardian_changed:
            self.session.refresh(child)
            start_arrangement(self.session, child=child, now=self.now)
        return sorted(set(changed))


def _insert_returning_ids(session: Session, table: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows (same keys each) with Core executemany and return their ids in order.

    Core, not the ORM bulk path: the ORM splits rows by which values are None and, on SQLite,
    splices RETURNING rows in a way that grows with the batch (measured by bench/import.py).
    """
    if not rows:
        return []
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, rows).scalars())


def import_rows(session: Session, rows: Iterable[ChildRow | RowRejected], *, now: datetime,
                config: dict[str, Any], progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import parsed rows; the caller commits (or rolls back for --dry-run / --strict)."""
    store = RosterStore(session, now=now, config=config)
    report = ImportReport()
    batch: list[ChildRow] = []
    for item in rows:
        if isinstance(item, RowRejected):
            report.rejected.append(item)
        else:
            batch.append(item)
        if progress is not None:
            progress(1)
        if len(batch) >= CHUNK:
            store.add_rows(batch, report)
            batch = []
    if batch:
        store.add_rows(batch, report)
    session.flush()
    report.rejected.sort(key=lambda rejected: rejected.row_number)
    return report
