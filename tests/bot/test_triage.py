"""Tests for bot.triage: normalisation, false friends, negation, dialect, lexicon data, CLI lines, targets."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.triage import (
    CATEGORY_SEVERITY,
    SEVERITY_RANK,
    Evidence,
    LexiconError,
    Triage,
    classify,
    classify_lines,
    load_lexicon,
)
from bot.triage.check import self_check
from bot.triage.metrics import evaluate, load_devset


def sev(text: str, language: str = "zh_Hans") -> str:
    """Severity of one text."""
    return classify(text, language).severity


# ---------------------------------------------------------------- interface
def test_interface_and_evidence_spans_index_original_text() -> None:
    text = "孩 子 失 踪 了！！！"
    result = classify(text)
    assert isinstance(result, Triage) and result.is_urgent
    assert result.category == "missing"
    assert result.evidence and all(isinstance(e, Evidence) for e in result.evidence)
    for ev in result.evidence:
        assert text[ev.start:ev.end] == ev.text
        assert ev.rule in {e.id for e in load_lexicon().entries}
    assert "失 踪" in result.evidence[0].text


def test_category_severity_table() -> None:
    assert SEVERITY_RANK == {"normal": 0, "high": 1, "urgent": 2}
    urgent = {"abuse", "missing", "unattended", "injury", "guardian_incapable", "self_harm"}
    high = {"dropout", "illness", "distress", "bullying", "help", "hukou", "guardianship_change"}
    assert {c for c, s in CATEGORY_SEVERITY.items() if s == "urgent"} == urgent
    assert {c for c, s in CATEGORY_SEVERITY.items() if s == "high"} == high
    assert CATEGORY_SEVERITY["other"] == "normal"


def test_result_category_matches_severity() -> None:
    for row in load_devset():
        r = classify(row["text"], row["language"])
        assert CATEGORY_SEVERITY[r.category] == r.severity
        assert (r.severity == "normal") == (not r.evidence)


@pytest.mark.parametrize("text", ["", "   ", "1", "2", "好的", "收到", "OK", "👍👍", "？？？"])
def test_menu_answers_and_empty_are_normal(text: str) -> None:
    assert classify(text) == Triage("normal", "other", ())


# ---------------------------------------------------------------- normalisation
@pytest.mark.parametrize("text", [
    "孩子失踪了",                 # no spaces: characters, not tokens
    "孩 子 失 踪 了",             # stray spaces
    "孩子　失踪了",               # full-width space
    "孩子失蹤了",                 # traditional
    "孩子😭失踪了😭😭",           # emoji inside
    "孩子失踪了！！！？？",        # repeated punctuation
    "ＭＹ ＳＯＮ ＩＳ ＭＩＳＳＩＮＧ",  # full-width English
])
def test_normalisation(text: str) -> None:
    assert classify(text).category == "missing"


def test_evidence_maps_back_through_traditional_and_fullwidth() -> None:
    text = "我孫女說鄰居老頭摸她下面"
    result = classify(text)
    assert result.category == "abuse"
    assert any(e.text.startswith("摸她") for e in result.evidence)
    text = "ＨＥＬＰ"
    assert classify(text, "en").evidence[0].text == "ＨＥＬＰ"


# ---------------------------------------------------------------- false friends
@pytest.mark.parametrize("text", [
    "孩子刚给我打电话了", "娃今天去打针了，打的是预防针", "他爸在广东打工", "打算下个月回家",
    "爷爷在打扫院子", "娃打游戏打到半夜", "爷爷打麻将去了", "孩子在打篮球", "晚上给孩子打个视频",
    "我把学费打到老师卡上了", "孩子打了个喷嚏", "外面打雷了", "明天打车去县城", "打扰了，想问下",
    "孩子在院子里打滚", "电话打不通", "我打他爸电话没人接", "奶奶让孩子去打酱油", "孩子们在打雪仗",
])
def test_da_is_mostly_not_hitting(text: str) -> None:
    assert classify(text).category != "abuse"


@pytest.mark.parametrize("text", [
    "今天冷死了", "急死我了", "宝贝，妈妈想死你了", "想死你们了", "笑死我了", "累死了", "热得要死",
    "手机死机了", "孩子跟他死党去打球了", "My phone died yesterday", "I'm dying to see the kids",
])
def test_si_is_mostly_an_intensifier(text: str) -> None:
    assert not classify(text).is_urgent


def test_si_as_suicide_still_fires() -> None:
    assert classify("我真的好想死。。。。").category == "self_harm"
    assert classify("孩子死活不肯去上学").category == "dropout"  # 死活 is not death


@pytest.mark.parametrize("text", ["过年杀了一头猪", "孩子帮奶奶杀鸡", "孙子天天玩吃鸡，杀了好多人", "他们在玩狼人杀", "电脑杀毒"])
def test_sha_in_farm_and_games(text: str) -> None:
    assert sev(text) == "normal"


def test_sha_as_threat_fires() -> None:
    assert classify("爸爸说要杀了我").category == "abuse"


@pytest.mark.parametrize("text", [
    "娃钥匙又丢了", "家里的狗不见了", "作业本不见了", "孩子把书包丢了", "孩子的猫跑了",
    "手机丢了，这是我的新号码", "好久不见了", "My keys are missing again",
])
def test_lost_things_and_pets_are_not_missing_children(text: str) -> None:
    assert sev(text) == "normal"


@pytest.mark.parametrize("text", ["孩子不见了", "娃丢了", "俺家娃不见了", "孙女走丢了"])
def test_lost_children_are_missing(text: str) -> None:
    assert classify(text).category == "missing"


@pytest.mark.parametrize("text", ["我一个人在家带两个娃", "孩子一个人也能做作业了", "奶奶一个人去赶集了", "就他一个人考了满分"])
def test_yigeren_everyday(text: str) -> None:
    assert sev(text) == "normal"


@pytest.mark.parametrize("text", ["孩子一个人在家", "两个孩子自己在家", "家里就剩我一个人了"])
def test_yigeren_alone(text: str) -> None:
    assert classify(text).category == "unattended"


# ---------------------------------------------------------------- negation and resolution
@pytest.mark.parametrize("text", [
    "孩子没有发烧", "娃没被打", "不是没人管，他外婆天天在家", "我们从不打孩子", "他从来没挨过打",
    "没有被欺负", "孩子不是一个人在家", "孩子从来没有逃过学", "娃不发烧了",
    "He doesn't have a fever", "she was not hurt",
])
def test_negation(text: str) -> None:
    assert sev(text) == "normal"


@pytest.mark.parametrize("text", ["孩子烧退了", "感冒已经好了", "孩子上周生病，现在好多了", "哭了一会儿就好了"])
def test_resolution(text: str) -> None:
    assert sev(text) == "normal"


def test_resolution_does_not_hide_later_or_unresolved_trouble() -> None:
    assert sev("孩子发烧了，烧还没退") == "high"
    assert sev("孩子发烧了，昨天好了今天又烧起来了") == "high"
    assert classify("孩子失踪了，到现在还没找到").is_urgent      # 没找到 is not a resolution
    found = classify("孩子昨天走丢了，后来找到了")
    assert (found.severity, found.category) == ("high", "distress")  # resolved urgent stays visible
    burned = classify("孩子上周被开水烫伤了，现在已经好了")
    assert burned.severity == "high"


# negation SCOPE (lexicon.toml: negate entries with filler `gap` and `window`, protect, deny)
@pytest.mark.parametrize("text", [
    "没有被人欺负", "并没有什么人欺负他", "俺家娃从来不跟人打架", "娃没被他爸打，是摔的",
    "发烧？没有", "孩子发烧？没有，好着呢", "被打吗？没有", "走丢了吗？没有，一直在奶奶身边",
    "发烧倒是没有，孩子挺好的", "不是逃学，放假了", "没有受伤", "不是没人管，他外婆天天在家",
    "孩子没有离家出走，在他姑家住几天", "no, he's not hurt", "Is he hurt? No, just scared",
])
def test_negation_scope(text: str) -> None:
    assert classify(text, net=False).severity == "normal"
    assert classify(text, net=True).severity == "normal"  # the net's gate follows the lexicon


@pytest.mark.parametrize("text", [
    "没写作业被他爸打了",              # a verb between cue and trigger ends the scope
    "孩子没吃饭就被他后妈打了一顿",
    "娃没被打，但是三天没回家了",        # the comma ends the scope; 没回家 is protected
    "孩子没人管，天天饿肚子",            # protected: the 没 is part of the alarm
    "没有人照顾孩子", "孩子没气了", "孩子没呼吸了", "不是说着玩，她真的不想活了",
    "没有发烧，但是从楼上摔下来了，头在流血",
    "他已经好了，可是昨晚又被他爸打了",  # a trigger AFTER the resolution still counts
    "No, he is not ok, his dad beat him again",
])
def test_negation_scope_keeps_real_alarms(text: str) -> None:
    assert classify(text, net=False).is_urgent


@pytest.mark.parametrize("text", [
    "孙子昨天发烧，今天已经退了，去上学了", "孙女的户口已经办好了，谢谢你们",
    "之前说的欺负的事，老师已经处理好了", "换监护人的事我们商量过了，还是奶奶带，不换",
    "孙女学会骑自行车了，摔了几下，没有受伤", "she was upset but she's fine now",
])
def test_resolution_after_the_trigger(text: str) -> None:
    assert classify(text).severity == "normal"


def test_negator_must_be_adjacent() -> None:
    assert sev("没想到孩子发烧了") == "high"
    assert sev("孩子不舒服，发烧了") == "high"


def test_hukou_negation_is_the_problem() -> None:
    assert classify("孩子一直没有户口").category == "hukou"
    assert classify("Our daughter has no hukou", "en").category == "hukou"


# ---------------------------------------------------------------- dialect and spoken forms
@pytest.mark.parametrize("text,category", [
    ("俺家娃昨天又遭他后爹打了", "abuse"),      # 俺, 娃, 遭 passive
    ("伢被开水烫伤了", "injury"),                # 伢
    ("崽三天没着家了", "missing"),              # 崽, 着家
    ("娃冇人管", "unattended"),                  # 冇
    ("孩子好几天不着家了", "missing"),
    ("孩子好幾天不著家了", "missing"),          # traditional 著
    ("俺孙子到现在还没上户口", "hukou"),
])
def test_dialect(text: str, category: str) -> None:
    assert classify(text).category == category


def test_positive_zhaojia_is_normal() -> None:
    assert sev("娃这几天都着家，作业也写完了") == "normal"


# ---------------------------------------------------------------- severity rules
def test_higher_severity_wins() -> None:
    r = classify("救命啊，孩子掉井里了")
    assert (r.severity, r.category) == ("urgent", "injury")
    assert classify("救命").severity == "high" and classify("救命").category == "help"
    assert classify("我们该怎么办，帮帮我，孩子被打了").is_urgent


def test_pleas_inside_sentences() -> None:
    assert classify("能不能帮帮忙，孩子学费交不起了").category == "help"
    assert classify("Please help us", "en").category == "help"


def test_language_hint_is_only_a_hint() -> None:
    assert classify("my son ran away", "zh_Hans").category == "missing"
    assert classify("孩子失踪了", "en").category == "missing"


# ---------------------------------------------------------------- lexicon as data
def test_every_lexicon_entry_example_behaves() -> None:
    lexicon = load_lexicon()
    problems = self_check(lexicon)
    assert problems == []
    kinds = {e.kind for e in lexicon.entries}
    assert kinds == {"trigger", "suppress", "negate", "resolve", "protect", "deny"}
    for entry in lexicon.entries:
        assert entry.examples, entry.id
    covered = {e.category for e in lexicon.triggers}
    assert covered == set(CATEGORY_SEVERITY) - {"other"}


LOCAL = '''
[[entry]]
id = "local.wuhan_lost"
category = "missing"
patterns = ['伢搞掉了']
examples = ["我屋里伢搞掉了"]
'''


def test_extra_lexicon_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the lexicon alone (the learned net, on by default, happens to catch this one: see the model tests)
    assert classify("我屋里伢搞掉了", net=False).severity != "urgent"
    local = tmp_path / "local.toml"
    local.write_text(LOCAL, encoding="utf-8")
    monkeypatch.setenv("TRIAGE_LEXICON_EXTRA", str(local))
    result = classify("我屋里伢搞掉了")
    assert result.category == "missing" and result.evidence[0].rule == "local.wuhan_lost"
    assert self_check(load_lexicon([local])) == []
    monkeypatch.delenv("TRIAGE_LEXICON_EXTRA")
    assert classify("我屋里伢搞掉了", net=False).severity != "urgent"


def test_extra_lexicon_can_disable_and_is_validated(tmp_path: Path) -> None:
    off = tmp_path / "off.toml"
    off.write_text('[[entry]]\nid = "help.zh"\nenabled = false\n', encoding="utf-8")
    lexicon = load_lexicon([off])
    assert "help.zh" not in lexicon.by_id
    assert classify("救命", lexicon=lexicon).severity == "normal"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[entry]]\nid = "x"\ncategory = "nonsense"\npatterns = ["a"]\nexamples = ["a"]\n', encoding="utf-8")
    with pytest.raises(LexiconError):
        load_lexicon([bad])
    noex = tmp_path / "noex.toml"
    noex.write_text('[[entry]]\nid = "x"\ncategory = "help"\npatterns = ["a"]\n', encoding="utf-8")
    with pytest.raises(LexiconError):
        load_lexicon([noex])


def test_self_check_catches_a_broken_example(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[[entry]]\nid = "local.bad"\ncategory = "help"\npatterns = ["帮帮阿婆"]\nexamples = ["毫不相干"]\n'
        '[[entry]]\nid = "local.ff"\nkind = "suppress"\ncategories = ["missing"]\npatterns = ["不见了"]\n'
        'examples = ["孩子不见了哦"]\n',
        encoding="utf-8",
    )
    problems = self_check(load_lexicon([broken]))
    assert any("local.bad" in p for p in problems)
    assert not any("local.ff" in p for p in problems)  # it does suppress: the example no longer fires


# ---------------------------------------------------------------- classify_lines
def test_classify_lines() -> None:
    lines = [
        json.dumps({"id": 1, "text": "孩子失踪了"}, ensure_ascii=False),
        "",
        json.dumps({"id": "b", "text": "my son is sick", "language": "en"}),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"id": 7, "text": 5}),
        json.dumps({"id": 8, "text": "好的"}, ensure_ascii=False),
    ]
    out = [json.loads(x) for x in classify_lines(lines)]
    assert out[0] == {"id": 1, "severity": "urgent", "category": "missing"}
    assert out[1] == {"id": "b", "severity": "high", "category": "illness"}
    assert out[2]["id"] is None and out[2]["severity"] == "normal" and out[2]["category"] == "other"
    assert "error" in out[2]
    assert out[3]["id"] is None and "error" in out[3]
    assert out[4]["severity"] == "normal" and "error" in out[4]
    assert out[5] == {"id": 8, "severity": "normal", "category": "other"}
    assert len(out) == 6  # the blank line is skipped
    assert "失踪" not in "".join(classify_lines([json.dumps({"id": 1, "text": "孩子失踪了"})]))
    raw = next(classify_lines(['{"id": "张三", "text": "好"}']))
    assert "张三" in raw  # ensure_ascii=False


# ---------------------------------------------------------------- development set and targets
DEVSET = load_devset()


NEW_SPLITS = ("heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9")
KNOWN_SPLITS = frozenset({"tune", "heldout", *NEW_SPLITS})


def test_devset_shape() -> None:
    """Shape of the devset. Reads the file afresh (not the module-level copy) and names every known
    split: a new batch (heldout4) must be added to NEW_SPLITS together with its rows, and rows are
    written atomically (temp file + os.replace) so a run never sees a half-written file."""
    devset = load_devset()
    assert len(devset) >= 300
    ids = [r["id"] for r in devset]
    assert len(ids) == len(set(ids))
    for r in devset:
        assert set(r) == {"id", "text", "language", "severity", "category", "split", "note"}, r["id"]
        assert r["split"] in KNOWN_SPLITS, (r["id"], r["split"])
        assert CATEGORY_SEVERITY[r["category"]] == r["severity"], r["id"]
        assert r["language"] in {"zh_Hans", "en"}, r["id"]
    original = [r for r in devset if r["split"] in ("tune", "heldout")]
    heldout = sum(r["split"] == "heldout" for r in original)
    assert 0.25 <= heldout / len(original) <= 0.45
    for split in ("heldout", *NEW_SPLITS):
        rows = [r for r in devset if r["split"] == split]
        if split in NEW_SPLITS:
            assert len(rows) >= 150, split
        for category in CATEGORY_SEVERITY:
            assert any(r["category"] == category for r in rows), (split, category)
    texts = [r["text"] for r in devset]
    assert len(texts) == len(set(texts)), "a text appears twice (possibly in two splits)"


def _assert_targets(split: str) -> None:
    report = evaluate([r for r in DEVSET if r["split"] == split])
    figures = report.figures()
    failed = {k: round(v, 3) for k, v in figures.items() if not report.passed()[k]}
    assert not failed, f"{split}: targets missed {failed}"


def test_targets_on_tune_split() -> None:
    _assert_targets("tune")


def test_targets_on_heldout_split() -> None:
    """Batches 1-3. Batch 3's misses (urgent recall 0.50 before) were fixed with concept rules,
    so this split now measures regressions, not generalisation (see heldout3 for that)."""
    _assert_targets("heldout")


def test_heldout_written_before_rules_meets_targets() -> None:
    """The first held-out batch (written before any rule) does meet every target."""
    rows = [r for r in DEVSET if r["split"] == "heldout" and "blind batch" not in r["note"]]
    report = evaluate(rows)
    assert all(report.passed().values()), report.figures()


def test_heldout_false_positive_targets() -> None:
    """Whatever the recall, normal replies must not be over-flagged on any held-out split."""
    for split in ("heldout", *NEW_SPLITS):
        report = evaluate([r for r in DEVSET if r["split"] == split])
        passed = report.passed()
        assert passed["normal_as_urgent"] and passed["normal_as_high_or_urgent"], (split, report.figures())


# Later batches (heldout2..heldout8): each was blind until measured once; see
# tests/bot/test_triage_model.py (targets on every studied batch, and on the blind heldout8) and the
# BLIND_HISTORY table of bench/triage_eval.py for what each showed while blind.
