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
        "tiny",
        (dt.date(2025, 1, 1), dt.date(2025, 3, 1)),
        None,
        # Nice, Saint-Laurent-du-Var, Cagnes-sur-Mer (Métropole Nice Côte d'Azur),
        # Antibes, Vallauris (CA Sophia Antipolis), and two villages without social housing
        # (Saint-Étienne-de-Tinée, Conségudes) whose SSMSI rows are masked.
        ("06088", "06123", "06027", "06004", "06155", "06120", "06047"),
        2,
        600,  # a few hundred dwellings: tests stay fast
        False,
        1,
        12.0,
        12.0,
    ),
    "small": Scale(
        "small",
        (dt.date(2024, 1, 1), dt.date(2025, 12, 1)),
        ("06", "13"),
        None,
        10,
        None,
        True,
    ),
    "national": Scale(
        "national",
        (dt.date(2021, 1, 1), dt.date(2025, 12, 1)),
        None,
        None,
        500,
        5_400_000,
        True,
    ),
}

# National social stock / national dwellings in the census (5.4 M / 37.6 M), used to size the
# stock of sub-national scales consistently with the national one.
NATIONAL_SOCIAL = 5_400_000


def key(*parts: object) -> int:
    """Stable 32-bit integer for a string/int key part (crc32 is stable across runs)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode("utf-8"))


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """Independent generator for (seed, purpose, ...): order-independent determinism."""
    return np.random.default_rng([seed, key(*parts)])


def month_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of every month from ``first`` to ``last`` inclusive."""
    out = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(dt.date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def next_month(d: dt.date) -> dt.date:
    return dt.date(d.year + 1, 1, 1) if d.month == 12 else dt.date(d.year, d.month + 1, 1)


def days_in_month(d: dt.date) -> int:
    return (next_month(d) - d).days


def delivery_time(period_end: dt.date, days_after: int, minutes: int = 0) -> dt.datetime:
    """Deterministic delivery timestamp a few days after the end of a delivery's period."""
    return dt.datetime(period_end.year, period_end.month, period_end.day, 8, 0) + dt.timedelta(
        days=days_after, minutes=minutes
    )


def epoch_days(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def as_list(arr: object) -> list:
    """numpy (object) array -> Python list, so polars builds String columns with nulls."""
    return arr.tolist() if hasattr(arr, "tolist") else list(arr)  # type: ignore[union-attr]
