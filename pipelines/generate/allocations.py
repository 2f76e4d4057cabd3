"""Allocation deliveries (SNE-like ``attributions_<YYYY-MM>.csv``) and their reference files.

Why the EPCI "policy": the social-mix indicators exist to show which EPCI meet the legal
targets (25% of allocations outside QPV to Q1 applicants, 50% inside QPV to non-Q1). Each EPCI
gets a seeded propensity so that some meet the targets and others miss them, and incomes are
drawn relative to the same Q1 thresholds that are delivered in ``seuils_q1_<YYYY>.csv``.

Shapes: incomes are in euros, a quarter of them with cents; ``id_logement`` is empty for a few
allocations (located by commune and QPV only) and ``date_signature_bail`` while no lease is
signed. Most months come straight from the SNE (``;``, ISO dates, decimal point); two months a
year were re-saved by hand before delivery: February with French Excel (Windows-1252, decimal
comma, JJ/MM/AAAA, thousands separators, commune codes turned into numbers, labels as the SNE
screens show them: ``Prioritaire``, ``Oui``/``Non``; a row of separators below the data) and
March with R's ``write.csv2`` (strings quoted, ``NA`` for missing).
"""

from __future__ import annotations

import datetime as dt
import functools
import pathlib

import numpy as np
import polars as pl

from pipelines.generate.common import (
    as_list,
    days_in_month,
    delivery_time,
    in_contract_order,
    month_end,
    rng_for,
    values_or_null,
)
from pipelines.generate.writers import (
    REFERENCE,
    SNE,
    SNE_EXCEL,
    SNE_R,
    Dialect,
    set_mtime,
    spreadsheet_amounts,
    write_table,
)
from pipelines.ingest.specs import MENAGES_PRIORITAIRES, RESERVATAIRES

# About 400,000 allocations a year for 5.4 M social dwellings.
ALLOCATIONS_PER_DWELLING_YEAR = 400_000 / 5_400_000
# Allocations per month relative to the average (January to December): summer moves.
SEASON = np.array([0.85, 0.85, 0.95, 1.0, 1.0, 1.05, 1.2, 1.0, 1.25, 1.05, 0.95, 0.85])
PRIORITY_SHARES = {"DALO": 0.06, "prioritaire": 0.22, "non": 0.72}
RESERVATAIRE_SHARES = {
    "etat": 0.28,
    "action_logement": 0.30,
    "collectivite": 0.17,
    "bailleur": 0.25,
}
if set(PRIORITY_SHARES) != set(MENAGES_PRIORITAIRES) or set(RESERVATAIRE_SHARES) != set(
    RESERVATAIRES
):
    raise AssertionError("allocation shares must cover the contract's values")
# Drawn by position in the contract's order, so that order is part of the seeded output.
PRIORITY_NAMES = np.array(MENAGES_PRIORITAIRES)
PRIORITY_P = [PRIORITY_SHARES[name] for name in MENAGES_PRIORITAIRES]
RESERVATAIRE_NAMES = np.array(RESERVATAIRES)
RESERVATAIRE_P = [RESERVATAIRE_SHARES[name] for name in RESERVATAIRES]
# Households by number of persons aged 14 or more.
ADULTS = [1, 2, 3, 4]
ADULTS_P = [0.47, 0.40, 0.09, 0.04]
# Labels as the SNE screens show them, kept by a spreadsheet that re-saved the extract.
SCREEN_LABELS = {
    "menage_prioritaire": {"prioritaire": "Prioritaire", "non": "Non"},
    "relogement_anru": {"oui": "Oui", "non": "Non"},
}


@functools.cache
def _threshold_base(seed: int, epci: str) -> float:
    return float(rng_for(seed, "seuil", epci).uniform(7200.0, 11000.0))


def threshold(seed: int, epci: np.ndarray, year: int) -> np.ndarray:
    """Q1 threshold (euros per consumption unit per year) of each EPCI for ``year``."""
    unique, inverse = np.unique(np.asarray(epci, dtype=str), return_inverse=True)
    base = np.array([_threshold_base(seed, code) for code in unique.tolist()], dtype=float)
    return np.round(base[inverse] * 1.025 ** (year - 2021), 0).astype(np.int64)


