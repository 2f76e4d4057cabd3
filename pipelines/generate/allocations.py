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

from . import writers as w
from .common import as_list as _obj
from .common import days_in_month, delivery_time, next_month, rng_for

ALLOC_PER_DWELLING_YEAR = 400_000 / 5_400_000
SEASON = np.array([0.85, 0.85, 0.95, 1.0, 1.0, 1.05, 1.2, 1.0, 1.25, 1.05, 0.95, 0.85])
RESERVATAIRES = np.array(["etat", "action_logement", "collectivite", "bailleur"])
PRIORITE = np.array(["DALO", "prioritaire", "non"])


@functools.cache
def _seuil_base(seed: int, epci: str) -> float:
    return float(rng_for(seed, "seuil", epci).uniform(7200.0, 11000.0))


def seuil(seed: int, epci: np.ndarray, year: int) -> np.ndarray:
    """Q1 threshold (euros per consumption unit per year) of each EPCI for ``year``."""
    uniq, inv = np.unique(np.asarray(epci, dtype=str), return_inverse=True)
    base = np.array([_seuil_base(seed, e) for e in uniq.tolist()], dtype=float)
    return np.round(base[inv] * 1.025 ** (year - 2021), 0).astype(np.int64)


def policy(seed: int, epcis: list[str]) -> dict[str, tuple[float, float]]:
    """Per EPCI: share of Q1 among allocations outside QPV, share of non-Q1 inside QPV."""
    out = {}
    for e in epcis:
        r = rng_for(seed, "policy", e)
        out[e] = (float(r.uniform(0.12, 0.36)), float(r.uniform(0.32, 0.68)))
    if len(epcis) == 2:  # tiny: one EPCI meets both targets, the other misses both
        out[epcis[0]] = (0.34, 0.64)
        out[epcis[1]] = (0.14, 0.36)
    return out


def attributions_month(
    seed: int, residences: pl.DataFrame, month: dt.date, pol: dict, boost: float = 1.0
) -> pl.DataFrame:
    """Allocations decided in one month, located in dwellings of the landlords' stock."""
    rng = rng_for(seed, "attributions", month.isoformat())
    c = residences["construct"].to_numpy()
    d = residences["demolished"].to_numpy()
    r = residences.filter(pl.Series((c < month.year) & ((d == 0) | (d > month.year))))
    n_dw = r["n_dw"].to_numpy()
    lam = n_dw.sum() * ALLOC_PER_DWELLING_YEAR / 12.0 * SEASON[month.month - 1] * boost
    n = int(rng.poisson(lam))
    ri = np.sort(rng.choice(r.height, size=n, p=n_dw / n_dw.sum()))
    k = (rng.random(n) * n_dw[ri]).astype(np.int64)
    epci = r["code_epci"].to_numpy()[ri]
    qpv = r["code_qpv"].to_numpy()[ri]
    inq = qpv != ""
    p_out = np.array([pol[e][0] for e in epci])
    p_nonq1_in = np.array([pol[e][1] for e in epci])
    q1 = np.where(inq, rng.random(n) >= p_nonq1_in, rng.random(n) < p_out)
    adults = rng.choice([1, 2, 3, 4], size=n, p=[0.47, 0.40, 0.09, 0.04])
    children = np.minimum(rng.poisson(np.where(adults == 1, 0.8, 1.1)), 6)
    uc = 1.0 + 0.5 * (adults - 1) + 0.3 * children
    s = seuil(seed, epci, month.year) if n else np.zeros(0)
    ratio = np.where(q1, rng.uniform(0.1, 0.97, size=n), 1.03 + rng.lognormal(-0.6, 0.7, size=n))
    revenu = np.round(uc * s * ratio, 0)
    # a quarter of the incomes carry cents (own stream: the other draws stay as they were)
    cents = rng_for(seed, "centimes", month.isoformat())
    revenu = revenu + np.where(cents.random(n) < 0.25, cents.integers(1, 100, size=n) / 100, 0.0)
    anru = (~inq) & (rng.random(n) < 0.03)
    day = rng.integers(1, days_in_month(month) + 1, size=n)
    d_attr = np.datetime64(month.isoformat(), "D") + (day - 1).astype("timedelta64[D]")
    d_sign = d_attr + rng.integers(3, 80, size=n).astype("timedelta64[D]")
    unsigned = rng.random(n) < 0.10
    dep = r["code_departement"].to_numpy()[ri]
    lag = rng.integers(2, 40, size=n)
    ym = month.year * 12 + month.month - 1 - lag
    nud = [
        f"{dp.zfill(3)}{(y // 12) % 100:02d}{y % 12 + 1:02d}{int(v):05d}{chr(65 + int(x))}"
        for dp, y, v, x in zip(
            dep, ym, rng.integers(0, 100000, size=n), rng.integers(0, 26, size=n), strict=True
        )
    ]
    rid = r["id_residence"].to_numpy()[ri]
    has_log = rng.random(n) >= 0.05
    id_log = np.array([f"{a}-{b:03d}" for a, b in zip(rid, k, strict=True)], dtype=object)
    return pl.DataFrame(
        {
            "num_unique_demande": pl.Series(nud, dtype=pl.String),
            "date_attribution": pl.Series(d_attr, dtype=pl.Date),
            "date_signature_bail": pl.Series(
                np.where(unsigned, np.datetime64("NaT"), d_sign), dtype=pl.Date
            ),
            "code_bailleur": pl.Series(_obj(r["code_bailleur"].to_numpy()[ri]), dtype=pl.String),
            "id_logement": pl.Series(_obj(np.where(has_log, id_log, None)), dtype=pl.String),
            "DEPCOM": pl.Series(_obj(r["code_commune"].to_numpy()[ri]), dtype=pl.String),
            "QPV": pl.Series(_obj(np.where(inq, qpv, None)), dtype=pl.String),
            "revenu_annuel_euros": revenu,
            "nb_personnes_14_ans_et_plus": adults.astype(np.int64),
            "nb_enfants_moins_14_ans": children.astype(np.int64),
            "menage_prioritaire": PRIORITE[rng.choice(3, size=n, p=[0.06, 0.22, 0.72])],
            "reservataire": RESERVATAIRES[rng.choice(4, size=n, p=[0.28, 0.30, 0.17, 0.25])],
            "relogement_anru": np.where(anru, "oui", "non"),
        }
    ).sort("date_attribution", "DEPCOM", "num_unique_demande")


