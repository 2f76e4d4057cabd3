"""Territory of a scale: communes, social stock per commune, QPVs and residences.

Why: every family of deliveries must describe the same world. Incidents happen in residences,
residences sit in one commune and at most one QPV, allocations are located in the same
dwellings, police events where the dealing residences are, and every commune used must be in
the EPCI reference file. This module builds that world once per run (a residence table of
about 100k rows nationally; dwellings are derived from it on the fly, landlord by landlord).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.ingest.specs import NO_EPCI_CODE
from pipelines.reference_data import load_communes

from .common import NATIONAL_SOCIAL, Scale, rng_for
from .landlords import Landlords, assign_landlords, build_landlords
from .names import QPV_NAMES, residence_names

MIN_RESIDENCE = 8
MAX_RESIDENCE = 300

# INSEE's EPCI composition file lists every commune of France (metropolitan and overseas
# départements, not the overseas collectivities 975, 977, 978, 98x); the few communes outside
# any EPCI (island communes: Île-de-Bréhat 22016, Île-de-Sein 29083, Ouessant 29155,
# L'Île-d'Yeu 85113) carry the code NO_EPCI_CODE (`ZZZZZZZZZ`, defined with the ingestion
# rules) and this label.
NO_EPCI_LABEL = "Sans objet"


@dataclass
class Territory:
    """Everything the family generators share."""

    communes: pl.DataFrame  # code_commune, nom_commune, code_departement, code_region, ...
    qpv: pl.DataFrame  # code_qpv, nom_qpv, code_commune, population
    residences: pl.DataFrame  # one row per residence (see build_residences)
    landlords: Landlords
    months: list[dt.date]
    seed: int
    scale: Scale

    @property
    def years(self) -> list[int]:
        return sorted({m.year for m in self.months})


def select_communes(scale: Scale) -> pl.DataFrame:
    """Communes of the scale, restricted to those in an EPCI (the EPCI file must cover them)."""
    df = load_communes().filter(pl.col("code_epci") != "")
    if scale.communes is not None:
        df = df.filter(pl.col("code_commune").is_in(list(scale.communes)))
    elif scale.departements is not None:
        df = df.filter(pl.col("code_departement").is_in(list(scale.departements)))
    return df.sort("code_commune")


def epci_composition(scale: Scale, communes: pl.DataFrame) -> pl.DataFrame:
    """The INSEE EPCI composition file of the scale (``CODGEO;LIBGEO;EPCI;LIBEPCI;DEP;REG``).

    The territory's communes (all in an EPCI), plus, where the scale covers them, the communes
    outside any EPCI as INSEE writes them (``ZZZZZZZZZ`` / ``Sans objet``): the national scale
    has the four island communes. DEP is 2 characters (``2A``/``2B`` in Corsica) or 3 overseas
    (``971``).
    """
    dep = pl.col("code_departement")
    in_insee_file = (dep.str.len_chars() == 2) | dep.is_in(["971", "972", "973", "974", "976"])
    out = load_communes().filter((pl.col("code_epci") == "") & in_insee_file)
    if scale.communes is not None:
        out = out.filter(pl.col("code_commune").is_in(list(scale.communes)))
    elif scale.departements is not None:
        out = out.filter(pl.col("code_departement").is_in(list(scale.departements)))
    both = pl.concat([communes.select(out.columns), out]).sort("code_commune")
    no_epci = pl.col("code_epci") == ""
    return both.select(
        pl.col("code_commune").alias("CODGEO"),
        pl.col("nom_commune").alias("LIBGEO"),
        pl.when(no_epci).then(pl.lit(NO_EPCI_CODE)).otherwise(pl.col("code_epci")).alias("EPCI"),
        pl.when(no_epci).then(pl.lit(NO_EPCI_LABEL)).otherwise(pl.col("nom_epci")).alias("LIBEPCI"),
        pl.col("code_departement").alias("DEP"),
        pl.col("code_region").alias("REG"),
    )


def _social_share(pop: np.ndarray) -> np.ndarray:
    """Share of a commune's dwellings that are social: ~1% in villages, ~20% in big towns."""
    lp = np.log10(np.maximum(pop, 1))
    return 0.21 / (1.0 + np.exp(-(lp - 3.75) * 2.6))


