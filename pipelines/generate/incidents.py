"""Landlord deliveries: stock per year, incidents and procedures per month (streamed).

Why this shape: incidents depend on a residence's size, QPV, dealing point and on the season;
they are drawn month by month from residence-level rates, so the national scale is written one
landlord-month file at a time with nothing else in memory than the landlord's residences.
Warts (bad rows, a corrected re-delivery) are injected here, at a low and seeded rate, because
the ingestion must prove it quarantines and replaces exactly these cases.

Files are written the way the landlord's tool exports them (see writers.py): free-text comments
carry separators, double quotes, typographic characters and, in a few rows, a line break
(Alt+Enter in a spreadsheet, Enter in an information system's text box); information-system
exports carry a time of day on their dates; French spreadsheets group the thousands of amounts.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.generate.common import (
    DRUG_TRAFFICKING_LAW,
    as_list,
    days_in_month,
    delivery_time,
    in_contract_order,
    key,
    month_end,
    next_month,
    rng_for,
    values_or_null,
)
from pipelines.generate.landlords import Landlord, active_mask, dwellings, write_stock
from pipelines.generate.names import COMMENT_SECOND_LINES, COMMENTS
from pipelines.generate.writers import Dialect, set_mtime, spreadsheet_amounts, write_table
from pipelines.ingest.specs import CATEGORIES, LIEUX

FLAT_SEASON = (1.0,) * 12


@dataclass(frozen=True)
class CategoryProfile:
    """How often, where, how seriously and at what cost incidents of one category happen."""

    yearly_per_1000: float  # incidents a year per 1,000 dwellings outside QPV
    qpv_factor: float  # multiplier in a QPV residence
    dealing_factor: float  # multiplier in a residence with a dealing point
    places: dict[str, float]  # probability of each `lieu`
    gravity: tuple[float, float, float, float]  # probability of gravité 1, 2, 3, 4
    complaint: float  # probability that a complaint was filed
    cost_median: float  # typical repair cost in euros (0: none typical, 50 € used)
    costed: float  # probability that a cost is recorded
    tenant_named: bool  # the report may name a tenant (pseudonymised at ingestion)
    season: tuple[float, ...] = FLAT_SEASON  # multiplier per month, January to December


PROFILES: dict[str, CategoryProfile] = {
    "degradation": CategoryProfile(
        yearly_per_1000=22.0,
        qpv_factor=2.5,
        dealing_factor=2.0,
        places={
            "hall": 0.35,
            "cage_escalier": 0.20,
            "parking": 0.12,
            "cave": 0.10,
            "logement": 0.03,
            "abords": 0.10,
            "local_commun": 0.10,
        },
        gravity=(0.50, 0.30, 0.15, 0.05),
        complaint=0.25,
        cost_median=250.0,
        costed=0.8,
        tenant_named=False,
    ),
    "occupation_hall": CategoryProfile(
        yearly_per_1000=5.0,
        qpv_factor=5.0,
        dealing_factor=5.0,
        places={
            "hall": 0.70,
            "cage_escalier": 0.20,
            "parking": 0.03,
            "cave": 0.03,
            "logement": 0.00,
            "abords": 0.04,
            "local_commun": 0.00,
        },
        gravity=(0.45, 0.35, 0.15, 0.05),
        complaint=0.05,
        cost_median=60.0,
        costed=0.2,
        tenant_named=False,
        season=(0.8, 0.8, 0.9, 1.0, 1.1, 1.25, 1.35, 1.3, 1.05, 0.95, 0.85, 0.85),
    ),
    "trouble_voisinage": CategoryProfile(
        yearly_per_1000=14.0,
        qpv_factor=1.5,
        dealing_factor=1.3,
        places={
            "hall": 0.15,
            "cage_escalier": 0.15,
            "parking": 0.05,
            "cave": 0.02,
            "logement": 0.55,
            "abords": 0.05,
            "local_commun": 0.03,
        },
        gravity=(0.55, 0.30, 0.12, 0.03),
        complaint=0.10,
        cost_median=0.0,
        costed=0.05,
        tenant_named=True,
        season=(0.85, 0.85, 0.9, 1.0, 1.1, 1.2, 1.3, 1.25, 1.0, 0.9, 0.85, 0.9),
    ),
    "agression_personnel": CategoryProfile(
        yearly_per_1000=1.0,
        qpv_factor=4.0,
        dealing_factor=3.0,
        places={
            "hall": 0.40,
            "cage_escalier": 0.10,
            "parking": 0.10,
            "cave": 0.05,
            "logement": 0.05,
            "abords": 0.25,
            "local_commun": 0.05,
        },
        gravity=(0.20, 0.35, 0.30, 0.15),
        complaint=0.70,
        cost_median=0.0,
        costed=0.1,
        tenant_named=True,
    ),
    "trafic_stupefiants": CategoryProfile(
        yearly_per_1000=0.8,
        qpv_factor=8.0,
        dealing_factor=10.0,
        places={
            "hall": 0.50,
            "cage_escalier": 0.15,
            "parking": 0.10,
            "cave": 0.10,
            "logement": 0.02,
            "abords": 0.13,
            "local_commun": 0.00,
        },
        gravity=(0.15, 0.30, 0.35, 0.20),
        complaint=0.30,
        cost_median=0.0,
        costed=0.1,
        tenant_named=True,
    ),
    "incendie": CategoryProfile(
        yearly_per_1000=3.0,
        qpv_factor=3.0,
        dealing_factor=2.0,
        places={
            "hall": 0.10,
            "cage_escalier": 0.05,
            "parking": 0.30,
            "cave": 0.15,
            "logement": 0.05,
            "abords": 0.15,
            "local_commun": 0.20,
        },
        gravity=(0.30, 0.30, 0.25, 0.15),
        complaint=0.50,
        cost_median=1200.0,
        costed=0.7,
        tenant_named=False,
        season=(1.8, 0.8, 0.8, 0.9, 0.9, 1.0, 1.6, 1.0, 0.8, 0.9, 0.9, 1.2),
    ),
    "depot_sauvage": CategoryProfile(
        yearly_per_1000=9.0,
        qpv_factor=2.0,
        dealing_factor=1.5,
        places={
            "hall": 0.15,
            "cage_escalier": 0.10,
            "parking": 0.10,
            "cave": 0.15,
            "logement": 0.00,
            "abords": 0.35,
            "local_commun": 0.15,
        },
        gravity=(0.70, 0.22, 0.06, 0.02),
        complaint=0.05,
        cost_median=120.0,
        costed=0.7,
        tenant_named=True,
        season=(0.9, 0.9, 1.0, 1.1, 1.1, 1.0, 1.0, 0.9, 1.1, 1.0, 1.0, 1.0),
    ),
    "autre": CategoryProfile(
        yearly_per_1000=4.0,
        qpv_factor=1.5,
        dealing_factor=1.5,
        places={
            "hall": 0.25,
            "cage_escalier": 0.10,
            "parking": 0.20,
            "cave": 0.10,
            "logement": 0.05,
            "abords": 0.20,
            "local_commun": 0.10,
        },
        gravity=(0.60, 0.25, 0.10, 0.05),
        complaint=0.10,
        cost_median=80.0,
        costed=0.3,
        tenant_named=False,
    ),
}
if set(PROFILES) != set(CATEGORIES) or any(
    set(profile.places) != set(LIEUX) for profile in PROFILES.values()
):
    raise AssertionError("incident profiles must cover the nomenclature and every lieu")

# The profiles as arrays, one row per category in the nomenclature's order: draws are made per
# (residence, category) cell in that order, so it is part of the seeded output.
_IN_ORDER = [PROFILES[category] for category in CATEGORIES]
CATEGORY_NAMES = np.array(CATEGORIES)
LIEU_NAMES = np.array(LIEUX)
YEARLY_PER_1000 = np.array([profile.yearly_per_1000 for profile in _IN_ORDER])
QPV_FACTOR = np.array([profile.qpv_factor for profile in _IN_ORDER])
DEALING_FACTOR = np.array([profile.dealing_factor for profile in _IN_ORDER])
SEASON = np.array([profile.season for profile in _IN_ORDER])  # category x month
PLACE_P = np.array([[profile.places[lieu] for lieu in LIEUX] for profile in _IN_ORDER])
GRAVITY_P = np.array([profile.gravity for profile in _IN_ORDER])
COMPLAINT_P = np.array([profile.complaint for profile in _IN_ORDER])
COST_MEDIAN = np.array([profile.cost_median for profile in _IN_ORDER])
COSTED_P = np.array([profile.costed for profile in _IN_ORDER])
TENANT_NAMED = np.array([profile.tenant_named for profile in _IN_ORDER])

# Fires peak on New Year's Day, 14 July and New Year's Eve (month: day).
FIRE_NIGHTS = {1: 1, 7: 14, 12: 31}


@dataclass
class Warts:
    """Which bad rows and corrected re-deliveries to inject, keyed by (landlord number, month
    number). Wart kinds: ``hors_mois`` (a date outside the file's month), ``gravite`` (out of
    range), ``cloture_avant`` (closed before reported), ``doublon`` (an incident sent twice)."""

    random: bool  # small/national: seeded low-rate warts
    fixed: dict[tuple[int, int], list[str]]  # tiny: the wart kinds of given landlord-months
    corrected: set[tuple[int, int]]  # delivered twice, the second time as `_corrige`


# Probability that a landlord-month gets each wart kind (small and national scales).
RANDOM_WART_P = {"hors_mois": 0.03, "gravite": 0.02, "cloture_avant": 0.02, "doublon": 0.02}


def tenant_ids(res_uid: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Fake, stable tenant id per dwelling (``L`` + 7 digits), never a real identifier."""
    dwelling = res_uid.astype(np.int64) * 1000 + rank.astype(np.int64)
    number = (dwelling * 7919 + 12345) % 10_000_000
    return np.array([f"L{value:07d}" for value in number.tolist()], dtype=object)


