"""Landlords: catalogue, export dialects, incident code schemes, stock (patrimoine) files.

Why: each landlord in real life has its own information system: its own identifiers, its own
incident codes (mapped to the common nomenclature by the inter-landlord grouping) and its own
export format. The catalogue fixes these per landlord so that every file of one landlord is
consistent across months and years.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from . import writers as w
from .common import Scale, delivery_time, rng_for
from .names import (
    CATEGORIES,
    ESH_SUFFIX,
    ESH_SYLLABLES_A,
    ESH_SYLLABLES_B,
    SOURCE_LABELS,
)

KINDS = ("patrimoine", "incidents", "procedures")
FINAN_CODES = np.array(["10", "11", "12", "13", "14", "15", "17", "49", "50", "51", "52", "55"])
FINAN_P = np.array([0.05, 0.05, 0.08, 0.08, 0.05, 0.03, 0.02, 0.04, 0.30, 0.12, 0.10, 0.08])
FINAN_P = FINAN_P / FINAN_P.sum()
STATUTS = np.array(["occupe", "vacant", "vacant_insecurite", "vacant_technique"])


def _siren(rng: np.random.Generator) -> str:
    """Fake 9-digit SIREN passing the Luhn check (like real ones), not a real company."""
    digits = [int(x) for x in rng.integers(0, 10, size=8)]
    digits[0] = int(rng.integers(2, 8))
    for check in range(10):
        cand = [*digits, check]
        total = 0
        for pos, d in enumerate(reversed(cand)):
            d2 = d * 2 if pos % 2 else d
            total += d2 - 9 if d2 > 9 else d2
        if total % 10 == 0:
            return "".join(map(str, cand))
    raise AssertionError("unreachable")


@dataclass
class Landlord:
    """One social landlord and how it exports its data."""

    idx: int
    code: str
    nom: str
    siren: str
    kind: str  # oph, oph_ville, esh, national
    deps: list[str]
    weight: float
    city: str = ""
    scheme: int = 0
    res_style: int = 0
    inc_style: int = 0
    intensity: float = 1.0
    dialects: dict[str, w.Dialect] = field(default_factory=dict)
    codes: pl.DataFrame | None = None  # code_source, libelle_source, categorie, weight


@dataclass
class Landlords:
    items: list[Landlord]

    def __len__(self) -> int:
        return len(self.items)

    def finalize_residences(self, residences: pl.DataFrame) -> pl.DataFrame:
        """Number residences within each landlord and format their ids the landlord's way."""
        residences = residences.sort("res_uid").with_columns(
            (pl.col("res_uid").rank("ordinal").over("landlord") - 1).cast(pl.Int64).alias("res_num")
        )
        styles = {ll.idx: ll.res_style for ll in self.items}
        codes = {ll.idx: ll.code for ll in self.items}
        residences = residences.with_columns(
            pl.col("landlord").replace_strict(styles, return_dtype=pl.Int64).alias("_style"),
            pl.col("landlord").replace_strict(codes, return_dtype=pl.String).alias("code_bailleur"),
        )
        n = pl.col("res_num") + 1
        rid = (
            pl.when(pl.col("_style") == 0)
            .then(pl.lit("R") + n.cast(pl.String).str.zfill(5))
            .when(pl.col("_style") == 1)
            .then(pl.lit("GR-") + n.cast(pl.String).str.zfill(4))
            .when(pl.col("_style") == 2)
            .then(n.cast(pl.String).str.zfill(6))  # numeric with leading zeros: keep as text
            .otherwise(pl.col("code_departement") + pl.lit("_") + n.cast(pl.String).str.zfill(4))
        )
        return residences.with_columns(rid.alias("id_residence")).drop("_style")


