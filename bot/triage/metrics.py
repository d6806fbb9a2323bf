"""Evaluation of the classifier on a labelled development set (used by the bench and the tests)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .classifier import classify

SEVERITIES = ("urgent", "high", "normal")
DEVSET_PATH = Path(__file__).resolve().parents[2] / "tests" / "bot" / "triage_devset.jsonl"

# name -> (description, comparison, threshold)
TARGETS: dict[str, tuple[str, str, float]] = {
    "urgent_recall": ("urgent recall", ">=", 0.97),
    "high_caught": ("high caught as high-or-urgent", ">=", 0.90),
    "normal_as_urgent": ("normal marked urgent", "<=", 0.05),
    "normal_as_high_or_urgent": ("normal marked high-or-urgent", "<=", 0.15),
}


def load_devset(path: Path = DEVSET_PATH) -> list[dict]:
    """Read the labelled development set (one JSON object per line)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@dataclass
class Report:
    """Confusion table and derived figures for one split."""

    n: int
    confusion: dict[str, dict[str, int]]
    category_correct: int
    mistakes: list[tuple[dict, str, str]] = field(default_factory=list)

    def recall(self, severity: str) -> float:
        """Share of items labelled ``severity`` that were predicted as ``severity``."""
        row = self.confusion[severity]
        total = sum(row.values())
        return row[severity] / total if total else 1.0

    def precision(self, severity: str) -> float:
        """Share of items predicted ``severity`` that are labelled ``severity``."""
        total = sum(self.confusion[t][severity] for t in SEVERITIES)
        return self.confusion[severity][severity] / total if total else 1.0

    def _share(self, true: str, predicted: Iterable[str]) -> float:
        row = self.confusion[true]
        total = sum(row.values())
        return sum(row[p] for p in predicted) / total if total else 0.0

    def figures(self) -> dict[str, float]:
        """The four target figures by name (see TARGETS)."""
        return {
            "urgent_recall": self._share("urgent", ["urgent"]),
            "high_caught": self._share("high", ["high", "urgent"]),
            "normal_as_urgent": self._share("normal", ["urgent"]),
            "normal_as_high_or_urgent": self._share("normal", ["high", "urgent"]),
        }

    def passed(self) -> dict[str, bool]:
        """Whether each target figure meets its threshold."""
        out = {}
        for name, value in self.figures().items():
            _, op, limit = TARGETS[name]
            out[name] = value >= limit if op == ">=" else value <= limit
        return out


def evaluate(rows: Sequence[dict]) -> Report:
    """Classify every row and tabulate predicted against labelled severity."""
    confusion = {t: {p: 0 for p in SEVERITIES} for t in SEVERITIES}
    correct = 0
    mistakes = []
    for row in rows:
        result = classify(row["text"], row.get("language", "zh_Hans"))
        confusion[row["severity"]][result.severity] += 1
        correct += result.category == row["category"]
        if result.severity != row["severity"] or result.category != row["category"]:
            mistakes.append((row, result.severity, result.category))
    return Report(len(rows), confusion, correct, mistakes)
