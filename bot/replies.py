"""Understanding short replies: menu digits, yes/no, keywords, in the forms people really send."""
from __future__ import annotations

import re
import unicodedata

CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "两": 2, "贰": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
             "五": 5, "伍": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_PUNCT_SPACE = re.compile(r"[\s\u3000~～!！?？。.,，、:：;；'\"“”‘’()（）\[\]【】…·\-—_*#]+")
_CHOICE_PREFIX = re.compile(r"^(?:选择?|回复?|答|我选|选项|option|choice|reply)")
_CHOICE_SUFFIX = re.compile(r"(?:号|项|个)$")

YES = {"1", "是", "是的", "对", "对的", "好", "好的", "同意", "确认", "愿意", "行", "可以", "没问题", "嗯", "嗯嗯",
       "恩", "ok", "okay", "yes", "y", "yep", "yeah", "sure", "是滴", "对头", "中", "要得", "同意的", "确认无误", "没错"}
NO = {"2", "否", "不", "不是", "不对", "不同意", "不行", "不愿意", "不可以", "no", "n", "nope", "没有", "不确认", "错"}

OPT_OUT = {"td", "退订", "stop", "unsubscribe", "退定", "取消订阅", "stopall", "cancel", "end", "quit"}
OPT_IN = {"start", "恢复", "订阅", "unstop", "恢复订阅"}
HELP_INFO = {"help", "info"}
HELP_CRY = {"帮助", "求助", "救命", "救救我", "救救孩子"}
TO_ENGLISH = {"english", "英文", "英语"}
TO_CHINESE = {"中文", "汉语", "chinese", "普通话"}


def squash(text: str) -> str:
    """NFKC, lower case, without spaces and punctuation (full-width １ becomes 1)."""
    return _PUNCT_SPACE.sub("", unicodedata.normalize("NFKC", text or "")).lower()


def _collapse_repeats(word: str) -> str:
    """'好好好' → '好', 'okok' → 'ok', '嗯嗯嗯' → '嗯嗯' is kept as a known form."""
    for size in (1, 2, 3):
        unit = word[:size]
        if unit and len(word) % size == 0 and unit * (len(word) // size) == word and len(word) > size:
            return unit
    return word


def parse_choice(text: str, options: int = 9) -> int | None:
    """The menu number a reply picks (1, １, 一, '1.', '1、', '选1'), or None."""
    word = _CHOICE_SUFFIX.sub("", _CHOICE_PREFIX.sub("", squash(text)))
    if len(word) == 1:
        value = int(word) if word.isdigit() else CN_DIGITS.get(word)
        if value is not None and 0 <= value <= options:
            return value
    return None


def parse_yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when the reply is neither."""
    word = squash(text)
    if not word:
        return None
    choice = parse_choice(text, options=2)
    if choice == 1:
        return True
    if choice == 2:
        return False
    for candidate in (word, _collapse_repeats(word)):
        if candidate in YES:
            return True
        if candidate in NO:
            return False
    return None


def keyword(text: str) -> str | None:
    """A keyword valid at any point: opt_out, opt_in, help, cry, english, chinese."""
    word = squash(text)
    if word in OPT_OUT:
        return "opt_out"
    if word in OPT_IN:
        return "opt_in"
    if word in HELP_INFO:
        return "help"
    if word in HELP_CRY:
        return "cry"
    if word in TO_ENGLISH:
        return "english"
    if word in TO_CHINESE:
        return "chinese"
    return None
