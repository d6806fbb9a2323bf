"""Triage of free-text replies: is this an urgent (report to police at once), high or normal message?

Pure Python (no Flask, database or Twilio). The rules live as reviewed data in
``lexicon.toml``; supervisors may add local files named in $TRIAGE_LEXICON_EXTRA.
"""
from __future__ import annotations

from .classifier import Evidence, Triage, classify, classify_lines, default_lexicon, warm_up
from .lexicon import (
    CATEGORY_PRIORITY,
    CATEGORY_SEVERITY,
    SEVERITY_RANK,
    Entry,
    Lexicon,
    LexiconError,
    load_lexicon,
)
from .normalize import Normalizer

__all__ = [
    "CATEGORY_PRIORITY",
    "CATEGORY_SEVERITY",
    "SEVERITY_RANK",
    "Entry",
    "Evidence",
    "Lexicon",
    "LexiconError",
    "Normalizer",
    "Triage",
    "classify",
    "classify_lines",
    "default_lexicon",
    "load_lexicon",
    "warm_up",
]
