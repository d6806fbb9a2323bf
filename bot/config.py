"""Configuration from the environment (see ../shared/INTERFACE.md)."""
from __future__ import annotations

import os
import secrets
from typing import Any

DEFAULT_CADENCE: dict[str, Any] = {
    "checkin_days": 7,  # guardian check-in
    "parent_contact_days": 7,  # "have you talked with your child"
    "quarterly_days": 91,  # parents' update and re-confirmation
    "home_visit_days": 14,  # paired helper reminder
    "ladder_hours": [24, 48, 72],  # re-send, voice/other contact, no_response flag
    "send_hour": 9,  # local hour at which periodic reminders fall due
}


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the app configuration from the environment, then apply explicit overrides."""
    env = os.environ.get("XIANGBAN_ENV", "development")
    cfg: dict[str, Any] = {
        "XIANGBAN_ENV": env,
        "DATABASE_URL": os.environ.get("DATABASE_URL") or None,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        "TWILIO_ACCOUNT_SID": os.environ.get("TWILIO_ACCOUNT_SID") or None,
        "TWILIO_AUTH_TOKEN": os.environ.get("TWILIO_AUTH_TOKEN") or None,
        "TWILIO_FROM_NUMBER": os.environ.get("TWILIO_FROM_NUMBER") or None,
        "TWILIO_MESSAGING_SERVICE_SID": os.environ.get("TWILIO_MESSAGING_SERVICE_SID") or None,
        "TWILIO_API_BASE": os.environ.get("TWILIO_API_BASE") or None,  # tests: a Prism mock
        # Explicit development switch; refused in production.
        "TWILIO_SKIP_SIGNATURE": _env_bool("TWILIO_SKIP_SIGNATURE"),
        "PUBLIC_URL": (os.environ.get("PUBLIC_URL") or "").rstrip("/") or None,
        "TIMEZONE": os.environ.get("TIMEZONE", "Asia/Shanghai"),
        "QUIET_START": os.environ.get("QUIET_START", "08:00"),
        "QUIET_END": os.environ.get("QUIET_END", "21:00"),
        "SEND_RATE_PER_SECOND": float(os.environ.get("SEND_RATE_PER_SECOND", "10")),
        "URGENT_REPORT_MINUTES": int(os.environ.get("URGENT_REPORT_MINUTES", "60")),
        "CONVERSATION_TTL_HOURS": int(os.environ.get("CONVERSATION_TTL_HOURS", str(7 * 24))),
        "CHILD_AGE_LIMIT": int(os.environ.get("CHILD_AGE_LIMIT", "16")),
        "SERVICE_NAME_ZH": os.environ.get("SERVICE_NAME_ZH", ""),
        "HELP_PHONE": os.environ.get("HELP_PHONE", ""),  # fallback caseworker number for HELP
        "DEFAULT_LANGUAGE": os.environ.get("DEFAULT_LANGUAGE", "zh_Hans"),
        "CADENCE": dict(DEFAULT_CADENCE),
        # Reverse proxies in front (ProxyFix): client address and scheme for throttling and cookies.
        "PROXY_COUNT": int(os.environ.get("PROXY_COUNT", "0")),
        # Build the triage rules and learned net in the background on a process's first request.
        "TRIAGE_WARM_UP": os.environ.get("TRIAGE_WARM_UP", "1") not in ("0", "false", "no", "off"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env == "production",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    }
    if overrides:
        cfg.update(overrides)
    if not cfg["SECRET_KEY"]:
        if cfg["XIANGBAN_ENV"] == "production":
            raise RuntimeError("SECRET_KEY must be set in production")
        cfg["SECRET_KEY"] = secrets.token_hex(32)
    if cfg["XIANGBAN_ENV"] == "production" and cfg["TWILIO_SKIP_SIGNATURE"]:
        raise RuntimeError("TWILIO_SKIP_SIGNATURE is a development switch and refused in production")
    return cfg