def _format_ids(landlord: Landlord, month: dt.date, sequence: np.ndarray) -> list[str]:
    """Incident ids the way the landlord's information system numbers them."""
    if landlord.incident_id_style == "INC":
        return [f"INC{month.year}-{number:06d}" for number in sequence.tolist()]
    if landlord.incident_id_style == "number":
        return [str(100000 + number) for number in sequence.tolist()]
    return [
        f"{landlord.code[:3]}/{month.year % 100:02d}/{number:05d}" for number in sequence.tolist()
    ]


@dataclass
class ActiveResidences:
    """numpy views of a landlord's residences in stock one year (computed once per year)."""

    n_dw: np.ndarray
    in_qpv: np.ndarray
    dealing: np.ndarray
    risk: np.ndarray
    res_uid: np.ndarray
    id_residence: np.ndarray

    @classmethod
    def of(cls, residences: pl.DataFrame, year: int) -> ActiveResidences:
        active = residences.filter(pl.Series(active_mask(residences, year)))
        return cls(
            n_dw=active["n_dw"].to_numpy(),
            in_qpv=(active["code_qpv"] != "").to_numpy(),
            dealing=active["dealing"].to_numpy(),
            risk=active["risk"].to_numpy(),
            res_uid=active["res_uid"].to_numpy(),
            id_residence=np.array(active["id_residence"].to_list(), dtype=object),
        )


