"""``python -m pipelines.generate --scale tiny --seed 1 --out DIR [--months YYYY-MM:YYYY-MM]``.

A thin entry point for debugging the generator without the project CLI.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from . import SCALES, generate, parse_months


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.generate")
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--months", type=parse_months, default=None)
    args = parser.parse_args(argv)
    t0 = time.time()
    counts = generate(
        args.scale,
        args.seed,
        args.out,
        args.months,
        progress=lambda m: print(f"{time.time() - t0:7.1f}s {m}", file=sys.stderr, flush=True),
    )
    for k, v in counts.items():
        print(f"{k}\t{v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
