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

from pipelines.generate.common import Scale, delivery_time, in_contract_order, rng_for
from pipelines.generate.names import ESH_SUFFIX, ESH_SYLLABLES_A, ESH_SYLLABLES_B, SOURCE_LABELS
from pipelines.generate.writers import (
    COMMA_BOM,
    COMMA_UTF8_NA_UPPER,
    EXCEL_CP1252,
    REFERENCE,
    SEMICOLON_BOM_NA,
    SEMICOLON_UTF8_FR,
    XLSX,
    XLSX_TEXT_DATES,
    Dialect,
    set_mtime,
    write_table,
)
from pipelines.ingest.specs import CATEGORIES, LANDLORD_KINDS

LANDLORD_KIND_NAMES = tuple(kind.name for kind in LANDLORD_KINDS)

# Financing codes of the RPLS stock survey (FINAN) and their share of the stock: not part of
# the contract (free text for the ingestion), only realistic values.
FINAN_SHARES = {
    "10": 0.05,
    "11": 0.05,
    "12": 0.08,
    "13": 0.08,
    "14": 0.05,
    "15": 0.03,
    "17": 0.02,
    "49": 0.04,
    "50": 0.30,
    "51": 0.12,
    "52": 0.10,
    "55": 0.08,
}
FINAN_CODES = np.array(list(FINAN_SHARES))
FINAN_P = np.array(list(FINAN_SHARES.values()))
FINAN_P = FINAN_P / FINAN_P.sum()

# How a landlord's information system numbers things. Each landlord draws one of each; the
# position in these tuples is what is drawn, so their order is part of the seeded output.
# Incident codes: "DEG-01" (category prefix), "A10" (a letter per category), "3011" (numeric
# blocks per category), "degr_1" (category stem).
CODE_SCHEMES = ("prefix", "letter", "numeric", "stem")
# Residence ids: "R00012", "GR-0012", "000012" (digits with leading zeros: must stay text),
# "13_0012" (département + number).
RESIDENCE_ID_STYLES = ("R", "GR", "digits", "departement")
# Incident ids: "INC2025-000012", "100012", "HAB/25/00012".
INCIDENT_ID_STYLES = ("INC", "number", "code_year")

# Three-letter prefix of each category in the "prefix" code scheme.
CATEGORY_PREFIXES = {
    "degradation": "DEG",
    "occupation_hall": "OCC",
    "trouble_voisinage": "TRV",
    "agression_personnel": "AGR",
    "trafic_stupefiants": "TRA",
    "incendie": "INC",
    "depot_sauvage": "DEP",
    "autre": "AUT",
}
if set(CATEGORY_PREFIXES) != set(CATEGORIES):
    raise AssertionError("every category of the nomenclature needs a code prefix")


def _siren(rng: np.random.Generator) -> str:
    """Fake 9-digit SIREN passing the Luhn check (like real ones), not a real company."""
    digits = [int(digit) for digit in rng.integers(0, 10, size=8)]
    digits[0] = int(rng.integers(2, 8))
    for check in range(10):
        candidate = [*digits, check]
        total = 0
        for position, digit in enumerate(reversed(candidate)):
            doubled = digit * 2 if position % 2 else digit
            total += doubled - 9 if doubled > 9 else doubled
        if total % 10 == 0:
            return "".join(map(str, candidate))
    raise AssertionError("unreachable")


@dataclass
class Landlord:
    """One social landlord and how it exports its data."""

    number: int  # position in the catalogue: orders files and keys the warts
    code: str  # names its files (code_bailleur)
    nom: str
    siren: str
    # "oph" (départemental office), "oph_ville" (city office), "esh" (regional company),
    # "national" (national group)
    organisation: str
    departements: list[str]
    weight: float  # share of the residences of its départements it is given
    city: str = ""  # oph_ville: its commune
    code_scheme: str = CODE_SCHEMES[0]
    residence_id_style: str = RESIDENCE_ID_STYLES[0]
    incident_id_style: str = INCIDENT_ID_STYLES[0]
    intensity: float = 1.0  # how much it records: some landlords report more than others
    dialects: dict[str, Dialect] = field(default_factory=dict)  # per landlord delivery kind
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
        styles = {landlord.number: landlord.residence_id_style for landlord in self.items}
        codes = {landlord.number: landlord.code for landlord in self.items}
        residences = residences.with_columns(
            pl.col("landlord").replace_strict(styles, return_dtype=pl.String).alias("_style"),
            pl.col("landlord").replace_strict(codes, return_dtype=pl.String).alias("code_bailleur"),
        )
        number = (pl.col("res_num") + 1).cast(pl.String)
        style = pl.col("_style")
        residence_id = (
            pl.when(style == "R")
            .then(pl.lit("R") + number.str.zfill(5))
            .when(style == "GR")
            .then(pl.lit("GR-") + number.str.zfill(4))
            .when(style == "digits")
            .then(number.str.zfill(6))
            .otherwise(pl.col("code_departement") + pl.lit("_") + number.str.zfill(4))
        )
        return residences.with_columns(residence_id.alias("id_residence")).drop("_style")


