"""What the linked-table protection costs and buys, on a real publication file: the masked
share per open table with the protection within each table only (what was published before)
and across tables, and what the contract's attacker (and a stronger one, which knows the
primary cells) recovers from each. Numbers for docs/open-data.md and the issue's note, not a
test: the tests assert the protection, this reports its price.

    python -m tests.measure_disclosure published/current.duckdb
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb

from pipelines import opendata
from pipelines.disclosure import LinkedTable, intervals, is_exposed


def exposed(linked: LinkedTable, strong: bool) -> int:
    return sum(is_exposed(low, high) for low, high in intervals(linked, strong).values())


def main(publication: Path) -> None:
    with duckdb.connect(str(publication), read_only=True) as con:
        hierarchy = opendata.publication_hierarchy(con)
        within, qpvs = opendata.counted_tables(con)
    if hierarchy is None:
        sys.exit(f"{publication}: no territoires_communes table, nothing to measure")
    before = opendata.linked_table(within, hierarchy, qpvs)
    started = time.perf_counter()
    linked_tables, after = opendata.protect_linked(within, hierarchy, qpvs=qpvs)
    seconds = time.perf_counter() - started
    print(f"protection across tables: {seconds:.1f} s, {len(after.relations)} relations")
    print("| attacker | within each table | across tables |")
    print("|---|---|---|")
    for name, strong in (("contract (masked >= 1)", False), ("knows primary cells", True)):
        print(f"| {name} | {exposed(before, strong)} | {exposed(after, strong)} |")
    shares_before = opendata.masked_share(within)
    shares_after = opendata.masked_share(linked_tables)
    print("\n| table | count cells | masked within each table | masked across tables |")
    print("|---|---|---|---|")
    for name, (k0, n) in shares_before.items():
        k1, _ = shares_after[name]
        print(f"| {name} | {n} | {k0} ({k0 / n:.1%}) | {k1} ({k1 / n:.1%}) |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