def _category_codes(landlord: Landlord) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per common category (nomenclature order), the landlord's codes and their probabilities."""
    assert landlord.codes is not None  # set by build_landlords
    per_category = []
    for category in CATEGORIES:
        codes = landlord.codes.filter(pl.col("categorie") == category)
        weights = codes["weight"].to_numpy()
        per_category.append(
            (np.array(codes["code_source"].to_list(), dtype=object), weights / weights.sum())
        )
    return per_category


def incidents_month(
    seed: int,
    landlord: Landlord,
    residences: ActiveResidences,
    month: dt.date,
    counter: int,
    last_month: dt.date,
    boost: float = 1.0,
    category_codes: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> pl.DataFrame:
    """Incidents reported in one month for one landlord (ids continue the landlord's counter).

    The draws are made in a fixed order from the landlord-month's own stream: any change in
    that order changes every generated file.
    """
    rng = rng_for(seed, "incidents", landlord.code, month.isoformat())
    category_codes = category_codes or _category_codes(landlord)
    sizes = residences.n_dw.astype(float)
    # expected incidents per (residence, category) cell
    expected = (
        (sizes / 1000.0)[:, None]
        * (YEARLY_PER_1000 / 12.0)[None, :]
        * np.where(residences.in_qpv[:, None], QPV_FACTOR[None, :], 1.0)
        * np.where(residences.dealing[:, None], DEALING_FACTOR[None, :], 1.0)
        * residences.risk[:, None]
        * SEASON[:, month.month - 1][None, :]
        * landlord.intensity
        * boost
    )
    counts = rng.poisson(expected)
    # one row per incident: its residence (row) and category (position in the nomenclature)
    residence_row, category_position = np.nonzero(counts)
    repeats = counts[residence_row, category_position]
    residence_row = np.repeat(residence_row, repeats)
    category_position = np.repeat(category_position, repeats)
    n = residence_row.size
    day = rng.integers(1, days_in_month(month) + 1, size=n)
    if month.month in FIRE_NIGHTS:
        fire = CATEGORY_NAMES[category_position] == "incendie"
        day = np.where(fire & (rng.random(n) < 0.3), FIRE_NIGHTS[month.month], day)
    reported = np.datetime64(month.isoformat(), "D") + (day - 1).astype("timedelta64[D]")
    # order by date, then residence, then category: ids follow the reporting order
    order = np.lexsort((category_position, residence_row, day))
    residence_row, category_position = residence_row[order], category_position[order]
    reported = reported[order]
    category = CATEGORY_NAMES[category_position]
    place = np.empty(n, dtype=np.int64)
    gravity = np.empty(n, dtype=np.int64)
    code = np.empty(n, dtype=object)
    for position in range(len(CATEGORIES)):
        of_category = category_position == position
        count = int(of_category.sum())
        if not count:
            continue
        place[of_category] = rng.choice(len(LIEUX), size=count, p=PLACE_P[position])
        gravity[of_category] = rng.choice(4, size=count, p=GRAVITY_P[position]) + 1
        codes, code_p = category_codes[position]
        code[of_category] = codes[rng.choice(len(code_p), size=count, p=code_p)]
    # closure: most closed within weeks, recent ones more often still open
    months_before_last = (last_month.year * 12 + last_month.month) - (month.year * 12 + month.month)
    p_open = 0.12 + (0.25 if months_before_last < 2 else 0.0)
    delay = np.minimum(rng.geometric(0.08, size=n) - 1, 180)
    closed = reported + delay.astype("timedelta64[D]")
    still_open = rng.random(n) < p_open
    complaint = np.where(rng.random(n) < COMPLAINT_P[category_position], "oui", "non")
    has_cost = rng.random(n) < COSTED_P[category_position]
    median = COST_MEDIAN[category_position]
    cost = np.round(rng.lognormal(np.log(np.where(median > 0, median, 50.0)), 0.9), 2)
    dwelling_rank = (rng.random(n) * residences.n_dw[residence_row]).astype(np.int64)
    lieu = LIEU_NAMES[place]
    # A dwelling is given when the incident happened in it, for half the neighbour disputes,
    # and now and then anyway.
    has_dwelling = (
        (lieu == "logement")
        | ((category == "trouble_voisinage") & (rng.random(n) < 0.5))
        | (rng.random(n) < 0.05)
    )
    has_tenant = has_dwelling & TENANT_NAMED[category_position] & (rng.random(n) < 0.6)
    tenant = tenant_ids(residences.res_uid[residence_row], dwelling_rank)
    has_comment = rng.random(n) < 0.6
    comment = np.empty(n, dtype=object)
    for position, name in enumerate(CATEGORIES):
        of_category = category_position == position
        if of_category.any():
            templates = COMMENTS[name]
            picks = rng.integers(0, len(templates), size=int(of_category.sum()))
            comment[of_category] = np.array(templates, dtype=object)[picks]
    sequence = counter + 1 + np.arange(n)
    id_residence = residences.id_residence[residence_row]
    id_logement = [
        f"{residence}-{rank:03d}" if given else None
        for residence, rank, given in zip(
            id_residence, dwelling_rank.tolist(), has_dwelling.tolist(), strict=True
        )
    ]
    incidents = pl.DataFrame(
        {
            "id_incident": _format_ids(landlord, month, sequence),
            "date_signalement": pl.Series(reported, dtype=pl.Date),
            "id_residence": pl.Series(as_list(id_residence), dtype=pl.String),
            "id_logement": pl.Series(id_logement, dtype=pl.String),
            "code_categorie": pl.Series(as_list(code), dtype=pl.String),
            "lieu": lieu,
            "gravite": gravity,
            "date_cloture": pl.Series(
                np.where(still_open, np.datetime64("NaT"), closed), dtype=pl.Date
            ),
            "plainte_deposee": complaint,
            "cout_euros": pl.Series(np.where(has_cost, cost, np.nan)).fill_nan(None),
            "id_locataire": pl.Series(values_or_null(has_tenant, tenant), dtype=pl.String),
            "commentaire": pl.Series(values_or_null(has_comment, comment), dtype=pl.String),
        }
    )
    return in_contract_order(incidents, "incidents")


def _multiline_comment(
    incidents: pl.DataFrame, rng: np.random.Generator, force: bool, p_file: float = 0.15
) -> pl.DataFrame:
    """Give one commented row of the file a second line (rare in real exports: a few files).

    Never one of the last two rows (the first delivery of a corrected month may lack the last
    one): a line break is inside a record, files still end with a plain one.
    """
    if not (force or rng.random() < p_file) or incidents.height < 4:
        return incidents
    commented = np.flatnonzero(incidents["commentaire"].is_not_null().to_numpy()[:-2])
    if not commented.size:
        return incidents
    row = int(commented[int(rng.integers(commented.size))])
    second = COMMENT_SECOND_LINES[int(rng.integers(len(COMMENT_SECOND_LINES)))]
    return incidents.with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.col("commentaire") + pl.lit("\n" + second))
        .otherwise(pl.col("commentaire"))
        .alias("commentaire")
    )


