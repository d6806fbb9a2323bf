"""Every text comes from the catalogs: complete in both languages, short, and never personal."""
from __future__ import annotations

import re

import pytest

from bot.channels import segment_count
from bot.i18n import LOCALES, read_catalogs, render

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
# Longest realistic values of each variable, to count segments honestly.
SAMPLE = {"child": "子涵涵", "relation": "外祖母", "township": "大王古庄镇", "phone": "+8613900000000",
          "who": "外祖母", "text": "", "row": "50108", "value": "120221201001011231", "new": "50108",
          "updated": "50108", "unchanged": "50108", "rejected": "50108", "columns": "身份证号", "name": "王子涵",
          "fields": "guardian_phone"}


def entries(locale: str) -> dict[str, str]:
    """msgid → msgstr of every catalog of a locale."""
    merged: dict[str, str] = {}
    for catalog in read_catalogs(locale):
        for message in catalog:
            if message.id:
                assert message.id not in merged, f"{message.id} defined twice in {locale}"
                merged[str(message.id)] = str(message.string)
    return merged


@pytest.mark.parametrize("locale", LOCALES)
def test_every_key_is_translated_in_every_language(locale: str) -> None:
    keys = set(entries("zh_Hans")) | set(entries("en"))
    mine = entries(locale)
    missing = sorted(key for key in keys if not mine.get(key))
    assert not missing, f"{locale} lacks {missing}"


def test_placeholders_agree_between_languages() -> None:
    zh, en = entries("zh_Hans"), entries("en")
    for key in zh:
        assert set(PLACEHOLDER.findall(zh[key])) == set(PLACEHOLDER.findall(en.get(key, ""))), key


def sms_templates() -> list[str]:
    return sorted(key for key in entries("zh_Hans") if key.startswith("sms."))


def test_segment_count_of_every_sms_template(capsys: pytest.CaptureFixture[str]) -> None:
    """Chinese templates fit one UCS-2 segment where the meaning allows; none exceeds two."""
    report = []
    for key in sms_templates():
        if key == "sms.caseworker_reply":
            continue  # a caseworker's own words; the dashboard limits their length
        for locale in LOCALES:
            text = render(key, locale, {name: SAMPLE[name] for name in PLACEHOLDER.findall(entries(locale)[key])})
            segments = segment_count(text)
            report.append(f"{key:36} {locale:8} {len(text):4} chars {segments} segment(s)")
            assert segments <= 2, f"{key} in {locale} costs {segments} segments: {text}"
    one_segment = [line for line in report if "zh_Hans" in line and line.endswith("1 segment(s)")]
    assert len(one_segment) >= len(sms_templates()) * 0.7
    with capsys.disabled():
        print("\n" + "\n".join(report))


def test_no_template_carries_a_full_name_an_id_number_or_alarm_details() -> None:
    allowed = {"child", "relation", "township", "phone", "who", "text"}
    alarm_words = ("打", "伤", "虐", "失踪", "自杀", "性侵", "beaten", "abuse", "missing", "suicide")
    for key in sms_templates():
        for locale in LOCALES:
            text = entries(locale)[key]
            assert set(PLACEHOLDER.findall(text)) <= allowed, key
            assert "id_number" not in text and "name" not in PLACEHOLDER.findall(text)
            if key in ("sms.caseworker_alert", "sms.caseworker_escalation"):
                assert not any(word in text for word in alarm_words), key
            assert "http" not in text and "www." not in text, f"{key} carries a link"


def test_child_variable_is_the_given_name_not_the_full_name() -> None:
    from datetime import date

    from models import Child

    assert Child(name="王小明", birth_date=date(2016, 5, 4)).given_name == "小明"
