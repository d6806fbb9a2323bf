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


def bench_speed(texts: list[str], n: int) -> tuple[float, float]:
    """Classify ``n`` replies (cycling through ``texts``) on this core.

    Returns (replies per CPU second, replies per wall-clock second). The target is judged on
    CPU time: on a shared machine wall-clock time also counts other processes' turns.
    """
    default_net(default_lexicon().normalizer)  # compile and train once, outside the timing
    start, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < n:
        for text in texts:
            classify(text)
            done += 1
            if done >= n:
                break
    return done / (time.process_time() - cpu), done / (time.perf_counter() - start)


# Splits of tests/bot/triage_devset.jsonl, in the order printed. Only tune and heldout gate the
# exit status: heldout2..heldout5 are reported as measured (see their notes; heldout5 is the blind one).
SPLIT_NOTES = {
    "heldout": "written before the rules (batches 1-3); batch 3 misses were later fixed, so no longer blind",
    "heldout2": "blind batch 4: written BEFORE the concept rules and never evaluated while writing them, "
                "but its texts were read while designing those rules (72 are lexicon examples): optimistic",
    "heldout3": "batch 5: written after the concept rules; blind until its misses were studied for the "
                "concept-family rules and it became training data of the net: NO LONGER BLIND",
    "heldout4": "batch 6 (227 replies): blind when measured once (lexicon 0.768 / 0.823 / 0.012 / 0.193, "
                "+ net 0.927 / 0.903 / 0.060 / 0.229); since studied for the negation scope and miss "
                "families and trained on: NO LONGER BLIND",
    "heldout5": "blind batch 7 (235 replies): written before heldout4 was studied and before the negation "
                "scope work, never tuned on, never trained on, measured once at the end: THE honest estimate",
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
            blind = [r for r in by_split.get("heldout", []) if "blind batch 3" in r.get("note", "")]
            if blind:
                print_report("heldout / blind batch 3", evaluate(blind), False)
    for split in ("heldout2", "heldout3", "heldout4", "heldout5"):
        if by_split.get(split):
            print(f"\n({split}: {SPLIT_NOTES[split]})")
            print_report(split, evaluate(by_split[split]), args.mistakes)
    # the learned safety net (bot/triage/model.py) beside the lexicon: figures without and with it
    print(f"\n=== learned safety net: default {'ON' if net_enabled() else 'OFF'} (${ENV_NET}) ===")
    print(f"{'split':<10}{'net':<5}" + "".join(f"{TARGETS[k][0][:14]:>16}" for k in TARGETS))
    saved = os.environ.get(ENV_NET)
    try:
        for split in ("heldout2", "heldout3", "heldout4", "heldout5"):
            for flag in ("0", "1"):
                os.environ[ENV_NET] = flag
                figures = evaluate(by_split.get(split, [])).figures()
                print(f"{split:<10}{'on' if flag == '1' else 'off':<5}"
                      + "".join(f"{figures[k]:>16.3f}" for k in TARGETS))
        print("  (heldout2, heldout3 and heldout4 rows are TRAINING rows of the net: in-sample. "
              "heldout5 is blind.)")
        os.environ[ENV_NET] = "0"
        off_speed, _ = bench_speed([r["text"] for r in rows], min(args.n, 20_000))
        print(f"  speed with the net off: {off_speed:,.0f} replies per CPU-second")
    finally:
        if saved is None:
            os.environ.pop(ENV_NET, None)
        else:
            os.environ[ENV_NET] = saved
    speed, wall = bench_speed([r["text"] for r in rows], args.n)
    print(f"\nspeed (default: net {'ON' if net_enabled() else 'OFF'}): {speed:,.0f} replies per CPU-second on one core ({wall:,.0f}/s wall clock) over "
          f"{args.n:,} classifications (target >= 5,000): {'PASS' if speed >= 5000 else 'FAIL'}")
    return 0 if ok and speed >= 5000 else 1


if __name__ == "__main__":
    sys.exit(main())
