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

from pipelines.generate.common import NATIONAL_SOCIAL, Scale, rng_for
from pipelines.generate.landlords import Landlords, assign_landlords, build_landlords
from pipelines.generate.names import QPV_NAMES, residence_names
from pipelines.ingest.specs import NO_EPCI_CODE
from pipelines.reference_data import load_communes

MIN_RESIDENCE = 8
MAX_RESIDENCE = 300

# INSEE's EPCI composition file lists every commune of France (metropolitan and overseas
# départements, not the overseas collectivities 975, 977, 978, 98x); the few communes outside
# any EPCI (island communes: Île-de-Bréhat 22016, Île-de-Sein 29083, Ouessant 29155,
# L'Île-d'Yeu 85113) carry the code NO_EPCI_CODE (`ZZZZZZZZZ`, defined with the ingestion
# rules) and this label.
NO_EPCI_LABEL = "Sans objet"
OVERSEAS_DEPARTEMENTS = ("971", "972", "973", "974", "976")

# Construction years of QPV estates: the waves of large housing estates and their renewal.
QPV_CONSTRUCTION_YEARS = [1958, 1965, 1970, 1975, 1980, 1990, 2005, 2015]


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


def _of_scale(communes: pl.DataFrame, scale: Scale) -> pl.DataFrame:
    """The communes the scale covers: its explicit list, its départements, or all."""
    if scale.communes is not None:
        return communes.filter(pl.col("code_commune").is_in(list(scale.communes)))
    if scale.departements is not None:
        return communes.filter(pl.col("code_departement").is_in(list(scale.departements)))
    return communes


def select_communes(scale: Scale) -> pl.DataFrame:
    """Communes of the scale, restricted to those in an EPCI (the EPCI file must cover them)."""
    in_epci = load_communes().filter(pl.col("code_epci") != "")
    return _of_scale(in_epci, scale).sort("code_commune")


def epci_composition(scale: Scale, communes: pl.DataFrame) -> pl.DataFrame:
    """The INSEE EPCI composition file of the scale (``CODGEO;LIBGEO;EPCI;LIBEPCI;DEP;REG``).

    The territory's communes (all in an EPCI), plus, where the scale covers them, the communes
    outside any EPCI as INSEE writes them (``ZZZZZZZZZ`` / ``Sans objet``): the national scale
    has the four island communes. DEP is 2 characters (``2A``/``2B`` in Corsica) or 3 overseas
    (``971``).
    """
    departement = pl.col("code_departement")
    in_insee_file = (departement.str.len_chars() == 2) | departement.is_in(
        list(OVERSEAS_DEPARTEMENTS)
    )
    outside_epci = _of_scale(
        load_communes().filter((pl.col("code_epci") == "") & in_insee_file), scale
    )
    both = pl.concat([communes.select(outside_epci.columns), outside_epci]).sort("code_commune")
    no_epci = pl.col("code_epci") == ""
    return both.select(
        pl.col("code_commune").alias("CODGEO"),
        pl.col("nom_commune").alias("LIBGEO"),
        pl.when(no_epci).then(pl.lit(NO_EPCI_CODE)).otherwise(pl.col("code_epci")).alias("EPCI"),
        pl.when(no_epci).then(pl.lit(NO_EPCI_LABEL)).otherwise(pl.col("nom_epci")).alias("LIBEPCI"),
        pl.col("code_departement").alias("DEP"),
        pl.col("code_region").alias("REG"),
    )


def _social_share(population: np.ndarray) -> np.ndarray:
    """Share of a commune's dwellings that are social: ~1% in villages, ~20% in big towns."""
    magnitude = np.log10(np.maximum(population, 1))
    return 0.21 / (1.0 + np.exp(-(magnitude - 3.75) * 2.6))


