"""A learned SAFETY NET beside the lexicon: character n-gram logistic regression, plain Python.

The lexicon is precise but misses unseen wording (heldout3). This model sees character 1-3 grams
of the NORMALISED text (the same normaliser as the lexicon) and may only RAISE a severity:

    final severity = max(lexicon severity, model severity)

where the model proposes ``urgent`` when P(urgent) > THRESHOLDS["urgent"], else ``high`` when
P(high) + P(urgent) > THRESHOLDS["high"] (when unsure between two severities, the higher one).
The category comes from the lexicon if it fired at the final severity, else from the model's most
probable category of that severity. Model-only decisions carry the top n-grams as evidence spans
(rule id ``model:<category>``).

GATE: the net may raise a severity only when no reviewed false friend, negation (including the
structural negation SCOPE, question-then-denial and protected alarms of lexicon.toml) or resolution
matched (classifier._analyse) and the reply mentions a person (net_may_speak).

Training data: ``training.jsonl`` next to this file, a copy of the tune + heldout + heldout2 + heldout3
+ heldout4 rows of tests/bot/triage_devset.jsonl plus "aug" rows written only for training (near-miss
normals, English everyday replies, paraphrased alarms). heldout5 is NEVER trained on: it is the blind
test. The model is trained deterministically at first use (about half a second). The thresholds were
chosen by cross-validation -- out-of-fold (5-fold) probabilities on the training rows, gated as in
classify() (see THRESHOLDS) -- never on heldout5. The net is ON by default (lead's decision: urgent
recall first, see ENABLED_BY_DEFAULT); XIANGBAN_TRIAGE_NET=0 switches it off, =1 on.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .lexicon import CATEGORY_SEVERITY
from .normalize import Normalizer

TRAINING_PATH = Path(__file__).resolve().with_name("training.jsonl")
ENV_NET = "XIANGBAN_TRIAGE_NET"
# devset splits copied into training.jsonl, plus "aug": extra replies written only for training
# (near-miss normals, English everyday replies, paraphrased alarms). heldout5 is the blind test
# (heldout4 was blind until it was measured once; it is now studied and trained on).
DEVSET_TRAIN_SPLITS = ("tune", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6")
TRAIN_SPLITS = (*DEVSET_TRAIN_SPLITS, "aug")
BLIND_SPLITS = ("heldout7",)
SEVERITY_ORDER = ("urgent", "high", "normal")
NGRAM_MAX = 3
ALPHA = 0.1  # additive smoothing (category model)
EPOCHS = 10  # SGD passes (severity model)
RATE = 1.0  # first SGD step (divided by 1 + epoch)
L2 = 1e-5
# added to the squared length of a reply's vector: a SHORT reply (few known n-grams) is scaled
# down toward the prior instead of up to unit length, so two or three n-grams ("我不想...了") cannot
# make the net sure of itself
SHRINK = 0.0

# Chosen by 5-fold cross-validation on the training rows only (never the blind split): out-of-fold net
# probabilities, GATED as in classify(). choose_thresholds(max_urgent=0.03, max_high=0.08) gives
# {0.5, 0.55}; we took the stricter {0.55, 0.8} because on the "aug" rows -- the only training rows
# the lexicon was never tuned on, i.e. the closest to unseen text -- the combination then keeps
# normal->urgent 0.041 and normal->high-or-urgent 0.132 (0.058 / 0.190 at {0.5, 0.55}).
# Out-of-fold, all 1,130 training rows (lexicon in-sample): urgent 0.983, high caught 0.963,
# normal->urgent 0.024, normal->high-or-urgent 0.074. aug rows: 0.894 / 0.853 / 0.041 / 0.132.
# Re-checked after heldout4 joined the training rows and the negation-scope lexicon (1,387 rows):
# out-of-fold, all rows 0.984 / 0.973 / 0.025 / 0.073; aug rows 0.907 / 0.886 / 0.043 / 0.128;
# heldout4 rows (net out-of-fold, lexicon in-sample) normal->urgent 0.048, ->high-or-urgent 0.108.
# {0.5, 0.55} would give aug 0.933 / 0.914 / 0.064 / 0.213: the thresholds stay {0.55, 0.8}.
THRESHOLDS: dict[str, float] = {"urgent": 0.55, "high": 0.8}
# When a reviewed false friend, negation or resolution matched somewhere in the reply, the net (which
# cannot see negation) needs to be much surer before it overrules the rules: these thresholds apply.
THRESHOLDS_REVIEWED: dict[str, float] = {"urgent": 0.9, "high": 0.95}
# ON (lead's decision after heldout4: urgent recall comes first). History --
# heldout4 (blind batch 6, 227 replies, measured ONCE with the previous lexicon, net frozen):
#   lexicon only:       urgent 0.768, high caught 0.823, normal->urgent 0.012, normal->high|urgent 0.193
#   lexicon + gated net: urgent 0.927, high caught 0.903, normal->urgent 0.060, normal->high|urgent 0.229
# The net lifted recall a lot but broke both false-alarm limits (5% / 15%) on heldout4, so it was
# kept off then; the negation scope / denial / resolution rules now silence most of those false
# alarms (heldout4 is training data since). The honest estimate is heldout5 (see
# tests/bot/test_triage_model.py). Switch off with XIANGBAN_TRIAGE_NET=0 (or classify(..., net=False)).
ENABLED_BY_DEFAULT = True


def net_enabled() -> bool:
    """Whether classify() consults the net: $XIANGBAN_TRIAGE_NET (0/1) overrides the default."""
    value = os.environ.get(ENV_NET, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    return ENABLED_BY_DEFAULT


# The net may only speak about a PERSON: a child, a guardian or a pronoun (the child writing
# about themself uses 我). Replies about crops, the weather, phones or the bot itself are left to
# the lexicon. Matched on normalised text (simplified, lower case).
_PERSON = re.compile(
    "孩|娃|伢|崽|囡|孙|儿子|女儿|闺女|宝宝|宝贝|小的|弟弟|妹妹|哥哥|姐姐|侄|学生|丫头|小子|"
    "奶奶|爷爷|外婆|外公|姥|祖|婆婆|阿婆|阿公|老伴|老头|老太|老人|爸|妈|爹|娘|父|母|监护|"
    "姑|舅|伯|叔|婶|姨|继|后妈|"
    "我|俺|咱|他|她|自己|人"
    r"|\b(i|i'm|me|my|we|our|he|she|him|her|his|they|them|son|daughter|kids?|child|children|boy|girl|"
    r"baby|grand(ma|pa|mother|father|son|daughter|kids?|children)|granny|mom|mum|dad|father|mother|"
    r"uncle|aunt|brother|sister|nobody|someone|anyone)\b"
)


def net_may_speak(norm: str) -> bool:
    """The GATE (half of it; the other half is in classifier.classify): the net may only raise the
    severity of a reply that mentions a person. The classifier also silences the net whenever a
    reviewed false friend, negation or resolution matched (see classifier._analyse)."""
    return _PERSON.search(norm) is not None


def ngrams(norm: str, n_max: int = NGRAM_MAX) -> list[tuple[str, int]]:
    """Distinct character 1..n_max grams of normalised text, each with its first start offset."""
    seen: dict[str, int] = {}
    length = len(norm)
    for n in range(1, n_max + 1):
        for i in range(length - n + 1):
            g = norm[i:i + n]
            if g not in seen:
                seen[g] = i
    return list(seen.items())


def gram_set(norm: str, n_max: int = NGRAM_MAX) -> set[str]:
    """Distinct character 1..n_max grams of normalised text (no offsets: the prediction hot path)."""
    length = len(norm)
    grams = set(norm)
    for n in range(2, n_max + 1):
        grams.update([norm[i:i + n] for i in range(length - n + 1)])
    return grams


def sum3(start: Sequence[float], get: Callable[[str], tuple[float, ...] | None],
         grams: Iterable[str]) -> tuple[float, float, float]:
    """Add up three-class weights of the n-grams found in a table (unrolled: the classifier's hot loop)."""
    a, b, c = start
    for g in grams:
        t = get(g)
        if t is not None:
            a += t[0]
            b += t[1]
            c += t[2]
    return a, b, c


class NaiveBayes:
    """Multinomial NB over binarised character n-grams (each distinct n-gram counts once)."""

    def __init__(self, docs: Sequence[Iterable[str]], labels: Sequence[str], alpha: float = ALPHA) -> None:
        self.classes: tuple[str, ...] = tuple(sorted(set(labels)))
        index = {c: i for i, c in enumerate(self.classes)}
        k = len(self.classes)
        doc_count = [0] * k
        counts: dict[str, list[int]] = {}
        for grams, label in zip(docs, labels):
            ci = index[label]
            doc_count[ci] += 1
            for g in grams:
                row = counts.get(g)
                if row is None:
                    row = counts[g] = [0] * k
                row[ci] += 1
        totals = [0] * k
        for row in counts.values():
            for i in range(k):
                totals[i] += row[i]
        vocab = len(counts)
        n_docs = sum(doc_count)
        self.prior = tuple(math.log(doc_count[i] / n_docs) for i in range(k))
        denom = [math.log(totals[i] + alpha * vocab) for i in range(k)]
        # precomputed log-likelihoods, centred per n-gram (only differences between classes matter)
        self.loglik: dict[str, tuple[float, ...]] = {}
        for g in sorted(counts):
            row = counts[g]
            ll = [math.log(row[i] + alpha) - denom[i] for i in range(k)]
            mean = sum(ll) / k
            self.loglik[g] = tuple(x - mean for x in ll)

    def scores(self, grams: Iterable[str]) -> list[float]:
        """Unnormalised log-posterior per class (unseen n-grams are ignored)."""
        s = list(self.prior)
        get = self.loglik.get
        k = len(s)
        if k == 3:  # the hot path (severity model): unrolled
            return list(sum3(s, get, grams))
        for g in grams:
            t = get(g)
            if t is not None:
                for i in range(k):
                    s[i] += t[i]
        return s

    def proba(self, grams: Iterable[str]) -> dict[str, float]:
        """Posterior probability per class."""
        s = self.scores(grams)
        top = max(s)
        ex = [math.exp(x - top) for x in s]
        z = sum(ex)
        return {c: e / z for c, e in zip(self.classes, ex)}

    def top_grams(self, grams: Iterable[tuple[str, int]], cls: str, against: Sequence[str], n: int = 3
                  ) -> list[tuple[str, int]]:
        """The n-grams (with offsets) that most favour ``cls`` over the classes ``against``."""
        ci = self.classes.index(cls)
        others = [self.classes.index(c) for c in against if c in self.classes and c != cls]
        scored = []
        for g, start in grams:
            t = self.loglik.get(g)
            if t is None or len(g) < 2:
                continue
            margin = t[ci] - max(t[o] for o in others) if others else t[ci]
            if margin > 0:
                scored.append((-margin, start, g))
        scored.sort()
        return [(g, start) for _, start, g in scored[:n]]


class LogReg:
    """3-class (softmax) logistic regression over character n-grams weighted by IDF and scaled to
    unit length (TF-IDF with binary term frequency), trained by plain SGD in a fixed shuffled order
    (deterministic), decaying step, light L2. Weights are stored premultiplied by the IDF.

    TF-IDF matters: on the training writers' rows (5-fold, net alone) urgent recall at 5%
    normal->urgent went from about 0.87 (binary n-grams) to about 0.90."""

    def __init__(self, docs: Sequence[Sequence[str]], labels: Sequence[str], epochs: int = EPOCHS,
                 rate: float = RATE, l2: float = L2, shrink: float = SHRINK) -> None:
        self.classes: tuple[str, ...] = SEVERITY_ORDER
        self.shrink = shrink
        index = {c: i for i, c in enumerate(self.classes)}
        sets = [sorted(set(d)) for d in docs]
        df: dict[str, int] = {}
        for grams in sets:
            for g in grams:
                df[g] = df.get(g, 0) + 1
        n = len(sets)
        idf = {g: math.log((1 + n) / (1 + c)) + 1 for g, c in df.items()}
        data = []
        for grams, label in zip(sets, labels):
            values = [idf[g] for g in grams]
            norm = math.sqrt(sum(v * v for v in values) + shrink) or 1.0
            data.append((grams, [v / norm for v in values], index[label]))
        weights: dict[str, list[float]] = {}
        bias = [0.0, 0.0, 0.0]
        order = list(range(len(data)))
        rng = random.Random(0)
        for epoch in range(epochs):
            rng.shuffle(order)
            step = rate / (1 + epoch)
            keep = 1 - step * l2
            for k in order:
                grams, values, y = data[k]
                s0, s1, s2 = bias
                for g, v in zip(grams, values):
                    w = weights.get(g)
                    if w is not None:
                        s0 += w[0] * v
                        s1 += w[1] * v
                        s2 += w[2] * v
                top = max(s0, s1, s2)
                e0, e1, e2 = math.exp(s0 - top), math.exp(s1 - top), math.exp(s2 - top)
                z = e0 + e1 + e2
                g0, g1, g2 = e0 / z - (y == 0), e1 / z - (y == 1), e2 / z - (y == 2)
                bias[0] -= step * g0
                bias[1] -= step * g1
                bias[2] -= step * g2
                for g, v in zip(grams, values):
                    w = weights.get(g)
                    if w is None:
                        w = weights[g] = [0.0, 0.0, 0.0]
                    w[0] = w[0] * keep - step * g0 * v
                    w[1] = w[1] * keep - step * g1 * v
                    w[2] = w[2] * keep - step * g2 * v
        self.bias = tuple(bias)
        # gram -> (idf, idf*w_urgent, idf*w_high, idf*w_normal): one lookup per gram at prediction
        self.table: dict[str, tuple[float, float, float, float]] = {
            g: (idf[g], idf[g] * w[0], idf[g] * w[1], idf[g] * w[2]) for g, w in sorted(weights.items())
        }

    @classmethod
    def from_state(cls, state: dict) -> "LogReg":
        """Rebuild a trained model from ``state()`` (the on-disk cache)."""
        model = cls.__new__(cls)
        model.classes = SEVERITY_ORDER
        model.bias = tuple(state["bias"])
        model.shrink = float(state["shrink"])
        model.table = {g: tuple(v) for g, v in state["table"].items()}
        return model

    def state(self) -> dict:
        """The trained parameters as plain JSON-able data."""
        return {"bias": list(self.bias), "shrink": self.shrink, "table": {g: list(v) for g, v in self.table.items()}}

    def proba(self, grams: Iterable[str]) -> dict[str, float]:
        """Posterior probability per severity (n-grams never seen in training are ignored)."""
        a = b = c = sq = 0.0
        get = self.table.get
        for g in grams:
            t = get(g)
            if t is not None:
                sq += t[0] * t[0]
                a += t[1]
                b += t[2]
                c += t[3]
        scale = 1.0 / math.sqrt(sq + self.shrink) if sq + self.shrink else 0.0
        x, y, z = self.bias[0] + a * scale, self.bias[1] + b * scale, self.bias[2] + c * scale
        top = max(x, y, z)
        ex, ey, ez = math.exp(x - top), math.exp(y - top), math.exp(z - top)
        total = ex + ey + ez
        return {"urgent": ex / total, "high": ey / total, "normal": ez / total}


@dataclass(frozen=True)
class NetResult:
    """What the net proposes for one reply."""

    severity: str  # "urgent" | "high" | "normal"
    proba: dict[str, float]  # severity -> probability


class SafetyNet:
    """A severity model (the gate: logistic regression, 3 classes) and a category model
    (Naive Bayes, 14 classes, used only when the net fires)."""

    def __init__(self, rows: Sequence[dict], normalizer: Normalizer,
                 thresholds: dict[str, float] | None = None,
                 thresholds_reviewed: dict[str, float] | None = None,
                 severity_model: LogReg | None = None) -> None:
        self.normalizer = normalizer
        self.thresholds = dict(thresholds or THRESHOLDS)
        self.thresholds_reviewed = dict(thresholds_reviewed or THRESHOLDS_REVIEWED)
        docs = [[g for g, _ in ngrams(normalizer.normalize(r["text"])[0])] for r in rows]
        self.severity_model = severity_model or LogReg(docs, [r["severity"] for r in rows])
        self.category_model = NaiveBayes(docs, [r["category"] for r in rows])

    def severity_proba(self, norm: str) -> dict[str, float]:
        """P(urgent), P(high), P(normal) for normalised text."""
        return self.severity_model.proba(gram_set(norm))

    def decide(self, proba: dict[str, float], reviewed: bool = False) -> str:
        """The severity the net proposes for these probabilities (``reviewed``: a false friend,
        negation or resolution of the lexicon matched, so the stricter thresholds apply)."""
        limits = self.thresholds_reviewed if reviewed else self.thresholds
        if proba.get("urgent", 0.0) > limits["urgent"]:
            return "urgent"
        if proba.get("urgent", 0.0) + proba.get("high", 0.0) > limits["high"]:
            return "high"
        return "normal"

    def predict(self, norm: str, reviewed: bool = False) -> NetResult:
        """The net's proposal for normalised text."""
        proba = self.severity_proba(norm) if norm else {"urgent": 0.0, "high": 0.0, "normal": 1.0}
        return NetResult(self.decide(proba, reviewed), proba)

    def category(self, norm: str, severity: str) -> tuple[str, list[tuple[str, int]]]:
        """The most probable category of ``severity`` and the n-grams (normalised offsets) behind it."""
        grams = ngrams(norm)
        proba = self.category_model.proba([g for g, _ in grams])
        options = [c for c in self.category_model.classes if CATEGORY_SEVERITY.get(c) == severity]
        best = max(options, key=lambda c: (proba[c], c))
        against = [c for c in self.category_model.classes if CATEGORY_SEVERITY.get(c) != severity]
        return best, self.category_model.top_grams(grams, best, against)


def load_training(path: Path = TRAINING_PATH) -> list[dict]:
    """The shipped training rows (tune, heldout, heldout2, heldout3, heldout4 and aug; never heldout5)."""
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    bad = [r["id"] for r in rows if r.get("split") not in TRAIN_SPLITS or r.get("split") in BLIND_SPLITS]
    if bad:
        raise ValueError(f"training.jsonl holds rows outside {TRAIN_SPLITS}: {bad[:5]}")
    return rows


_nets: dict[int, SafetyNet] = {}
ENV_CACHE = "XIANGBAN_CACHE_DIR"
CACHE_FORMAT = 2  # bump when LogReg's features, training or state() change


def cache_dir() -> Path:
    """Where the trained severity model is cached: $XIANGBAN_CACHE_DIR, else the user's cache."""
    explicit = os.environ.get(ENV_CACHE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xiangban"


def _cache_path(normalizer: Normalizer) -> Path:
    digest = hashlib.sha256()
    digest.update(f"{CACHE_FORMAT}|{EPOCHS}|{RATE}|{L2}|{SHRINK}|{NGRAM_MAX}|".encode())
    digest.update(normalizer.signature().encode("utf-8"))
    digest.update(TRAINING_PATH.read_bytes())
    return cache_dir() / f"triage-net-{digest.hexdigest()[:24]}.json"


def _cached_severity_model(normalizer: Normalizer, rows: Sequence[dict]) -> LogReg:
    """The severity model trained on ``rows`` (the shipped training file), from the on-disk cache
    when the same training file, normaliser and trainer produced it before (training takes a few
    seconds; loading a fraction of one). The cache is plain JSON, written atomically; a missing,
    unreadable or unwritable cache only means training again."""
    try:
        path = _cache_path(normalizer)
        return LogReg.from_state(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    docs = [[g for g, _ in ngrams(normalizer.normalize(r["text"])[0])] for r in rows]
    model = LogReg(docs, [r["severity"] for r in rows])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(model.state()), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
    return model


def default_net(normalizer: Normalizer) -> SafetyNet:
    """The net trained on training.jsonl, built once per normaliser (i.e. per compiled lexicon)."""
    net = _nets.get(id(normalizer))
    if net is None or net.normalizer is not normalizer:
        rows = load_training()
        net = SafetyNet(rows, normalizer, severity_model=_cached_severity_model(normalizer, rows))
        _nets.clear()
        _nets[id(normalizer)] = net
    return net


# ---------------------------------------------------------------- threshold selection (offline)
def out_of_fold(rows: Sequence[dict], normalizer: Normalizer, folds: int = 5
                ) -> dict[str, dict[str, float]]:
    """Out-of-fold severity probabilities by row id (deterministic k-fold by position in id order)."""
    ordered = sorted(rows, key=lambda r: r["id"])
    out: dict[str, dict[str, float]] = {}
    for f in range(folds):
        train = [r for i, r in enumerate(ordered) if i % folds != f]
        test = [r for i, r in enumerate(ordered) if i % folds == f]
        net = SafetyNet(train, normalizer)
        for r in test:
            out[r["id"]] = net.severity_proba(normalizer.normalize(r["text"])[0])
    return out


RANK = {"normal": 0, "high": 1, "urgent": 2}


def combined_figures(rows: Sequence[dict], lexicon_sev: Callable[[dict], str],
                     proba: dict[str, dict[str, float]], thresholds: dict[str, float],
                     gate: Callable[[dict], bool] | None = None) -> dict[str, float]:
    """The four target figures for max(lexicon, gated net at ``thresholds``) over ``rows``.

    ``gate(row)`` False silences the net for that row (see classifier: false friend, negation or
    resolution matched, or no person mentioned)."""
    probe = SafetyNet.__new__(SafetyNet)
    probe.thresholds = thresholds
    conf = {(t, p): 0 for t in RANK for p in RANK}
    for r in rows:
        lex = lexicon_sev(r)
        net = probe.decide(proba[r["id"]]) if gate is None or gate(r) else "normal"
        final = lex if RANK[lex] >= RANK[net] else net
        conf[(r["severity"], final)] += 1

    def share(t: str, ps: Sequence[str]) -> float:
        total = sum(conf[(t, p)] for p in RANK)
        return sum(conf[(t, p)] for p in ps) / total if total else 0.0

    return {
        "urgent_recall": share("urgent", ["urgent"]),
        "high_caught": share("high", ["high", "urgent"]),
        "normal_as_urgent": share("normal", ["urgent"]),
        "normal_as_high_or_urgent": share("normal", ["high", "urgent"]),
    }


GRID = tuple(round(0.30 + 0.05 * i, 2) for i in range(14))  # 0.30 .. 0.95


def choose_thresholds(rows: Sequence[dict], normalizer: Normalizer, lexicon_sev: Callable[[dict], str],
                      gate: Callable[[dict], bool] | None = None, max_urgent: float = 0.03,
                      max_high: float = 0.08) -> tuple[dict[str, float], dict[str, float]]:
    """Pick the LOWEST thresholds whose out-of-fold (5-fold) figures over ALL training rows keep the
    GATED net ALONE within normal->urgent <= max_urgent and normal->high-or-urgent <= max_high
    (margins under the 5% / 15% limits: the lexicon adds its own false alarms on unseen text).

    The net alone is judged for the false-alarm budget because the lexicon was tuned on these rows
    and would hide the net's real behaviour; the returned figures are for the combination
    (optimistic: the lexicon is in-sample). Never pass blind (heldout4) rows here.
    """
    if any(r["split"] in BLIND_SPLITS for r in rows):
        raise ValueError("the blind split is the test: never choose thresholds on it")
    proba = out_of_fold(rows, normalizer)
    alone: Callable[[dict], str] = lambda r: "normal"  # noqa: E731
    best: dict[str, float] | None = None
    best_key: tuple[float, ...] = ()
    for tu in GRID:
        for th in GRID:
            t = {"urgent": tu, "high": th}
            fig = combined_figures(rows, alone, proba, t, gate)
            if fig["normal_as_urgent"] <= max_urgent and fig["normal_as_high_or_urgent"] <= max_high:
                key = (fig["urgent_recall"], fig["high_caught"], -tu, -th)
                if best is None or key > best_key:
                    best, best_key = t, key
    chosen = best or {"urgent": 1.0, "high": 1.0}
    return chosen, combined_figures(rows, lexicon_sev, proba, chosen, gate)
