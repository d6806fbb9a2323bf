"""Roster (花名册) import: parse.py reads and validates files; store.py writes them to the database."""
from bot.roster.parse import (
    ChildRow, FieldError, PersonRow, RosterFileError, RosterReader, RowRejected, format_file_error,
    format_row_error, open_roster, roster_gettext,
)

__all__ = [
    "ChildRow", "FieldError", "PersonRow", "RosterFileError", "RosterReader", "RowRejected",
    "format_file_error", "format_row_error", "open_roster", "roster_gettext",
]
