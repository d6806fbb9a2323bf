"""Self-check of a lexicon: every entry's examples behave as the entry says."""
from __future__ import annotations

from .classifier import analyse
from .lexicon import Entry, Lexicon


def check_entry(entry: Entry, lexicon: Lexicon) -> list[str]:
    """Problems with one entry's examples (an empty list when all is well)."""
    problems: list[str] = []
    for example in entry.examples:
        hits, _, norm = analyse(example, lexicon)
        if entry.kind == "trigger":
            if not any(h.entry.id == entry.id for h in hits):
                problems.append(f"{entry.id}: example does not fire: {example!r}")
            continue
        if entry.kind == "protect":
            # a protected alarm: its pattern occurs and a trigger over it still fires
            spans = [m.span() for m in entry.regex.finditer(norm)] if entry.regex is not None else []
            if not spans:
                problems.append(f"{entry.id}: pattern does not occur in example: {example!r}")
            elif not any(h.start < e and s < h.end for h in hits for s, e in spans):
                problems.append(f"{entry.id}: protected alarm does not fire: {example!r}")
            continue
        # suppress / negate / resolve: the entry's own pattern must be present (for negators,
        # somewhere before a trigger), and the categories or rules it acts on must not survive.
        if entry.kind not in ("negate", "deny") and entry.regex is not None and not entry.regex.search(norm):
            problems.append(f"{entry.id}: pattern does not occur in example: {example!r}")
        fired = [
            h for h in hits
            if entry.applies_to(h.entry.id, h.category) and (entry.kind != "resolve" or h.category != entry.becomes)
        ]
        if fired:
            names = ", ".join(sorted({h.entry.id for h in fired}))
            problems.append(f"{entry.id}: example still fires {names}: {example!r}")
    # a trigger's false friends: texts in which this entry must not survive
    # (for a protected alarm: double negations in which no trigger may survive)
    for example in entry.not_examples:
        hits, _, _ = analyse(example, lexicon)
        if any(h.entry.id == entry.id or entry.kind == "protect" for h in hits):
            problems.append(f"{entry.id}: fires on a not_example: {example!r}")
    return problems


def self_check(lexicon: Lexicon) -> list[str]:
    """Check every entry of ``lexicon``; return the list of problems found."""
    problems: list[str] = []
    for entry in lexicon.entries:
        problems.extend(check_entry(entry, lexicon))
    return problems
