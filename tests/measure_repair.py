"""Where one year's disclosure repair spends its time: the linked table of a publication is
built once and kept (`dump`), then one part of `protect` (a year, the largest first) is
repaired in this process with its solves counted and timed (`part`). Numbers for
docs/open-data.md, not a test; the masks' digest says whether a change to the repair still
masks the same cells.

    python -m tests.measure_repair dump published/current.duckdb /tmp/linked.pickle
    python -m tests.measure_repair part /tmp/linked.pickle 0
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from pipelines import disclosure, opendata
from pipelines.warehouse import connection_config


class Counts:
    """The solves of the repair, by kind: batched (capped, several cells) or of one cell."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def install(self) -> None:
        minimum = disclosure._Program.minimum
        exposed_in = disclosure._exposed_in
        counts = self

        def timed(
            program: disclosure._Program,
            cost: np.ndarray,
            caps: tuple[np.ndarray, np.ndarray] | None = None,
        ) -> np.ndarray | None:
            started = time.perf_counter()
            point = minimum(program, cost, caps)
            kind = "batched" if caps is not None else "one cell"
            counts.seconds[kind] += time.perf_counter() - started
            counts.count[kind] += 1
            counts.count["simplex iterations"] += program.highs.getInfo().simplex_iteration_count
            return point

        def audited(component: disclosure._Component) -> Any:
            found = exposed_in(component)
            counts.count["cells audited"] += len(component.check)
            counts.count["exposed"] += len(found)
            counts.count["exposed alone in an equation"] += len(
                set(component.check) & set(component.alone)
            )
            return found

        disclosure._Program.minimum = timed  # type: ignore[method-assign,assignment]
        disclosure._exposed_in = audited


def dump(publication: Path, target: Path) -> None:
    with duckdb.connect(str(publication), read_only=True, config=connection_config()) as con:
        tables, qpvs = opendata.counted_tables(con)
        hierarchy = opendata.publication_hierarchy(con)
    if hierarchy is None:
        raise SystemExit(f"{publication}: no territoires_communes table, nothing to repair")
    linked = opendata.linked_table(tables, hierarchy, qpvs)
    with target.open("wb") as handle:
        pickle.dump(linked, handle, protocol=5)
    print(f"{len(linked.cells)} cells, {len(linked.relations)} relations -> {target}")


def part(source: Path, rank: int) -> None:
    """Part `rank` (0: the largest) of `protect` with nothing cached, as a worker repairs it."""
    with source.open("rb") as handle:
        linked: disclosure.LinkedTable = pickle.load(handle)  # our own file (`dump`)
    _, jobs, _ = disclosure._plan(linked, None)  # `protect`'s own parts
    job = sorted(jobs, key=lambda j: -len(j.part.cells))[rank]
    years = Counter(c.key[2] for c in job.part.cells if isinstance(c.key, tuple))
    counts = Counts()
    counts.install()
    started = time.perf_counter()
    masked = disclosure._protect_part(job.part, job.check, job.settle)
    seconds = time.perf_counter() - started
    digest = hashlib.sha256(repr(sorted(masked)).encode()).hexdigest()[:16]
    print(
        f"part {rank} (year {years.most_common(1)[0][0]}): {len(job.part.cells)} cells, "
        f"{seconds:.1f} s, {len(masked)} masked (digest {digest})"
    )
    for kind in sorted(counts.count):
        spent = f", {counts.seconds[kind]:.1f} s" if kind in counts.seconds else ""
        print(f"  {kind}: {counts.count[kind]}{spent}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.measure_repair")
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump", help="the publication's linked table, to a file")
    dumping.add_argument("publication", type=Path)
    dumping.add_argument("target", type=Path)
    repairing = commands.add_parser("part", help="repair one part of the dumped table")
    repairing.add_argument("source", type=Path)
    repairing.add_argument("rank", type=int, nargs="?", default=0)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.publication, args.target)
    else:
        part(args.source, args.rank)


if __name__ == "__main__":
    main()