def _code_scheme(rng: np.random.Generator, scheme: str) -> pl.DataFrame:
    """The landlord's own incident codes: every code is mapped to one common category."""
    rows = []
    letters = list("ABCDEFGHJKLMNPRSTUVW")
    rng.shuffle(letters)
    numeric_block = int(rng.integers(1, 9)) * 1000
    # The letter and the numeric block of a category follow its place in the nomenclature.
    for position, category in enumerate(CATEGORIES):
        labels = SOURCE_LABELS[category]
        n_codes = int(rng.integers(1, min(3, len(labels)) + 1))
        chosen = rng.choice(len(labels), size=n_codes, replace=False)
        weights = rng.dirichlet(np.full(n_codes, 2.0))
        for rank, label_index in enumerate(chosen):
            if scheme == "prefix":
                code = f"{CATEGORY_PREFIXES[category]}-{rank + 1:02d}"
            elif scheme == "letter":
                code = f"{letters[position]}{10 + rank}"
            elif scheme == "numeric":
                code = str(numeric_block + position * 10 + rank + 1)
            else:
                code = f"{category[:4]}_{rank + 1}"
            rows.append((code, labels[int(label_index)], category, float(weights[rank])))
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
    """An invented company name and its code, not already used."""
    for _ in range(1000):
        first = ESH_SYLLABLES_A[int(rng.integers(len(ESH_SYLLABLES_A)))]
        second = ESH_SYLLABLES_B[int(rng.integers(len(ESH_SYLLABLES_B)))]
        word = first + second
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
    departement_stock = (
        residences.group_by("code_departement", "code_region")
        .agg(pl.col("n_dw").sum())
        .sort("code_departement")
    )
    departements = departement_stock["code_departement"].to_list()
    regions = dict(zip(departements, departement_stock["code_region"].to_list(), strict=True))

    def add(
        code: str,
        nom: str,
        organisation: str,
        its_departements: list[str],
        weight: float,
        city: str = "",
    ) -> None:
        if code in used:  # codes name the files: they must be unique
            raise AssertionError(f"duplicate landlord code {code}")
        used.add(code)
        siren = _siren(rng)
        items.append(
            Landlord(len(items), code, nom, siren, organisation, its_departements, weight, city)
        )

    if scale.name == "tiny":
        departement = departements[0]
        add(f"HAB{departement}", "Habitat Azur Départemental", "oph", [departement], 1.0)
        add("AZURLOG", 'SA d’HLM "Azurlog Résidences"', "esh", [departement], 1.0)
    else:
        for departement in departements:
            acronym = ["HAB", "OPH", "LOGIS", "HD"][int(rng.integers(4))]
            add(
                f"{acronym}{departement}",
                f"Office public de l'habitat {departement} ({acronym.title()} {departement})",
                "oph",
                [departement],
                3.0,
            )
        city_stock = (
            residences.group_by("code_commune", "nom_commune", "code_departement")
            .agg(pl.col("n_dw").sum())
            .filter(pl.col("n_dw") >= 15000)
            .sort("n_dw", descending=True)
        )
        for code_commune, nom_commune, departement in city_stock.select(
            "code_commune", "nom_commune", "code_departement"
        ).iter_rows():
            plain = unicodedata.normalize("NFKD", nom_commune.upper()).replace("SAINT", "ST")
            letters = "".join(char for char in plain if "A" <= char <= "Z")[:6]
            code = f"{letters}HAB"
            homonym = 2
            while code in used:  # e.g. two Saint-Denis (93 and 974)
                code = f"{letters}HAB{homonym}"
                homonym += 1
            add(
                code,
                f"Office municipal de l'habitat de {nom_commune}",
                "oph_ville",
                [departement],
                0.0,
                city=code_commune,
            )
        n_national = max(1, round(0.03 * scale.n_landlords))
        for _ in range(n_national):
            code, nom = _esh_name(rng, used)
            add(code, f"Groupe {nom}", "national", list(departements), 1.2)
        by_region: dict[str, list[str]] = {}
        for departement in departements:
            by_region.setdefault(regions[departement], []).append(departement)
        while len(items) < scale.n_landlords:
            home = departements[int(rng.integers(len(departements)))]
            region_departements = by_region[regions[home]]
            n_more = int(min(len(region_departements), int(rng.integers(1, 4))))
            more = rng.choice(region_departements, size=n_more, replace=False).tolist()
            code, nom = _esh_name(rng, used)
            if nom.endswith(("Immobilière", "Foyer")):  # registered name in double quotes
                nom = f'SA d’HLM "{nom}"'
            add(code, nom, "esh", sorted({home, *more}), float(rng.lognormal(0.0, 0.7)))

    for landlord in items:
        landlord.code_scheme = CODE_SCHEMES[int(rng.integers(0, len(CODE_SCHEMES)))]
        landlord.residence_id_style = RESIDENCE_ID_STYLES[
            int(rng.integers(0, len(RESIDENCE_ID_STYLES)))
        ]
        landlord.incident_id_style = INCIDENT_ID_STYLES[
            int(rng.integers(0, len(INCIDENT_ID_STYLES)))
        ]
        landlord.intensity = float(rng.lognormal(0.0, 0.25))
        landlord.codes = _code_scheme(rng_for(seed, "codes", landlord.code), landlord.code_scheme)
    if scale.name == "tiny":  # tests see both a prefixed and a numeric code scheme
        items[0].code_scheme, items[1].code_scheme = "prefix", "numeric"
        for landlord in items:
            landlord.codes = _code_scheme(
                rng_for(seed, "codes", landlord.code), landlord.code_scheme
            )
    return Landlords(items)


