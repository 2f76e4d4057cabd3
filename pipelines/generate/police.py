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

import numpy as np
import polars as pl

from . import writers as w
from .common import as_list as _obj
from .common import days_in_month, delivery_time, next_month, rng_for

# (label, unit, yearly rate per 1,000 inhabitants in a big city, denominator, schemas)
# denominator "log" = per 1,000 dwellings (burglaries). schemas: "n" new, "o" old, "no" both.
# Units as the 2025+ schema spells them; the old schema wrote them in lower case.
INDICATORS = [
    ("Cambriolages de logement", "Infraction", 9.0, "log", "no"),
    ("Destructions et dégradations volontaires", "Infraction", 9.0, "pop", "no"),
    ("Trafic de stupéfiants", "Mis en cause", 0.6, "pop", "no"),
    ("Usage de stupéfiants", "Mis en cause", 3.5, "pop", "no"),
    ("Violences physiques hors cadre familial", "Victime", 4.5, "pop", "n"),
    ("Violences physiques intrafamiliales", "Victime", 3.8, "pop", "n"),
    ("Coups et blessures volontaires", "Victime", 7.5, "pop", "o"),
    ("Violences sexuelles", "Victime", 1.6, "pop", "no"),
    ("Vols avec armes", "Infraction", 0.2, "pop", "no"),
    ("Vols violents sans arme", "Infraction", 1.5, "pop", "no"),
    ("Vols sans violence contre des personnes", "Victime entendue", 14.0, "pop", "no"),
    ("Vols de véhicules", "Véhicule", 3.5, "pop", "no"),
    ("Vols dans les véhicules", "Véhicule", 8.0, "pop", "no"),
    ("Vols d'accessoires sur véhicules", "Véhicule", 2.0, "pop", "no"),
    ("Escroqueries et fraudes aux moyens de paiement", "Victime", 6.5, "pop", "n"),
]

NEW_COLUMNS = [
    "annee",
    "indicateur",
    "unite_de_compte",
    "nombre",
    "taux_pour_mille",
    "est_diffuse",
    "insee_pop",
    "insee_pop_millesime",
    "insee_log",
    "insee_log_millesime",
    "complement_info_nombre",
    "complement_info_taux",
]


def editions(months: list[dt.date]) -> tuple[int, list[int], int, list[int]]:
    """(new edition, its years, old edition, its years): they overlap on one or more years."""
    first, last = months[0].year, months[-1].year
    new_edition = max(2025, last + 1)
    new_years = list(range(first - 1, last + 1))
    old_edition = min(2024, new_edition - 1)
    old_years = list(range(first - 2, first + 1 if last > first else first))
    return new_edition, new_years, old_edition, old_years


def _counts(
    seed: int, communes: pl.DataFrame, deal_per_commune: np.ndarray, years: list[int]
) -> np.ndarray:
    """Facts per (commune, year, indicator) for ``years`` plus the two years before."""
    rng = rng_for(seed, "ssmsi", communes["code_commune"][0] if communes.height else "", len(years))
    pop = communes["population"].to_numpy().astype(float)
    log = communes["logements_estimes"].to_numpy()
    urban = 0.25 + 0.75 / (1.0 + np.exp(-(np.log10(np.maximum(pop, 1)) - 4.0) * 2.0))
    ny = len(years) + 2
    base = np.array([r for _, _, r, _, _ in INDICATORS])
    denom = np.where(np.array([d for *_, d, _ in INDICATORS]) == "log", 1, 0)
    size = np.where(denom[None, :] == 1, log[:, None], pop[:, None])  # C x I
    local = rng.lognormal(0.0, 0.35, size=(pop.size, 1))
    dealing = 1.0 + np.minimum(deal_per_commune, 20)[:, None] * np.where(
        np.arange(len(INDICATORS))[None, :] == 2, 0.1, 0.02
    )
    lam = size / 1000.0 * base[None, :] * urban[:, None] * local * dealing  # C x I
    trend = 1.0 + 0.03 * (np.arange(ny) - ny + 1)
    lam3 = lam[:, None, :] * trend[None, :, None]
    return rng.poisson(lam3)  # C x (Y+2) x I