def allocation_dialect(month: dt.date) -> w.Dialect:
    """The SNE export, or its re-saved forms of February (Excel) and March (R)."""
    return {2: w.SNE_EXCEL, 3: w.SNE_R}.get(month.month, w.SNE)


def export_attributions(df: pl.DataFrame, dialect: w.Dialect) -> pl.DataFrame:
    """The month's allocations as ``dialect``'s tool writes them."""
    if dialect is w.SNE_EXCEL and df.height:  # labels of the SNE screens, kept by the spreadsheet
        df = df.with_columns(
            pl.col("menage_prioritaire").replace({"prioritaire": "Prioritaire", "non": "Non"}),
            pl.col("relogement_anru").replace({"oui": "Oui", "non": "Non"}),
        )
    return w.spreadsheet_amounts(df, dialect, ["revenu_annuel_euros"])


def write_allocations(
    out: pathlib.Path,
    seed: int,
    residences: pl.DataFrame,
    months: list[dt.date],
    boost: float = 1.0,
) -> tuple[dict[str, int], set[int]]:
    """Monthly allocation files; returns counts and the signature years seen (for thresholds)."""
    epcis = sorted(residences["code_epci"].unique().to_list())
    pol = policy(seed, epcis)
    files = rows = 0
    years: set[int] = set()
    for month in months:
        df = attributions_month(seed, residences, month, pol, boost)
        years |= set(df["date_signature_bail"].drop_nulls().dt.year().unique().to_list())
        path = out / "allocations" / f"attributions_{month:%Y-%m}.csv"
        dialect = allocation_dialect(month)
        rows += w.write_table(export_attributions(df, dialect), path, dialect)
        w.set_mtime(path, delivery_time(next_month(month) - dt.timedelta(days=1), 10))
        files += 1
    return {"files": files, "rows": rows}, years


def write_thresholds(
    out: pathlib.Path, seed: int, residences: pl.DataFrame, years: set[int], when: dt.datetime
) -> tuple[int, int]:
    """``seuils_q1_<YYYY>.csv`` for every EPCI with stock, and ``objectifs_epci.csv``."""
    epcis = np.array(sorted(residences["code_epci"].unique().to_list()))
    files = rows = 0
    for y in sorted(years):
        df = pl.DataFrame(
            {
                "code_epci": epcis,
                "annee": np.full(epcis.size, y, dtype=np.int64),
                "seuil_q1_euros_uc": seuil(seed, epcis, y),
            }
        )
        p = out / "reference" / f"seuils_q1_{y}.csv"
        rows += w.write_table(df, p, w.REFERENCE)
        w.set_mtime(p, when)
        files += 1
    # local agreements: the biggest EPCI(s) set their own target
    big = (
        residences.group_by("code_epci")
        .agg(pl.col("n_dw").sum())
        .sort(["n_dw", "code_epci"], descending=[True, False])
    )["code_epci"].to_list()[: 2 if len(epcis) > 2 else 1]
    obj = pl.DataFrame(
        [(e, y, 30 if i == 0 else 20) for i, e in enumerate(big) for y in sorted(years)],
        schema={"code_epci": pl.String, "annee": pl.Int64, "objectif_q1_hors_qpv_pct": pl.Int64},
        orient="row",
    )
    p = out / "reference" / "objectifs_epci.csv"
    rows += w.write_table(obj, p, w.REFERENCE)
    w.set_mtime(p, when)
    return files + 1, rows