def assign_landlords(landlords: Landlords, residences: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Give each residence a landlord active in its département; then set export dialects."""
    rng = rng_for(seed, "assign")
    items = landlords.items
    residence_departements = residences["code_departement"].to_numpy()
    residence_communes = residences["code_commune"].to_numpy()
    owner = np.full(residences.height, -1, dtype=np.int64)
    for departement in np.unique(residence_departements):
        candidates = [
            landlord
            for landlord in items
            if departement in landlord.departements and landlord.organisation != "oph_ville"
        ]
        weights = np.array([landlord.weight for landlord in candidates], dtype=float)
        rows = np.flatnonzero(residence_departements == departement)
        owner[rows] = np.array([landlord.number for landlord in candidates])[
            rng.choice(len(candidates), size=rows.size, p=weights / weights.sum())
        ]
    if len(items) == 2:  # tiny: share residences evenly so both landlords have incidents
        owner = np.arange(residences.height, dtype=np.int64) % 2
    for landlord in items:
        if landlord.organisation == "oph_ville":  # takes a share of its city's residences
            rows = np.flatnonzero(residence_communes == landlord.city)
            taken = rows[rng.random(rows.size) < 0.45]
            owner[taken] = landlord.number
    # drop landlords without residences, renumber
    present = sorted(set(owner.tolist()))
    renumbered = {old: new for new, old in enumerate(present)}
    kept = [items[number] for number in present]
    for new, landlord in enumerate(kept):
        landlord.number = new
    landlords.items[:] = kept
    owner = np.array([renumbered[number] for number in owner.tolist()], dtype=np.int64)
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
        items[0].dialects = dict.fromkeys(LANDLORD_KIND_NAMES, EXCEL_CP1252)
        items[1].dialects = {
            "patrimoine": COMMA_BOM,
            "incidents": XLSX,
            "procedures": COMMA_BOM,
        }
        return
    cycle = [EXCEL_CP1252, COMMA_BOM, SEMICOLON_BOM_NA, COMMA_UTF8_NA_UPPER, SEMICOLON_UTF8_FR]
    for landlord in items:
        landlord.dialects = dict.fromkeys(LANDLORD_KIND_NAMES, cycle[landlord.number % len(cycle)])
    # XLSX is written cell by cell (slow) and only some partners use it: a handful of small
    # landlords export everything from a spreadsheet (an information system's XLSX export and
    # a hand-kept workbook, at least one of each), a few others only their incidents.
    by_size = sorted(range(len(items)), key=lambda number: (sizes[number], number))
    n_all_xlsx = max(2, len(items) // 100)
    n_incidents_xlsx = max(1, len(items) // 50)
    beyond_smallest_quarter = by_size[len(by_size) // 4 :]
    for rank, number in enumerate(beyond_smallest_quarter[: n_all_xlsx + n_incidents_xlsx]):
        if rank < n_all_xlsx:
            workbook = XLSX if rank % 2 == 0 else XLSX_TEXT_DATES
            items[number].dialects = dict.fromkeys(LANDLORD_KIND_NAMES, workbook)
        else:
            items[number].dialects["incidents"] = XLSX


def dwellings(seed: int, landlord: Landlord, residences: pl.DataFrame) -> pl.DataFrame:
    """All dwellings the landlord ever has in the period, with stable per-dwelling attributes.

    ``_row`` is the residence's row in ``residences``; ``rank`` the dwelling's rank in it.
    """
    rng = rng_for(seed, "dwellings", landlord.code)
    sizes = residences["n_dw"].to_numpy()
    total = int(sizes.sum())
    residence_row = np.repeat(np.arange(residences.height), sizes)
    first_of_residence = np.repeat(np.cumsum(sizes) - sizes, sizes)
    rank = np.arange(total) - first_of_residence
    rooms = np.clip(np.round(rng.normal(3.0, 1.0, size=total)), 1, 6).astype(np.int64)
    surface = np.round(rooms * rng.normal(21.0, 3.0, size=total) + 8.0, 1)
    finan = FINAN_CODES[rng.choice(len(FINAN_CODES), size=total, p=FINAN_P)]
    return pl.DataFrame(
        {
            "_row": residence_row.astype(np.int64),
            "rank": rank.astype(np.int64),
            "NBPIECE": rooms,
            "SURFHAB": surface,
            "FINAN": finan,
        }
    )


def dwelling_id(id_residence: pl.Expr, rank: pl.Expr) -> pl.Expr:
    """Dwelling id = residence id + 3-digit rank (residences hold at most 300 dwellings)."""
    return id_residence + pl.lit("-") + rank.cast(pl.String).str.zfill(3)


def active_mask(residences: pl.DataFrame, year: int) -> np.ndarray:
    """Residences in the stock at 1 January ``year`` (built before, not yet demolished)."""
    built = residences["construct"].to_numpy()
    demolished = residences["demolished"].to_numpy()
    return (built < year) & ((demolished == 0) | (demolished > year))


def write_stock(
    out: pathlib.Path,
    seed: int,
    landlord: Landlord,
    residences: pl.DataFrame,
    all_dwellings: pl.DataFrame,
    year: int,
) -> tuple[pathlib.Path, int]:
    """One ``<code>_patrimoine_<YYYY>`` file: every dwelling in stock at 1 January."""
    rng = rng_for(seed, "statut", landlord.code, year)
    active = (
        residences.with_row_index("_row")
        .with_columns(pl.col("_row").cast(pl.Int64))
        .filter(pl.Series(active_mask(residences, year)))
    )
    stock = all_dwellings.join(
        active.select(
            "_row",
            "id_residence",
            "nom_residence",
            "code_commune",
            "code_qpv",
            "construct",
            "dealing",
        ),
        on="_row",
    ).sort("_row", "rank")
    # Vacancy because of insecurity is what dealing does to an estate.
    draw = rng.random(stock.height)
    p_insecurity = np.where(stock["dealing"].to_numpy(), 0.04, 0.003)
    statut = np.where(
        draw < p_insecurity,
        "vacant_insecurite",
        np.where(
            draw < p_insecurity + 0.035,
            "vacant",
            np.where(draw < p_insecurity + 0.055, "vacant_technique", "occupe"),
        ),
    )
    stock = stock.with_columns(pl.Series("statut", statut))
    stock = stock.select(
        dwelling_id(pl.col("id_residence"), pl.col("rank")).alias("id_logement"),
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
    dialect = landlord.dialects["patrimoine"]
    path = out / "landlord" / f"{landlord.code}_patrimoine_{year}{dialect.extension}"
    rows = write_table(in_contract_order(stock, "patrimoine"), path, dialect)
    set_mtime(path, delivery_time(dt.date(year, 1, 31), 14, landlord.number))
    return path, rows


def write_reference(out: pathlib.Path, landlords: Landlords, when: dt.datetime) -> tuple[int, int]:
    """``bailleurs.csv`` and one ``correspondance_categories_<code>.csv`` per landlord."""
    files = rows = 0
    catalogue = pl.DataFrame(
        {
            "code_bailleur": [landlord.code for landlord in landlords.items],
            "nom_bailleur": [landlord.nom for landlord in landlords.items],
            "siren": [landlord.siren for landlord in landlords.items],
        }
    )
    path = out / "reference" / "bailleurs.csv"
    rows += write_table(in_contract_order(catalogue, "bailleurs"), path, REFERENCE)
    set_mtime(path, when)
    files += 1
    for landlord in landlords.items:
        assert landlord.codes is not None  # set by build_landlords
        path = out / "reference" / f"correspondance_categories_{landlord.code}.csv"
        mapping = in_contract_order(landlord.codes, "correspondance_categories")
        rows += write_table(mapping, path, REFERENCE)
        set_mtime(path, when)
        files += 1
    return files, rows
