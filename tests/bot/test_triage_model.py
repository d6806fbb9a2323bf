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
    """training.jsonl = the devset rows of the studied splits (same order) + "aug" rows written only
    for training (scripts/triage_training.py). The blind split is never trained on."""
    rows = load_training()
    assert {r["split"] for r in rows} == set(TRAIN_SPLITS)
    expected = [r for r in DEVSET if r["split"] in DEVSET_TRAIN_SPLITS]
    assert [r["id"] for r in rows if r["split"] != "aug"] == [r["id"] for r in expected]
    blind = {r["text"] for r in DEVSET if r["split"] in BLIND_SPLITS}
    assert BLIND_SPLITS == ("heldout8", "heldout9")
    assert len(blind) >= 600
    assert not blind & {r["text"] for r in rows}, "the blind split must never be trained on"
    assert "heldout8" not in TRAINING_PATH.read_text(encoding="utf-8")
    assert "heldout9" not in TRAINING_PATH.read_text(encoding="utf-8")
    aug = [r for r in rows if r["split"] == "aug"]
    assert len(aug) >= 3000 and not {r["text"] for r in aug} & {r["text"] for r in DEVSET}


def test_net_stays_quiet_on_false_friends_negations_resolutions_and_crops() -> None:
    """After a reviewed false friend, negation or resolution the net needs P >= 0.85 to speak;
    on these it does not."""
    for text in ["女儿说想死我了，让我早点回去", "孩子没有被欺负", "娃的感冒好了，今天正常上学",
                 "今天下大雨，地里的菜都淹了"]:
        assert classify(text, net=True) == classify(text, net=False), text


def test_model_trains_deterministically() -> None:
    rows = load_training()[:300]
    norm = default_lexicon().normalizer
    a, b = SafetyNet(rows, norm), SafetyNet(rows, norm)
    assert a.severity_model.table == b.severity_model.table
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
    text = "娃把手伸进了打谷机，手指头没了"  # a blind heldout5 reply, now a training row
    assert classify(text).severity == "normal"  # the lexicon alone misses it
    monkeypatch.setenv("XIANGBAN_TRIAGE_NET", "1")
    assert net_enabled() is True
    monkeypatch.delenv("XIANGBAN_TRIAGE_NET")
    assert classify(text).severity == "urgent"  # ... which the net, on by default, catches


def test_gate_follows_the_negation_scope() -> None:
    """Negation scope, question-then-denial and resolution silence the net too (it cannot see them);
    protected alarms (没人管, 没回家...) keep it free to speak."""
    for text in ["娃没有被人欺负，就是闹别扭", "孩子发烧？没有，好着呢", "户口已经办好了，谢谢",
                 "俺家娃从来不跟人打架", "No, he's not hurt"]:
        assert classify(text).severity == "normal", text
    assert classify("娃没人管，天天在外面晃").is_urgent
    assert classify("孩子昨天没回家").is_urgent


def _figures(monkeypatch: pytest.MonkeyPatch, split: str) -> dict[str, dict[str, float]]:
    rows = [r for r in DEVSET if r["split"] == split]
    figures = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("XIANGBAN_TRIAGE_NET", flag)
        figures[flag] = {k: round(v, 3) for k, v in evaluate(rows).figures().items()}
    return figures


# Every batch after the first was written blind, measured ONCE before anyone looked at it, then studied
# (its misses shaped rules) and trained on; the blind figures are history, printed by
# bench/triage_eval.py (BLIND_HISTORY). Here: the studied batches must not regress in-sample.
@pytest.mark.parametrize("split", ["heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7"])
def test_studied_batches_meet_targets_with_the_net(monkeypatch: pytest.MonkeyPatch, split: str) -> None:
    monkeypatch.delenv("XIANGBAN_TRIAGE_NET", raising=False)
    report = evaluate([r for r in DEVSET if r["split"] == split])
    assert all(report.passed().values()), (split, report.figures())


