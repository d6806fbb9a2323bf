"""Rebuild bot/triage/training.jsonl: the devset's training splits (in devset order) + the "aug" rows.

Run: .venv/bin/python scripts/triage_training.py [--add-aug FILE.jsonl ...]

"aug" rows are replies written only for training (never in the devset). Rows already in
training.jsonl as "aug" are kept; --add-aug appends new ones (a text already in the devset or
already in training is skipped). The blind split (model.BLIND_SPLITS) is never copied.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.triage.lexicon import CATEGORY_SEVERITY  # noqa: E402
from bot.triage.metrics import load_devset  # noqa: E402
from bot.triage.model import BLIND_SPLITS, DEVSET_TRAIN_SPLITS, TRAINING_PATH  # noqa: E402

FIELDS = ("id", "text", "language", "severity", "category", "split", "note")


def main() -> int:
    """Write training.jsonl atomically and print how many rows of each split it holds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--add-aug", nargs="*", default=[], type=Path, help="JSON lines of new training-only replies")
    args = parser.parse_args()
    devset = load_devset()
    rows = [r for r in devset if r["split"] in DEVSET_TRAIN_SPLITS and r["split"] not in BLIND_SPLITS]
    taken = {r["text"] for r in devset}
    old = [json.loads(line) for line in TRAINING_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
    aug = [r for r in old if r["split"] == "aug" and r["text"] not in taken]
    taken |= {r["text"] for r in aug}
    for path in args.add_aug:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            r = json.loads(line)
            if CATEGORY_SEVERITY.get(r["category"]) != r["severity"]:
                raise SystemExit(f"{path}:{n}: severity {r['severity']} does not match category {r['category']}")
            if r["text"] in taken:
                continue
            taken.add(r["text"])
            aug.append({**r, "split": "aug", "note": f"training only ({path.stem}): {r.get('note', '')}"})
    tmp = TRAINING_PATH.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in rows + aug:
            fh.write(json.dumps({k: r[k] for k in FIELDS}, ensure_ascii=False) + "\n")
    os.replace(tmp, TRAINING_PATH)
    counts: dict[str, int] = {}
    for r in rows + aug:
        counts[r["split"]] = counts.get(r["split"], 0) + 1
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
