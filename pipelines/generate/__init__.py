"""Deterministic generator of realistic partner deliveries (docs/deliveries.md).

Why: the warehouse must be demonstrated and tested on data that look like what landlords,
police, prefectures and the national allocation system (SNE) really send, in their real
dialects and with their real warts, at three sizes: ``tiny`` (tests, seconds), ``small``
(the demo: Bouches-du-Rhône and Alpes-Maritimes, two years) and ``national`` (5.4 M dwellings,
five years, streamed to disk landlord by landlord and month by month).

The same (scale, seed, months) always gives byte-identical files with the same mtimes.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import pathlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from . import writers as w
from .allocations import write_allocations, write_thresholds
from .common import SCALES, month_range, rng_for
from .incidents import Warts, write_landlord
from .landlords import write_reference
from .police import write_events, write_ssmsi
from .territory import Territory, build_territory, epci_composition

FAMILIES = ("reference", "landlord", "police", "allocations")

__all__ = ["FAMILIES", "SCALES", "generate", "parse_months"]


def parse_months(text: str) -> tuple[dt.date, dt.date]:
    """Parse ``YYYY-MM:YYYY-MM`` into (first day of first month, first day of last month)."""
    a, b = text.split(":")
    first = dt.date(int(a[:4]), int(a[5:7]), 1)
    last = dt.date(int(b[:4]), int(b[5:7]), 1)
    if last < first:
        raise ValueError(f"empty month range: {text}")
    return first, last


def _warts(terr: Territory) -> Warts:
    months = terr.months
    if terr.scale.name == "tiny":
        fixed: dict[tuple[int, int], list[str]] = {}
        if len(months) >= 2:
            fixed[(0, 1)] = ["gravite", "cloture_avant"]
            fixed[(1, 1)] = ["doublon"]
        fixed[(1, 0)] = ["hors_mois"]
        return Warts(False, fixed, {(0, len(months) - 1)})
    rng = rng_for(terr.seed, "corrige")
    n_ll = len(terr.landlords)
    corrige = {(int(rng.integers(n_ll)), int(rng.integers(len(months)))) for _ in range(3)}
    return Warts(True, {}, corrige)


def _write_geo_reference(out: pathlib.Path, terr: Territory, when: dt.datetime) -> tuple[int, int]:
    """INSEE EPCI composition for the first year, and the 2024 QPV list."""
    epci = epci_composition(terr.scale, terr.communes)
    p1 = out / "reference" / f"epci_{terr.months[0].year}.csv"
    rows = w.write_table(epci, p1, w.REFERENCE)
    p2 = out / "reference" / "qpv_2024.csv"
    rows += w.write_table(terr.qpv, p2, w.REFERENCE)
    for p in (p1, p2):
        w.set_mtime(p, when)
    return 2, rows


def generate(
    scale: str,
    seed: int,
    out: pathlib.Path,
    months: tuple[dt.date, dt.date] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Writes a complete set of deliveries (all four families) into out/{reference,landlord,police,allocations}/.

    Returns counts per family: ``<family>_files`` and ``<family>_rows``.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose among {', '.join(SCALES)}")
    sc = SCALES[scale]
    first, last = months or sc.default_months
    month_list = month_range(first, last)
    out = pathlib.Path(out)
    for fam in FAMILIES:
        (out / fam).mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    counts = {f"{fam}_{k}": 0 for fam in FAMILIES for k in ("files", "rows")}

    def add(fam: str, files: int, rows: int) -> None:
        counts[f"{fam}_files"] += files
        counts[f"{fam}_rows"] += rows

    say(f"territory ({scale}, seed {seed}, {first:%Y-%m}..{last:%Y-%m})")
    terr = build_territory(sc, seed, month_list)
    ref_time = dt.datetime(first.year, first.month, 1, 7, 0) - dt.timedelta(days=10)
    say(
        f"{terr.communes.height} communes, {terr.qpv['code_qpv'].n_unique()} QPV, "
        f"{terr.residences.height} residences, {int(terr.residences['n_dw'].sum())} dwellings, "
        f"{len(terr.landlords)} landlords"
    )
    add("reference", *_write_geo_reference(out, terr, ref_time))
    add("reference", *write_reference(out, terr.landlords, ref_time))

    warts = _warts(terr)
    parts = terr.residences.partition_by("landlord", as_dict=True, maintain_order=True)
    n_ll = len(terr.landlords)
    workers = min(4, os.cpu_count() or 1) if n_ll > 20 else 1
    pool = None
    futures = []
    if workers > 1:
        # Landlords are independent (each has its own seeded streams): write them in worker
        # processes while this one writes the police and allocation families. "spawn" rather
        # than fork: forking a process whose polars thread pool is running may deadlock.
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        for ll in terr.landlords.items:
            args = (out, seed, ll, parts[(ll.idx,)], month_list, warts, sc.incident_boost)
            futures.append(pool.submit(write_landlord, *args))
    else:
        for ll in terr.landlords.items:
            c = write_landlord(
                out, seed, ll, parts[(ll.idx,)], month_list, warts, sc.incident_boost
            )
            add("landlord", c["files"], c["rows"])
    del parts

    try:
        say("police: SSMSI base")
        c = write_ssmsi(out, seed, terr.communes, terr.residences, month_list, say)
        add("police", c["files"], c["rows"])
        say("police: events")
        c = write_events(out, seed, terr.residences, month_list, sc.incident_boost)
        add("police", c["files"], c["rows"])

        say("allocations")
        c, years = write_allocations(out, seed, terr.residences, month_list, sc.allocation_boost)
        add("allocations", c["files"], c["rows"])
        years |= {m.year for m in month_list}
        add("reference", *write_thresholds(out, seed, terr.residences, years, ref_time))
        if pool is not None:
            for i, fut in enumerate(futures):
                c = fut.result()
                add("landlord", c["files"], c["rows"])
                if (i + 1) % 50 == 0 or i == n_ll - 1:
                    say(f"landlords written: {i + 1}/{n_ll}")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    say(f"done: {counts}")
    return counts
