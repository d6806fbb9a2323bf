"""A contact's settings: channel, language, the local window and its zone (bot.contacts)."""
from __future__ import annotations

from datetime import datetime, time

import pytest

from bot.contacts import ContactSettings, SettingsError, apply_settings, check_timezone, parse_time, read_settings
from models import Contact

DEFAULTS = {"default_zone": "Asia/Shanghai", "default_start": time(8), "default_end": time(21)}


def contact(**values: object) -> Contact:
    return Contact(phone="+8613800000021", language="zh_Hans", channel="sms", created_at=datetime(2026, 1, 1),
                   **values)


def test_zones_are_iana_names_spelled_as_zoneinfo_spells_them() -> None:
    assert check_timezone(" asia/SHANGHAI ") == "Asia/Shanghai"
    assert check_timezone("Europe/Rome") == "Europe/Rome" and check_timezone("") is None
    for bad in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime", "Asia/Shanghai\x00", "UTC+8", "x" * 60):
        with pytest.raises(SettingsError):
            check_timezone(bad)


def test_times_are_read_to_the_minute() -> None:
    assert parse_time("09:30") == time(9, 30) and parse_time("20:00:59") == time(20, 0)
    assert parse_time("") is None and parse_time(None) is None
    for bad in ("24:00", "9.30", "09:30+08:00", "noon"):
        with pytest.raises(SettingsError):
            parse_time(bad)


def test_a_form_needs_a_channel_and_a_language() -> None:
    settings = read_settings({"channel": "voice", "language": "en", "quiet_start": "", "quiet_end": "",
                              "timezone": ""})
    assert settings == ContactSettings("voice", "en", None, None, None)
    with pytest.raises(SettingsError) as error:
        read_settings({"language": "en"})
    assert error.value.code == "channel"


def test_what_the_contact_has_is_kept_and_changes_are_listed() -> None:
    person = contact(quiet_start=time(7), timezone="Asia/Dubai")
    same = ContactSettings("sms", "zh_Hans", time(7), time(21), "Asia/Dubai")
    assert apply_settings(person, same, **DEFAULTS) == {}
    assert person.quiet_end is None, "the default shown and sent back stays the default"
    changes = apply_settings(person, ContactSettings("both", "zh_Hans", None, time(22), "Asia/Shanghai"), **DEFAULTS)
    assert changes == {"channel": ["sms", "both"], "quiet_start": ["07:00", None], "quiet_end": [None, "22:00"],
                       "timezone": ["Asia/Dubai", "Asia/Shanghai"]}
    assert (person.quiet_start, person.quiet_end, person.timezone) == (None, time(22), "Asia/Shanghai")


def test_an_empty_window_is_refused_and_nothing_is_written() -> None:
    person = contact()
    with pytest.raises(SettingsError) as error:
        apply_settings(person, ContactSettings("voice", "en", time(21), None, None), **DEFAULTS)
    assert error.value.code == "window" and person.channel == "sms" and person.quiet_start is None
