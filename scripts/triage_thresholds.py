"""How the net's thresholds were chosen: out-of-fold figures of the combined classifier.

Run: .venv/bin/python scripts/triage_thresholds.py

Trains the severity model 5 times (each time without one fifth of the training rows), predicts the
left-out fifth, combines with the lexicon exactly as classify() does (max of the two; the stricter
THRESHOLDS_REVIEWED after a false friend, negation or resolution) and prints, per writer group of the
"aug" rows, urgent recall / high caught / normal->urgent / normal->high-or-urgent for candidate
thresholds. The blind batch is never used. Takes about a minute.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.triage import default_lexicon  # noqa: E402
from bot.triage.classifier import _analyse, _lexicon_triage  # noqa: E402
from bot.triage.metrics import SEVERITIES, TARGETS, Report  # noqa: E402
from bot.triage.model import (  # noqa: E402
    THRESHOLDS,
    THRESHOLDS_REVIEWED,
    LogReg,
    decide,
    features,
    load_training,
)

RANK = {"normal": 0, "high": 1, "urgent": 2}
CANDIDATES = [
    ((0.55, 0.8), (0.9, 0.95)),
    ((0.5, 0.75), (0.85, 0.95)),
    ((0.45, 0.7), (0.85, 0.95)),
]
CURRENT = ((THRESHOLDS["urgent"], THRESHOLDS["high"]), (THRESHOLDS_REVIEWED["urgent"], THRESHOLDS_REVIEWED["high"]))
if CURRENT not in CANDIDATES:
    CANDIDATES.append(CURRENT)
GROUPS = {"t6": "first 8 writers", "t7": "next 8 writers", "t8": "last 8 writers (rules never studied for misses)",
          "b7": "heldout7 (blind batch 9, once measured; rules not yet studied on it)"}


def out_of_fold(rows: list[dict], docs: dict[str, list[str]], folds: int = 5) -> dict[str, dict[str, float]]:
    """P(severity) for every row from a model that did not see it (k-fold by position in id order)."""
    ordered = sorted(rows, key=lambda r: r["id"])
    proba: dict[str, dict[str, float]] = {}
    for f in range(folds):
        train = [r for i, r in enumerate(ordered) if i % folds != f]
        model = LogReg([docs[r["id"]] for r in train], [r["severity"] for r in train])
        for i, r in enumerate(ordered):
            if i % folds == f:
                proba[r["id"]] = model.proba(docs[r["id"]])
    return proba


def figures(rows: list[dict], lexicon: dict[str, tuple[str, bool]], proba: dict[str, dict[str, float]],
            normal: tuple[float, float], reviewed: tuple[float, float]) -> str:
    """The four target figures of max(lexicon, net) over ``rows``."""
    confusion = {t: {p: 0 for p in SEVERITIES} for t in SEVERITIES}
    for r in rows:
        sev, cancelled = lexicon[r["id"]]
        tu, th = reviewed if cancelled else normal
        net = decide(proba[r["id"]], {"urgent": tu, "high": th})
        confusion[r["severity"]][max(sev, net, key=RANK.__getitem__)] += 1
    found = Report(len(rows), confusion, 0).figures()
    return " / ".join(f"{found[k]:.3f}" for k in TARGETS)


def main() -> int:
    """Print the out-of-fold figures per writer group and candidate thresholds."""
    lex = default_lexicon()
    rows = load_training()
    docs = {r["id"]: sorted(features(lex.normalizer.normalize(r["text"])[0])) for r in rows}
    lexicon: dict[str, tuple[str, bool]] = {}
    for r in rows:
        hits, offsets, _norm, cancelled = _analyse(r["text"], lex)
        lexicon[r["id"]] = (_lexicon_triage(r["text"], hits, offsets).severity, cancelled)
    proba = out_of_fold(rows, docs)
    for prefix, who in GROUPS.items():
        group = [r for r in rows if r["id"].startswith(prefix)]
        if not group:
            continue
        print(f"\n{prefix}: {who}, {len(group)} replies")
        print(f"  rules alone                      {figures(group, lexicon, proba, (2, 2), (2, 2))}")
        for normal, reviewed in CANDIDATES:
            mark = "  <- in use" if (normal, reviewed) == CURRENT else ""
            print(f"  net {normal} reviewed {reviewed}  {figures(group, lexicon, proba, normal, reviewed)}{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
