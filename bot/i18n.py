"""Babel catalogs from messages/: every text a person reads, in the reader's language.

Message ids are keys (``sms.checkin_ask``, ``roster.error.phone_invalid`` ...): outbound texts
are pre-approved templates, so the key is their identity. Every ``*.po`` file under
``messages/<locale>/LC_MESSAGES/`` is merged into the locale's catalog at first use.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

MESSAGES_DIR = Path(__file__).resolve().parent.parent / "messages"
LOCALES = ("zh_Hans", "en")
DEFAULT_LOCALE = "zh_Hans"


def normalize_locale(language: str | None) -> str:
    """Map a language tag (zh, zh-CN, en-US ...) to one of our catalogs."""
    if not language:
        return DEFAULT_LOCALE
    lowered = language.replace("-", "_").lower()
    return "en" if lowered.startswith("en") else "zh_Hans"


def po_files(locale: str) -> list[Path]:
    """The catalog files of one locale, in a stable order."""
    return sorted((MESSAGES_DIR / locale / "LC_MESSAGES").glob("*.po"))


def read_catalogs(locale: str) -> list[Catalog]:
    """Parse every .po file of a locale."""
    catalogs = []
    for path in po_files(locale):
        with path.open("rb") as handle:
            catalogs.append(read_po(handle, locale=locale.replace("_Hans", "")))
    return catalogs


@functools.cache
def translations(locale: str) -> Translations:
    """The merged, compiled catalog of a locale (compiled in memory, no .mo files to keep)."""
    merged: Translations | None = None
    for catalog in read_catalogs(locale):
        buffer = BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        piece = Translations(buffer)
        if merged is None:
            merged = piece
        else:
            merged.merge(piece)
    return merged or Translations()


def gettext(key: str, locale: str | None = None) -> str:
    """The text of a key in a locale; the key itself when missing (a test forbids that)."""
    return translations(normalize_locale(locale)).gettext(key)


def render(key: str, locale: str | None = None, variables: Mapping[str, object] | None = None) -> str:
    """Fill a template's named variables."""
    text = gettext(key, locale)
    return text % dict(variables) if variables else text


def make_gettext(locale: str | None):  # type: ignore[no-untyped-def]
    """A one-argument gettext bound to a locale (for code that formats errors)."""
    return functools.partial(gettext, locale=normalize_locale(locale))
