"""Concept-level rules, proximity (`near`/`window`), `not_examples`, the fast normaliser,
and paraphrase probes written during development (regression tests, NOT an estimate of recall:
the held-out estimates are the blind heldout8 and heldout9, see test_triage_model.py and
bench/triage_eval.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.triage import LexiconError, classify, default_lexicon, load_lexicon
from bot.triage.check import self_check
from bot.triage.metrics import load_devset
from bot.triage.model import default_net
from bot.triage.normalize import Normalizer


def sev(text: str) -> str:
    return classify(text).severity


# ---------------------------------------------------------------- examples from the brief
@pytest.mark.parametrize("text,category", [
    ("跟一个网上认识的人走了", "missing"),
    ("手脚抽筋翻白眼", "injury"),
    ("我想从楼上跳下去", "self_harm"),
    ("I don't want to be alive anymore", "self_harm"),
])
def test_brief_misses_now_fire(text: str, category: str) -> None:
    assert classify(text).category == category


# ---------------------------------------------------------------- probes (tuned on: regressions only)
URGENT_PROBES = """孩子他爸一喝酒就把娃往死里打
孩子被关在猪圈里一天没给饭吃
伢子被继母用衣架抽得满身是印子
我姑父老是让我坐他腿上 还不让我跟我妈说
村里有个男的老是在放学路上跟着俺孙女
孙子两天两夜没回来了 打电话也关机
娃昨天跟着个不认识的大叔上了车 到现在没消息
孩子说要去找妈妈 自己坐车走了 现在联系不上
孙女今早出门就再没回来 全村都找遍了
俩孩子在家没人管 爸妈都走了半年了
孩子天天一个人在家 饭也没人做
娃在河里游泳被水冲走了
孩子吃了爷爷的老鼠药 在吐白沫
孙子玩鞭炮把手炸了 血流不止
娃从三楼阳台掉下去了
孩子被摩托车撞飞了 人昏过去了
孩子烧到四十一度 抽过去了
孩子喘不上气 脸都紫了
奶奶突然中风了 说不了话 孩子没人带
外婆得了重病躺在床上 连自己都照顾不了
我活着有什么用 还不如死了
女儿说她想结束自己的生命
我想吃一整瓶药 睡过去就好了
娃身上到处是伤 问他也不说
我舅舅晚上喝了酒就来我床上
孩子到底去哪了 找了一整夜
小孙子不知道跑哪去了 河边也找了
女儿说要去外地找网友 已经两天没消息
孙子被开水浇了一身 皮都掉了
爷爷老年痴呆越来越严重 把孩子锁在家就出去了
My grandson said he wants to kill himself
She has been cutting her arms with a razor
My son was beaten by his uncle and has bruises all over
Our daughter went off with a man she met online
Grandpa collapsed and the children are alone in the house
He fell from the roof and is not moving
She drank pesticide, we are going to the hospital
my daughter took a whole bottle of pills""".split("\n")

HIGH_PROBES = """孩子这学期一直没去上学 在家玩手机
娃说不想念了 要跟他表哥去学修车
孩子咳了一个礼拜了 还不见好
孩子最近不爱吃饭 老一个人发呆
班上有同学老抢他的东西吃
有人在学校叫她没妈的孩子
家里困难 孩子的学费能不能缓一缓
下个月孩子就去他舅舅家住了 以后舅舅管
娃好像不对劲，一直晕乎乎的
My son has a bad cough and a fever
Some kids at school keep taking his lunch money
We can't afford the school fees this term""".split("\n")

NORMAL_PROBES = """孩子今天跟我视频了好久
这个月生活费打过去了 注意查收
孩子周末跟同学去河边放风筝
我们这边下大雪 冻得要死
奶奶杀了只鸭子 孩子吃得很香
孩子跟我说想爸爸了 我说过年就回去
孩子期末考试考砸了 被我骂了一顿 现在在用功
孩子被蚊子咬了好多包
孩子抽空给我打了电话
娃抽到了一等奖
孩子等不及 自己走了 去学校了
娃说想跳舞
奶奶的降压药吃完了 得去买
娃吃了好几个包子
外公去世好几年了，孩子一直是奶奶带
孩子的狗被车撞了
孩子拿刀削苹果
他爸喝多了 睡了一天
孩子跑出去玩了 晚饭前回来
孩子的钱包丢了 里面有二十块钱
家里的猫不见了，孩子哭着找了一下午
妹妹晚上来我床上睡
我不想干活了
My daughter lost her glasses at school again
He hit the ball really far today
the kids had a fight about the tv remote""".split("\n")


@pytest.mark.parametrize("text", URGENT_PROBES)
def test_urgent_probes(text: str) -> None:
    assert sev(text) == "urgent"


@pytest.mark.parametrize("text", HIGH_PROBES)
def test_high_probes_are_at_least_high(text: str) -> None:
    assert sev(text) in {"high", "urgent"}