def with_times(incidents: pl.DataFrame, salt: int) -> pl.DataFrame:
    """Reporting and closing dates as an information system exports them: with a time of day.

    The time derives from the incident's number (the digits ending its id) and ``salt``, so the
    same incident has the same time in a delivery and in its corrected re-delivery; vectorised.
    A closure on the day of the report is later that day; the dates themselves are unchanged.
    """
    number = pl.col("id_incident").str.extract(r"(\d+)$").cast(pl.Int64).fill_null(0)
    # two multiplicative hashes of the number: one for each time of day
    incidents = incidents.with_columns(
        ((number * 2_654_435_761 + salt) % 4_294_967_296).alias("__hash")
    )
    first_hash = pl.col("__hash")
    second_hash = (first_hash * 40_503 + 12_345) % 4_294_967_296
    reported = 7 * 60 + first_hash % (15 * 60)  # 07:00..21:59
    same_day = pl.col("date_cloture") == pl.col("date_signalement")
    closed = (
        pl.when(same_day)
        .then(reported + 1 + second_hash % (23 * 60 + 59 - reported))
        .otherwise(8 * 60 + second_hash % (11 * 60))  # 08:00..18:59
    )

    def at(column: str, minutes: pl.Expr) -> pl.Expr:
        offset = (minutes * 60_000).cast(pl.Duration("ms"))
        return (pl.col(column).cast(pl.Datetime("ms")) + offset).alias(column)

    return incidents.with_columns(
        at("date_signalement", reported), at("date_cloture", closed)
    ).drop("__hash")


