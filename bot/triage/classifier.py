"""The triage classifier: severity, category and highlighted evidence for one reply."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .lexicon import (
    CATEGORY_PRIORITY,
    CATEGORY_SEVERITY,
    ENV_EXTRA,
    SEVERITY_RANK,
    Entry,
    Lexicon,
    extra_paths_from_env,
    load_lexicon,
)
from .model import default_net, net_enabled

_NEGATION_LOOKBACK = 24  # normalised characters before a hit that a negator may occupy
_PRIORITY = {c: i for i, c in enumerate(CATEGORY_PRIORITY)}


@dataclass(frozen=True)
class Evidence:
    """A span of the ORIGINAL input text that fired a lexicon entry."""

    start: int
    end: int
    text: str
    rule: str  # lexicon entry id


@dataclass(frozen=True)
class Triage:
    """The outcome of triage: severity, category and the evidence a caseworker sees highlighted."""

    severity: str  # "urgent" | "high" | "normal"
    category: str
    evidence: tuple[Evidence, ...]

    @property
    def is_urgent(self) -> bool:
        """True when the law asks for an immediate report to the police."""
        return self.severity == "urgent"


NORMAL = Triage("normal", "other", ())

_cache: dict[str, Lexicon] = {}


def default_lexicon() -> Lexicon:
    """The built-in lexicon plus $TRIAGE_LEXICON_EXTRA files, compiled once per env value."""
    key = os.environ.get(ENV_EXTRA, "")
    lex = _cache.get(key)
    if lex is None:
        lex = load_lexicon(extra_paths_from_env())
        _cache.clear()
        _cache[key] = lex
    return lex


@dataclass
class _Hit:
    entry: Entry
    start: int  # normalised offsets
    end: int
    category: str


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def _negated(lex: Lexicon, norm: str, start: int, rule: str, category: str | None,
             blocked: list[tuple[int, int]] = (), protected: bool = False) -> bool:  # type: ignore[assignment]
    """Whether a negation cue (没有, 不是, 从不, not...) SCOPES over a hit starting at ``start``.

    The cue may be followed by up to ``max_gap`` filler pieces (被 人, 跟 人, 什么...) of at most
    ``window`` characters in all. A cue that lies inside ``blocked`` spans (a protected alarm such
    as 没人管, or another trigger hit) is part of that alarm, not a negation. A ``protected`` hit
    (没人管, 不想活...) is negated only by a ``double_negation`` cue (不是 没人管).
    ``category`` None means a resolution is being checked: every negator applies (还没 找到).
    """
    if start == 0 or not lex.negators:
        return False
    offset = max(0, start - _NEGATION_LOOKBACK)
    before = norm[offset:start]
    for neg in lex.negators:
        if category is not None and not neg.applies_to(rule, category):
            continue
        if protected and not neg.double_negation:
            continue
        m = neg.regex.search(before) if neg.regex is not None else None
        if m is None:
            continue
        if neg.window and len(m.group("fill")) > neg.window:
            continue
        c0, c1 = offset + m.start("cue"), offset + m.end("cue")
        if any(_overlaps(c0, c1, b0, b1) for b0, b1 in blocked):
            continue
        return True
    return False


def _denied(lex: Lexicon, norm: str, hit: "_Hit") -> bool:
    """Whether a denial follows the hit: a question then a denial (发烧？没有 / 被打吗？没的事) or
    a denial closing the clause (烧倒是没有)."""
    for den in lex.deniers:
        if den.applies_to(hit.entry.id, hit.category) and den.regex is not None \
                and den.regex.match(norm, hit.end) is not None:
            return True
    return False


def analyse(text: str, lexicon: Lexicon | None = None) -> tuple[list[_Hit], list[int], str]:
    """Return the surviving trigger hits (normalised offsets), the offset map and normalised text."""
    hits, offsets, norm, _ = _analyse(text, lexicon or default_lexicon())
    return hits, offsets, norm


def _marked(lex: Lexicon, norm: str, spans: dict[str, list[tuple[int, int]]]) -> bool:
    """Whether a false friend or a (not negated) resolution matched anywhere in the text."""
    for entry_id, found in spans.items():
        entry = lex.by_id[entry_id]
        if entry.kind == "suppress":
            return True
        if entry.kind == "resolve" and any(not _negated(lex, norm, s, entry_id, None) for s, _ in found):
            return True
    return False


def _analyse(text: str, lex: Lexicon) -> tuple[list[_Hit], list[int], str, bool]:
    """analyse() plus ``cancelled``: whether a false friend, a negation or a resolution removed
    (or downgraded) a trigger hit -- the reviewed rules have then spoken, and the learned net
    (which cannot see negation) must not overrule them."""
    norm, offsets = lex.normalizer.normalize(text)
    if not norm:
        return [], offsets, norm, False
    # only the patterns whose anchor characters occur in the text are run (see Lexicon.index)
    parts = lex.candidate_parts(set(norm), norm)
    hits: list[_Hit] = []
    spans: dict[str, list[tuple[int, int]]] = {}  # suppress / resolve entry id -> match spans
    for entry, regex in parts:
        kind = entry.kind
        if kind == "trigger":
            for m in regex.finditer(norm):
                s, e = m.span()
                if e > s and entry.near_ok(norm, s, e):
                    hits.append(_Hit(entry, s, e, entry.category))
        else:
            found = [m.span() for m in regex.finditer(norm)]
            if found:
                spans.setdefault(entry.id, []).extend(found)
    if not hits:
        # no trigger: a false friend (想死你了, 打电话) or a resolution (已经好了, 找到了) anywhere
        # still tells the net that the alarming-looking words are accounted for
        return [], offsets, norm, _marked(lex, norm, spans)
    found = len(hits)
    # 1. false friends: a suppress match overlapping a hit (or anywhere, scope=message) cancels it
    for sup in lex.suppressors:
        sup_spans = spans.get(sup.id)
        if not sup_spans:
            continue
        kept = []
        for h in hits:
            if sup.applies_to(h.entry.id, h.category) and (
                sup.scope == "message" or any(_overlaps(s, e, h.start, h.end) for s, e in sup_spans)
            ):
                continue
            kept.append(h)
        hits = kept
        if not hits:
            return [], offsets, norm, True
    # 2. negation scoping over the hit (没有 被人 欺负, 从来不 跟人 打架, not hurt), a denial after a
    # question (发烧？没有), -- but the 没/不 INSIDE an alarm (没人管, 不想活: protected, or another
    # trigger's span) is no negation, and a protected alarm yields only to a double negation
    protect = [sp for p in lex.protectors for sp in spans.get(p.id, ())]
    kept = []
    for h in hits:
        is_protected = any(_overlaps(s0, s1, h.start, h.end) for s0, s1 in protect)
        blocked = protect + [(o.start, o.end) for o in hits if not o.entry.id.startswith("net.")
                             and (o.end <= h.start or o.start >= h.end)]
        if _negated(lex, norm, h.start, h.entry.id, h.category, blocked, is_protected):
            continue
        if lex.deniers and _denied(lex, norm, h):
            continue
        kept.append(h)
    hits = kept
    if not hits:
        return [], offsets, norm, True
    cancelled = len(hits) < found
    # 3. resolution after the hit: 已经好了, 烧退了, 找到了 (a negated resolution does not count)
    for res in lex.resolvers:
        res_spans = spans.get(res.id)
        if not res_spans:
            continue
        ends = [s for s, _ in res_spans if not _negated(lex, norm, s, res.id, None)]
        if not ends:
            continue
        kept = []
        for h in hits:
            if res.applies_to(h.entry.id, h.category) and any(
                    s >= h.start and (not res.window or s - h.end <= res.window) for s in ends):
                if res.becomes != "other":
                    kept.append(_Hit(h.entry, h.start, h.end, res.becomes))
                cancelled = True
                continue
            kept.append(h)
        hits = kept
    return hits, offsets, norm, cancelled


def _to_evidence(text: str, offsets: list[int], hits: list[_Hit]) -> tuple[Evidence, ...]:
    """Map hits back to spans of the original text, sorted and without duplicates."""
    seen: set[tuple[int, int, str]] = set()
    out: list[Evidence] = []
    for h in sorted(hits, key=lambda h: (h.start, -h.end)):
        start = offsets[h.start]
        end = offsets[h.end - 1] + 1
        key = (start, end, h.entry.id)
        if key in seen:
            continue
        seen.add(key)
        out.append(Evidence(start, end, text[start:end], h.entry.id))
    return tuple(out)


def _lexicon_triage(text: str, hits: list[_Hit], offsets: list[int]) -> Triage:
    if not hits:
        return NORMAL
    best = max(SEVERITY_RANK[CATEGORY_SEVERITY[h.category]] for h in hits)
    top = [h for h in hits if SEVERITY_RANK[CATEGORY_SEVERITY[h.category]] == best]
    category = min(top, key=lambda h: (_PRIORITY[h.category], h.start)).category
    if category == "other":
        return NORMAL
    return Triage(CATEGORY_SEVERITY[category], category, _to_evidence(text, offsets, hits))


def _with_net(text: str, lexicon_result: Triage, norm: str, offsets: list[int], lex: Lexicon,
              reviewed: bool) -> Triage:
    """Raise the lexicon's severity when the learned safety net (model.py) is confident; never lower.

    ``reviewed``: a false friend, negation or resolution matched, so the net must be surer."""
    if lexicon_result.severity == "urgent" or not norm:
        return lexicon_result
    net = default_net(lex.normalizer)
    proposed = net.predict(norm, reviewed).severity
    if SEVERITY_RANK[proposed] <= SEVERITY_RANK[lexicon_result.severity]:
        return lexicon_result
    category, grams = net.category(norm, proposed)
    if not grams:  # nothing in the reply to show the caseworker: the rules' answer stands
        return lexicon_result
    evidence = tuple(
        Evidence(offsets[s], offsets[s + len(g) - 1] + 1, text[offsets[s]:offsets[s + len(g) - 1] + 1],
                 f"model:{category}")
        for g, s in sorted(grams, key=lambda x: x[1])
    )
    return Triage(proposed, category, evidence)


def _has_words(norm: str) -> bool:
    """Whether a reply has at least two letters or characters (a bare "2" or "ok?" has not): the
    net only speaks about words; menu digits are the conversation engine's business."""
    count = 0
    for ch in norm:
        if ch.isalpha():
            count += 1
            if count >= 2:
                return True
    return False