def policy(seed: int, epcis: list[str]) -> dict[str, tuple[float, float]]:
    """Per EPCI: share of Q1 among allocations outside QPV, share of non-Q1 inside QPV."""
    shares = {}
    for epci in epcis:
        rng = rng_for(seed, "policy", epci)
        shares[epci] = (float(rng.uniform(0.12, 0.36)), float(rng.uniform(0.32, 0.68)))
    if len(epcis) == 2:  # tiny: one EPCI meets both targets, the other misses both
        shares[epcis[0]] = (0.34, 0.64)
        shares[epcis[1]] = (0.14, 0.36)
    return shares


def attributions_month(
    seed: int,
    residences: pl.DataFrame,
    month: dt.date,
    shares: dict[str, tuple[float, float]],
    boost: float = 1.0,
) -> pl.DataFrame:
    """Allocations decided in one month, located in dwellings of the landlords' stock."""
    rng = rng_for(seed, "attributions", month.isoformat())
    built = residences["construct"].to_numpy()
    demolished = residences["demolished"].to_numpy()
    active = (built < month.year) & ((demolished == 0) | (demolished > month.year))
    stock = residences.filter(pl.Series(active))
    sizes = stock["n_dw"].to_numpy()
    expected = sizes.sum() * ALLOCATIONS_PER_DWELLING_YEAR / 12.0 * SEASON[month.month - 1] * boost
    n = int(rng.poisson(expected))
    row = np.sort(rng.choice(stock.height, size=n, p=sizes / sizes.sum()))
    dwelling_rank = (rng.random(n) * sizes[row]).astype(np.int64)
    epci = stock["code_epci"].to_numpy()[row]
    qpv = stock["code_qpv"].to_numpy()[row]
    in_qpv = qpv != ""
    q1_share_outside = np.array([shares[code][0] for code in epci])
    non_q1_share_inside = np.array([shares[code][1] for code in epci])
    q1 = np.where(in_qpv, rng.random(n) >= non_q1_share_inside, rng.random(n) < q1_share_outside)
    adults = rng.choice(ADULTS, size=n, p=ADULTS_P)
    children = np.minimum(rng.poisson(np.where(adults == 1, 0.8, 1.1)), 6)
    consumption_units = 1.0 + 0.5 * (adults - 1) + 0.3 * children
    q1_threshold = threshold(seed, epci, month.year) if n else np.zeros(0)
    # income relative to the threshold: below it for Q1 households, above it for the others
    ratio = np.where(q1, rng.uniform(0.1, 0.97, size=n), 1.03 + rng.lognormal(-0.6, 0.7, size=n))
    income = np.round(consumption_units * q1_threshold * ratio, 0)
    # a quarter of the incomes carry cents (own stream: the other draws stay as they were)
    cents = rng_for(seed, "centimes", month.isoformat())
    income = income + np.where(cents.random(n) < 0.25, cents.integers(1, 100, size=n) / 100, 0.0)
    anru = (~in_qpv) & (rng.random(n) < 0.03)
    day = rng.integers(1, days_in_month(month) + 1, size=n)
    decided = np.datetime64(month.isoformat(), "D") + (day - 1).astype("timedelta64[D]")
    signed = decided + rng.integers(3, 80, size=n).astype("timedelta64[D]")
    unsigned = rng.random(n) < 0.10
    departement = stock["code_departement"].to_numpy()[row]
    # The SNE number: département, month of the application (months before), a serial, a letter.
    months_waited = rng.integers(2, 40, size=n)
    applied = month.year * 12 + month.month - 1 - months_waited
    num_unique_demande = [
        f"{dep.zfill(3)}{(months // 12) % 100:02d}{months % 12 + 1:02d}{int(serial):05d}"
        f"{chr(65 + int(letter))}"
        for dep, months, serial, letter in zip(
            departement,
            applied,
            rng.integers(0, 100000, size=n),
            rng.integers(0, 26, size=n),
            strict=True,
        )
    ]
    id_residence = stock["id_residence"].to_numpy()[row]
    has_dwelling = rng.random(n) >= 0.05
    id_logement = np.array(
        [
            f"{residence}-{rank:03d}"
            for residence, rank in zip(id_residence, dwelling_rank, strict=True)
        ],
        dtype=object,
    )
    allocations = pl.DataFrame(
        {
            "num_unique_demande": pl.Series(num_unique_demande, dtype=pl.String),
            "date_attribution": pl.Series(decided, dtype=pl.Date),
            "date_signature_bail": pl.Series(
                np.where(unsigned, np.datetime64("NaT"), signed), dtype=pl.Date
            ),
            "code_bailleur": pl.Series(
                as_list(stock["code_bailleur"].to_numpy()[row]), dtype=pl.String
            ),
            "id_logement": pl.Series(values_or_null(has_dwelling, id_logement), dtype=pl.String),
            "DEPCOM": pl.Series(as_list(stock["code_commune"].to_numpy()[row]), dtype=pl.String),
            "QPV": pl.Series(values_or_null(in_qpv, qpv), dtype=pl.String),
            "revenu_annuel_euros": income,
            "nb_personnes_14_ans_et_plus": adults.astype(np.int64),
            "nb_enfants_moins_14_ans": children.astype(np.int64),
            "menage_prioritaire": PRIORITY_NAMES[
                rng.choice(len(PRIORITY_NAMES), size=n, p=PRIORITY_P)
            ],
            "reservataire": RESERVATAIRE_NAMES[
                rng.choice(len(RESERVATAIRE_NAMES), size=n, p=RESERVATAIRE_P)
            ],
            "relogement_anru": np.where(anru, "oui", "non"),
        }
    ).sort("date_attribution", "DEPCOM", "num_unique_demande")
    return in_contract_order(allocations, "attributions")


