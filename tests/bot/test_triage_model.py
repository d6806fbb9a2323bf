"""The learned safety net beside the lexicon (bot/triage/model.py)."""
from __future__ import annotations

import json

import pytest

from bot.triage import SEVERITY_RANK, classify, default_lexicon
from bot.triage.metrics import evaluate, load_devset
from bot.triage.model import (
    BLIND_SPLITS,
    DEVSET_TRAIN_SPLITS,
    TRAIN_SPLITS,
    TRAINING_PATH,
    SafetyNet,
    default_net,
    load_training,
    net_enabled,
)

DEVSET = load_devset()


def test_training_file_holds_no_blind_rows() -> None:
    """training.jsonl = the devset rows of tune/heldout/heldout2/heldout3/heldout4 (same order) + "aug"
    rows written only for training. heldout5 (blind) is never trained on."""
    rows = load_training()
    assert {r["split"] for r in rows} == set(TRAIN_SPLITS)
    expected = [r for r in DEVSET if r["split"] in DEVSET_TRAIN_SPLITS]
    assert [r["id"] for r in rows if r["split"] != "aug"] == [r["id"] for r in expected]
    blind = {r["text"] for r in DEVSET if r["split"] in BLIND_SPLITS}
    assert len(blind) >= 200
    assert BLIND_SPLITS == ("heldout5",)
    assert not blind & {r["text"] for r in rows}, "heldout5 must never be trained on"
    assert "heldout5" not in TRAINING_PATH.read_text(encoding="utf-8")
    aug = [r for r in rows if r["split"] == "aug"]
    assert len(aug) >= 200 and not {r["text"] for r in aug} & {r["text"] for r in DEVSET}


def test_gate_silences_the_net_on_false_friends_negations_resolutions_and_no_person() -> None:
    for text in ["女儿说想死我了，让我早点回去", "孩子没有被欺负", "娃的感冒好了，今天正常上学",
                 "今天下大雨，地里的菜都淹了"]:
        assert classify(text, net=True) == classify(text, net=False), text


def test_model_trains_deterministically() -> None:
    rows = load_training()[:300]
    norm = default_lexicon().normalizer
    a, b = SafetyNet(rows, norm), SafetyNet(rows, norm)
    assert a.severity_model.weights == b.severity_model.weights
    assert a.severity_model.bias == b.severity_model.bias
    assert a.category_model.loglik == b.category_model.loglik
    text = norm.normalize("孩子两天没回家了")[0]
    assert a.severity_proba(text) == b.severity_proba(text)


@pytest.mark.parametrize("split", ["tune", "heldout", "heldout2", "heldout3", "heldout4"])
def test_net_never_lowers_lexicon_severity(split: str) -> None:
    for r in DEVSET:
        if r["split"] != split:
            continue
        off = classify(r["text"], r["language"], net=False)
        on = classify(r["text"], r["language"], net=True)
        assert SEVERITY_RANK[on.severity] >= SEVERITY_RANK[off.severity], r["id"]
        if on.severity == off.severity:
            assert on == off, r["id"]  # the lexicon's category and evidence are kept
        else:
            assert all(e.rule.startswith("model:") for e in on.evidence)
            assert all(r["text"][e.start:e.end] == e.text for e in on.evidence)


def test_net_on_by_default_and_env_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XIANGBAN_TRIAGE_NET", raising=False)
    assert net_enabled() is True  # lead's decision after heldout4: urgent recall first
    monkeypatch.setenv("XIANGBAN_TRIAGE_NET", "0")
    assert net_enabled() is False
    assert classify("我屋里伢搞掉了").severity == "normal"  # the lexicon alone misses this dialect
    monkeypatch.setenv("XIANGBAN_TRIAGE_NET", "1")
    assert net_enabled() is True
    monkeypatch.delenv("XIANGBAN_TRIAGE_NET")
    assert classify("我屋里伢搞掉了").severity == "urgent"  # ... which the net, on by default, catches


def test_gate_follows_the_negation_scope() -> None:
    """Negation scope, question-then-denial and resolution silence the net too (it cannot see them);
    protected alarms (没人管, 没回家...) keep it free to speak."""
    for text in ["娃没有被人欺负，就是闹别扭", "孩子发烧？没有，好着呢", "户口已经办好了，谢谢",
                 "俺家娃从来不跟人打架", "No, he's not hurt"]:
        assert classify(text).severity == "normal", text
    assert classify("娃没人管，天天在外面晃").is_urgent
    assert classify("孩子昨天没回家").is_urgent


