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

from . import writers as w
from .common import as_list as _obj
from .common import days_in_month, delivery_time, key, next_month, rng_for
from .landlords import Landlord, active_mask, dwellings, write_stock
from .names import CATEGORIES, COMMENT_SECOND_LINES, COMMENTS

LIEUX = np.array(["hall", "cage_escalier", "parking", "cave", "logement", "abords", "local_commun"])
# yearly incidents per 1,000 dwellings outside QPV, and multipliers
BASE = np.array([22.0, 5.0, 14.0, 1.0, 0.8, 3.0, 9.0, 4.0])
QPV_MULT = np.array([2.5, 5.0, 1.5, 4.0, 8.0, 3.0, 2.0, 1.5])
DEAL_MULT = np.array([2.0, 5.0, 1.3, 3.0, 10.0, 2.0, 1.5, 1.5])
# seasonality by category (Jan..Dec)
SEASON = np.ones((8, 12))
SEASON[1] = [0.8, 0.8, 0.9, 1.0, 1.1, 1.25, 1.35, 1.3, 1.05, 0.95, 0.85, 0.85]  # occupation
SEASON[2] = [0.85, 0.85, 0.9, 1.0, 1.1, 1.2, 1.3, 1.25, 1.0, 0.9, 0.85, 0.9]  # noise
SEASON[5] = [1.8, 0.8, 0.8, 0.9, 0.9, 1.0, 1.6, 1.0, 0.8, 0.9, 0.9, 1.2]  # fires
SEASON[6] = [0.9, 0.9, 1.0, 1.1, 1.1, 1.0, 1.0, 0.9, 1.1, 1.0, 1.0, 1.0]
LIEU_P = np.array(
    [
        [0.35, 0.20, 0.12, 0.10, 0.03, 0.10, 0.10],
        [0.70, 0.20, 0.03, 0.03, 0.00, 0.04, 0.00],
        [0.15, 0.15, 0.05, 0.02, 0.55, 0.05, 0.03],
        [0.40, 0.10, 0.10, 0.05, 0.05, 0.25, 0.05],
        [0.50, 0.15, 0.10, 0.10, 0.02, 0.13, 0.00],
        [0.10, 0.05, 0.30, 0.15, 0.05, 0.15, 0.20],
        [0.15, 0.10, 0.10, 0.15, 0.00, 0.35, 0.15],
        [0.25, 0.10, 0.20, 0.10, 0.05, 0.20, 0.10],
    ]
)
GRAV_P = np.array(
    [
        [0.50, 0.30, 0.15, 0.05],
        [0.45, 0.35, 0.15, 0.05],
        [0.55, 0.30, 0.12, 0.03],
        [0.20, 0.35, 0.30, 0.15],
        [0.15, 0.30, 0.35, 0.20],
        [0.30, 0.30, 0.25, 0.15],
        [0.70, 0.22, 0.06, 0.02],
        [0.60, 0.25, 0.10, 0.05],
    ]
)
PLAINTE_P = np.array([0.25, 0.05, 0.10, 0.70, 0.30, 0.50, 0.05, 0.10])
COST_MU = np.array([250.0, 60.0, 0.0, 0.0, 0.0, 1200.0, 120.0, 80.0])
COST_P = np.array([0.8, 0.2, 0.05, 0.1, 0.1, 0.7, 0.7, 0.3])

MOTIFS = np.array(["trouble_jouissance", "trafic_stupefiants", "impayes", "autre"])


@dataclass
class Warts:
    """Which bad rows / corrected re-deliveries to inject."""

    random: bool  # small/national: seeded low-rate warts
    fixed: dict[tuple[int, int], list[str]]  # tiny: (landlord idx, month idx) -> wart kinds
    corrige: set[tuple[int, int]]  # (landlord idx, month idx) re-delivered with _corrige


