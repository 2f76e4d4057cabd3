"""Police deliveries: the SSMSI commune crime base (two schemas) and monthly events.

Why two editions: SSMSI changed its schema in 2025 (and split "coups et blessures volontaires");
partners hold both files, which overlap on some years, so the warehouse must keep, for each
(commune, year, indicator), the row of the latest edition. Masking follows SSMSI: a commune
row is ``ndiff`` when five facts or fewer were recorded over three successive years; its count
and rate are then empty and ``complement_info_*`` carry a département average of the masked
communes (never the commune's value).
"""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.generate.common import (
    DRUG_TRAFFICKING_LAW,
    days_in_month,
    delivery_time,
    in_contract_order,
    month_end,
    next_month,
    rng_for,
    values_or_null,
)
from pipelines.generate.writers import (
    EXCEL_CP1252,
    SSMSI_NEW,
    SSMSI_OLD,
    CsvStream,
    set_mtime,
    write_table,
)
from pipelines.ingest.specs import TYPES_EVENEMENT


@dataclass(frozen=True)
class Indicator:
    """One SSMSI indicator and how often its facts happen."""

    label: str
    unit: str  # as the 2025+ schema spells it; the old schema wrote it in lower case
    big_city_rate: float  # facts a year per 1,000 inhabitants (or dwellings) in a big city
    per_dwelling: bool  # burglaries are counted per 1,000 dwellings, the rest per inhabitant
    in_new: bool  # published in the 2025+ schema
    in_old: bool  # published in the schema up to 2024


INDICATORS = (
    Indicator("Cambriolages de logement", "Infraction", 9.0, True, True, True),
    Indicator("Destructions et dégradations volontaires", "Infraction", 9.0, False, True, True),
    Indicator("Trafic de stupéfiants", "Mis en cause", 0.6, False, True, True),
    Indicator("Usage de stupéfiants", "Mis en cause", 3.5, False, True, True),
    Indicator("Violences physiques hors cadre familial", "Victime", 4.5, False, True, False),
    Indicator("Violences physiques intrafamiliales", "Victime", 3.8, False, True, False),
    # split in 2025 into the two indicators above
    Indicator("Coups et blessures volontaires", "Victime", 7.5, False, False, True),
    Indicator("Violences sexuelles", "Victime", 1.6, False, True, True),
    Indicator("Vols avec armes", "Infraction", 0.2, False, True, True),
    Indicator("Vols violents sans arme", "Infraction", 1.5, False, True, True),
    Indicator(
        "Vols sans violence contre des personnes", "Victime entendue", 14.0, False, True, True
    ),
    Indicator("Vols de véhicules", "Véhicule", 3.5, False, True, True),
    Indicator("Vols dans les véhicules", "Véhicule", 8.0, False, True, True),
    Indicator("Vols d'accessoires sur véhicules", "Véhicule", 2.0, False, True, True),
    Indicator("Escroqueries et fraudes aux moyens de paiement", "Victime", 6.5, False, True, False),
)
# Dealing points raise drug trafficking five times more than the other indicators.
DEALING_SENSITIVE = "Trafic de stupéfiants"
# Communes processed together: bounded memory at the national scale.
DEPARTEMENTS_PER_GROUP = 8


def editions(months: list[dt.date]) -> tuple[int, list[int], int, list[int]]:
    """(new edition, its years, old edition, its years): they overlap on one or more years."""
    first, last = months[0].year, months[-1].year
    new_edition = max(2025, last + 1)
    new_years = list(range(first - 1, last + 1))
    old_edition = min(2024, new_edition - 1)
    old_years = list(range(first - 2, first + 1 if last > first else first))
    return new_edition, new_years, old_edition, old_years


