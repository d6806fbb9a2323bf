"""Text normalisation for triage, keeping a map back to the original offsets.

Steps, applied character by character so every output character remembers the
input character it came from:

1. NFKC (full-width letters, digits and punctuation to half-width) and lower case;
2. traditional to simplified Chinese (OpenCC ``t2s``, applied per character);
3. the lexicon's ``[normalize]`` table (dialect characters such as 冇 -> 没);
4. emoji, symbols, variation selectors and zero-width characters are dropped;
5. Chinese clause punctuation is mapped to ASCII (。 -> ., 、 -> ,), runs of
   punctuation collapse to their first character;
6. whitespace collapses to one space, and a space next to a CJK character is
   dropped (``孩 子 失 踪`` -> ``孩子失踪``).
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

PUNCTUATION = frozenset(",.!?;:~()[]\"'-/\n")
_PUNCT_MAP = {
    "。": ".", "、": ",", "｡": ".", "～": "~", "〜": "~", "…": ".", "‥": ".",
    "「": '"', "」": '"', "『": '"', "』": '"', "【": "[", "】": "]", "《": '"', "》": '"',
    "‘": "'", "’": "'", "“": '"', "”": '"', "—": "-", "–": "-", "·": " ", "\t": " ",
    "\r": "\n",
}
_DROP_CATEGORIES = frozenset({"So", "Sk", "Cs", "Co", "Cn", "Cf", "Me"})
_VARIATION = frozenset(chr(c) for c in range(0xFE00, 0xFE10))
# two punctuation marks in a row: the fast path of Normalizer.normalize cannot collapse them
_PUNCT_PAIR = re.compile("[" + re.escape("".join(sorted(PUNCTUATION))) + "]{2}")


@lru_cache(maxsize=1)
def _t2s_table() -> dict[str, str]:
    """Map every traditional CJK character that OpenCC simplifies to its simplified form."""
    try:
        import opencc  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - opencc is a declared dependency
        return {}
    converter = opencc.OpenCC("t2s")
    ranges = [(0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00)]
    chars = [chr(c) for lo, hi in ranges for c in range(lo, hi)]
    converted = converter.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # pragma: no cover - defensive
        return {}
    return {c: s for c, s in zip(chars, converted) if c != s}


def is_cjk(ch: str) -> bool:
    """True for a CJK ideograph (the characters written without spaces)."""
    o = ord(ch)
    return 0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FFFF


class Normalizer:
    """Normalise text for matching; remembers the original index of each output character."""

    def __init__(self, extra_map: Mapping[str, str] | None = None) -> None:
        self._extra = {k: v.lower() for k, v in (extra_map or {}).items()}
        self._cache: dict[str, str] = {}
        # characters that normalise to exactly one non-space character (fast path)
        self._simple: set[str] = set()
        self._table: dict[int, str] = {}

    def signature(self) -> str:
        """What makes this normaliser's output differ from another's (its extra character map)."""
        return json.dumps(sorted(self._extra.items()), ensure_ascii=False)

    def _char(self, ch: str) -> str:
        """Normalise one input character to zero or more output characters."""
        if ch in self._extra:
            return self._extra[ch]
        if ch in _PUNCT_MAP:
            return _PUNCT_MAP[ch]
        if ch in _VARIATION:
            return ""
        out: list[str] = []
        t2s = _t2s_table()
        for c in unicodedata.normalize("NFKC", ch).lower():
            c = t2s.get(c, c)
            c = self._extra.get(c, c)
            c = _PUNCT_MAP.get(c, c)
            if len(c) == 1 and not c.isspace() and unicodedata.category(c) in _DROP_CATEGORIES:
                continue
            out.append(c)
        return "".join(out)

    def normalize(self, text: str) -> tuple[str, list[int]]:
        """Return the normalised text and, for each of its characters, the index in ``text``."""
        # fast path: every character maps one-to-one and no punctuation needs collapsing,
        # so the output is a plain translation and offsets are the identity
        if self._simple.issuperset(text):
            fast = text.translate(self._table)
            if not _PUNCT_PAIR.search(fast):
                return fast, list(range(len(text)))
        cache = self._cache
        out: list[str] = []
        offsets: list[int] = []
        pending_space = -1  # original index of a pending whitespace, or -1
        prev = ""
        for i, ch in enumerate(text):
            rep = cache.get(ch)
            if rep is None:
                rep = self._char(ch)
                if len(cache) < 50000:
                    cache[ch] = rep
                    if len(rep) == 1 and not rep.isspace():
                        self._simple.add(ch)
                        self._table[ord(ch)] = rep
            for c in rep:
                if c == "\n" or c.isspace():
                    if c == "\n":
                        if prev and prev not in PUNCTUATION:
                            out.append(",")
                            offsets.append(i)
                            prev = ","
                        pending_space = -1
                    elif prev and prev not in PUNCTUATION:
                        pending_space = i
                    continue
                if c in PUNCTUATION:
                    pending_space = -1
                    if prev in PUNCTUATION and prev not in "()[]\"'":
                        continue
                    if c == "'" and prev.isalpha():
                        out.append(c)  # keep apostrophes inside words: didn't
                        offsets.append(i)
                        prev = "a"
                        continue
                    out.append(c)
                    offsets.append(i)
                    prev = c
                    continue
                if pending_space >= 0:
                    if not is_cjk(c) and not is_cjk(prev):
                        out.append(" ")
                        offsets.append(pending_space)
                    pending_space = -1
                out.append(c)
                offsets.append(i)
                prev = c
        return "".join(out), offsets