def social_stock(communes: pl.DataFrame, scale: Scale, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Social dwellings per commune, calibrated on the national total (5.4 M).

    Returns (stock at national calibration, stock rescaled to the scale's total): QPVs are
    placed on the former (where they really are), residences sized on the latter.
    """
    france = load_communes().filter(pl.col("code_epci") != "")
    france_population = france["population"].to_numpy()
    national_raw = france_population * _social_share(france_population)
    factor = NATIONAL_SOCIAL / national_raw.sum()
    rng = rng_for(seed, "social_stock")
    population = communes["population"].to_numpy()
    raw = population * _social_share(population)
    noise = rng.lognormal(0.0, 0.25, size=raw.shape[0])
    stock = np.round(raw * factor * noise).astype(np.int64)
    stock[stock < 12] = 0  # no social housing in most villages
    scaled = stock
    if scale.social_total is not None and stock.sum() > 0:
        scaled = np.round(stock * scale.social_total / stock.sum()).astype(np.int64)
    return stock, scaled


def build_qpv(
    communes: pl.DataFrame, social: np.ndarray, seed: int, max_per_commune: int = 99
) -> tuple[pl.DataFrame, dict[str, list[tuple[str, float]]]]:
    """QPVs in the larger urban communes; some straddle a neighbouring commune of the EPCI.

    Returns the qpv reference table and, per commune, the list of (code_qpv, share of the
    commune's social stock in that QPV).
    """
    rng = rng_for(seed, "qpv")
    codes = communes["code_commune"].to_list()
    departements = communes["code_departement"].to_list()
    epcis = communes["code_epci"].to_list()
    names = communes["nom_commune"].to_list()
    per_commune: dict[str, list[tuple[str, float]]] = {}
    rows = []
    numbers_used: dict[str, int] = {}  # per département: QPV codes are numbered in it
    # about 1,360 QPV for 5.4 M social dwellings: one per ~1,100 social dwellings in QPV.
    by_epci: dict[str, list[int]] = {}
    for position, epci in enumerate(epcis):
        if social[position] > 0:
            by_epci.setdefault(epci, []).append(position)
    largest_first = np.argsort(-social, kind="stable")
    used_names: set[str] = set()
    few_communes = len(codes) <= 10  # tiny
    force_straddling = few_communes  # tiny: make sure exactly one QPV straddles two communes
    for position in largest_first:
        stock = int(social[position])
        if stock < 900:
            break
        qpv_share = float(rng.uniform(0.3, 0.55))
        n_qpv = max(1, round(qpv_share * stock / 1800 * rng.uniform(0.8, 1.2)))
        n_qpv = min(n_qpv, max_per_commune)
        departement = departements[position]
        weights = rng.dirichlet(np.full(n_qpv, 2.0))
        for rank in range(n_qpv):
            number = numbers_used.get(departement, 0) + 1
            if number > 99:
                break
            numbers_used[departement] = number
            code = f"QN{departement.zfill(3)}{number:02d}M"
            base = QPV_NAMES[int(rng.integers(len(QPV_NAMES)))]
            nom = base if base not in used_names else f"{base} - {names[position]}"
            used_names.add(nom)
            share = qpv_share * float(weights[rank])
            in_qpv = int(share * stock)
            per_commune.setdefault(codes[position], []).append((code, share))
            population = min(int(in_qpv * 2.3 * rng.uniform(1.2, 1.8)), 28000)
            rows.append((code, nom, codes[position], population))
            # a few QPV straddle a neighbouring commune of the same EPCI
            neighbours = [
                other
                for other in by_epci.get(epcis[position], [])
                if other != position and social[other] >= 700
            ]
            if neighbours and (force_straddling or (not few_communes and rng.random() < 0.10)):
                force_straddling = False
                other = neighbours[int(rng.integers(len(neighbours)))]
                other_share = float(rng.uniform(0.1, 0.3))
                per_commune.setdefault(codes[other], []).append((code, other_share))
                other_in_qpv = int(other_share * social[other])
                population = min(int(other_in_qpv * 2.3 * rng.uniform(1.2, 1.8)), 9000)
                rows.append((code, nom, codes[other], population))
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
        size = int(np.clip(rng.lognormal(np.log(mean), 0.6), MIN_RESIDENCE, MAX_RESIDENCE))
        if left - size < MIN_RESIDENCE:
            size = left if left <= MAX_RESIDENCE else size
        size = min(size, left)
        sizes.append(size)
        left -= size
    return sizes


def build_residences(
    communes: pl.DataFrame,
    social: np.ndarray,
    per_commune_qpv: dict[str, list[tuple[str, float]]],
    months: list[dt.date],
    seed: int,
) -> pl.DataFrame:
    """Residences (groupes) with commune, QPV, size, construction year and risk profile."""
    rng = rng_for(seed, "residences")
    first_year, last_year = months[0].year, months[-1].year
    commune_of: list[str] = []
    qpv_of: list[str] = []
    size_of: list[int] = []
    built_in: list[int] = []
    demolished_in: list[int] = []  # 0: not demolished
    codes = communes["code_commune"].to_list()
    for position, code in enumerate(codes):
        stock = int(social[position])
        if stock <= 0:
            continue
        parts = [(qpv, round(share * stock)) for qpv, share in per_commune_qpv.get(code, [])]
        in_qpv = sum(part for _, part in parts)
        parts.append(("", max(stock - in_qpv, 0)))  # the rest, outside any QPV
        for qpv, total in parts:
            if total <= 0:
                continue
            mean = 130.0 if qpv else 45.0  # QPV estates are larger
            for size in _split_sizes(rng, total, mean):
                commune_of.append(code)
                qpv_of.append(qpv)
                size_of.append(size)
                if qpv:
                    year = int(rng.choice(QPV_CONSTRUCTION_YEARS))
                else:
                    year = int(rng.integers(1960, first_year))
                year += int(rng.integers(0, 5)) if year < first_year - 5 else 0
                built_in.append(min(year, first_year - 1))
                # a few QPV residences demolished by urban renewal during the period
                demolished = 0
                if qpv and last_year > first_year and rng.random() < 0.01:
                    demolished = int(rng.integers(first_year + 1, last_year + 1))
                demolished_in.append(demolished)
    n = len(size_of)
    # new residences delivered during the period (~1% of the stock a year), in stock from Y+1
    n_new = round(n * 0.012 * max(len(months) / 12, 1))
    if n_new and n:
        for model in rng.integers(0, n, size=n_new):
            commune_of.append(commune_of[model])
            qpv_of.append("" if rng.random() < 0.85 else qpv_of[model])
            size_of.append(int(rng.integers(15, 80)))
            built_in.append(int(rng.integers(first_year - 1, last_year)))
            demolished_in.append(0)
    n = len(size_of)
    is_qpv = np.array(qpv_of, dtype=object) != ""
    # dealing points: mostly in QPV estates
    dealing = np.where(is_qpv, rng.random(n) < 0.15, rng.random(n) < 0.006)
    risk = rng.lognormal(0.0, 0.5, size=n)
    residences = pl.DataFrame(
        {
            "code_commune": commune_of,
            "code_qpv": qpv_of,
            "n_dw": np.array(size_of, dtype=np.int64),
            "construct": np.array(built_in, dtype=np.int64),
            "demolished": np.array(demolished_in, dtype=np.int64),
            "dealing": dealing,
            "risk": risk,
        }
    )
    residences = residences.with_row_index("res_uid").with_columns(pl.col("res_uid").cast(pl.Int64))
    return residences.join(
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