def tenant_ids(res_uid: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Fake, stable tenant id per dwelling (``L`` + 7 digits), never a real identifier."""
    v = ((res_uid.astype(np.int64) * 1000 + k.astype(np.int64)) * 7919 + 12345) % 10_000_000
    return np.array([f"L{x:07d}" for x in v.tolist()], dtype=object)


def _format_ids(ll: Landlord, month: dt.date, seq: np.ndarray) -> list[str]:
    if ll.inc_style == 0:
        return [f"INC{month.year}-{n:06d}" for n in seq.tolist()]
    if ll.inc_style == 1:
        return [str(100000 + n) for n in seq.tolist()]
    return [f"{ll.code[:3]}/{month.year % 100:02d}/{n:05d}" for n in seq.tolist()]


@dataclass
class ActiveResidences:
    """numpy views of a landlord's residences in stock one year (computed once per year)."""

    n_dw: np.ndarray
    isq: np.ndarray
    deal: np.ndarray
    risk: np.ndarray
    uid: np.ndarray
    rid: np.ndarray

    @classmethod
    def of(cls, res: pl.DataFrame, year: int) -> ActiveResidences:
        r = res.filter(pl.Series(active_mask(res, year)))
        return cls(
            r["n_dw"].to_numpy(),
            (r["code_qpv"] != "").to_numpy(),
            r["dealing"].to_numpy(),
            r["risk"].to_numpy(),
            r["res_uid"].to_numpy(),
            np.array(r["id_residence"].to_list(), dtype=object),
        )


def _category_codes(ll: Landlord) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per common category, the landlord's codes and their usage probabilities."""
    assert ll.codes is not None
    out = []
    for cat in CATEGORIES:
        c = ll.codes.filter(pl.col("categorie") == cat)
        wts = c["weight"].to_numpy()
        out.append((np.array(c["code_source"].to_list(), dtype=object), wts / wts.sum()))
    return out


def incidents_month(
    seed: int,
    ll: Landlord,
    r: ActiveResidences,
    month: dt.date,
    counter: int,
    last_month: dt.date,
    boost: float = 1.0,
    cat_codes: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> pl.DataFrame:
    """Incidents reported in one month for one landlord (ids continue the landlord's counter)."""
    rng = rng_for(seed, "incidents", ll.code, month.isoformat())
    cat_codes = cat_codes or _category_codes(ll)
    n_dw = r.n_dw.astype(float)
    lam = (
        (n_dw / 1000.0)[:, None]
        * (BASE / 12.0)[None, :]
        * np.where(r.isq[:, None], QPV_MULT[None, :], 1.0)
        * np.where(r.deal[:, None], DEAL_MULT[None, :], 1.0)
        * r.risk[:, None]
        * SEASON[:, month.month - 1][None, :]
        * ll.intensity
        * boost
    )
    counts = rng.poisson(lam)
    ri, ci = np.nonzero(counts)
    reps = counts[ri, ci]
    ri = np.repeat(ri, reps)
    ci = np.repeat(ci, reps)
    n = ri.size
    dim = days_in_month(month)
    day = rng.integers(1, dim + 1, size=n)
    fire = ci == 5
    if month.month in (1, 7, 12):
        special = {1: 1, 7: 14, 12: 31}[month.month]
        day = np.where(fire & (rng.random(n) < 0.3), special, day)
    sign = np.datetime64(month.isoformat(), "D") + (day - 1).astype("timedelta64[D]")
    # order by date, then residence, then category: ids follow the reporting order
    order = np.lexsort((ci, ri, day))
    ri, ci, day, sign = ri[order], ci[order], day[order], sign[order]
    lieu = np.empty(n, dtype=np.int64)
    grav = np.empty(n, dtype=np.int64)
    code = np.empty(n, dtype=object)
    for c in range(8):
        m = ci == c
        k = int(m.sum())
        if not k:
            continue
        lieu[m] = rng.choice(7, size=k, p=LIEU_P[c])
        grav[m] = rng.choice(4, size=k, p=GRAV_P[c]) + 1
        codes_c, p_c = cat_codes[c]
        code[m] = codes_c[rng.choice(len(p_c), size=k, p=p_c)]
    # closure: most closed within weeks, recent ones more often still open
    recent = (last_month.year * 12 + last_month.month) - (month.year * 12 + month.month) < 2
    p_open = 0.12 + (0.25 if recent else 0.0)
    delay = np.minimum(rng.geometric(0.08, size=n) - 1, 180)
    clot = sign + delay.astype("timedelta64[D]")
    open_ = rng.random(n) < p_open
    plainte = np.where(rng.random(n) < PLAINTE_P[ci], "oui", "non")
    has_cost = rng.random(n) < COST_P[ci]
    mu = np.where(COST_MU[ci] > 0, COST_MU[ci], 50.0)
    cost = np.round(rng.lognormal(np.log(mu), 0.9), 2)
    n_dw_i = r.n_dw[ri]
    kk = (rng.random(n) * n_dw_i).astype(np.int64)
    has_log = (
        (LIEUX[lieu] == "logement") | ((ci == 2) & (rng.random(n) < 0.5)) | (rng.random(n) < 0.05)
    )
    has_loc = has_log & np.isin(ci, [2, 4, 6, 3]) & (rng.random(n) < 0.6)
    uid = r.uid[ri]
    loc = tenant_ids(uid, kk)
    has_comment = rng.random(n) < 0.6
    comment = np.empty(n, dtype=object)
    for c in range(8):
        m = ci == c
        if m.any():
            tmpl = COMMENTS[CATEGORIES[c]]
            comment[m] = np.array(tmpl, dtype=object)[rng.integers(0, len(tmpl), size=int(m.sum()))]
    seq = counter + 1 + np.arange(n)
    rid = r.rid[ri]
    df = pl.DataFrame(
        {
            "id_incident": _format_ids(ll, month, seq),
            "date_signalement": pl.Series(sign, dtype=pl.Date),
            "id_residence": pl.Series(_obj(rid), dtype=pl.String),
            "id_logement": pl.Series(
                [
                    f"{a}-{b:03d}" if h else None
                    for a, b, h in zip(rid, kk.tolist(), has_log.tolist(), strict=True)
                ],
                dtype=pl.String,
            ),
            "code_categorie": pl.Series(_obj(code), dtype=pl.String),
            "lieu": LIEUX[lieu],
            "gravite": grav,
            "date_cloture": pl.Series(np.where(open_, np.datetime64("NaT"), clot), dtype=pl.Date),
            "plainte_deposee": plainte,
            "cout_euros": pl.Series(np.where(has_cost, cost, np.nan)).fill_nan(None),
            "id_locataire": pl.Series(_obj(np.where(has_loc, loc, None)), dtype=pl.String),
            "commentaire": pl.Series(_obj(np.where(has_comment, comment, None)), dtype=pl.String),
        }
    )
    return df


def _multiline_comment(
    df: pl.DataFrame, rng: np.random.Generator, force: bool, p_file: float = 0.15
) -> pl.DataFrame:
    """Give one commented row of the file a second line (rare in real exports: a few files).

    Never one of the last two rows (the first delivery of a corrected month may lack the last
    one): a line break is inside a record, files still end with a plain one.
    """
    if not (force or rng.random() < p_file) or df.height < 4:
        return df
    commented = np.flatnonzero(df["commentaire"].is_not_null().to_numpy()[:-2])
    if not commented.size:
        return df
    i = int(commented[int(rng.integers(commented.size))])
    second = COMMENT_SECOND_LINES[int(rng.integers(len(COMMENT_SECOND_LINES)))]
    return df.with_columns(
        pl.when(pl.int_range(pl.len()) == i)
        .then(pl.col("commentaire") + pl.lit("\n" + second))
        .otherwise(pl.col("commentaire"))
        .alias("commentaire")
    )


def with_times(df: pl.DataFrame, salt: int) -> pl.DataFrame:
    """Reporting and closing dates as an information system exports them: with a time of day.

    The time derives from the incident's number (the digits ending its id) and ``salt``, so the
    same incident has the same time in a delivery and in its corrected re-delivery; vectorised.
    A closure on the day of the report is later that day; the dates themselves are unchanged.
    """
    n = pl.col("id_incident").str.extract(r"(\d+)$").cast(pl.Int64).fill_null(0)
    df = df.with_columns(((n * 2_654_435_761 + salt) % 4_294_967_296).alias("__h1"))
    h1 = pl.col("__h1")
    h2 = (h1 * 40_503 + 12_345) % 4_294_967_296
    reported = 7 * 60 + h1 % (15 * 60)  # 07:00..21:59
    same_day = pl.col("date_cloture") == pl.col("date_signalement")
    closed = (
        pl.when(same_day)
        .then(reported + 1 + h2 % (23 * 60 + 59 - reported))
        .otherwise(8 * 60 + h2 % (11 * 60))  # 08:00..18:59
    )

    def at(column: str, minutes: pl.Expr) -> pl.Expr:
        offset = (minutes * 60_000).cast(pl.Duration("ms"))
        return (pl.col(column).cast(pl.Datetime("ms")) + offset).alias(column)

    return df.with_columns(at("date_signalement", reported), at("date_cloture", closed)).drop(
        "__h1"
    )


def export_incidents(df: pl.DataFrame, dialect: w.Dialect, salt: int) -> pl.DataFrame:
    """The month's incidents in the shape ``dialect``'s tool writes them."""
    if df.height == 0:  # a month without incident: the header only (columns may be untyped)
        return df
    if dialect.timestamp_format:
        df = with_times(df, salt)
    return w.spreadsheet_amounts(df, dialect, ["cout_euros"])


def _apply_warts(
    df: pl.DataFrame, kinds: list[str], month: dt.date, rng: np.random.Generator
) -> pl.DataFrame:
    """Spoil a few rows the way real exports do (each wart touches one row)."""
    if df.height < 2:
        return df
    for kind in kinds:
        i = int(rng.integers(0, df.height - 1))
        if kind == "hors_mois":  # reported at the end of the previous month, filed late
            d = month - dt.timedelta(days=1)
            df = df.with_columns(
                pl.when(pl.int_range(pl.len()) == i)
                .then(pl.lit(d))
                .otherwise(pl.col("date_signalement"))
                .alias("date_signalement"),
                pl.when(pl.int_range(pl.len()) == i)
                .then(None)
                .otherwise(pl.col("date_cloture"))
                .alias("date_cloture"),
            )
        elif kind == "gravite":
            df = df.with_columns(
                pl.when(pl.int_range(pl.len()) == i)
                .then(pl.lit(5))
                .otherwise(pl.col("gravite"))
                .alias("gravite")
            )
        elif kind == "cloture_avant":
            df = df.with_columns(
                pl.when(pl.int_range(pl.len()) == i)
                .then(pl.col("date_signalement") - pl.duration(days=3))
                .otherwise(pl.col("date_cloture"))
                .alias("date_cloture")
            )
        elif kind == "doublon":  # same incident sent twice, the later line updated (closed)
            row = df.slice(i, 1).with_columns(
                (pl.col("date_signalement") + pl.duration(days=5)).alias("date_cloture")
            )
            df = pl.concat([df, row])
    return df


def procedures(
    seed: int, ll: Landlord, res: pl.DataFrame, months: list[dt.date], boost: float = 1.0
) -> pl.DataFrame:
    """All procedure steps of the landlord over the period (one row per step)."""
    rng = rng_for(seed, "procedures", ll.code)
    # only residences in stock during the whole period: a procedure targets an existing dwelling
    last_year = months[-1].year
    res = res.filter(
        (pl.col("construct") < months[0].year)
        & ((pl.col("demolished") == 0) | (pl.col("demolished") > last_year))
    )
    n_months = len(months)
    total_dw = float(res["n_dw"].sum())
    n = int(rng.poisson(n_months * (1.0 + total_dw / 4000.0) * boost))
    if n == 0 or res.height == 0:
        return pl.DataFrame()
    deal = res["dealing"].to_numpy()
    wgt = res["n_dw"].to_numpy() * res["risk"].to_numpy() * np.where(deal, 8.0, 1.0)
    ri = rng.choice(res.height, size=n, p=wgt / wgt.sum())
    start_m = rng.integers(0, n_months, size=n)
    start_d = rng.integers(1, 29, size=n)
    deal_i = deal[ri]
    u = rng.random(n)
    motif = np.where(
        deal_i,
        np.select([u < 0.5, u < 0.85, u < 0.95], [1, 0, 2], 3),
        np.select([u < 0.4, u < 0.85, u < 0.93], [0, 2, 1], 3),
    )
    law = np.datetime64("2025-06-13")
    first = np.datetime64(months[0].isoformat(), "D")
    period_end = np.datetime64(next_month(months[-1]).isoformat(), "D")
    month_starts = np.array([np.datetime64(m.isoformat(), "D") for m in months])
    d0 = month_starts[start_m] + (start_d - 1).astype("timedelta64[D]")
    prefet = (motif == 1) & (rng.random(n) < np.where(d0 >= law, 0.3, 0.05))
    n_dw = res["n_dw"].to_numpy()[ri]
    kk = (rng.random(n) * n_dw).astype(np.int64)
    uid = res["res_uid"].to_numpy()[ri]
    loc = tenant_ids(uid, kk)
    rid = res["id_residence"].to_numpy()[ri]
    rows: list[tuple] = []
    for p in range(n):
        steps = []
        t = d0[p]
        seq = ["assignation"] if prefet[p] else ["mise_en_demeure"]
        for nxt, p_go in (
            ("assignation", 0.8),
            ("jugement_resiliation", 0.75),
            ("expulsion_realisee", 0.6),
        ):
            if seq[-1] == "mise_en_demeure" and nxt != "assignation":
                continue
            if nxt == "assignation" and prefet[p]:
                continue
            x = rng.random()
            if x < p_go:
                seq.append(nxt)
            else:
                if x < p_go + 0.6 * (1 - p_go):
                    seq.append("abandon")
                break
        for j, etape in enumerate(seq):
            if j:
                t = t + np.timedelta64(int(rng.integers(30, 150)), "D")
            if t >= period_end:
                break
            if t < first:
                continue
            steps.append((etape, t))
        pid = f"PR-{ll.code[:4]}-{p + 1:05d}"
        for etape, t in steps:
            rows.append(
                (
                    pid,
                    f"{rid[p]}-{kk[p]:03d}",
                    loc[p],
                    MOTIFS[motif[p]],
                    etape,
                    t.astype("datetime64[D]").item(),
                    "injonction_prefet" if prefet[p] else "bailleur",
                )
            )
    return pl.DataFrame(
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


def write_landlord(
    out: pathlib.Path,
    seed: int,
    ll: Landlord,
    res: pl.DataFrame,
    months: list[dt.date],
    warts: Warts,
    boost: float = 1.0,
) -> dict[str, int]:
    """Write every file of one landlord; returns files and rows written."""
    files = rows = 0
    res = res.sort("res_uid")
    dw = dwellings(seed, ll, res)
    for year in sorted({m.year for m in months}):
        _, n = write_stock(out, seed, ll, res, dw, year)
        files += 1
        rows += n
    del dw
    counter = 0
    wart_rng = rng_for(seed, "warts", ll.code)
    d_inc = ll.dialects["incidents"]
    salt = key(seed, "heures", ll.code)
    text_rng = rng_for(seed, "commentaires", ll.code)
    cat_codes = _category_codes(ll)
    by_year = {y: ActiveResidences.of(res, y) for y in sorted({m.year for m in months})}
    for mi, month in enumerate(months):
        df = incidents_month(
            seed, ll, by_year[month.year], month, counter, months[-1], boost, cat_codes
        )
        counter += df.height
        df = _multiline_comment(df, text_rng, force=not warts.random and mi == 0)
        kinds: list[str] = []
        if warts.random:
            for kind, p in (
                ("hors_mois", 0.03),
                ("gravite", 0.02),
                ("cloture_avant", 0.02),
                ("doublon", 0.02),
            ):
                if wart_rng.random() < p:
                    kinds.append(kind)
        kinds += warts.fixed.get((ll.idx, mi), [])
        original = df
        corrige = (ll.idx, mi) in warts.corrige
        if corrige and df.height > 5:
            # first delivery forgot a few incidents; the corrected one has them all
            keep = rng_for(seed, "forgot", ll.code, mi).random(df.height) >= 0.05
            keep[0] = True
            keep[-1] = False
            original = df.filter(pl.Series(keep))
        spoiled = _apply_warts(original, kinds, month, wart_rng)
        end = next_month(month) - dt.timedelta(days=1)
        path = out / "landlord" / f"{ll.code}_incidents_{month:%Y-%m}{d_inc.extension}"
        rows += w.write_table(export_incidents(spoiled, d_inc, salt), path, d_inc)
        w.set_mtime(path, delivery_time(end, 5, ll.idx))
        files += 1
        if corrige:
            path = out / "landlord" / f"{ll.code}_incidents_{month:%Y-%m}_corrige{d_inc.extension}"
            rows += w.write_table(export_incidents(df, d_inc, salt), path, d_inc)
            w.set_mtime(path, delivery_time(end, 25, ll.idx))
            files += 1
    proc = procedures(seed, ll, res, months, max(1.0, boost / 4.0))
    d_proc = ll.dialects["procedures"]
    if proc.height:
        proc = proc.with_columns(pl.col("date_etape").dt.truncate("1mo").alias("_m"))
        for month in months:
            part = proc.filter(pl.col("_m") == month).drop("_m")
            if not part.height:
                continue
            end = next_month(month) - dt.timedelta(days=1)
            path = out / "landlord" / f"{ll.code}_procedures_{month:%Y-%m}{d_proc.extension}"
            rows += w.write_table(part, path, d_proc)
            w.set_mtime(path, delivery_time(end, 6, ll.idx))
            files += 1
    return {"files": files, "rows": rows}


__all__ = ["Warts", "incidents_month", "procedures", "write_landlord"]
