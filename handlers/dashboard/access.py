"""Scope: which townships a dashboard user may see, and loaders that 404 outside it.

- caseworker: the townships linked to the account (``caseworker_township``);
- supervisor: every township of the account's county (``Township.county == Caseworker.county``),
  plus any linked explicitly;
- admin: everything.

A child is in scope when its township is. A flag or conversation tied to children is in scope
when one of them is; one of an unknown sender (a contact linked to no child) carries no child
data and is visible to every dashboard user. Out of scope is always 404, never 403: the record's
existence is itself personal information.

Other dashboard pages reuse these: ``current_scope()``, ``scope.child_clause()`` for queries on
``Child``, and the ``*_or_404`` loaders.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import abort, g
from flask_login import current_user
from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session

from bot.db import request_session
from models import Caseworker, Child, ChildContact, Contact, Flag, Message, Township


@dataclass(frozen=True)
class Scope:
    """The townships a user may see; ``township_ids`` None means every township (admin)."""

    township_ids: frozenset[int] | None

    @property
    def everything(self) -> bool:
        """Whether this scope has no limit (an admin)."""
        return self.township_ids is None

    def allows_township(self, township_id: int | None) -> bool:
        """Whether a township is in scope (None: no township, i.e. no child data)."""
        return self.township_ids is None or township_id is None or township_id in self.township_ids

    def allows_child(self, child: Child | None) -> bool:
        """Whether a child's record is in scope."""
        return child is not None and (self.township_ids is None or child.township_id in self.township_ids)

    def allows_contact(self, contact: Contact | None) -> bool:
        """A contact linked to children is in scope with one of them; an unknown sender always is."""
        if contact is None:
            return True
        children = [link.child for link in contact.links]
        return not children or any(self.allows_child(c) for c in children)

    def allows_flag(self, flag: Flag) -> bool:
        """A flag about a child follows the child; one about a contact follows the contact."""
        if flag.child_id is not None:
            return self.allows_child(flag.child)
        if flag.township_id is not None and not self.allows_township(flag.township_id):
            return False
        return self.allows_contact(flag.contact)

    def allows_message(self, message: Message) -> bool:
        """A message about an out-of-scope child is hidden even inside a visible thread."""
        if message.child_id is not None:
            return self.allows_child(message.child)
        return self.allows_contact(message.contact)

    def _ids(self) -> list[int]:
        return sorted(self.township_ids or ())

    def child_clause(self) -> ColumnElement[bool]:
        """A WHERE clause on Child for this scope."""
        if self.township_ids is None:
            return true()
        if not self.township_ids:
            return false()
        return Child.township_id.in_(self._ids())

    def contact_clause(self, contact_id: ColumnElement[int] | None = None) -> ColumnElement[bool]:
        """A WHERE clause on a contact id column: linked to no child, or to one in scope."""
        if self.township_ids is None:
            return true()
        column = contact_id if contact_id is not None else Contact.id
        any_link = exists(select(ChildContact.id).where(ChildContact.contact_id == column))
        in_scope = exists(select(ChildContact.id).join(Child, Child.id == ChildContact.child_id)
                          .where(ChildContact.contact_id == column, self.child_clause()))
        return or_(~any_link, in_scope)

    def flag_clause(self) -> ColumnElement[bool]:
        """A WHERE clause on Flag for this scope."""
        if self.township_ids is None:
            return true()
        child_in_scope = exists(select(Child.id).where(Child.id == Flag.child_id, self.child_clause()))
        township_ok = or_(Flag.township_id.is_(None), Flag.township_id.in_(self._ids()))
        return or_(and_(Flag.child_id.is_not(None), child_in_scope),
                   and_(Flag.child_id.is_(None), township_ok, self.contact_clause(Flag.contact_id)))


def scope_for(session: Session, user: Caseworker) -> Scope:
    """The scope of a user, from role, county and linked townships."""
    if user.role == "admin":
        return Scope(None)
    ids = {t.id for t in user.townships}
    if user.role == "supervisor" and user.county:
        ids |= set(session.scalars(select(Township.id).where(Township.county == user.county)))
    return Scope(frozenset(ids))


def current_scope() -> Scope:
    """The scope of the logged-in user for this request (no user: nothing)."""
    if "dashboard_scope" not in g:
        if not current_user.is_authenticated:
            g.dashboard_scope = Scope(frozenset())
        else:
            g.dashboard_scope = scope_for(request_session(), current_user.record)
    return g.dashboard_scope


def scoped_townships() -> list[Township]:
    """The townships the user may see, by name."""
    query = select(Township).order_by(Township.name)
    scope = current_scope()
    if not scope.everything:
        query = query.where(Township.id.in_(sorted(scope.township_ids or ())))
    return list(request_session().scalars(query))


def child_or_404(child_id: int) -> Child:
    """A child in scope, or 404."""
    child = request_session().get(Child, child_id)
    if child is None or not current_scope().allows_child(child):
        abort(404)
    return child


def flag_or_404(flag_id: int) -> Flag:
    """A flag in scope, or 404."""
    flag = request_session().get(Flag, flag_id)
    if flag is None or not current_scope().allows_flag(flag):
        abort(404)
    return flag


def contact_or_404(contact_id: int) -> Contact:
    """A contact (a conversation) in scope, or 404."""
    contact = request_session().get(Contact, contact_id)
    if contact is None or not current_scope().allows_contact(contact):
        abort(404)
    return contact


def message_or_404(message_id: int) -> Message:
    """A message in scope (its child's, else its contact's), or 404; one with neither is no one's to see."""
    message = request_session().get(Message, message_id)
    if message is None or (message.child_id is None and message.contact_id is None) \
            or not current_scope().allows_message(message):
        abort(404)
    return message


def require_role(*roles: str) -> None:
    """404 unless the user has one of the roles (admin pages are invisible to others)."""
    if not current_user.is_authenticated or current_user.record.role not in roles:
        abort(404)