def export_incidents(incidents: pl.DataFrame, dialect: Dialect, salt: int) -> pl.DataFrame:
    """The month's incidents in the shape ``dialect``'s tool writes them."""
    if incidents.height == 0:  # a month without incident: the header only (columns may be untyped)
        return incidents
    if dialect.timestamp_format:
        incidents = with_times(incidents, salt)
    return spreadsheet_amounts(incidents, dialect, ["cout_euros"])


def _apply_warts(
    incidents: pl.DataFrame, kinds: list[str], month: dt.date, rng: np.random.Generator
) -> pl.DataFrame:
    """Spoil a few rows the way real exports do (each wart touches one row)."""
    if incidents.height < 2:
        return incidents
    for kind in kinds:
        row = int(rng.integers(0, incidents.height - 1))
        is_row = pl.int_range(pl.len()) == row
        if kind == "hors_mois":  # reported at the end of the previous month, filed late
            previous_month_end = month - dt.timedelta(days=1)
            incidents = incidents.with_columns(
                pl.when(is_row)
                .then(pl.lit(previous_month_end))
                .otherwise(pl.col("date_signalement"))
                .alias("date_signalement"),
                pl.when(is_row).then(None).otherwise(pl.col("date_cloture")).alias("date_cloture"),
            )
        elif kind == "gravite":
            incidents = incidents.with_columns(
                pl.when(is_row).then(pl.lit(5)).otherwise(pl.col("gravite")).alias("gravite")
            )
        elif kind == "cloture_avant":
            incidents = incidents.with_columns(
                pl.when(is_row)
                .then(pl.col("date_signalement") - pl.duration(days=3))
                .otherwise(pl.col("date_cloture"))
                .alias("date_cloture")
            )
        elif kind == "doublon":  # same incident sent twice, the later line updated (closed)
            duplicate = incidents.slice(row, 1).with_columns(
                (pl.col("date_signalement") + pl.duration(days=5)).alias("date_cloture")
            )
            incidents = pl.concat([incidents, duplicate])
    return incidents


