"""A contact's own settings: channel, language and the local window in which we may reach them.

Contacts have a channel preference (sms, voice or both), from the roster or set by a caseworker,
and a local window (default 08:00–21:00 in the service's zone, Asia/Shanghai; a migrant parent may
have theirs set to where they work). ``bot.outbox.next_window_start`` reads the window: a contact's
``quiet_start``/``quiet_end``/``timezone`` when set, else the service defaults (None stores "the
default", so a change of the defaults reaches everyone who never chose). The window is one span of a
day: start before end.

Opted out and invalid number are not settings: they come from the person's own replies and the
carrier's receipts, and are only shown.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.i18n import LOCALES
from models import Contact
from models.people import CHANNELS

FIELDS = ("channel", "language", "quiet_start", "quiet_end", "timezone")


class SettingsError(ValueError):
    """A setting that is not valid; ``code`` (channel, language, time, window, timezone) names it."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class ContactSettings:
    """What a caseworker may set; None for a time or zone means the service default."""

    channel: str
    language: str
    quiet_start: time | None
    quiet_end: time | None
    timezone: str | None


@functools.lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def check_timezone(name: str | None) -> str | None:
    """An IANA zone name as zoneinfo spells it (``asia/shanghai`` → ``Asia/Shanghai``); None when empty."""
    name = (name or "").strip()
    if not name:
        return None
    canonical = _zones().get(name.lower()) if len(name) <= 50 else None
    if canonical is None:
        raise SettingsError("timezone")
    try:
        ZoneInfo(canonical)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise SettingsError("timezone") from error
    return canonical


def parse_time(text: str | None) -> time | None:
    """``HH:MM`` (or ``HH:MM:SS``, as some browsers send) to a time to the minute; None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        moment = time.fromisoformat(text)
    except ValueError as error:
        raise SettingsError("time") from error
    if moment.tzinfo is not None:
        raise SettingsError("time")
    return moment.replace(second=0, microsecond=0)


def read_settings(form: Mapping[str, Any]) -> ContactSettings:
    """The settings a form sends (every field is needed); SettingsError on the first invalid one."""
    channel = (form.get("channel") or "").strip()
    if channel not in CHANNELS:
        raise SettingsError("channel")
    language = (form.get("language") or "").strip()
    if language not in LOCALES:
        raise SettingsError("language")
    return ContactSettings(channel=channel, language=language, quiet_start=parse_time(form.get("quiet_start")),
                           quiet_end=parse_time(form.get("quiet_end")),
                           timezone=check_timezone(form.get("timezone")))


def _kept(new: Any, stored: Any, default: Any) -> Any:
    """The value to store: unchanged when the new one is what the contact has now (default included)."""
    if new is None or new == (stored if stored is not None else default):
        return stored if new is not None else None
    return new


def _plain(value: Any) -> Any:
    return value.strftime("%H:%M") if isinstance(value, time) else value


def apply_settings(contact: Contact, settings: ContactSettings, *, default_zone: str, default_start: time,
                   default_end: time) -> dict[str, list[Any]]:
    """Set what changed and return it as ``{field: [old, new]}`` (JSON-friendly, for the audit log).

    The form shows the effective window (the defaults filled in): sending it back unchanged keeps
    None stored; an empty field goes back to the default. Nothing is written when the window is empty."""
    new = {
        "channel": settings.channel,
        "language": settings.language,
        "quiet_start": _kept(settings.quiet_start, contact.quiet_start, default_start),
        "quiet_end": _kept(settings.quiet_end, contact.quiet_end, default_end),
        "timezone": _kept(settings.timezone, contact.timezone, default_zone),
    }
    opens = new["quiet_start"] or default_start
    closes = new["quiet_end"] or default_end
    if not opens < closes:
        raise SettingsError("window")
    changes: dict[str, list[Any]] = {}
    for field in FIELDS:
        old = getattr(contact, field)
        if old != new[field]:
            changes[field] = [_plain(old), _plain(new[field])]
            setattr(contact, field, new[field])
    return changes


__all__ = ["ContactSettings", "SettingsError", "apply_settings", "check_timezone", "parse_time", "read_settings"]