def allocation_dialect(month: dt.date) -> Dialect:
    """The SNE export, or its re-saved forms of February (Excel) and March (R)."""
    return {2: SNE_EXCEL, 3: SNE_R}.get(month.month, SNE)


def export_attributions(allocations: pl.DataFrame, dialect: Dialect) -> pl.DataFrame:
    """The month's allocations as ``dialect``'s tool writes them."""
    if dialect is SNE_EXCEL and allocations.height:
        allocations = allocations.with_columns(
            pl.col(column).replace(labels) for column, labels in SCREEN_LABELS.items()
        )
    return spreadsheet_amounts(allocations, dialect, ["revenu_annuel_euros"])


def write_allocations(
    out: pathlib.Path,
    seed: int,
    residences: pl.DataFrame,
    months: list[dt.date],
    boost: float = 1.0,
) -> tuple[dict[str, int], set[int]]:
    """Monthly allocation files; returns counts and the signature years seen (for thresholds)."""
    epcis = sorted(residences["code_epci"].unique().to_list())
    shares = policy(seed, epcis)
    files = rows = 0
    years: set[int] = set()
    for month in months:
        allocations = attributions_month(seed, residences, month, shares, boost)
        signature_years = allocations["date_signature_bail"].drop_nulls().dt.year().unique()
        years |= set(signature_years.to_list())
        path = out / "allocations" / f"attributions_{month:%Y-%m}.csv"
        dialect = allocation_dialect(month)
        rows += write_table(export_attributions(allocations, dialect), path, dialect)
        set_mtime(path, delivery_time(month_end(month), 10))
        files += 1
    return {"files": files, "rows": rows}, years


def write_thresholds(
    out: pathlib.Path, seed: int, residences: pl.DataFrame, years: set[int], when: dt.datetime
) -> tuple[int, int]:
    """``seuils_q1_<YYYY>.csv`` for every EPCI with stock, and ``objectifs_epci.csv``."""
    epcis = np.array(sorted(residences["code_epci"].unique().to_list()))
    files = rows = 0
    for year in sorted(years):
        thresholds = pl.DataFrame(
            {
                "code_epci": epcis,
                "annee": np.full(epcis.size, year, dtype=np.int64),
                "seuil_q1_euros_uc": threshold(seed, epcis, year),
            }
        )
        path = out / "reference" / f"seuils_q1_{year}.csv"
        rows += write_table(in_contract_order(thresholds, "seuils_q1"), path, REFERENCE)
        set_mtime(path, when)
        files += 1
    # local agreements: the biggest EPCI(s) set their own target
    biggest = (
        residences.group_by("code_epci")
        .agg(pl.col("n_dw").sum())
        .sort(["n_dw", "code_epci"], descending=[True, False])
    )["code_epci"].to_list()[: 2 if len(epcis) > 2 else 1]
    targets = pl.DataFrame(
        [
            (epci, year, 30 if rank == 0 else 20)
            for rank, epci in enumerate(biggest)
            for year in sorted(years)
        ],
        schema={"code_epci": pl.String, "annee": pl.Int64, "objectif_q1_hors_qpv_pct": pl.Int64},
        orient="row",
    )
    path = out / "reference" / "objectifs_epci.csv"
    rows += write_table(in_contract_order(targets, "objectifs_epci"), path, REFERENCE)
    set_mtime(path, when)
    return files + 1, rows
