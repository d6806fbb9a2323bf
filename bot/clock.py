"""Time helpers: time is always passed in, zone-aware; Asia/Shanghai by default."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """The current time, zone-aware in UTC (only edges call this; everything else takes `now`)."""
    return datetime.now(timezone.utc)


def parse_now(text: str, default_zone: str = "Asia/Shanghai") -> datetime:
    """Parse an ISO-8601 time; a time without zone is read in the default zone."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(default_zone))
    return value.astimezone(timezone.utc)


def local(moment: datetime, zone: str) -> datetime:
    """The same instant in the given zone."""
    return moment.astimezone(ZoneInfo(zone))


def local_date(moment: datetime, zone: str) -> date:
    """The calendar date of an instant in the given zone."""
    return local(moment, zone).date()


def parse_hhmm(text: str) -> time:
    """Parse 'HH:MM'."""
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def age_on(birth: date, on: date) -> int:
    """Age in whole years (周岁) on a date."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
