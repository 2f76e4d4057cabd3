"""Deterministic generator of realistic partner deliveries (docs/deliveries.md).

Why: the warehouse must be demonstrated and tested on data that look like what landlords,
police, prefectures and the national allocation system (SNE) really send, in their real
dialects and with their real warts, at three sizes: ``tiny`` (tests, seconds), ``small``
(the demo: Bouches-du-Rhône and Alpes-Maritimes, two years) and ``national`` (5.4 M dwellings,
five years, streamed to disk landlord by landlord and month by month).

The same (scale, seed, months) always gives byte-identical files with the same mtimes.
Reading order for a newcomer: ``territory`` (the shared world), ``landlords`` and
``incidents`` (the landlord family), ``police``, ``allocations``, then ``writers`` (how each
partner's tool writes a file). The command is ``tranquillity generate`` (pipelines/cli.py).
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
from collections.abc import Callable
from concurrent.futures import Future

from pipelines.generate.allocations import write_allocations, write_thresholds
from pipelines.generate.common import SCALES, in_contract_order, month_range, rng_for
from pipelines.generate.incidents import Warts, write_landlord
from pipelines.generate.landlords import write_reference
from pipelines.generate.police import write_events, write_ssmsi
from pipelines.generate.territory import Territory, build_territory, epci_composition
from pipelines.generate.writers import REFERENCE, set_mtime, write_table
from pipelines.processes import spawn_pool
from pipelines.settings import FAMILIES

__all__ = ["FAMILIES", "SCALES", "generate"]

# Above this many landlords, landlord files are written in worker processes.
PARALLEL_FROM_LANDLORDS = 20
MAX_WORKERS = 4


def _warts(territory: Territory) -> Warts:
    """Which landlord-months get bad rows or a corrected re-delivery.

    Tiny gets a fixed set so that tests can assert each case; larger scales draw a few at random.
    Keys are (landlord number, month number).
    """
    months = territory.months
    if territory.scale.name == "tiny":
        fixed: dict[tuple[int, int], list[str]] = {}
        if len(months) >= 2:
            fixed[(0, 1)] = ["gravite", "cloture_avant"]
            fixed[(1, 1)] = ["doublon"]
        fixed[(1, 0)] = ["hors_mois"]
        return Warts(random=False, fixed=fixed, corrected={(0, len(months) - 1)})
    rng = rng_for(territory.seed, "corrige")
    n_landlords = len(territory.landlords)
    corrected = {(int(rng.integers(n_landlords)), int(rng.integers(len(months)))) for _ in range(3)}
    return Warts(random=True, fixed={}, corrected=corrected)


def _write_geo_reference(
    out: pathlib.Path, territory: Territory, when: dt.datetime
) -> tuple[int, int]:
    """INSEE EPCI composition for the first year, and the 2024 QPV list."""
    epci = epci_composition(territory.scale, territory.communes)
    epci_path = out / "reference" / f"epci_{territory.months[0].year}.csv"
    rows = write_table(in_contract_order(epci, "epci"), epci_path, REFERENCE)
    qpv_path = out / "reference" / "qpv_2024.csv"
    rows += write_table(in_contract_order(territory.qpv, "qpv"), qpv_path, REFERENCE)
    for path in (epci_path, qpv_path):
        set_mtime(path, when)
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
    params = SCALES[scale]
    first, last = months or params.default_months
    month_list = month_range(first, last)
    out = pathlib.Path(out)
    for family in FAMILIES:
        (out / family).mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _message: None)
    counts = {f"{family}_{what}": 0 for family in FAMILIES for what in ("files", "rows")}

    def add(family: str, files: int, rows: int) -> None:
        counts[f"{family}_files"] += files
        counts[f"{family}_rows"] += rows

    say(f"territory ({scale}, seed {seed}, {first:%Y-%m}..{last:%Y-%m})")
    territory = build_territory(params, seed, month_list)
    # Reference files arrive before the first month's deliveries.
    reference_time = dt.datetime(first.year, first.month, 1, 7, 0) - dt.timedelta(days=10)
    say(
        f"{territory.communes.height} communes, {territory.qpv['code_qpv'].n_unique()} QPV, "
        f"{territory.residences.height} residences, "
        f"{int(territory.residences['n_dw'].sum())} dwellings, "
        f"{len(territory.landlords)} landlords"
    )
    add("reference", *_write_geo_reference(out, territory, reference_time))
    add("reference", *write_reference(out, territory.landlords, reference_time))

    warts = _warts(territory)
    residences_by_landlord = territory.residences.partition_by(
        "landlord", as_dict=True, maintain_order=True
    )
    n_landlords = len(territory.landlords)
    workers = min(MAX_WORKERS, os.cpu_count() or 1) if n_landlords > PARALLEL_FROM_LANDLORDS else 1
    pool = None
    futures: list[Future[dict[str, int]]] = []
    jobs = [
        (
            out,
            seed,
            landlord,
            residences_by_landlord[(landlord.number,)],
            month_list,
            warts,
            params.incident_boost,
        )
        for landlord in territory.landlords.items
    ]
    if workers > 1:
        # Landlords are independent (each has its own seeded streams): write them in worker
        # processes while this one writes the police and allocation families. "spawn" rather
        # than fork: forking a process whose polars thread pool is running may deadlock.
        pool = spawn_pool(workers)
        futures = [pool.submit(write_landlord, *job) for job in jobs]
    else:
        for job in jobs:
            written = write_landlord(*job)
            add("landlord", written["files"], written["rows"])
    del jobs
    del residences_by_landlord

    try:
        say("police: SSMSI base")
        written = write_ssmsi(out, seed, territory.communes, territory.residences, month_list, say)
        add("police", written["files"], written["rows"])
        say("police: events")
        written = write_events(out, seed, territory.residences, month_list, params.incident_boost)
        add("police", written["files"], written["rows"])

        say("allocations")
        written, years = write_allocations(
            out, seed, territory.residences, month_list, params.allocation_boost
        )
        add("allocations", written["files"], written["rows"])
        years |= {month.year for month in month_list}
        add(
            "reference",
            *write_thresholds(out, seed, territory.residences, years, reference_time),
        )
        if pool is not None:
            for done, future in enumerate(futures, start=1):
                written = future.result()
                add("landlord", written["files"], written["rows"])
                if done % 50 == 0 or done == n_landlords:
                    say(f"landlords written: {done}/{n_landlords}")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    say(f"done: {counts}")
    return counts
