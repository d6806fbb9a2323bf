"""Phone numbers: parsed and normalised with `phonenumbers`, default region CN."""
from __future__ import annotations

import phonenumbers


def normalize_phone(raw: str | None, region: str = "CN") -> str | None:
    """E.164 form of a phone number, or None when it is not a valid number."""
    if not raw:
        return None
    text = str(raw).strip()
    if not text:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(phone: str | None) -> str:
    """A phone number safe for logs: +86138****0001."""
    if not phone:
        return "-"
    if len(phone) <= 8:
        return phone[:2] + "****"
    return phone[:-8] + "****" + phone[-4:]