def _code_scheme(rng: np.random.Generator, scheme: int) -> pl.DataFrame:
    """The landlord's own incident codes: every code is mapped to one common category."""
    rows = []
    letters = list("ABCDEFGHJKLMNPRSTUVW")
    rng.shuffle(letters)
    numeric = int(rng.integers(1, 9)) * 1000
    prefixes = {
        "degradation": "DEG",
        "occupation_hall": "OCC",
        "trouble_voisinage": "TRV",
        "agression_personnel": "AGR",
        "trafic_stupefiants": "TRA",
        "incendie": "INC",
        "depot_sauvage": "DEP",
        "autre": "AUT",
    }
    for ci, cat in enumerate(CATEGORIES):
        labels = SOURCE_LABELS[cat]
        k = int(rng.integers(1, min(3, len(labels)) + 1))
        chosen = rng.choice(len(labels), size=k, replace=False)
        weights = rng.dirichlet(np.full(k, 2.0))
        for j, li in enumerate(chosen):
            if scheme == 0:
                code = f"{prefixes[cat]}-{j + 1:02d}"
            elif scheme == 1:
                code = f"{letters[ci]}{10 + j}"
            elif scheme == 2:
                code = str(numeric + ci * 10 + j + 1)
            else:
                code = f"{cat[:4]}_{j + 1}"
            rows.append((code, labels[int(li)], cat, float(weights[j])))
    return pl.DataFrame(
        rows,
        schema={
            "code_source": pl.String,
            "libelle_source": pl.String,
            "categorie": pl.String,
            "weight": pl.Float64,
        },
        orient="row",
    )


def _esh_name(rng: np.random.Generator, used: set[str]) -> tuple[str, str]:
    for _ in range(1000):
        a = ESH_SYLLABLES_A[int(rng.integers(len(ESH_SYLLABLES_A)))]
        b = ESH_SYLLABLES_B[int(rng.integers(len(ESH_SYLLABLES_B)))]
        word = a + b
        code = word.upper().replace("É", "E").replace("È", "E")
        if code not in used:
            suffix = ESH_SUFFIX[int(rng.integers(len(ESH_SUFFIX)))]
            return code, f"{word.capitalize()} {suffix}"
    raise RuntimeError("name space exhausted")


def build_landlords(
    scale: Scale, seed: int, communes: pl.DataFrame, residences: pl.DataFrame
) -> Landlords:
    """Catalogue of landlords: départemental OPH, city OPH, regional ESH and national groups."""
    rng = rng_for(seed, "landlords")
    used: set[str] = set()
    items: list[Landlord] = []
    dep_stock = (
        residences.group_by("code_departement", "code_region")
        .agg(pl.col("n_dw").sum())
        .sort("code_departement")
    )
    deps = dep_stock["code_departement"].to_list()
    regions = dict(zip(deps, dep_stock["code_region"].to_list(), strict=True))

    def add(code: str, nom: str, kind: str, dps: list[str], weight: float, city: str = "") -> None:
        if code in used:  # codes name the files: they must be unique
            raise AssertionError(f"duplicate landlord code {code}")
        used.add(code)
        items.append(Landlord(len(items), code, nom, _siren(rng), kind, dps, weight, city))

    if scale.name == "tiny":
        dep = deps[0]
        add(f"HAB{dep}", "Habitat Azur Départemental", "oph", [dep], 1.0)
        add("AZURLOG", 'SA d’HLM "Azurlog Résidences"', "esh", [dep], 1.0)
    else:
        n_target = scale.n_landlords
        for dep in deps:
            acr = ["HAB", "OPH", "LOGIS", "HD"][int(rng.integers(4))]
            add(
                f"{acr}{dep}",
                f"Office public de l'habitat {dep} ({acr.title()} {dep})",
                "oph",
                [dep],
                3.0,
            )
        city_stock = (
            residences.group_by("code_commune", "nom_commune", "code_departement")
            .agg(pl.col("n_dw").sum())
            .filter(pl.col("n_dw") >= 15000)
            .sort("n_dw", descending=True)
        )
        for code_c, nom_c, dep in city_stock.select(
            "code_commune", "nom_commune", "code_departement"
        ).iter_rows():
            plain = unicodedata.normalize("NFKD", nom_c.upper()).replace("SAINT", "ST")
            ascii_ = "".join(ch for ch in plain if "A" <= ch <= "Z")[:6]
            code = f"{ascii_}HAB"
            n = 2
            while code in used:  # e.g. two Saint-Denis (93 and 974)
                code = f"{ascii_}HAB{n}"
                n += 1
            add(
                code,
                f"Office municipal de l'habitat de {nom_c}",
                "oph_ville",
                [dep],
                0.0,
                city=code_c,
            )
        n_nat = max(1, round(0.03 * n_target))
        for _ in range(n_nat):
            code, nom = _esh_name(rng, used)
            add(code, f"Groupe {nom}", "national", list(deps), 1.2)
        by_region: dict[str, list[str]] = {}
        for d in deps:
            by_region.setdefault(regions[d], []).append(d)
        while len(items) < n_target:
            d0 = deps[int(rng.integers(len(deps)))]
            region_deps = by_region[regions[d0]]
            k = int(min(len(region_deps), rng.integers(1, 4)))
            dps = sorted({d0, *rng.choice(region_deps, size=k, replace=False).tolist()})
            code, nom = _esh_name(rng, used)
            if nom.endswith(("Immobilière", "Foyer")):  # registered name in double quotes
                nom = f'SA d’HLM "{nom}"'
            add(code, nom, "esh", dps, float(rng.lognormal(0.0, 0.7)))

    for ll in items:
        ll.scheme = int(rng.integers(0, 4))
        ll.res_style = int(rng.integers(0, 4))
        ll.inc_style = int(rng.integers(0, 3))
        ll.intensity = float(rng.lognormal(0.0, 0.25))
        ll.codes = _code_scheme(rng_for(seed, "codes", ll.code), ll.scheme)
    if scale.name == "tiny":
        items[0].scheme, items[1].scheme = 0, 2
        for ll in items:
            ll.codes = _code_scheme(rng_for(seed, "codes", ll.code), ll.scheme)
    return Landlords(items)