def write_ssmsi(
    out: pathlib.Path,
    seed: int,
    communes: pl.DataFrame,
    residences: pl.DataFrame,
    months: list[dt.date],
    progress=None,
) -> dict[str, int]:
    """Write both SSMSI files, processed by groups of départements (bounded memory)."""
    new_ed, new_years, old_ed, old_years = editions(months)
    all_years = sorted(set(new_years) | set(old_years))
    deal = residences.filter(pl.col("dealing")).group_by("code_commune").len()
    communes = communes.join(deal, on="code_commune", how="left").with_columns(
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
    new_path = out / "police" / f"donnee-comm-data.gouv-{new_ed - 1}-geographie{new_ed}.csv.gz"
    old_path = out / "police" / f"donnee-data.gouv-{old_ed - 1}-geographie{old_ed}-comm.csv"
    new_stream = w.CsvStream(new_path, w.SSMSI_NEW)
    old_stream = w.CsvStream(old_path, w.SSMSI_OLD)
    deps = communes["code_departement"].unique().sort().to_list()
    labels = np.array([i[0] for i in INDICATORS])
    units = np.array([i[1] for i in INDICATORS])
    is_log = np.array([i[3] == "log" for i in INDICATORS])
    in_new = np.array(["n" in i[4] for i in INDICATORS])
    in_old = np.array(["o" in i[4] for i in INDICATORS])
    for gi in range(0, len(deps), 8):
        group = deps[gi : gi + 8]
        c = communes.filter(pl.col("code_departement").is_in(group))
        counts = _counts(seed, c, c["len"].to_numpy(), all_years)
        n_c, _, _n_i = counts.shape
        for edition, years, mask, schema in (
            (new_ed, new_years, in_new, "new"),
            (old_ed, old_years, in_old, "old"),
        ):
            frames = []
            for y in years:
                yi = all_years.index(y) + 2
                vals = counts[:, yi, :]
                three = counts[:, yi - 2 : yi + 1, :].sum(axis=1)
                revise = 0 if schema == "new" else 1  # older edition: slightly different figures
                if revise:
                    vals = np.maximum(
                        vals + rng_for(seed, "revise", gi, y).integers(-1, 2, size=vals.shape), 0
                    )
                diff = three > 5
                pop = c["population"].to_numpy()
                log = c["logements_estimes"].to_numpy()
                ii = np.flatnonzero(mask)
                df = pl.DataFrame(
                    {
                        "code": np.repeat(c["code_commune"].to_numpy(), ii.size),
                        "dep": np.repeat(c["code_departement"].to_numpy(), ii.size),
                        "indicateur": np.tile(labels[ii], n_c),
                        "unite": np.tile(units[ii], n_c),
                        "val": vals[:, ii].reshape(-1),
                        "diff": diff[:, ii].reshape(-1),
                        "pop": np.repeat(pop, ii.size),
                        "log": np.repeat(log, ii.size),
                        "is_log": np.tile(is_log[ii], n_c),
                    }
                )
                denominator = pl.when(pl.col("is_log")).then(pl.col("log")).otherwise(pl.col("pop"))
                # No rate where the base is 0 (a commune without dwellings): never inf or NaN.
                df = df.with_columns(
                    pl.when(denominator > 0)
                    .then(1000.0 * pl.col("val") / denominator)
                    .alias("taux")
                )
                df = df.with_columns(
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
                frames.append(df.with_columns(pl.lit(y).alias("annee")))
            df = pl.concat(frames)
            masked = ~pl.col("diff")
            if schema == "new":
                outdf = df.select(
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
                new_stream.write(outdf)
            else:
                outdf = df.select(
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
                old_stream.write(outdf)
        if progress:
            progress(f"ssmsi: départements {group[0]}..{group[-1]}")
    new_stream.close()
    old_stream.close()
    w.set_mtime(old_path, dt.datetime(old_ed, 6, 15, 9, 0))
    w.set_mtime(new_path, max(dt.datetime(new_ed, 7, 10, 9, 0), dt.datetime(old_ed, 6, 16, 9, 0)))
    return {"files": 2, "rows": new_stream.rows + old_stream.rows}


EVENT_TYPES = np.array(
    [
        "intervention_police",
        "point_deal_demantele",
        "interdiction_paraitre",
        "fermeture_administrative",
        "injonction_resiliation_bail",
    ]
)
# monthly rates per dealing residence / per other QPV residence
RATE_DEAL = np.array([0.5, 0.05, 0.25, 0.01, 0.03])
RATE_QPV = np.array([0.02, 0.0, 0.0, 0.001, 0.0])
LAW = dt.date(2025, 6, 13)  # law against drug trafficking: bans from appearing


def events_month(
    seed: int, residences: pl.DataFrame, month: dt.date, boost: float = 1.0
) -> pl.DataFrame:
    """Police and prefecture events of one month, where the dealing residences are."""
    rng = rng_for(seed, "events", month.isoformat())
    act = (residences["construct"].to_numpy() < month.year) & (
        (residences["demolished"].to_numpy() == 0)
        | (residences["demolished"].to_numpy() > month.year)
    )
    r = residences.filter(pl.Series(act) & ((pl.col("code_qpv") != "") | pl.col("dealing")))
    deal = r["dealing"].to_numpy()
    rates = np.where(deal[:, None], RATE_DEAL[None, :], RATE_QPV[None, :]) * boost
    if month < dt.date(2025, 7, 1):
        rates[:, 2] = 0.0  # no ban from appearing before the 2025 law
    counts = rng.poisson(rates)
    ri, ti = np.nonzero(counts)
    reps = counts[ri, ti]
    ri, ti = np.repeat(ri, reps), np.repeat(ti, reps)
    n = ri.size
    day = rng.integers(1, days_in_month(month) + 1, size=n)
    if month.year == LAW.year and month.month == LAW.month:
        day = np.where(ti == 2, np.maximum(day, LAW.day), day)
    order = np.lexsort((ti, ri, day))
    ri, ti, day = ri[order], ti[order], day[order]
    duree = np.full(n, -1, dtype=np.int64)
    duree = np.where(ti == 2, rng.integers(1, 31, size=n), duree)
    duree = np.where(ti == 3, rng.choice([15, 30, 60, 90, 180], size=n), duree)
    with_landlord = (ti == 4) | (ti == 1) | (rng.random(n) < 0.7)
    date = np.datetime64(month.isoformat(), "D") + (day - 1).astype("timedelta64[D]")
    qpv = r["code_qpv"].to_numpy()[ri]
    df = pl.DataFrame(
        {
            "id_evenement": [f"EV{month:%Y%m}-{i + 1:05d}" for i in range(n)],
            "date": pl.Series(date, dtype=pl.Date),
            "DEPCOM": r["code_commune"].to_numpy()[ri],
            "QPV": pl.Series(_obj(np.where(qpv == "", None, qpv)), dtype=pl.String),
            "code_bailleur": pl.Series(
                _obj(np.where(with_landlord, r["code_bailleur"].to_numpy()[ri], None)),
                dtype=pl.String,
            ),
            "id_residence": pl.Series(
                _obj(np.where(with_landlord, r["id_residence"].to_numpy()[ri], None)),
                dtype=pl.String,
            ),
            "type": EVENT_TYPES[ti],
            "duree_jours": pl.Series(duree).replace(-1, None),
        }
    )
    return df


def write_events(
    out: pathlib.Path,
    seed: int,
    residences: pl.DataFrame,
    months: list[dt.date],
    boost: float = 1.0,
) -> dict[str, int]:
    files = rows = 0
    for month in months:
        df = events_month(seed, residences, month, boost)
        if not df.height:
            continue
        path = out / "police" / f"evenements_{month:%Y-%m}.csv"
        # A prefecture's table kept in Excel and saved as CSV (see writers.EXCEL_CP1252).
        rows += w.write_table(df, path, w.EXCEL_CP1252)
        w.set_mtime(path, delivery_time(next_month(month) - dt.timedelta(days=1), 7))
        files += 1
    return {"files": files, "rows": rows}