def social_stock(communes: pl.DataFrame, scale: Scale, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Social dwellings per commune, calibrated on the national total (5.4 M).

    Returns (stock at national calibration, stock rescaled to the scale's total): QPVs are
    placed on the former (where they really are), residences sized on the latter.
    """
    all_c = load_communes().filter(pl.col("code_epci") != "")
    raw_all = all_c["population"].to_numpy() * _social_share(all_c["population"].to_numpy())
    factor = NATIONAL_SOCIAL / raw_all.sum()
    rng = rng_for(seed, "social_stock")
    raw = communes["population"].to_numpy() * _social_share(communes["population"].to_numpy())
    noise = rng.lognormal(0.0, 0.25, size=raw.shape[0])
    n = np.round(raw * factor * noise).astype(np.int64)
    n[n < 12] = 0  # no social housing in most villages
    scaled = n
    if scale.social_total is not None and n.sum() > 0:
        scaled = np.round(n * scale.social_total / n.sum()).astype(np.int64)
    return n, scaled


def build_qpv(
    communes: pl.DataFrame, social: np.ndarray, seed: int, max_per_commune: int = 99
) -> tuple[pl.DataFrame, dict]:
    """QPVs in the larger urban communes; some straddle a neighbouring commune of the EPCI.

    Returns the qpv reference table and, per commune, the list of (code_qpv, share of the
    commune's social stock in that QPV).
    """
    rng = rng_for(seed, "qpv")
    codes = communes["code_commune"].to_list()
    deps = communes["code_departement"].to_list()
    epcis = communes["code_epci"].to_list()
    names = communes["nom_commune"].to_list()
    per_commune: dict[str, list[tuple[str, float]]] = {}
    rows = []
    dep_counter: dict[str, int] = {}
    # about 1,360 QPV for 5.4 M social dwellings: one per ~1,100 social dwellings in QPV.
    by_epci: dict[str, list[int]] = {}
    for i, e in enumerate(epcis):
        if social[i] > 0:
            by_epci.setdefault(e, []).append(i)
    order = np.argsort(-social, kind="stable")
    used_names: set[str] = set()
    forced = len(codes) <= 10  # tiny: make sure exactly one QPV straddles two communes
    for i in order:
        s = int(social[i])
        if s < 900:
            break
        qpv_share = float(rng.uniform(0.3, 0.55))
        n_qpv = max(1, round(qpv_share * s / 1800 * rng.uniform(0.8, 1.2)))
        n_qpv = min(n_qpv, max_per_commune)
        dep = deps[i]
        weights = rng.dirichlet(np.full(n_qpv, 2.0))
        for q in range(n_qpv):
            num = dep_counter.get(dep, 0) + 1
            if num > 99:
                break
            dep_counter[dep] = num
            code = f"QN{dep.zfill(3)}{num:02d}M"
            base = QPV_NAMES[int(rng.integers(len(QPV_NAMES)))]
            nom = base if base not in used_names else f"{base} - {names[i]}"
            used_names.add(nom)
            share = qpv_share * float(weights[q])
            part = int(share * s)
            per_commune.setdefault(codes[i], []).append((code, share))
            rows.append((code, nom, codes[i], min(int(part * 2.3 * rng.uniform(1.2, 1.8)), 28000)))
            # a few QPV straddle a neighbouring commune of the same EPCI
            neighbours = [j for j in by_epci.get(epcis[i], []) if j != i and social[j] >= 700]
            if neighbours and (forced or (not len(codes) <= 10 and rng.random() < 0.10)):
                forced = False
                j = neighbours[int(rng.integers(len(neighbours)))]
                share_j = float(rng.uniform(0.1, 0.3))
                per_commune.setdefault(codes[j], []).append((code, share_j))
                part_j = int(share_j * social[j])
                rows.append(
                    (code, nom, codes[j], min(int(part_j * 2.3 * rng.uniform(1.2, 1.8)), 9000))
                )
    qpv = pl.DataFrame(
        rows,
        schema={
            "code_qpv": pl.String,
            "nom_qpv": pl.String,
            "code_commune": pl.String,
            "population": pl.Int64,
        },
        orient="row",
    ).sort("code_qpv", "code_commune")
    return qpv, per_commune


def _split_sizes(rng: np.random.Generator, total: int, mean: float) -> list[int]:
    """Split a stock into residences of MIN..MAX dwellings (last one takes the remainder)."""
    sizes: list[int] = []
    left = total
    while left > 0:
        s = int(np.clip(rng.lognormal(np.log(mean), 0.6), MIN_RESIDENCE, MAX_RESIDENCE))
        if left - s < MIN_RESIDENCE:
            s = left if left <= MAX_RESIDENCE else s
        s = min(s, left)
        sizes.append(s)
        left -= s
    return sizes


def build_residences(
    communes: pl.DataFrame,
    social: np.ndarray,
    per_commune_qpv: dict,
    months: list[dt.date],
    seed: int,
) -> pl.DataFrame:
    """Residences (groupes) with commune, QPV, size, construction year and risk profile."""
    rng = rng_for(seed, "residences")
    first_year, last_year = months[0].year, months[-1].year
    rec_commune, rec_qpv, rec_size, rec_construct, rec_demol = [], [], [], [], []
    codes = communes["code_commune"].to_list()
    for i, code in enumerate(codes):
        s = int(social[i])
        if s <= 0:
            continue
        qpvs = per_commune_qpv.get(code, [])
        parts = [(q, round(share * s)) for q, share in qpvs]
        in_qpv = sum(p for _, p in parts)
        parts.append(("", max(s - in_qpv, 0)))
        for q, total in parts:
            if total <= 0:
                continue
            mean = 130.0 if q else 45.0
            for size in _split_sizes(rng, total, mean):
                rec_commune.append(code)
                rec_qpv.append(q)
                rec_size.append(size)
                if q:
                    year = int(rng.choice([1958, 1965, 1970, 1975, 1980, 1990, 2005, 2015]))
                else:
                    year = int(rng.integers(1960, first_year))
                year += int(rng.integers(0, 5)) if year < first_year - 5 else 0
                rec_construct.append(min(year, first_year - 1))
                # a few QPV residences demolished by urban renewal during the period
                demol = 0
                if q and last_year > first_year and rng.random() < 0.01:
                    demol = int(rng.integers(first_year + 1, last_year + 1))
                rec_demol.append(demol)
    n = len(rec_size)
    # new residences delivered during the period (~1% of the stock a year), in stock from Y+1
    n_new = round(n * 0.012 * max(len(months) / 12, 1))
    if n_new and n:
        pick = rng.integers(0, n, size=n_new)
        for p in pick:
            rec_commune.append(rec_commune[p])
            rec_qpv.append("" if rng.random() < 0.85 else rec_qpv[p])
            rec_size.append(int(rng.integers(15, 80)))
            rec_construct.append(int(rng.integers(first_year - 1, last_year)))
            rec_demol.append(0)
    n = len(rec_size)
    qpv_arr = np.array(rec_qpv, dtype=object)
    is_qpv = qpv_arr != ""
    # dealing points: mostly in QPV estates
    dealing = np.where(is_qpv, rng.random(n) < 0.15, rng.random(n) < 0.006)
    risk = rng.lognormal(0.0, 0.5, size=n)
    df = pl.DataFrame(
        {
            "code_commune": rec_commune,
            "code_qpv": rec_qpv,
            "n_dw": np.array(rec_size, dtype=np.int64),
            "construct": np.array(rec_construct, dtype=np.int64),
            "demolished": np.array(rec_demol, dtype=np.int64),
            "dealing": dealing,
            "risk": risk,
        }
    )
    df = df.with_row_index("res_uid").with_columns(pl.col("res_uid").cast(pl.Int64))
    return df.join(
        communes.select(
            "code_commune", "nom_commune", "code_departement", "code_region", "code_epci"
        ),
        on="code_commune",
        how="left",
    ).sort("res_uid")


def build_territory(scale: Scale, seed: int, months: list[dt.date]) -> Territory:
    """Build the whole shared world of a run."""
    communes = select_communes(scale)
    social_real, social = social_stock(communes, scale, seed)
    qpv, per_commune = build_qpv(communes, social_real, seed, scale.max_qpv_per_commune)
    residences = build_residences(communes, social, per_commune, months, seed)
    landlords = build_landlords(scale, seed, communes, residences)
    residences = assign_landlords(landlords, residences, seed)
    # residence names and per-landlord ids
    rng = rng_for(seed, "residence_names")
    residences = residences.with_columns(
        pl.Series("nom_residence", residence_names(rng, residences.height))
    )
    residences = landlords.finalize_residences(residences)
    return Territory(communes, qpv, residences, landlords, months, seed, scale)