def assign_landlords(landlords: Landlords, residences: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Give each residence a landlord active in its département; then set export dialects."""
    rng = rng_for(seed, "assign")
    items = landlords.items
    dep_arr = residences["code_departement"].to_numpy()
    com_arr = residences["code_commune"].to_numpy()
    owner = np.full(residences.height, -1, dtype=np.int64)
    for dep in np.unique(dep_arr):
        cand = [ll for ll in items if dep in ll.deps and ll.kind != "oph_ville"]
        w_ = np.array([ll.weight for ll in cand], dtype=float)
        idx = np.flatnonzero(dep_arr == dep)
        owner[idx] = np.array([ll.idx for ll in cand])[
            rng.choice(len(cand), size=idx.size, p=w_ / w_.sum())
        ]
    if len(items) == 2:  # tiny: share residences evenly so both landlords have incidents
        owner = np.arange(residences.height, dtype=np.int64) % 2
    for ll in items:
        if ll.kind == "oph_ville":
            idx = np.flatnonzero(com_arr == ll.city)
            take = idx[rng.random(idx.size) < 0.45]
            owner[take] = ll.idx
    # drop landlords without residences, renumber
    present = sorted(set(owner.tolist()))
    remap = {old: new for new, old in enumerate(present)}
    kept = [items[i] for i in present]
    for new, ll in enumerate(kept):
        ll.idx = new
    landlords.items[:] = kept
    owner = np.array([remap[o] for o in owner.tolist()], dtype=np.int64)
    residences = residences.with_columns(pl.Series("landlord", owner))
    sizes = (
        residences.group_by("landlord").agg(pl.col("n_dw").sum()).sort("landlord")["n_dw"].to_list()
    )
    _assign_dialects(landlords, sizes)
    return residences


def _assign_dialects(landlords: Landlords, sizes: list[int]) -> None:
    """Spread the export formats partners really use over the landlords."""
    items = landlords.items
    if len(items) == 2:  # tiny: one French-Excel CSV landlord, one BOM CSV + XLSX incidents
        items[0].dialects = dict.fromkeys(KINDS, w.EXCEL_CP1252)
        items[1].dialects = {
            "patrimoine": w.COMMA_BOM,
            "incidents": w.XLSX,
            "procedures": w.COMMA_BOM,
        }
        return
    cycle = [
        w.EXCEL_CP1252,
        w.COMMA_BOM,
        w.SEMICOLON_BOM_NA,
        w.COMMA_UTF8_NA_UPPER,
        w.SEMICOLON_UTF8_FR,
    ]
    for ll in items:
        ll.dialects = dict.fromkeys(KINDS, cycle[ll.idx % len(cycle)])
    # XLSX is written cell by cell (slow) and only some partners use it: a handful of small
    # landlords export everything from a spreadsheet (an information system's XLSX export and
    # a hand-kept workbook, at least one of each), a few others only their incidents.
    order = sorted(range(len(items)), key=lambda i: (sizes[i], i))
    n_full = max(2, len(items) // 100)
    n_inc = max(1, len(items) // 50)
    for j, i in enumerate(order[len(order) // 4 :][: n_full + n_inc]):
        if j < n_full:
            items[i].dialects = dict.fromkeys(KINDS, w.XLSX if j % 2 == 0 else w.XLSX_TEXT_DATES)
        else:
            items[i].dialects["incidents"] = w.XLSX


def dwellings(seed: int, ll: Landlord, res: pl.DataFrame) -> pl.DataFrame:
    """All dwellings the landlord ever has in the period, with stable per-dwelling attributes."""
    rng = rng_for(seed, "dwellings", ll.code)
    n_dw = res["n_dw"].to_numpy()
    total = int(n_dw.sum())
    rep = np.repeat(np.arange(res.height), n_dw)
    starts = np.repeat(np.cumsum(n_dw) - n_dw, n_dw)
    k = np.arange(total) - starts
    nbpiece = np.clip(np.round(rng.normal(3.0, 1.0, size=total)), 1, 6).astype(np.int64)
    surf = np.round(nbpiece * rng.normal(21.0, 3.0, size=total) + 8.0, 1)
    finan = FINAN_CODES[rng.choice(len(FINAN_CODES), size=total, p=FINAN_P)]
    return pl.DataFrame(
        {
            "_r": rep.astype(np.int64),
            "k": k.astype(np.int64),
            "NBPIECE": nbpiece,
            "SURFHAB": surf,
            "FINAN": finan,
        }
    )


def dwelling_id(id_residence: pl.Expr, k: pl.Expr) -> pl.Expr:
    """Dwelling id = residence id + 3-digit rank (residences hold at most 300 dwellings)."""
    return id_residence + pl.lit("-") + k.cast(pl.String).str.zfill(3)


def active_mask(res: pl.DataFrame, year: int) -> np.ndarray:
    """Residences in the stock at 1 January ``year`` (built before, not yet demolished)."""
    c = res["construct"].to_numpy()
    d = res["demolished"].to_numpy()
    return (c < year) & ((d == 0) | (d > year))


def write_stock(
    out: pathlib.Path, seed: int, ll: Landlord, res: pl.DataFrame, dw: pl.DataFrame, year: int
) -> tuple[pathlib.Path, int]:
    """One ``<code>_patrimoine_<YYYY>`` file: every dwelling in stock at 1 January."""
    rng = rng_for(seed, "statut", ll.code, year)
    act = active_mask(res, year)
    r = res.with_row_index("_r").with_columns(pl.col("_r").cast(pl.Int64)).filter(pl.Series(act))
    df = dw.join(
        r.select(
            "_r",
            "id_residence",
            "nom_residence",
            "code_commune",
            "code_qpv",
            "construct",
            "dealing",
        ),
        on="_r",
    )
    df = df.sort("_r", "k")
    dealing = df["dealing"].to_numpy()
    u = rng.random(df.height)
    p_ins = np.where(dealing, 0.04, 0.003)
    statut = np.where(
        u < p_ins,
        2,
        np.where(u < p_ins + 0.035, 1, np.where(u < p_ins + 0.055, 3, 0)),
    )
    df = df.with_columns(pl.Series("statut", STATUTS[statut]))
    df = df.select(
        dwelling_id(pl.col("id_residence"), pl.col("k")).alias("id_logement"),
        "id_residence",
        "nom_residence",
        pl.col("code_commune").alias("DEPCOM"),
        pl.when(pl.col("code_qpv") == "").then(None).otherwise(pl.col("code_qpv")).alias("QPV"),
        pl.col("construct").alias("CONSTRUCT"),
        "NBPIECE",
        "SURFHAB",
        "FINAN",
        "statut",
    )
    d = ll.dialects["patrimoine"]
    path = out / "landlord" / f"{ll.code}_patrimoine_{year}{d.extension}"
    rows = w.write_table(df, path, d)
    w.set_mtime(path, delivery_time(dt.date(year, 1, 31), 14, ll.idx))
    return path, rows


def write_reference(out: pathlib.Path, landlords: Landlords, when: dt.datetime) -> tuple[int, int]:
    """``bailleurs.csv`` and one ``correspondance_categories_<code>.csv`` per landlord."""
    files = rows = 0
    b = pl.DataFrame(
        {
            "code_bailleur": [ll.code for ll in landlords.items],
            "nom_bailleur": [ll.nom for ll in landlords.items],
            "siren": [ll.siren for ll in landlords.items],
        }
    )
    p = out / "reference" / "bailleurs.csv"
    rows += w.write_table(b, p, w.REFERENCE)
    w.set_mtime(p, when)
    files += 1
    for ll in landlords.items:
        assert ll.codes is not None
        p = out / "reference" / f"correspondance_categories_{ll.code}.csv"
        rows += w.write_table(
            ll.codes.select("code_source", "libelle_source", "categorie"), p, w.REFERENCE
        )
        w.set_mtime(p, when)
        files += 1
    return files, rows
