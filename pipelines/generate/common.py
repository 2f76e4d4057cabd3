"""Scale parameters, seeded random streams and small calendar helpers shared by the generator.

Why streams: the national scale is written landlord by landlord and month by month; giving each
(landlord, purpose, period) its own generator derived from the seed makes every file depend only
on the seed and its own key, so output is byte-identical whatever the processing order.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.ingest.specs import ALL_KINDS


@dataclass(frozen=True)
class Scale:
    """What a scale generates."""

    name: str
    default_months: tuple[dt.date, dt.date]
    departements: tuple[str, ...] | None  # None = every commune with an EPCI
    communes: tuple[str, ...] | None  # explicit commune list (tiny)
    n_landlords: int
    social_total: int | None  # target social stock of the scale, None = national ratio
    warts: bool  # random warts (small/national); tiny gets a fixed, predictable set
    max_qpv_per_commune: int = 99
    incident_boost: float = 1.0  # tiny: more incidents per dwelling so tests see tens a month
    allocation_boost: float = 1.0  # tiny: enough allocations for the social-mix indicators


SCALES: dict[str, Scale] = {
    "tiny": Scale(
        name="tiny",
        default_months=(dt.date(2025, 1, 1), dt.date(2025, 3, 1)),
        departements=None,
        # Nice, Saint-Laurent-du-Var, Cagnes-sur-Mer (Métropole Nice Côte d'Azur),
        # Antibes, Vallauris (CA Sophia Antipolis), and two villages without social housing
        # (Saint-Étienne-de-Tinée, Conségudes) whose SSMSI rows are masked.
        communes=("06088", "06123", "06027", "06004", "06155", "06120", "06047"),
        n_landlords=2,
        social_total=600,  # a few hundred dwellings: tests stay fast
        warts=False,
        max_qpv_per_commune=1,
        incident_boost=12.0,
        allocation_boost=12.0,
    ),
    "small": Scale(
        name="small",
        default_months=(dt.date(2024, 1, 1), dt.date(2025, 12, 1)),
        departements=("06", "13"),
        communes=None,
        n_landlords=10,
        social_total=None,
        warts=True,
    ),
    "national": Scale(
        name="national",
        default_months=(dt.date(2021, 1, 1), dt.date(2025, 12, 1)),
        departements=None,
        communes=None,
        n_landlords=500,
        social_total=5_400_000,
        warts=True,
    ),
}

# National social stock / national dwellings in the census (5.4 M / 37.6 M), used to size the
# stock of sub-national scales consistently with the national one.
NATIONAL_SOCIAL = 5_400_000

# The law against drug trafficking (13 June 2025): prefects may order a lease terminated and
# ban dealers from appearing near an estate. Both police events and landlord procedures change
# after it, so both families read the date from here.
DRUG_TRAFFICKING_LAW = dt.date(2025, 6, 13)


def key(*parts: object) -> int:
    """Stable 32-bit integer for a string/int key part (crc32 is stable across runs)."""
    return zlib.crc32("|".join(str(part) for part in parts).encode("utf-8"))


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """Independent generator for (seed, purpose, ...): order-independent determinism."""
    return np.random.default_rng([seed, key(*parts)])


def month_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of every month from ``first`` to ``last`` inclusive."""
    months = []
    month = dt.date(first.year, first.month, 1)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def next_month(day: dt.date) -> dt.date:
    """First day of the month after ``day``'s."""
    return dt.date(day.year + 1, 1, 1) if day.month == 12 else dt.date(day.year, day.month + 1, 1)


def month_end(month: dt.date) -> dt.date:
    """Last day of ``month``: deliveries are dated from the end of the period they cover."""
    return next_month(month) - dt.timedelta(days=1)


def days_in_month(month: dt.date) -> int:
    return (next_month(month) - month).days


def delivery_time(period_end: dt.date, days_after: int, minutes: int = 0) -> dt.datetime:
    """Deterministic delivery timestamp a few days after the end of a delivery's period.

    The ingestion orders deliveries by modification time: fixed times keep runs reproducible,
    and ``minutes`` (a landlord's number) keeps same-day deliveries in a stable order.
    """
    return dt.datetime(period_end.year, period_end.month, period_end.day, 8, 0) + dt.timedelta(
        days=days_after, minutes=minutes
    )


def as_list(values: np.ndarray) -> list[object]:
    """numpy (object) array -> Python list, so polars builds String columns with nulls."""
    return values.tolist()


# A None that numpy's type stubs accept in np.where (same object-dtype result as a bare None).
_NULL = np.array(None, dtype=object)


def values_or_null(given: np.ndarray, values: np.ndarray) -> list[object]:
    """``values`` where ``given`` holds, None elsewhere: an optional column, nulls in polars."""
    return as_list(np.where(given, values, _NULL))


def contract_columns(kind_name: str) -> list[str]:
    """The columns of a delivery kind, in the contract's order (pipelines.ingest.specs).

    Every generated frame is selected through this, so the files carry exactly the columns the
    ingestion expects and the contract stays their one home.
    """
    for kind in ALL_KINDS:
        if kind.name == kind_name:
            return [column.name for column in kind.columns]
    raise KeyError(f"no delivery kind {kind_name!r} in pipelines.ingest.specs")


def in_contract_order(frame: pl.DataFrame, kind_name: str) -> pl.DataFrame:
    """``frame`` with exactly the columns of ``kind_name``, in the contract's order."""
    return frame.select(contract_columns(kind_name))