def test_net_is_fast_enough() -> None:
    import time
    net = default_net(default_lexicon().normalizer)
    texts = [default_lexicon().normalizer.normalize(r["text"])[0] for r in DEVSET]
    cpu = time.process_time()
    for t in texts * 5:
        net.predict(t)
    assert len(texts) * 5 / (time.process_time() - cpu) >= 10_000


def _figures(monkeypatch: pytest.MonkeyPatch, split: str) -> dict[str, dict[str, float]]:
    rows = [r for r in DEVSET if r["split"] == split]
    figures = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("XIANGBAN_TRIAGE_NET", flag)
        figures[flag] = {k: round(v, 3) for k, v in evaluate(rows).figures().items()}
    return figures


def test_heldout3_figures_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """heldout3 is NOT blind any more: its misses were studied for the concept-family rules and its
    rows train the net. Before (blind): off 0.548 / 0.588 / 0.019 / 0.093, ungated net on
    0.855 / 0.853 / 0.148 / 0.278. Now (in-sample, for regressions only):"""
    figures = _figures(monkeypatch, "heldout3")
    assert figures["0"] == {"urgent_recall": 0.968, "high_caught": 0.588,
                            "normal_as_urgent": 0.019, "normal_as_high_or_urgent": 0.093}
    assert figures["1"] == {"urgent_recall": 0.984, "high_caught": 0.941,
                            "normal_as_urgent": 0.019, "normal_as_high_or_urgent": 0.093}


# heldout4: blind batch 6 (227 replies), written before heldout3 was studied. Measured ONCE blind
# (previous lexicon, net trained without it):
#   lexicon only 0.768 / 0.823 / 0.012 / 0.193;  with the gated net 0.927 / 0.903 / 0.060 / 0.229
# (urgent recall / high caught / normal->urgent / normal->high-or-urgent). Since then its misses were
# studied (negation scope, denial, resolution, concept families) and it trains the net: IN-SAMPLE.
HELDOUT4_BLIND_OFF = {"urgent_recall": 0.768, "high_caught": 0.823,
                      "normal_as_urgent": 0.012, "normal_as_high_or_urgent": 0.193}
HELDOUT4_BLIND_ON = {"urgent_recall": 0.927, "high_caught": 0.903,
                     "normal_as_urgent": 0.06, "normal_as_high_or_urgent": 0.229}
HELDOUT4_NOW = {"urgent_recall": 1.0, "high_caught": 0.984,
                "normal_as_urgent": 0.0, "normal_as_high_or_urgent": 0.048}


def test_heldout4_figures_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-sample now (regressions only): the same with the net off and on."""
    figures = _figures(monkeypatch, "heldout4")
    assert figures["0"] == HELDOUT4_NOW
    assert figures["1"] == HELDOUT4_NOW


# heldout5: blind batch 7 (235 replies), written BEFORE heldout4 was studied and before the negation
# scope work, never tuned on, never trained on, measured ONCE at the end: THE honest estimate.
# Measured once (net ON is the default): urgent recall 0.939 misses the 0.97 target; the false-alarm
# limits hold (3/85 normal -> urgent, 12/85 -> high-or-urgent). Lexicon alone: 0.841 / 0.853.
HELDOUT5_OFF = {"urgent_recall": 0.841, "high_caught": 0.853,
                "normal_as_urgent": 0.035, "normal_as_high_or_urgent": 0.141}
HELDOUT5_ON = {"urgent_recall": 0.939, "high_caught": 0.912,
               "normal_as_urgent": 0.035, "normal_as_high_or_urgent": 0.141}


def test_heldout5_figures_recorded(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    figures = _figures(monkeypatch, "heldout5")
    with capsys.disabled():
        print("\nheldout5 net off:", json.dumps(figures["0"]), "\nheldout5 net on: ", json.dumps(figures["1"]))
    assert figures["0"] == HELDOUT5_OFF
    assert figures["1"] == HELDOUT5_ON


@pytest.mark.xfail(reason="KNOWN GAP, blind heldout5 (235 replies) measured once with the net on (default): "
                   "urgent recall 0.939 < 0.97 (5 of 82 urgent missed: 3 high, 2 normal); high caught 0.912, "
                   "normal->urgent 0.035, normal->high-or-urgent 0.141 pass. Lexicon alone 0.841 / 0.853 / "
                   "0.035 / 0.141.", strict=True)
def test_heldout5_meets_targets() -> None:
    report = evaluate([r for r in DEVSET if r["split"] == "heldout5"])
    assert all(report.passed().values()), report.figures()