# Each step of a procedure leads to the next with this probability; otherwise the procedure
# stops there, abandoned in 60% of the cases (the rest are still pending).
NEXT_STEP_P = (
    ("assignation", 0.8),
    ("jugement_resiliation", 0.75),
    ("expulsion_realisee", 0.6),
)


def procedures(
    seed: int,
    landlord: Landlord,
    residences: pl.DataFrame,
    months: list[dt.date],
    boost: float = 1.0,
) -> pl.DataFrame:
    """All procedure steps of the landlord over the period (one row per step)."""
    rng = rng_for(seed, "procedures", landlord.code)
    # only residences in stock during the whole period: a procedure targets an existing dwelling
    last_year = months[-1].year
    residences = residences.filter(
        (pl.col("construct") < months[0].year)
        & ((pl.col("demolished") == 0) | (pl.col("demolished") > last_year))
    )
    n_months = len(months)
    total_dwellings = float(residences["n_dw"].sum())
    n = int(rng.poisson(n_months * (1.0 + total_dwellings / 4000.0) * boost))
    if n == 0 or residences.height == 0:
        return pl.DataFrame()
    dealing = residences["dealing"].to_numpy()
    weight = residences["n_dw"].to_numpy() * residences["risk"].to_numpy()
    weight = weight * np.where(dealing, 8.0, 1.0)
    row = rng.choice(residences.height, size=n, p=weight / weight.sum())
    start_month = rng.integers(0, n_months, size=n)
    start_day = rng.integers(1, 29, size=n)
    draw = rng.random(n)
    # dealing residences: mostly drug trafficking; elsewhere mostly nuisance and arrears
    motif = np.where(
        dealing[row],
        np.select(
            [draw < 0.5, draw < 0.85, draw < 0.95],
            ["trafic_stupefiants", "trouble_jouissance", "impayes"],
            "autre",
        ),
        np.select(
            [draw < 0.4, draw < 0.85, draw < 0.93],
            ["trouble_jouissance", "impayes", "trafic_stupefiants"],
            "autre",
        ),
    )
    law = np.datetime64(DRUG_TRAFFICKING_LAW.isoformat(), "D")
    first = np.datetime64(months[0].isoformat(), "D")
    period_end = np.datetime64(next_month(months[-1]).isoformat(), "D")
    month_starts = np.array([np.datetime64(month.isoformat(), "D") for month in months])
    start = month_starts[start_month] + (start_day - 1).astype("timedelta64[D]")
    # Since the law, prefects may order a dealer's lease terminated: more of them after it.
    by_prefect = (motif == "trafic_stupefiants") & (
        rng.random(n) < np.where(start >= law, 0.3, 0.05)
    )
    dwelling_rank = (rng.random(n) * residences["n_dw"].to_numpy()[row]).astype(np.int64)
    tenant = tenant_ids(residences["res_uid"].to_numpy()[row], dwelling_rank)
    id_residence = residences["id_residence"].to_numpy()[row]
    rows: list[tuple[object, ...]] = []
    for number in range(n):
        # A prefect's injunction starts at the summons; a landlord's with a formal notice.
        sequence = ["assignation"] if by_prefect[number] else ["mise_en_demeure"]
        for step, p_next in NEXT_STEP_P:
            if sequence[-1] == "mise_en_demeure" and step != "assignation":
                continue
            if step == "assignation" and by_prefect[number]:
                continue
            draw_step = rng.random()
            if draw_step < p_next:
                sequence.append(step)
            else:
                if draw_step < p_next + 0.6 * (1 - p_next):
                    sequence.append("abandon")
                break
        dated = []
        when = start[number]
        for position, etape in enumerate(sequence):
            if position:
                when = when + np.timedelta64(int(rng.integers(30, 150)), "D")
            if when >= period_end:
                break
            if when < first:
                continue
            dated.append((etape, when))
        id_procedure = f"PR-{landlord.code[:4]}-{number + 1:05d}"
        for etape, when in dated:
            rows.append(
                (
                    id_procedure,
                    f"{id_residence[number]}-{dwelling_rank[number]:03d}",
                    tenant[number],
                    motif[number],
                    etape,
                    when.astype("datetime64[D]").item(),
                    "injonction_prefet" if by_prefect[number] else "bailleur",
                )
            )
    steps = pl.DataFrame(
        rows,
        schema={
            "id_procedure": pl.String,
            "id_logement": pl.String,
            "id_locataire": pl.String,
            "motif": pl.String,
            "etape": pl.String,
            "date_etape": pl.Date,
            "origine": pl.String,
        },
        orient="row",
    ).sort("date_etape", "id_procedure")
    return in_contract_order(steps, "procedures")


