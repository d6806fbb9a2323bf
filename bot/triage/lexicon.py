"""Loading, validating and compiling the triage lexicon (``lexicon.toml`` plus local files)."""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .normalize import Normalizer

try:  # the regex parser, used only to find each entry's "anchor" characters
    from re import _constants as _sre_c, _parser as _sre_p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_p  # type: ignore[no-redef]

BUILTIN_PATH = Path(__file__).with_name("lexicon.toml")
ENV_EXTRA = "TRIAGE_LEXICON_EXTRA"

SEVERITY_RANK = {"normal": 0, "high": 1, "urgent": 2}
CATEGORY_SEVERITY: dict[str, str] = {
    "abuse": "urgent",
    "missing": "urgent",
    "unattended": "urgent",
    "injury": "urgent",
    "guardian_incapable": "urgent",
    "self_harm": "urgent",
    "dropout": "high",
    "illness": "high",
    "distress": "high",
    "bullying": "high",
    "help": "high",
    "hukou": "high",
    "guardianship_change": "high",
    "other": "normal",
}
# When several categories of the same severity fire, the first in this order is reported.
CATEGORY_PRIORITY: tuple[str, ...] = (
    "self_harm", "abuse", "missing", "unattended", "guardian_incapable", "injury",
    "bullying", "dropout", "hukou", "guardianship_change", "illness", "distress", "help",
    "other",
)
KINDS = ("trigger", "suppress", "negate", "resolve", "protect", "deny")
SCOPES = ("overlap", "message")

_MACRO_RE = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")


class LexiconError(ValueError):
    """A lexicon file is malformed (bad TOML, unknown category, pattern that does not compile...)."""


@dataclass
class Entry:
    """One reviewed lexicon entry (see the format notes at the top of lexicon.toml)."""

    id: str
    kind: str
    patterns: list[str]
    examples: list[str]
    category: str = ""
    categories: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    scope: str = "overlap"
    gap: str = ""
    max_gap: int = 0
    becomes: str = "other"
    near: list[str] = field(default_factory=list)
    window: int = 0
    not_examples: list[str] = field(default_factory=list)
    note: str = ""
    source: str = ""
    # negate: this negator may also negate a PROTECTED alarm (不是 没人管: double negation)
    double_negation: bool = False
    regex: re.Pattern[str] | None = field(default=None, repr=False)
    # characters of which every match contains at least one (None: unknown, always try the regex)
    anchors: frozenset[str] | None = field(default=None, repr=False)
    # one compiled regex per pattern with its own anchors: the classifier only runs the
    # patterns whose anchor characters occur in the text
    parts: list[tuple[re.Pattern[str], frozenset[str] | None]] = field(default_factory=list, repr=False)
    # proximity: a trigger hit counts only when `near` matches within `window` characters of it
    near_regex: re.Pattern[str] | None = field(default=None, repr=False)

    def near_ok(self, norm: str, start: int, end: int) -> bool:
        """Whether this entry's proximity condition (if any) holds for a hit at [start, end)."""
        if self.near_regex is None:
            return True
        w = self.window
        return self.near_regex.search(norm, max(0, start - w), min(len(norm), end + w)) is not None

    def may_match(self, chars: set[str]) -> bool:
        """Cheap pre-test: can the regex match a text made of ``chars``?"""
        return self.anchors is None or not self.anchors.isdisjoint(chars)

    def applies_to(self, rule: str, category: str) -> bool:
        """Whether this suppress/negate/resolve entry acts on a trigger hit of ``rule``/``category``."""
        if self.rules and rule in self.rules:
            return True
        if self.categories:
            return category in self.categories
        return not self.rules