def _counts(
    seed: int, communes: pl.DataFrame, dealing_per_commune: np.ndarray, years: list[int]
) -> np.ndarray:
    """Facts per (commune, year, indicator) for ``years`` plus the two years before.

    The two years before give every year its three-year total, which decides masking.
    """
    first_commune = communes["code_commune"][0] if communes.height else ""
    rng = rng_for(seed, "ssmsi", first_commune, len(years))
    population = communes["population"].to_numpy().astype(float)
    dwellings = communes["logements_estimes"].to_numpy()
    urban = 0.25 + 0.75 / (1.0 + np.exp(-(np.log10(np.maximum(population, 1)) - 4.0) * 2.0))
    n_years = len(years) + 2
    rate = np.array([indicator.big_city_rate for indicator in INDICATORS])
    per_dwelling = np.array([indicator.per_dwelling for indicator in INDICATORS])
    base = np.where(per_dwelling[None, :], dwellings[:, None], population[:, None])  # C x I
    local = rng.lognormal(0.0, 0.35, size=(population.size, 1))
    sensitive = np.array([indicator.label == DEALING_SENSITIVE for indicator in INDICATORS])
    dealing = 1.0 + np.minimum(dealing_per_commune, 20)[:, None] * np.where(
        sensitive[None, :], 0.1, 0.02
    )
    expected = base / 1000.0 * rate[None, :] * urban[:, None] * local * dealing  # C x I
    trend = 1.0 + 0.03 * (np.arange(n_years) - n_years + 1)
    return rng.poisson(expected[:, None, :] * trend[None, :, None])  # C x (Y+2) x I