def test_net_raises_recall_over_the_lexicon_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the batch written by independent authors (heldout6), the lexicon alone misses urgent
    replies that the net catches; the net never adds a false urgent there."""
    figures = _figures(monkeypatch, "heldout6")
    assert figures["1"]["urgent_recall"] > figures["0"]["urgent_recall"]
    assert figures["1"]["normal_as_urgent"] <= figures["0"]["normal_as_urgent"] + 0.01


def test_trained_model_is_cached_on_disk_and_reloaded(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The severity model is cached as JSON under $XIANGBAN_CACHE_DIR, keyed by the training file,
    the normaliser and the trainer; a damaged cache file means training again, never a crash."""
    from bot.triage import model

    monkeypatch.setenv(model.ENV_CACHE, str(tmp_path))
    normalizer = default_lexicon().normalizer
    rows = load_training()[:200]
    trained = model._cached_severity_model(normalizer, rows)
    files = list(tmp_path.glob("triage-net-*.json"))
    assert len(files) == 1
    reloaded = model._cached_severity_model(normalizer, rows)
    text = normalizer.normalize("孩子两天没回家了")[0]
    grams = model.features(text)
    assert reloaded.proba(grams) == trained.proba(grams)
    files[0].write_text("{not json", encoding="utf-8")
    again = model._cached_severity_model(normalizer, rows)
    assert again.proba(grams) == trained.proba(grams)
    assert json.loads(files[0].read_text(encoding="utf-8"))["bias"] == list(trained.bias)


def test_reviewed_replies_need_a_surer_net() -> None:
    """After a false friend, negation or resolution matched, the net speaks only above the stricter
    THRESHOLDS_REVIEWED."""
    net = default_net(default_lexicon().normalizer)
    proba = {"urgent": 0.7, "high": 0.2, "normal": 0.1}
    assert net.decide(proba) == "urgent"
    assert net.decide(proba, reviewed=True) == "normal"
    assert net.decide({"urgent": 0.95, "high": 0.04, "normal": 0.01}, reviewed=True) == "urgent"


def test_pinyin_typed_replies_share_the_sound_of_characters() -> None:
    """A child who cannot write 被狗咬了 types "bei gou yao le": the net's sound tokens are the same."""
    from bot.triage.model import features, sound_tokens

    assert sound_tokens("被狗咬了,腿上") == ["bei", "gou", "yao", "le", "|", "tui", "shang"]
    assert sound_tokens("bei gou yao le") == ["bei", "gou", "yao", "le"]
    assert {"#gou yao", "#yao le"} <= features("bei gou yao le") & features("被狗咬了")
    assert sound_tokens("孩子在家") == sound_tokens("孩子再家")  # a homophone slip sounds the same


@pytest.mark.parametrize("split", ["heldout8", "heldout9"])
def test_blind_batches_meet_every_target(monkeypatch: pytest.MonkeyPatch, split: str) -> None:
    """heldout8: 313 replies by three independent authors who never saw the rules, the training rows
    or earlier batches; never tuned on, never trained on. Measured ONCE at the end (net on, the
    default): urgent recall 1.000 (111/111), high caught 0.990, normal->urgent 0.010,
    normal->high-or-urgent 0.067; the rules alone 0.820 / 0.878 / 0.010 / 0.058. The batch before it
    (heldout7, blind until then) measured 0.964 / 0.980 / 0.027 / 0.117 with the previous model.
    heldout9: 312 replies by three more authors, a replication measured once with the final model:
    0.991 (110/111) / 0.980 / 0.019 / 0.058; the rules alone 0.766 / 0.837 / 0.019 / 0.058.
    From now on these guard against regressions; a new blind batch is the next honest estimate."""
    monkeypatch.delenv("XIANGBAN_TRIAGE_NET", raising=False)
    report = evaluate([r for r in DEVSET if r["split"] == split])
    assert report.n >= 300
    assert all(report.passed().values()), report.figures()


def test_warm_up_builds_the_net_once_and_the_cli_reports_it(app) -> None:
    """`flask --app bot triage --warm` builds rules and net (deploy step); concurrent callers of
    default_net share one build."""
    import threading

    from bot.triage import warm_up

    assert warm_up() >= 0
    nets = []
    threads = [threading.Thread(target=lambda: nets.append(default_net(default_lexicon().normalizer)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(n) for n in nets}) == 1
    result = app.test_cli_runner().invoke(args=["triage", "--warm"])
    assert result.exit_code == 0 and "triage ready in" in result.output


def test_first_request_starts_the_warm_up_outside_tests(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import bot.triage
    from bot import create_app

    calls: list[str] = []
    monkeypatch.setattr(bot.triage, "warm_up", lambda: calls.append(threading.current_thread().name) or 0.0)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "SECRET_KEY": "x", "TESTING": False})
    client = app.test_client()
    client.get("/healthz")
    client.get("/healthz")
    for t in threading.enumerate():
        if t.name == "triage-warm-up":
            t.join(5)
    assert calls == ["triage-warm-up"]
    quiet = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}", "SECRET_KEY": "x", "TRIAGE_WARM_UP": False})
    quiet.test_client().get("/healthz")
    assert calls == ["triage-warm-up"]
