"""``python -m bot.triage --check [local.toml ...]``: validate lexicon files; otherwise triage stdin JSON lines."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .check import self_check
from .classifier import classify_lines
from .lexicon import LexiconError, extra_paths_from_env, load_lexicon


def main(argv: list[str] | None = None) -> int:
    """Entry point: check lexicon files (--check) or classify JSON lines from stdin."""
    parser = argparse.ArgumentParser(prog="python -m bot.triage", description=__doc__)
    parser.add_argument("--check", action="store_true", help="self-check the lexicon plus FILES")
    parser.add_argument("files", nargs="*", type=Path, help="extra lexicon files")
    args = parser.parse_args(argv)
    if args.check:
        try:
            lexicon = load_lexicon([*extra_paths_from_env(), *args.files])
        except LexiconError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        problems = self_check(lexicon)
        for problem in problems:
            print(problem)
        print(f"{len(lexicon.entries)} entries from {', '.join(lexicon.sources)}: "
              f"{'OK' if not problems else f'{len(problems)} problem(s)'}")
        return 1 if problems else 0
    for line in classify_lines(sys.stdin):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