def classify(text: str, language: str = "zh_Hans", *, lexicon: Lexicon | None = None,
             net: bool | None = None) -> Triage:
    """Classify one reply (Chinese or English, whatever ``language`` says) into a Triage.

    ``net`` switches the learned safety net on/off for this call (default: model.net_enabled()).
    """
    if not isinstance(text, str) or not text.strip():
        return NORMAL
    lex = lexicon or default_lexicon()
    hits, offsets, norm, cancelled = _analyse(text, lex)
    result = _lexicon_triage(text, hits, offsets)
    if (net_enabled() if net is None else net) and _has_words(norm):
        # the net must be surer when the rules have spoken (a false friend, negation or
        # resolution matched): it cannot see negation itself
        result = _with_net(text, result, norm, offsets, lex, cancelled)
    return result


def warm_up() -> float:
    """Compile the lexicon and build the learned net now (load its cache, or train it: about 15 s
    on a fresh machine) rather than on the first reply; returns the seconds it took."""
    import time

    start = time.perf_counter()
    classify("孩子今天怎么样")  # compiles the lexicon, the normaliser tables and the pinyin table
    if net_enabled():
        default_net(default_lexicon().normalizer)
    return time.perf_counter() - start


def classify_lines(lines: Iterable[str]) -> Iterator[str]:
    """Triage JSON lines {"id", "text", "language"?} into JSON lines {"id", "severity", "category"}."""
    for line in lines:
        if not line.strip():
            continue
        record: object = None
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("each line must be a JSON object")
            text = record.get("text")
            if not isinstance(text, str):
                raise ValueError('"text" must be a string')
            language = record.get("language") or "zh_Hans"
            if not isinstance(language, str):
                raise ValueError('"language" must be a string')
            result = classify(text, language)
            out = {"id": record.get("id"), "severity": result.severity, "category": result.category}
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            rid = record.get("id") if isinstance(record, dict) else None
            out = {"id": rid, "severity": "normal", "category": "other", "error": str(exc)}
        yield json.dumps(out, ensure_ascii=False)