@dataclass
class Lexicon:
    """A compiled lexicon: entries by kind, macros, and the normaliser built from it."""

    entries: list[Entry]
    macros: dict[str, str]
    normalize_map: dict[str, str]
    sources: tuple[str, ...]
    normalizer: Normalizer = field(init=False)
    triggers: list[Entry] = field(init=False)
    suppressors: list[Entry] = field(init=False)
    negators: list[Entry] = field(init=False)
    resolvers: list[Entry] = field(init=False)
    protectors: list[Entry] = field(init=False)
    deniers: list[Entry] = field(init=False)
    by_id: dict[str, Entry] = field(init=False)
    # char -> indexes into `parts` whose anchors contain it; `always`: parts without anchors
    parts: list[tuple[Entry, re.Pattern[str]]] = field(init=False)
    index: dict[str, tuple[int, ...]] = field(init=False)
    always: frozenset[int] = field(init=False)
    # part index -> substrings (2+ characters) one of which every match contains: a second, finer
    # pre-test (``"ran away" in text``) before the regex runs
    literals: dict[int, tuple[str, ...]] = field(init=False)
    # the same pre-test, fast: one substring (``in``) or a compiled alternation of several
    _pretest: dict[int, str | re.Pattern[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.normalizer = Normalizer(self.normalize_map)
        self.by_id = {e.id: e for e in self.entries}
        self.triggers = [e for e in self.entries if e.kind == "trigger"]
        self.suppressors = [e for e in self.entries if e.kind == "suppress"]
        self.negators = [e for e in self.entries if e.kind == "negate"]
        self.resolvers = [e for e in self.entries if e.kind == "resolve"]
        self.protectors = [e for e in self.entries if e.kind == "protect"]
        self.deniers = [e for e in self.entries if e.kind == "deny"]
        self.parts = []
        self.literals = {}
        index: dict[str, list[int]] = {}
        always: set[int] = set()
        for entry in self.entries:
            if entry.kind in ("negate", "deny"):
                continue
            for regex, anchors in entry.parts:
                i = len(self.parts)
                self.parts.append((entry, regex))
                literals = _literals(regex)
                if literals is not None and min(len(x) for x in literals) >= 2:
                    self.literals[i] = tuple(sorted(literals))
                if anchors is None:
                    always.add(i)
                else:
                    for ch in anchors:
                        index.setdefault(ch, []).append(i)
        self.index = {ch: tuple(v) for ch, v in index.items()}
        self.always = frozenset(always)
        self._pretest = {
            i: lits[0] if len(lits) == 1 else re.compile("|".join(re.escape(x) for x in lits))
            for i, lits in self.literals.items()
        }

    def candidate_parts(self, chars: set[str], text: str | None = None) -> list[tuple[Entry, re.Pattern[str]]]:
        """The (entry, pattern) pairs that may match a text made of ``chars`` (and, when given,
        containing one of each pattern's required substrings), in lexicon order."""
        index = self.index
        found = set(self.always)
        found.update(*[index[ch] for ch in chars if ch in index])
        parts = self.parts
        if text is None:
            return [parts[i] for i in sorted(found)]
        pretest = self._pretest
        out = []
        for i in sorted(found):
            need = pretest.get(i)
            if need is None or (need in text if isinstance(need, str) else need.search(text) is not None):
                out.append(parts[i])
        return out


# How often a character occurs in replies, roughly: an anchor set made of common characters (了,
# 是, 他, e, t...) would make its pattern run on nearly every reply, so the rarest set is chosen.
_COMMON_CJK = frozenset("的了是不我他她在有人这个么一们你就也都没说来去到好天家孩子上学要会吗呢吧啊能还很多小大里"
                        "吃看时候回给那想过得着妈爸奶爷现已经又后今年事点知道生把被让跟和")
_COMMON_LATIN = frozenset("etaoinshr")
_MID_LATIN = frozenset("dlucmwfgypb")


def _char_weight(ch: str) -> int:
    """A rough cost of anchoring on ``ch``: how many replies contain it."""
    if ch in _COMMON_CJK or ch in ",.!?; ":
        return 20
    if ch in _COMMON_LATIN:
        return 15
    if ch in _MID_LATIN or ch.isdigit():
        return 6
    return 1


def _required_chars(items: object) -> frozenset[str] | None:
    """A set of characters one of which every match of the parsed sequence contains, or None
    (of several such sets, the one of the rarest characters)."""
    best: frozenset[str] | None = None
    best_cost = 0
    for op, av in items:  # type: ignore[attr-defined]
        req = _required_node(op, av)
        if req is None:
            continue
        cost = sum(_char_weight(ch) for ch in req)
        if best is None or cost < best_cost:
            best, best_cost = req, cost
    return best


def _required_node(op: object, av: object) -> frozenset[str] | None:
    """Required characters of one regex parse node (see _required_chars)."""
    c = _sre_c
    if op is c.LITERAL:
        return frozenset(chr(av))  # type: ignore[arg-type]
    if op is c.SUBPATTERN:
        return _required_chars(av[-1])  # type: ignore[index]
    if op is c.ATOMIC_GROUP if hasattr(c, "ATOMIC_GROUP") else False:
        return _required_chars(av)
    if op is c.BRANCH:
        out: set[str] = set()
        for branch in av[1]:  # type: ignore[index]
            req = _required_chars(branch)
            if req is None:
                return None
            out |= req
        return frozenset(out)
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
        lo, _hi, body = av  # type: ignore[misc]
        return _required_chars(body) if lo >= 1 else None
    if op is c.IN:
        chars: set[str] = set()
        for iop, iav in av:  # type: ignore[attr-defined]
            if iop is c.LITERAL:
                chars.add(chr(iav))
            elif iop is c.RANGE and iav[1] - iav[0] <= 64:
                chars.update(chr(x) for x in range(iav[0], iav[1] + 1))
            else:
                return None
        return frozenset(chars)
    return None


def _literals_of(items: object) -> frozenset[str] | None:
    """Substrings one of which every match of the parsed sequence contains (the set whose shortest
    member is longest), or None. Runs of literal characters count as one substring."""
    c = _sre_c
    best: frozenset[str] | None = None
    best_key = (0, 0)

    def consider(found: frozenset[str] | None) -> None:
        nonlocal best, best_key
        if not found:
            return
        key = (min(len(x) for x in found), -len(found))
        if best is None or key > best_key:
            best, best_key = found, key

    run: list[str] = []
    for op, av in items:  # type: ignore[attr-defined]
        if op is c.LITERAL:
            run.append(chr(av))  # type: ignore[arg-type]
            continue
        if run:
            consider(frozenset(["".join(run)]))
            run = []
        if op is c.SUBPATTERN:
            consider(_literals_of(av[-1]))  # type: ignore[index]
        elif op is c.BRANCH:
            union: set[str] = set()
            for branch in av[1]:  # type: ignore[index]
                found = _literals_of(branch)
                if found is None:
                    union = set()
                    break
                union |= found
            consider(frozenset(union) if union else None)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            lo, _hi, body = av  # type: ignore[misc]
            if lo >= 1:
                consider(_literals_of(body))
    if run:
        consider(frozenset(["".join(run)]))
    return best


def _literals(regex: re.Pattern[str]) -> frozenset[str] | None:
    """Required substrings of a compiled regex (see _literals_of), or None."""
    try:
        return _literals_of(_sre_p.parse(regex.pattern, regex.flags))
    except Exception:  # pragma: no cover - parser internals differ: just never skip
        return None


def _anchors(regex: re.Pattern[str]) -> frozenset[str] | None:
    """Anchor characters of a compiled regex, or None when they cannot be worked out."""
    try:
        return _required_chars(_sre_p.parse(regex.pattern, regex.flags))
    except Exception:  # pragma: no cover - parser internals differ: just never skip
        return None


def _expand(pattern: str, macros: dict[str, str], where: str) -> str:
    """Replace {MACRO} references (upper-case names) with their non-capturing alternation."""
    for _ in range(5):  # macros may reference macros, a few levels deep
        if not _MACRO_RE.search(pattern):
            return pattern

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in macros:
                raise LexiconError(f"{where}: unknown macro {{{name}}}")
            return f"(?:{macros[name]})"

        pattern = _MACRO_RE.sub(sub, pattern)
    raise LexiconError(f"{where}: macros nested too deeply")


def _as_str_list(value: object, where: str) -> list[str]:
    """Validate a TOML value as a list of strings (a single string is accepted too)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LexiconError(f"{where}: expected a list of strings")
    return list(value)


def _read(path: Path) -> dict:
    """Parse one TOML lexicon file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LexiconError(f"{path}: {exc}") from exc


def _entry_from(raw: dict, source: str) -> Entry:
    """Build (uncompiled) an Entry from its TOML table, checking every field."""
    where = f"{source}: entry {raw.get('id', '?')!r}"
    known = {"id", "kind", "category", "categories", "rules", "patterns", "examples", "scope",
             "gap", "max_gap", "becomes", "note", "enabled", "near", "window", "not_examples",
             "double_negation"}
    unknown = set(raw) - known
    if unknown:
        raise LexiconError(f"{where}: unknown keys {sorted(unknown)}")
    if not isinstance(raw.get("id"), str) or not raw["id"]:
        raise LexiconError(f"{source}: an entry has no id")
    kind = raw.get("kind", "trigger")
    if kind not in KINDS:
        raise LexiconError(f"{where}: kind must be one of {KINDS}")
    entry = Entry(
        id=raw["id"], kind=kind,
        patterns=_as_str_list(raw.get("patterns", []), where),
        examples=_as_str_list(raw.get("examples", []), where),
        category=raw.get("category", ""),
        categories=tuple(_as_str_list(raw.get("categories", []), where)),
        rules=tuple(_as_str_list(raw.get("rules", []), where)),
        scope=raw.get("scope", "overlap"),
        gap=raw.get("gap", ""),
        max_gap=int(raw.get("max_gap", 0)),
        becomes=raw.get("becomes", "other"),
        near=_as_str_list(raw.get("near", []), where),
        window=int(raw.get("window", 0)),
        not_examples=_as_str_list(raw.get("not_examples", []), where),
        note=raw.get("note", ""),
        double_negation=bool(raw.get("double_negation", False)),
        source=source,
    )
    if not entry.patterns:
        raise LexiconError(f"{where}: no patterns")
    if not entry.examples:
        raise LexiconError(f"{where}: every entry needs at least one example")
    if kind == "trigger":
        if entry.category not in CATEGORY_SEVERITY or entry.category == "other":
            raise LexiconError(f"{where}: unknown category {entry.category!r}")
    for cat in entry.categories:
        if cat not in CATEGORY_SEVERITY:
            raise LexiconError(f"{where}: unknown category {cat!r} in categories")
    if entry.becomes not in CATEGORY_SEVERITY:
        raise LexiconError(f"{where}: unknown category {entry.becomes!r} in becomes")
    if entry.scope not in SCOPES:
        raise LexiconError(f"{where}: scope must be one of {SCOPES}")
    if entry.near and (kind != "trigger" or entry.window <= 0):
        raise LexiconError(f"{where}: `near` is for triggers and needs a positive `window`")
    if entry.not_examples and kind not in ("trigger", "protect"):
        raise LexiconError(f"{where}: `not_examples` is for triggers and protected alarms "
                           "(suppressors use `examples`)")
    if entry.window < 0:
        raise LexiconError(f"{where}: `window` must not be negative")
    if entry.double_negation and kind != "negate":
        raise LexiconError(f"{where}: `double_negation` is for negators")
    return entry


def _compile(entry: Entry, macros: dict[str, str]) -> None:
    """Compile an entry's patterns into one regex (negators get their gap and an end anchor)."""
    where = f"{entry.source}: entry {entry.id!r}"
    body = "|".join(f"(?:{_expand(p, macros, where)})" for p in entry.patterns)
    if entry.kind == "negate":
        # the cue, then up to `max_gap` filler pieces (``gap``), then the trigger: the filler is
        # captured so that the classifier can hold it to `window` characters
        gap = _expand(entry.gap, macros, where) if entry.gap else ""
        tail = f"(?:{gap}){{0,{entry.max_gap}}}" if gap and entry.max_gap > 0 else ""
        body = f"(?P<cue>{body})(?P<fill>{tail})\\s?$"
    elif entry.kind == "deny":
        # matched AT the end of a trigger hit (classifier: regex.match(norm, hit.end))
        body = "|".join(f"(?:{_expand(p, macros, where)})" for p in entry.patterns)
    try:
        entry.regex = re.compile(body)
    except re.error as exc:
        raise LexiconError(f"{where}: pattern does not compile: {exc}") from exc
    if entry.regex.search("") is not None and entry.kind not in ("negate", "deny"):
        raise LexiconError(f"{where}: a pattern matches the empty string")
    if entry.kind not in ("negate", "deny"):
        entry.anchors = _anchors(entry.regex)
        entry.parts = []
        for p in entry.patterns:
            part = re.compile(_expand(p, macros, where))
            entry.parts.append((part, _anchors(part)))
    if entry.near:
        near = "|".join(f"(?:{_expand(p, macros, where)})" for p in entry.near)
        try:
            entry.near_regex = re.compile(near)
        except re.error as exc:
            raise LexiconError(f"{where}: `near` does not compile: {exc}") from exc


def extra_paths_from_env() -> tuple[Path, ...]:
    """Supervisor-added lexicon files named in $TRIAGE_LEXICON_EXTRA (os.pathsep-separated)."""
    value = os.environ.get(ENV_EXTRA, "")
    return tuple(Path(p) for p in value.split(os.pathsep) if p.strip())


def load_lexicon(extra_paths: Sequence[Path] = ()) -> Lexicon:
    """Load the built-in lexicon plus optional supervisor-added files (later files win by id)."""
    paths = [BUILTIN_PATH, *[Path(p) for p in extra_paths]]
    macros: dict[str, str] = {}
    normalize_map: dict[str, str] = {}
    entries: dict[str, Entry] = {}
    for path in paths:
        data = _read(path)
        source = path.name if path == BUILTIN_PATH else str(path)
        unknown = set(data) - {"version", "macros", "normalize", "entry"}
        if unknown:
            raise LexiconError(f"{source}: unknown top-level keys {sorted(unknown)}")
        for name, value in data.get("macros", {}).items():
            if not isinstance(value, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
                raise LexiconError(f"{source}: macro {name!r} must be UPPER_CASE = \"regex\"")
            macros[name] = value
        for key, value in data.get("normalize", {}).items():
            if not isinstance(value, str) or len(key) != 1:
                raise LexiconError(f"{source}: normalize keys are single characters, values strings")
            normalize_map[key] = value
        for raw in data.get("entry", []):
            if not isinstance(raw, dict):
                raise LexiconError(f"{source}: [[entry]] must be tables")
            if raw.get("enabled", True) is False:
                entries.pop(raw.get("id", ""), None)
                continue
            entry = _entry_from(raw, source)
            entries[entry.id] = entry
    for entry in entries.values():
        _compile(entry, macros)
    for entry in entries.values():
        for rule in entry.rules:
            if rule not in entries:
                raise LexiconError(f"{entry.source}: entry {entry.id!r} names unknown rule {rule!r}")
    return Lexicon(list(entries.values()), macros, normalize_map, tuple(str(p) for p in paths))
