"""Triage bench: per-severity recall/precision, confusion table, targets and speed.

Run: .venv/bin/python bench/triage_eval.py [--n 100000] [--mistakes]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.triage import classify, default_lexicon  # noqa: E402
from bot.triage.metrics import SEVERITIES, TARGETS, Report, evaluate, load_devset  # noqa: E402
from bot.triage.model import ENV_NET, default_net, net_enabled  # noqa: E402


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


def bench_speed(texts: list[str], n: int, rounds: int = 5) -> tuple[float, float, float]:
    """Classify ``n`` replies (cycling through ``texts``) on this core, in ``rounds`` equal rounds.

    Returns (best round, median round: replies per CPU second; whole run: replies per wall-clock
    second). The target is judged on the best round's CPU time, as timeit does: this is a shared
    2-vCPU virtual machine, and a round that other processes (or the host) disturbed says nothing
    about the code; the median is printed beside it.
    """
    default_net(default_lexicon().normalizer)  # compile and train once, outside the timing
    for text in texts:  # and learn every character once (normaliser and pinyin tables)
        classify(text)
    per_round = max(1, n // rounds)
    rates: list[float] = []
    start = time.perf_counter()
    position = 0
    for _ in range(rounds):
        cpu = time.process_time()
        for _ in range(per_round):
            classify(texts[position])
            position = (position + 1) % len(texts)
        rates.append(per_round / (time.process_time() - cpu))
    rates.sort()
    return rates[-1], rates[len(rates) // 2], per_round * rounds / (time.perf_counter() - start)


# Splits of tests/bot/triage_devset.jsonl. Only tune and heldout gate the exit status; every later
# batch was written blind, measured ONCE, then studied and trained on (BLIND_HISTORY keeps what it
# showed then); BLIND_SPLITS_NOTES names the batches that are still blind.
SPLIT_NOTES = {
    "heldout": "written before the rules (batches 1-3); batch 3 misses were later fixed, so no longer blind",
}
STUDIED_SPLITS = ("heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7")
BLIND_SPLITS_NOTES = {
    "heldout8": "blind batch 10: 320 replies by three more independent authors (guardians, parents, "
                "children) who never saw the rules, the training rows or earlier batches; never tuned on, "
                "never trained on, measured once at the end",
    "heldout9": "blind batch 11, a replication: 320 replies by three more independent authors "
                "(households, parents and relayers, children), measured once with the final model",
}
# split -> (replies, who wrote it, figures measured once while blind: lexicon alone, with the net)
# figures: urgent recall / high caught as high-or-urgent / normal->urgent / normal->high-or-urgent
BLIND_HISTORY: dict[str, tuple[int, str, str, str]] = {
    "heldout2": (222, "us, before the concept rules", "1.000 / 0.980 / 0.012 / 0.071", "(no net yet)"),
    "heldout3": (150, "us, after the rules were frozen", "0.548 / 0.588 / 0.019 / 0.093", "(no net yet)"),
    "heldout4": (227, "us", "0.768 / 0.823 / 0.012 / 0.193", "0.927 / 0.903 / 0.060 / 0.229"),
    "heldout5": (235, "us", "0.841 / 0.853 / 0.035 / 0.141", "0.939 / 0.912 / 0.035 / 0.141"),
    "heldout6": (330, "3 independent authors (grandparents, parents, children), never saw the rules",
                 "0.750 / 0.780 / 0.026 / 0.096", "0.888 / 0.860 / 0.026 / 0.096"),
    "heldout7": (320, "3 more independent authors (relayers, parents, children), never saw the rules",
                 "0.712 / 0.724 / 0.009 / 0.090", "0.964 / 0.980 / 0.027 / 0.117"),
}


def main() -> int:
    """Run the bench and print everything; exit status 1 if a tune/heldout target or speed fails."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="classifications for the speed test")
    parser.add_argument("--mistakes", action="store_true", help="list misclassified replies")
    args = parser.parse_args()
    rows = load_devset()
    by_split: dict[str, list[dict]] = {}
    for r in rows:
        by_split.setdefault(r["split"], []).append(r)
    ok = True
    for split in ("heldout", "tune"):
        ok = print_report(split, evaluate(by_split.get(split, [])), args.mistakes) and ok
        if split == "heldout":
            print(f"  ({SPLIT_NOTES['heldout']})")
    print("\n=== batches written blind, measured once, then studied and trained on ===")
    print(f"{'split':<10}{'n':>5}  {'blind: rules alone':<32}{'blind: with the net':<32}now (in-sample, net on)")
    for split in STUDIED_SPLITS:
        n, _who, alone, with_net = BLIND_HISTORY[split]
        now = evaluate(by_split.get(split, [])).figures()
        print(f"{split:<10}{n:>5}  {alone:<32}{with_net:<32}" + " / ".join(f"{now[k]:.3f}" for k in TARGETS))
    print("  (urgent recall / high caught / normal->urgent / normal->high-or-urgent; authors: "
          + "; ".join(f"{s} {BLIND_HISTORY[s][1]}" for s in STUDIED_SPLITS[-2:]) + ")")
    blind_splits = [s for s in BLIND_SPLITS_NOTES if by_split.get(s)]
    for split in blind_splits:
        print(f"\n({split}: {BLIND_SPLITS_NOTES[split]})")
        print_report(split, evaluate(by_split[split]), args.mistakes)
    if len(blind_splits) > 1:
        both = [r for s in blind_splits for r in by_split[s]]
        print_report(" + ".join(blind_splits), evaluate(both), False)
    # the learned safety net (bot/triage/model.py) beside the lexicon: figures without and with it
    print(f"\n=== learned safety net: default {'ON' if net_enabled() else 'OFF'} (${ENV_NET}) ===")
    print(f"{'split':<10}{'net':<5}" + "".join(f"{TARGETS[k][0][:14]:>16}" for k in TARGETS))
    saved = os.environ.get(ENV_NET)
    try:
        for split in blind_splits:
            for flag in ("0", "1"):
                os.environ[ENV_NET] = flag
                figures = evaluate(by_split.get(split, [])).figures()
                print(f"{split:<10}{'on' if flag == '1' else 'off':<5}"
                      + "".join(f"{figures[k]:>16.3f}" for k in TARGETS))
        os.environ[ENV_NET] = "0"
        off_speed, _, _ = bench_speed([r["text"] for r in rows], min(args.n, 20_000))
        print(f"  speed with the net off: {off_speed:,.0f} replies per CPU-second")
    finally:
        if saved is None:
            os.environ.pop(ENV_NET, None)
        else:
            os.environ[ENV_NET] = saved
    speed, median, wall = bench_speed([r["text"] for r in rows], args.n)
    print(f"\nspeed (default: net {'ON' if net_enabled() else 'OFF'}): {speed:,.0f} replies per CPU-second on one core, "
          f"best of 5 rounds (median {median:,.0f}; {wall:,.0f}/s wall clock) over {args.n:,} classifications "
          f"(target >= 5,000): {'PASS' if speed >= 5000 else 'FAIL'}")
    return 0 if ok and speed >= 5000 else 1


if __name__ == "__main__":
    sys.exit(main())