def write_ssmsi(
    out: pathlib.Path,
    seed: int,
    communes: pl.DataFrame,
    residences: pl.DataFrame,
    months: list[dt.date],
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write both SSMSI files, processed by groups of départements (bounded memory)."""
    new_edition, new_years, old_edition, old_years = editions(months)
    all_years = sorted(set(new_years) | set(old_years))
    dealing = residences.filter(pl.col("dealing")).group_by("code_commune").len()
    communes = communes.join(dealing, on="code_commune", how="left").with_columns(
        pl.col("len").fill_null(0)
    )
    # SSMSI's dwellings are census estimates (sums of weighted answers) with decimals, and its
    # burglary rates divide by them: write them so, never rounded to whole dwellings.
    fraction = rng_for(seed, "ssmsi-logements").random(communes.height)
    communes = communes.with_columns(
        pl.when(pl.col("logements") > 0)
        .then((pl.col("logements") - 0.5 + pl.Series(fraction)).round(4).clip(0.0))
        .otherwise(0.0)
        .alias("logements_estimes")
    )
    new_path = (
        out / "police" / f"donnee-comm-data.gouv-{new_edition - 1}-geographie{new_edition}.csv.gz"
    )
    old_path = (
        out / "police" / f"donnee-data.gouv-{old_edition - 1}-geographie{old_edition}-comm.csv"
    )
    new_stream = CsvStream(new_path, SSMSI_NEW)
    old_stream = CsvStream(old_path, SSMSI_OLD)
    departements = communes["code_departement"].unique().sort().to_list()
    labels = np.array([indicator.label for indicator in INDICATORS])
    units = np.array([indicator.unit for indicator in INDICATORS])
    per_dwelling = np.array([indicator.per_dwelling for indicator in INDICATORS])
    in_new = np.array([indicator.in_new for indicator in INDICATORS])
    in_old = np.array([indicator.in_old for indicator in INDICATORS])
    for group_start in range(0, len(departements), DEPARTEMENTS_PER_GROUP):
        group = departements[group_start : group_start + DEPARTEMENTS_PER_GROUP]
        group_communes = communes.filter(pl.col("code_departement").is_in(group))
        counts = _counts(seed, group_communes, group_communes["len"].to_numpy(), all_years)
        n_communes = counts.shape[0]
        for edition, years, published, schema in (
            (new_edition, new_years, in_new, "new"),
            (old_edition, old_years, in_old, "old"),
        ):
            frames = []
            for year in years:
                year_index = all_years.index(year) + 2
                facts = counts[:, year_index, :]
                three_years = counts[:, year_index - 2 : year_index + 1, :].sum(axis=1)
                if schema == "old":  # the older edition has slightly different figures
                    revision = rng_for(seed, "revise", group_start, year)
                    facts = np.maximum(facts + revision.integers(-1, 2, size=facts.shape), 0)
                diffused = three_years > 5
                population = group_communes["population"].to_numpy()
                dwellings = group_communes["logements_estimes"].to_numpy()
                indicators = np.flatnonzero(published)
                frame = pl.DataFrame(
                    {
                        "code": np.repeat(
                            group_communes["code_commune"].to_numpy(), indicators.size
                        ),
                        "dep": np.repeat(
                            group_communes["code_departement"].to_numpy(), indicators.size
                        ),
                        "indicateur": np.tile(labels[indicators], n_communes),
                        "unite": np.tile(units[indicators], n_communes),
                        "val": facts[:, indicators].reshape(-1),
                        "diff": diffused[:, indicators].reshape(-1),
                        "pop": np.repeat(population, indicators.size),
                        "log": np.repeat(dwellings, indicators.size),
                        "is_log": np.tile(per_dwelling[indicators], n_communes),
                    }
                )
                denominator = pl.when(pl.col("is_log")).then(pl.col("log")).otherwise(pl.col("pop"))
                # No rate where the base is 0 (a commune without dwellings): never inf or NaN.
                frame = frame.with_columns(
                    pl.when(denominator > 0)
                    .then(1000.0 * pl.col("val") / denominator)
                    .alias("taux")
                )
                # what masked rows carry instead: the département average of masked communes
                frame = frame.with_columns(
                    pl.when(~pl.col("diff"))
                    .then(pl.col("val"))
                    .mean()
                    .over("dep", "indicateur")
                    .alias("ci_n"),
                    pl.when(~pl.col("diff"))
                    .then(pl.col("taux"))
                    .mean()
                    .over("dep", "indicateur")
                    .alias("ci_t"),
                )
                frames.append(frame.with_columns(pl.lit(year).alias("annee")))
            edition_rows = pl.concat(frames)
            masked = ~pl.col("diff")
            if schema == "new":
                new_stream.write(
                    edition_rows.select(
                        pl.col("code").alias(f"CODGEO_{edition}"),
                        pl.col("annee").cast(pl.Int64),
                        "indicateur",
                        pl.col("unite").alias("unite_de_compte"),
                        pl.when(masked).then(None).otherwise(pl.col("val")).alias("nombre"),
                        pl.when(masked)
                        .then(None)
                        .otherwise(pl.col("taux").round(6))
                        .alias("taux_pour_mille"),
                        pl.when(masked)
                        .then(pl.lit("ndiff"))
                        .otherwise(pl.lit("diff"))
                        .alias("est_diffuse"),
                        pl.col("pop").alias("insee_pop"),
                        pl.lit(2022).alias("insee_pop_millesime"),
                        pl.col("log").alias("insee_log"),
                        pl.lit(2021).alias("insee_log_millesime"),
                        pl.when(masked)
                        .then(pl.col("ci_n").round(6))
                        .otherwise(None)
                        .alias("complement_info_nombre"),
                        pl.when(masked)
                        .then(pl.col("ci_t").round(6))
                        .otherwise(None)
                        .alias("complement_info_taux"),
                    )
                )
            else:
                old_stream.write(
                    edition_rows.select(
                        pl.col("code").alias(f"CODGEO_{edition}"),
                        (pl.col("annee") % 100).cast(pl.String).str.zfill(2).alias("annee"),
                        pl.col("indicateur").alias("classe"),
                        pl.col("unite").str.to_lowercase().alias("unité.de.compte"),
                        pl.when(masked)
                        .then(pl.lit("ndiff"))
                        .otherwise(pl.lit("diff"))
                        .alias("valeur.publiée"),
                        pl.when(masked).then(None).otherwise(pl.col("val")).alias("faits"),
                        pl.when(masked)
                        .then(None)
                        .otherwise(pl.col("taux").round(6))
                        .alias("tauxpourmille"),
                        pl.when(masked)
                        .then(pl.col("ci_n").round(6))
                        .otherwise(None)
                        .alias("complementinfoval"),
                        pl.when(masked)
                        .then(pl.col("ci_t").round(6))
                        .otherwise(None)
                        .alias("complementinfotaux"),
                        pl.col("pop").alias("POP"),
                        pl.lit("21").alias("millPOP"),
                        pl.col("log").alias("LOG"),
                        pl.lit("20").alias("millLOG"),
                    )
                )
        if progress:
            progress(f"ssmsi: départements {group[0]}..{group[-1]}")
    new_stream.close()
    old_stream.close()
    # published in June (old) and July (new): the newer edition is always the later file
    set_mtime(old_path, dt.datetime(old_edition, 6, 15, 9, 0))
    set_mtime(
        new_path,
        max(dt.datetime(new_edition, 7, 10, 9, 0), dt.datetime(old_edition, 6, 16, 9, 0)),
    )
    return {"files": 2, "rows": new_stream.rows + old_stream.rows}


# Monthly rate of each event type per residence with a dealing point and per other QPV
# residence. The order is that of the draws (and of same-day events of a residence): part of
# the seeded output.
EVENT_RATES = {
    "intervention_police": (0.5, 0.02),
    "point_deal_demantele": (0.05, 0.0),
    "interdiction_paraitre": (0.25, 0.0),
    "fermeture_administrative": (0.01, 0.001),
    "injonction_resiliation_bail": (0.03, 0.0),
}
if set(EVENT_RATES) != set(TYPES_EVENEMENT):
    raise AssertionError("every police event type of the contract needs its rates")
EVENT_TYPES = np.array(list(EVENT_RATES))
RATE_DEALING = np.array([dealing for dealing, _ in EVENT_RATES.values()])
RATE_QPV = np.array([qpv for _, qpv in EVENT_RATES.values()])
# Bans from appearing exist since the drug-trafficking law: from the month after it.
FIRST_BAN_MONTH = next_month(DRUG_TRAFFICKING_LAW)
# Days of a closure ordered by the prefect.
CLOSURE_DAYS = [15, 30, 60, 90, 180]


def events_month(
    seed: int, residences: pl.DataFrame, month: dt.date, boost: float = 1.0
) -> pl.DataFrame:
    """Police and prefecture events of one month, where the dealing residences are."""
    rng = rng_for(seed, "events", month.isoformat())
    built = residences["construct"].to_numpy()
    demolished = residences["demolished"].to_numpy()
    active = (built < month.year) & ((demolished == 0) | (demolished > month.year))
    targets = residences.filter(
        pl.Series(active) & ((pl.col("code_qpv") != "") | pl.col("dealing"))
    )
    dealing = targets["dealing"].to_numpy()
    rates = np.where(dealing[:, None], RATE_DEALING[None, :], RATE_QPV[None, :]) * boost
    if month < FIRST_BAN_MONTH:
        rates[:, EVENT_TYPES == "interdiction_paraitre"] = 0.0
    counts = rng.poisson(rates)
    # one row per event: its residence (row of targets) and type (position in EVENT_TYPES)
    target_row, type_position = np.nonzero(counts)
    repeats = counts[target_row, type_position]
    target_row, type_position = np.repeat(target_row, repeats), np.repeat(type_position, repeats)
    n = target_row.size
    day = rng.integers(1, days_in_month(month) + 1, size=n)
    order = np.lexsort((type_position, target_row, day))
    target_row, type_position, day = target_row[order], type_position[order], day[order]
    event_type = EVENT_TYPES[type_position]
    # bans last days, closures one of the usual durations, other events none (-1)
    duration = np.full(n, -1, dtype=np.int64)
    duration = np.where(
        event_type == "interdiction_paraitre", rng.integers(1, 31, size=n), duration
    )
    duration = np.where(
        event_type == "fermeture_administrative", rng.choice(CLOSURE_DAYS, size=n), duration
    )
    # injunctions and dismantled points always name the landlord, other events mostly
    with_landlord = (
        (event_type == "injonction_resiliation_bail")
        | (event_type == "point_deal_demantele")
        | (rng.random(n) < 0.7)
    )
    date = np.datetime64(month.isoformat(), "D") + (day - 1).astype("timedelta64[D]")
    qpv = targets["code_qpv"].to_numpy()[target_row]
    events = pl.DataFrame(
        {
            "id_evenement": [f"EV{month:%Y%m}-{number + 1:05d}" for number in range(n)],
            "date": pl.Series(date, dtype=pl.Date),
            "DEPCOM": targets["code_commune"].to_numpy()[target_row],
            "QPV": pl.Series(values_or_null(qpv != "", qpv), dtype=pl.String),
            "code_bailleur": pl.Series(
                values_or_null(with_landlord, targets["code_bailleur"].to_numpy()[target_row]),
                dtype=pl.String,
            ),
            "id_residence": pl.Series(
                values_or_null(with_landlord, targets["id_residence"].to_numpy()[target_row]),
                dtype=pl.String,
            ),
            "type": event_type,
            "duree_jours": pl.Series(duration).replace(-1, None),
        }
    )
    return in_contract_order(events, "evenements")


def write_events(
    out: pathlib.Path,
    seed: int,
    residences: pl.DataFrame,
    months: list[dt.date],
    boost: float = 1.0,
) -> dict[str, int]:
    """One ``evenements_<YYYY-MM>.csv`` per month with events; returns files and rows."""
    files = rows = 0
    for month in months:
        events = events_month(seed, residences, month, boost)
        if not events.height:
            continue
        path = out / "police" / f"evenements_{month:%Y-%m}.csv"
        # A prefecture's table kept in Excel and saved as CSV (see writers.EXCEL_CP1252).
        rows += write_table(events, path, EXCEL_CP1252)
        set_mtime(path, delivery_time(month_end(month), 7))
        files += 1
    return {"files": files, "rows": rows}
