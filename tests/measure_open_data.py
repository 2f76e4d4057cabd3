"""The open data of a publication, timed with the peak RSS of its whole process tree (the
repair's workers included), then compared table by table with another open folder: what a
change to the protection costs or saves, and that it masks the same cells. From scratch, or
with `--cache FILE` the protection cache a refresh keeps (written, then read by the next
call: the previous publication first, then the current one, measures a new month). Numbers
for docs/open-data.md and the issue's note, not a test.

    python -m tests.measure_open_data published/current.duckdb /tmp/open \
        [--reference published/open/<publication id>] [--cache /tmp/cache.json]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import polars as pl

from pipelines.opendata import write_open_data
from tests.bench import measure


def compare(written: Path, reference: Path) -> int:
    """How many of the reference's Parquet tables differ from (or are missing in) `written`."""
    differ = 0
    for path in sorted(reference.glob("*.parquet")):
        other = written / path.name
        if not other.exists() or not pl.read_parquet(path).equals(pl.read_parquet(other)):
            print(f"differs: {path.name}")
            differ += 1
    print(f"{len(list(reference.glob('*.parquet')))} tables compared, {differ} differ")
    return differ


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.measure_open_data")
    parser.add_argument("publication", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--reference", type=Path, help="an open folder to compare with")
    parser.add_argument("--cache", type=Path, help="the protection cache (read, then written)")
    parser.add_argument("--write", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args(argv)
    if args.write:
        write_open_data(args.publication, args.target, cache=args.cache)
        return 0
    command = [sys.executable, "-m", "tests.measure_open_data", "--write"]
    command += [str(args.publication), str(args.target)]
    command += ["--cache", str(args.cache)] if args.cache else []
    name = "open data " + ("with the cache" if args.cache else "from scratch")
    result = measure(name, command, dict(os.environ))
    if result["exit_code"]:
        return int(str(result["exit_code"]))
    return 1 if args.reference and compare(args.target, args.reference) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
