"""The open data of a publication written from scratch (no protection cache), timed with the
peak RSS of its whole process tree (the repair's workers included), then compared table by
table with another open folder: what a change to the protection costs or saves, and that it
masks the same cells. Numbers for docs/open-data.md and the issue's note, not a test.

    python -m tests.measure_open_data published/current.duckdb /tmp/open \
        [published/open/<publication id>]
"""

from __future__ import annotations

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
    if argv[:1] == ["--write"]:  # the measured child
        write_open_data(Path(argv[1]), Path(argv[2]))
        return 0
    publication, target = Path(argv[0]), Path(argv[1])
    result = measure(
        "open data from scratch",
        [sys.executable, "-m", "tests.measure_open_data", "--write", str(publication), str(target)],
        dict(os.environ),
    )
    if result["exit_code"]:
        return int(str(result["exit_code"]))
    return 1 if len(argv) > 2 and compare(target, Path(argv[2])) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
