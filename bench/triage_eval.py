"""Triage bench: per-severity recall/precision, confusion table, targets and speed.

Run: .venv/bin/python bench/triage_eval.py [--n 100000] [--mistakes]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.triage import classify, default_lexicon  # noqa: E402
from bot.triage.metrics import SEVERITIES, TARGETS, Report, evaluate, load_devset  # noqa: E402


def print_report(name: str, report: Report, show_mistakes: bool) -> bool:
    """Print one split's figures; return True when every target passes."""
    print(f"\n=== {name} split: {report.n} replies ===")
    print(f"{'severity':<10}{'recall':>8}{'precision':>11}")
    for sev in SEVERITIES:
        print(f"{sev:<10}{report.recall(sev):>8.3f}{report.precision(sev):>11.3f}")
    print("\nconfusion (rows = labelled, columns = predicted)")
    print(f"{'':<10}" + "".join(f"{p:>8}" for p in SEVERITIES))
    for t in SEVERITIES:
        print(f"{t:<10}" + "".join(f"{report.confusion[t][p]:>8}" for p in SEVERITIES))
    print(f"\ncategory accuracy: {report.category_correct / report.n:.3f}")
    print("\ntargets")
    passed = report.passed()
    for key, value in report.figures().items():
        label, op, limit = TARGETS[key]
        print(f"  {label:<32}{value:>7.3f}  (target {op} {limit:.2f})  {'PASS' if passed[key] else 'FAIL'}")
    if show_mistakes and report.mistakes:
        print("\nmistakes (labelled -> predicted)")
        for row, sev, cat in report.mistakes:
            print(f"  {row['id']}: {row['severity']}/{row['category']} -> {sev}/{cat}  {row['text']}")
    return all(passed.values())


def bench_speed(texts: list[str], n: int) -> float:
    """Classify ``n`` replies (cycling through ``texts``) on this core; return replies per second."""
    default_lexicon()  # compile once, outside the timing
    start = time.perf_counter()
    done = 0
    while done < n:
        for text in texts:
            classify(text)
            done += 1
            if done >= n:
                break
    return done / (time.perf_counter() - start)


def main() -> int:
    """Run the bench and print everything; exit status 1 if a held-out target fails."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="classifications for the speed test")
    parser.add_argument("--mistakes", action="store_true", help="list misclassified replies")
    args = parser.parse_args()
    rows = load_devset()
    heldout = [r for r in rows if r["split"] == "heldout"]
    tune = [r for r in rows if r["split"] == "tune"]
    ok = print_report("held-out", evaluate(heldout), args.mistakes)
    blind = [r for r in heldout if "blind batch 3" in r.get("note", "")]
    if blind:
        print("\n(held-out subset written AFTER the rules existed and never tuned on: the most honest estimate)")
        print_report("held-out blind batch 3", evaluate(blind), False)
    print_report("tune", evaluate(tune), args.mistakes)
    speed = bench_speed([r["text"] for r in rows], args.n)
    print(f"\nspeed: {speed:,.0f} replies/second on one core over {args.n:,} classifications "
          f"(target >= 5,000): {'PASS' if speed >= 5000 else 'FAIL'}")
    return 0 if ok and speed >= 5000 else 1


if __name__ == "__main__":
    sys.exit(main())