def write_landlord(
    out: pathlib.Path,
    seed: int,
    landlord: Landlord,
    residences: pl.DataFrame,
    months: list[dt.date],
    warts: Warts,
    boost: float = 1.0,
) -> dict[str, int]:
    """Write every file of one landlord; returns files and rows written."""
    files = rows = 0
    residences = residences.sort("res_uid")
    years = sorted({month.year for month in months})
    all_dwellings = dwellings(seed, landlord, residences)
    for year in years:
        _, written = write_stock(out, seed, landlord, residences, all_dwellings, year)
        files += 1
        rows += written
    del all_dwellings
    counter = 0
    wart_rng = rng_for(seed, "warts", landlord.code)
    incidents_dialect = landlord.dialects["incidents"]
    salt = key(seed, "heures", landlord.code)
    text_rng = rng_for(seed, "commentaires", landlord.code)
    category_codes = _category_codes(landlord)
    active_by_year = {year: ActiveResidences.of(residences, year) for year in years}
    for month_number, month in enumerate(months):
        incidents = incidents_month(
            seed,
            landlord,
            active_by_year[month.year],
            month,
            counter,
            months[-1],
            boost,
            category_codes,
        )
        counter += incidents.height
        incidents = _multiline_comment(
            incidents, text_rng, force=not warts.random and month_number == 0
        )
        kinds: list[str] = []
        if warts.random:
            for kind, p_kind in RANDOM_WART_P.items():
                if wart_rng.random() < p_kind:
                    kinds.append(kind)
        kinds += warts.fixed.get((landlord.number, month_number), [])
        first_delivery = incidents
        corrected = (landlord.number, month_number) in warts.corrected
        if corrected and incidents.height > 5:
            # first delivery forgot a few incidents; the corrected one has them all
            forgot = rng_for(seed, "forgot", landlord.code, month_number)
            keep = forgot.random(incidents.height) >= 0.05
            keep[0] = True
            keep[-1] = False
            first_delivery = incidents.filter(pl.Series(keep))
        spoiled = _apply_warts(first_delivery, kinds, month, wart_rng)
        end = month_end(month)
        stem = f"{landlord.code}_incidents_{month:%Y-%m}"
        path = out / "landlord" / f"{stem}{incidents_dialect.extension}"
        exported = export_incidents(spoiled, incidents_dialect, salt)
        rows += write_table(exported, path, incidents_dialect)
        set_mtime(path, delivery_time(end, 5, landlord.number))
        files += 1
        if corrected:
            path = out / "landlord" / f"{stem}_corrige{incidents_dialect.extension}"
            exported = export_incidents(incidents, incidents_dialect, salt)
            rows += write_table(exported, path, incidents_dialect)
            set_mtime(path, delivery_time(end, 25, landlord.number))
            files += 1
    steps = procedures(seed, landlord, residences, months, max(1.0, boost / 4.0))
    procedures_dialect = landlord.dialects["procedures"]
    if steps.height:
        steps = steps.with_columns(pl.col("date_etape").dt.truncate("1mo").alias("_month"))
        for month in months:
            of_month = steps.filter(pl.col("_month") == month).drop("_month")
            if not of_month.height:
                continue
            name = f"{landlord.code}_procedures_{month:%Y-%m}{procedures_dialect.extension}"
            path = out / "landlord" / name
            rows += write_table(of_month, path, procedures_dialect)
            set_mtime(path, delivery_time(month_end(month), 6, landlord.number))
            files += 1
    return {"files": files, "rows": rows}


__all__ = ["Warts", "incidents_month", "procedures", "write_landlord"]
