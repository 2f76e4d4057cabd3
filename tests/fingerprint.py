"""Fingerprints of every table of a DuckDB file, to prove a refactoring changed no figure.

`python -m tests.fingerprint published/current.duckdb` prints one line per table: a hash of
its column names and types and of its rows (in any order), and the row count. Run it on the
publication of the same inbox before and after a change and `diff` the outputs: only
`publication` (its id and time) may differ.

Doubles are compared at 10 significant digits: DuckDB sums DOUBLE columns (the census
dwellings of the SSMSI tables) in an order that varies between runs, so the last bits of a sum
are not reproducible even with the same code and data.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import duckdb


def _stable(value: object) -> object:
    return float(f"{value:.10g}") if isinstance(value, float) else value


def fingerprints(path: Path) -> dict[str, tuple[str, int]]:
    """`schema.table -> (hash, rows)` for every table of the file."""
    found = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            columns = con.execute(f'DESCRIBE "{schema}"."{table}"').fetchall()
            rows = con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
            stable = sorted(repr(tuple(_stable(v) for v in row)) for row in rows)
            layout = repr([(c[0], c[1]) for c in columns])
            digest = hashlib.sha256((layout + repr(stable)).encode()).hexdigest()[:16]
            found[f"{schema}.{table}"] = (digest, len(rows))
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.fingerprint FILE.duckdb", file=sys.stderr)
        return 2
    for table, (digest, rows) in fingerprints(Path(argv[0])).items():
        print(f"{table:60s} {digest} rows={rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
