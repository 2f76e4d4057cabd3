"""The read floor of `make bench`: every delivery of an inbox read once, and nothing else.

What no ingestion can go below on this machine: each file opened, decompressed, decoded
and split into rows and columns by polars' multi-threaded reader (XLSX by fastexcel), with
no validation, typing, hashing nor writing. The pipeline's ingestion and its full refresh
are compared with it (ratios in the bench's summary), in the same run.

    python -m tests.bench_floor INBOX
"""

from __future__ import annotations

import gzip
import sys
import time
from pathlib import Path

import polars as pl


def read_once(path: Path) -> int:
    """Rows of one delivery, read as text the quickest way polars knows."""
    if path.suffix == ".xlsx":
        return pl.read_excel(path, infer_schema_length=0).height
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    header = data[: data.find(b"\n")]
    separator = ";" if header.count(b";") >= header.count(b",") else ","
    frame = pl.read_csv(
        data,
        separator=separator,
        infer_schema=False,
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
    )
    return frame.height


def main(inbox: Path) -> int:
    files = sorted(p for p in inbox.rglob("*") if p.is_file())
    started = time.perf_counter()
    rows = sum(read_once(path) for path in files)
    seconds = time.perf_counter() - started
    print(f"read floor: {len(files)} files, {rows} rows in {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