@pytest.mark.parametrize("text", NORMAL_PROBES)
def test_normal_probes_pass_the_rules(text: str) -> None:
    assert classify(text, net=False).severity == "normal"


# The learned net (on by default) raises a few of these near-misses: short replies whose two or
# three n-grams resemble an alarm it was trained on. Known and counted (see bench/triage_eval.py
# for the false-alarm rate on whole batches); more than this many is a regression.
NET_FALSE_ALARMS_ON_PROBES = 5


def test_normal_probes_with_the_net() -> None:
    raised = [t for t in NORMAL_PROBES if sev(t) != "normal"]
    assert len(raised) <= NET_FALSE_ALARMS_ON_PROBES, raised


def test_resolved_injury_and_guardian_stay_visible() -> None:
    assert sev("my son fell off his bike but he is fine, just a scratch") == "high"
    assert classify("爷爷住院了 现在已经出院了", net=False).severity == "high"
    assert sev("爷爷住院了 现在已经出院了") != "normal"  # the net may still raise it: choose the higher


# ---------------------------------------------------------------- safety nets
def test_safety_net_yields_high_when_nothing_specific_matches() -> None:
    r = classify("孩子在外面出事了好像不对劲")
    assert r.severity in {"high", "urgent"}
    r = classify("伢好像不对劲", net=False)
    assert r.severity == "high" and any(e.rule.startswith("net.") for e in r.evidence)
    assert classify("伢好像不对劲").severity in {"high", "urgent"}  # the learned net may raise it
    r = classify("something is wrong with my son", "en", net=False)
    assert r.severity == "high" and r.evidence[0].rule == "net.danger_en"


def test_specific_urgent_beats_the_net() -> None:
    r = classify("孩子掉河里了，快来人")
    assert r.severity == "urgent" and r.category == "injury"


def test_negation_still_works_on_concept_rules() -> None:
    assert sev("孩子没有抽筋，就是有点发烧") == "high"
    assert sev("娃没被人带走，在他外婆家") == "normal"
    assert classify("我不想死", net=False).severity != "urgent"
    assert sev("我不想死") != "normal"  # the net, surer than the negation gate asks, still shows it


# ---------------------------------------------------------------- proximity and not_examples in the format
NEAR = '''
[[entry]]
id = "local.near"
category = "help"
patterns = ['怪事']
near = ['{CHILD}']
window = 4
examples = ["孩子遇到怪事"]
not_examples = ["村里出了件怪事，大家都在说，跟孩子无关"]
'''


def test_near_window(tmp_path: Path) -> None:
    path = tmp_path / "near.toml"
    path.write_text(NEAR, encoding="utf-8")
    lex = load_lexicon([path])
    assert self_check(lex) == []
    assert classify("孩子遇到怪事", lexicon=lex).evidence[0].rule == "local.near"
    assert classify("怪事", lexicon=lex).severity == "normal"


def test_not_examples_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(NEAR.replace("跟孩子无关", "孩子怪事"), encoding="utf-8")
    problems = self_check(load_lexicon([path]))
    assert any("not_example" in p and "local.near" in p for p in problems)


def test_near_needs_a_window(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(NEAR.replace("window = 4", ""), encoding="utf-8")
    with pytest.raises(LexiconError):
        load_lexicon([path])


# ---------------------------------------------------------------- normaliser fast path (speed: bench/triage_eval.py)
def test_fast_normaliser_equals_slow_path() -> None:
    lex = default_lexicon()
    texts = [r["text"] for r in load_devset()] + [
        "didn't,", "a  b", "孩 子 失 踪 了！！！", "ＨＥＬＰ", "he's ok.. really?!", "(ok)", "a\nb", "咋整",
    ]

    class NeverFast(set):
        def issuperset(self, other: object) -> bool:  # type: ignore[override]
            return False

    fast = Normalizer(lex.normalize_map)
    for _ in range(2):  # the second pass takes the fast path where it can
        for text in texts:
            slow = Normalizer(lex.normalize_map)
            slow._simple = NeverFast()  # type: ignore[assignment]
            assert fast.normalize(text) == slow.normalize(text), text


def test_required_substring_pretest_changes_no_outcome() -> None:
    """The lexicon skips a pattern unless the reply contains one of its required substrings
    ("ran away", 老年痴呆): the outcome must be exactly what running every pattern gives."""
    lex = default_lexicon()
    texts = [r["text"] for r in load_devset()]
    with_pretest = [classify(t, lexicon=lex, net=False) for t in texts]
    original = lex.candidate_parts
    try:
        lex.candidate_parts = lambda chars, text=None: original(chars, None)  # type: ignore[method-assign]
        without = [classify(t, lexicon=lex, net=False) for t in texts]
    finally:
        lex.candidate_parts = original  # type: ignore[method-assign]
    assert with_pretest == without
    assert any(len(x) >= 4 for lits in lex.literals.values() for x in lits)
