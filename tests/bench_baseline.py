"""A plain baseline for the benchmark: the four contract tables straight from an inbox.

Why: a full refresh does much more than compute indicators (a delivery ledger, quarantine
rows with reasons, quality suites and blocking checks, dbt's layered models, publication
history, open data, reports). To tell what that machinery costs, the benchmark needs a
yardstick: the same four published tables (`indicateurs_incidents_mois`,
`indicateurs_delinquance_commune_annee`, `indicateurs_delinquance_epci_annee`,
`indicateurs_mixite_epci_annee`, CONTRACT.md section 3), equal row for row, computed the
plainest fast way a competent engineer would write in an afternoon: each file the tables
depend on read once by polars, the contract's row rules applied as vectorised expressions
over the concatenated rows of a kind, and everything else as set-based SQL in one DuckDB
database. The benchmark reports "pipeline / baseline".

It deliberately leaves out: the ledger and its statuses, the quarantine table (bad rows are
only dropped), the delivery suites and every check, publication history, open data and
reports, and the files no contract table depends on (procedures, police events, commune
overrides). A superseded delivery (an older file for the same key) is not read at all: only
its modification time and name are looked at. Personal identifiers are still hashed
(HMAC-SHA256) to pay that cost honestly, although no contract table carries them.

It is written independently of the pipeline's ingestion code (only the shipped seeds are
read): it re-states the contract's rules, so an equal result is evidence for both.

    python -m tests.bench_baseline INBOX OUTPUT.duckdb [--compare PUBLICATION.duckdb]

prints one JSON line (seconds, rows per table, and with `--compare` whether each table equals
the publication's); the exit code is 1 when a compared table differs.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import gzip
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "dbt_project" / "seeds"

TABLES = (
    "indicateurs_incidents_mois",
    "indicateurs_delinquance_commune_annee",
    "indicateurs_delinquance_epci_annee",
    "indicateurs_mixite_epci_annee",
)

# Rows validated and written to DuckDB at a time: large enough for vectorised work to pay,
# small enough to keep the national inbox (37.6 M rows) within a few GB.
BATCH_ROWS = 1_000_000

# Rows (both sides together) grouped at a time when comparing with a publication: measured on
# the national incidents table, about 10 M rows stay within a 1.5 GB memory limit.
COMPARED_ROWS = 10_000_000

# -- the contract's row rules (CONTRACT.md section 2, docs/deliveries.md) ----------------------

COMMUNE = r"^(?:\d{5}|2[AB]\d{3})$"
QPV = r"^Q[NP][0-9A-Z]{6}$"
SIREN = r"^\d{9}$"
# Plain or space-grouped digits, optional decimal part and exponent; or point-grouped digits
# with a decimal comma. Anything else is not a number (never guessed).
NUMBER_FORMS = (
    r"^[+-]?(?:\d+|\d{1,3}(?:[\u00a0\u202f ]\d{3})+)(?:[.,]\d+)?(?:[eE][+-]?\d+)?$",
    r"^[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?$",
)
TIME_OF_DAY = r"(?:[T ](?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?)?"
ISO_DATE = rf"^(\d{{4}}-\d{{2}}-\d{{2}}){TIME_OF_DAY}$"
FRENCH_DATE = rf"^(\d{{2}}/\d{{2}}/\d{{4}}){TIME_OF_DAY}$"
MISSING = ("", "NA")
TEMPORARY_PREFIXES = (".", "~$")
TEMPORARY_SUFFIXES = (".part", ".tmp", ".crdownload")


@dataclass(frozen=True)
class Col:
    """A contract column: `out` names it in the staged table (None: checked, then dropped)."""

    name: str
    type: str = "text"  # text | int | decimal | date | enum | oui_non
    required: bool = True
    pattern: str | None = None
    allowed: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    none_value: str | None = None
    hashed: bool = False
    free_text: bool = False  # must be present, never checked nor kept
    out: str | None = None


def commune(name: str, out: str | None = None) -> Col:
    return Col(name, pattern=COMMUNE, out=out)


@dataclass(frozen=True)
class Kind:
    """A kind of delivery file: the rules its rows must keep to count, and its staged table
    (`table`). `unique`: within one file, a repeated key keeps its last valid line."""

    name: str
    family: str
    period: str  # month | year | none
    columns: tuple[Col, ...]
    table: str
    landlord: bool = False
    unique: tuple[str, ...] = ()
    period_date: str | None = None
    ordered: tuple[tuple[str, str], ...] = ()

    @property
    def pattern(self) -> re.Pattern[str]:
        """Its file name: optional landlord prefix, the stem, the period, any suffix."""
        if self.name == "correspondance_categories":
            return re.compile(
                r"^correspondance_categories_(?P<landlord>[A-Za-z0-9][A-Za-z0-9_-]*?)"
                r"(?:_[^.]*)?\.(?:csv|csv\.gz|xlsx)$",
                re.IGNORECASE,
            )
        return file_name(self.name, self.period, self.landlord)


def file_name(stem: str, period: str, landlord: bool = False) -> re.Pattern[str]:
    prefix = r"(?P<landlord>[A-Za-z0-9][A-Za-z0-9_-]*?)_" if landlord else ""
    periods = {"month": r"_(?P<period>\d{4}-\d{2})", "year": r"_(?P<period>\d{4})", "none": ""}
    return re.compile(
        rf"^{prefix}{stem}{periods[period]}(?:_[^.]*)?\.(?:csv|csv\.gz|xlsx)$", re.IGNORECASE
    )


STATUTS = ("occupe", "vacant", "vacant_insecurite", "vacant_technique")
LIEUX = ("hall", "cage_escalier", "parking", "cave", "logement", "abords", "local_commun")
CATEGORIES = tuple(
    pl.read_csv(SEEDS / "nomenclature_incidents.csv", infer_schema=False)["categorie"].to_list()
)

# Every kind of delivery named by its file, in the order names are matched. Procedures, police
# events and commune overrides feed no contract table: their kinds (no `table`) are listed so
# that their names are recognised, then they are not read.
KINDS: tuple[Kind, ...] = (
    Kind(
        "epci",
        "reference",
        "year",
        (
            commune("codgeo", "code_commune"),
            Col("libgeo", out="nom_commune"),
            Col("epci", pattern=SIREN, none_value="ZZZZZZZZZ", out="code_epci"),
            Col("libepci", out="libelle_epci"),
            Col("dep", out="code_departement"),
            Col("reg"),
        ),
        table="ref_epci",
        unique=("codgeo",),
    ),
    Kind(
        "qpv",
        "reference",
        "year",
        (
            Col("code_qpv", pattern=QPV, out="code_qpv"),
            Col("nom_qpv", out="nom_qpv"),
            commune("code_commune"),
            Col("population", "int", low=0),
        ),
        table="ref_qpv",
        unique=("code_qpv", "code_commune"),
    ),
    Kind(
        "seuils_q1",
        "reference",
        "year",
        (
            Col("code_epci", pattern=SIREN, out="code_epci"),
            Col("annee", "int", low=2000, high=2100, out="annee"),
            Col("seuil_q1_euros_uc", "decimal", low=0, out="seuil_q1_euros_uc"),
        ),
        table="ref_seuils",
        unique=("code_epci", "annee"),
    ),
    Kind(
        "objectifs_epci",
        "reference",
        "none",
        (
            Col("code_epci", pattern=SIREN, out="code_epci"),
            Col("annee", "int", low=2000, high=2100, out="annee"),
            Col("objectif_q1_hors_qpv_pct", "decimal", low=0, high=100, out="objectif_pct"),
        ),
        table="ref_objectifs",
        unique=("code_epci", "annee"),
    ),
    Kind(
        "bailleurs",
        "reference",
        "none",
        (
            Col("code_bailleur", out="code_bailleur"),
            Col("nom_bailleur", out="nom_bailleur"),
            Col("siren", required=False, pattern=SIREN),
        ),
        table="ref_bailleurs",
        unique=("code_bailleur",),
    ),
    Kind(
        "correspondance_categories",
        "reference",
        "none",
        (
            Col("code_source", out="code_source"),
            Col("libelle_source", required=False),
            Col("categorie", "enum", allowed=CATEGORIES, out="categorie"),
        ),
        table="ref_categories",
        landlord=True,
        unique=("code_source",),
    ),
    Kind("communes", "reference", "year", (), table=""),
    Kind(
        "patrimoine",
        "landlord",
        "year",
        (
            Col("id_logement", out="id_logement"),
            Col("id_residence", out="id_residence"),
            Col("nom_residence", required=False, out="nom_residence"),
            commune("depcom", "code_commune"),
            Col("qpv", required=False, pattern=QPV, out="code_qpv"),
            Col("construct", "int", required=False, low=1800, high=2100),
            Col("nbpiece", "int", required=False, low=1, high=20),
            Col("surfhab", "decimal", required=False, low=5, high=500),
            Col("finan", required=False),
            Col("statut", "enum", allowed=STATUTS),
        ),
        table="stock_rows",
        landlord=True,
        unique=("id_logement",),
    ),
    Kind(
        "incidents",
        "landlord",
        "month",
        (
            Col("id_incident", out="id_incident"),
            Col("date_signalement", "date", out="date_signalement"),
            Col("id_residence", out="id_residence"),
            Col("id_logement", required=False),
            Col("code_categorie", out="code_categorie"),
            Col("lieu", "enum", allowed=LIEUX),
            Col("gravite", "int", low=1, high=4),
            Col("date_cloture", "date", required=False),
            Col("plainte_deposee", "oui_non"),
            Col("cout_euros", "decimal", required=False, low=0),
            Col("id_locataire", required=False, hashed=True),
            Col("commentaire", required=False, free_text=True),
        ),
        table="incident_rows",
        landlord=True,
        unique=("id_incident",),
        period_date="date_signalement",
        ordered=(("date_cloture", "date_signalement"),),
    ),
    Kind("procedures", "landlord", "month", (), table="", landlord=True),
    Kind("evenements", "police", "month", (), table=""),
    Kind(
        "attributions",
        "allocations",
        "month",
        (
            Col("num_unique_demande", hashed=True),
            Col("date_attribution", "date"),
            Col("date_signature_bail", "date", required=False, out="date_signature_bail"),
            Col("code_bailleur"),
            Col("id_logement", required=False),
            commune("depcom", "code_commune"),
            Col("qpv", required=False, pattern=QPV, out="code_qpv"),
            Col("revenu_annuel_euros", "decimal", low=0, out="revenu"),
            Col("nb_personnes_14_ans_et_plus", "int", low=1, high=30, out="nb_14_plus"),
            Col("nb_enfants_moins_14_ans", "int", low=0, high=30, out="nb_moins_14"),
            Col(
                "menage_prioritaire",
                "enum",
                allowed=("DALO", "prioritaire", "non"),
                out="menage_prioritaire",
            ),
            Col(
                "reservataire",
                "enum",
                allowed=("etat", "action_logement", "collectivite", "bailleur"),
            ),
            Col("relogement_anru", "oui_non", out="relogement_anru"),
        ),
        table="attribution_rows",
        period_date="date_attribution",
        ordered=(("date_signature_bail", "date_attribution"),),
    ),
)

# SSMSI's commune base (any name in police/), recognised by its header; the edition is the
# year of its `CODGEO_<YYYY>` column. Both schemas land in one staged table.
SSMSI_NEW = Kind(
    "ssmsi",
    "police",
    "year",
    (
        commune("codgeo", "code_commune"),
        Col("annee", "int", low=1990, high=2100, out="annee"),
        Col("indicateur", out="indicateur"),
        Col("unite_de_compte", required=False, out="unite_de_compte"),
        Col("nombre", "int", required=False, low=0, out="nombre"),
        Col("taux_pour_mille", "decimal", required=False, low=0, out="taux_pour_mille"),
        Col("est_diffuse", "enum", allowed=("diff", "ndiff"), out="diffusion"),
        Col("insee_pop", "int", required=False, low=0, out="population"),
        Col("insee_pop_millesime", "int", required=False, low=1990, high=2100),
        Col("insee_log", "decimal", required=False, low=0, out="logements"),
        Col("insee_log_millesime", "int", required=False, low=1990, high=2100),
        Col("complement_info_nombre", "decimal", required=False),
        Col("complement_info_taux", "decimal", required=False),
    ),
    table="ssmsi_rows",
)
SSMSI_OLD = Kind(
    "ssmsi",
    "police",
    "year",
    (
        commune("codgeo", "code_commune"),
        Col("annee", "int", low=0, high=2100, out="annee"),
        Col("classe", out="indicateur"),
        Col("unité.de.compte", required=False, out="unite_de_compte"),
        Col("valeur.publiée", "enum", allowed=("diff", "ndiff"), out="diffusion"),
        Col("faits", "int", required=False, low=0, out="nombre"),
        Col("tauxpourmille", "decimal", required=False, low=0, out="taux_pour_mille"),
        Col("complementinfoval", "decimal", required=False),
        Col("complementinfotaux", "decimal", required=False),
        Col("pop", "int", required=False, low=0, out="population"),
        Col("millpop", "int", required=False, low=0, high=2100),
        Col("log", "decimal", required=False, low=0, out="logements"),
        Col("milllog", "int", required=False, low=0, high=2100),
    ),
    table="ssmsi_rows",
)
CODGEO = re.compile(r"^codgeo_(\d{4})$")

# -- which files are current ------------------------------------------------------------------


@dataclass
class Delivery:
    path: Path
    family: str
    kind: Kind
    landlord: str | None
    period: str | None
    mtime: dt.datetime
    file_id: int = 0

    @property
    def name(self) -> str:
        """How deliveries are ordered after their time: by file name (`family/name`)."""
        return f"{self.family}/{self.path.name}"


def is_temporary(name: str) -> bool:
    return name.startswith(TEMPORARY_PREFIXES) or name.lower().endswith(TEMPORARY_SUFFIXES)


def recognise(family: str, path: Path) -> Delivery | None:
    """The delivery a name stands for, or None when no needed kind's (or impossible)."""
    stat = path.stat()
    mtime = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).replace(tzinfo=None)
    for k in KINDS:
        if k.family != family:
            continue
        match = k.pattern.match(path.name)
        if match is None:
            continue
        groups = match.groupdict()
        period = groups.get("period")
        if period and not (
            1990 <= int(period[:4]) <= 2100 and (k.period != "month" or 1 <= int(period[5:]) <= 12)
        ):
            return None  # an impossible period: the file is rejected
        if not k.table:
            return None
        return Delivery(path, family, k, groups.get("landlord"), period, mtime)
    if family == "police" and re.match(r"^.+\.(?:csv|csv\.gz)$", path.name, re.IGNORECASE):
        # A name looking like an events file but unreadable is rejected, not taken for SSMSI.
        if re.match(r"^evenements(?:[_. -]|$)", path.name, re.IGNORECASE):
            return None
        edition = ssmsi_edition(path)
        if edition is None:
            return None
        return Delivery(path, family, SSMSI_NEW, None, str(edition), mtime)
    return None


def ssmsi_edition(path: Path) -> int | None:
    """The edition (key of an SSMSI delivery) from the header alone, without reading the rows."""
    with path.open("rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        line = (gzip.GzipFile(fileobj=raw) if compressed else raw).readline(1 << 16)
    header = [normalise(h) for h in re.split(r"[;,\t|]", line.decode("utf-8-sig", "replace"))]
    editions = [int(m.group(1)) for m in (CODGEO.match(h) for h in header) if m]
    if len(editions) != 1 or not 1990 <= editions[0] <= 2100:
        return None
    return editions[0]


def scan(inbox: Path) -> list[Delivery]:
    found = []
    for family in ("reference", "landlord", "police", "allocations"):
        folder = inbox / family
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and not is_temporary(path.name):
                delivery = recognise(family, path)
                if delivery is not None:
                    found.append(delivery)
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def candidates_by_key(deliveries: list[Delivery]) -> list[list[Delivery]]:
    """Per key (kind, landlord, period), its deliveries newest first, same bytes counted once.

    The newest (modification time, then name) is current; a file with the same bytes as an
    earlier one of its key is a duplicate that was never loaded, so it cannot be the newest
    (only keys with several files are hashed). An older one stands in when the newest
    cannot be read at all.

    Not reproduced, because generated inboxes never contain them: a delivery the pipeline's
    delivery suite holds (more than half its rows quarantined, a stock a third smaller than
    last year's, ...) is current here, and an operator's acceptance of one is not needed.
    """
    keys: dict[tuple[str, str | None, str | None], list[Delivery]] = defaultdict(list)
    for d in deliveries:
        keys[(d.kind.name, d.landlord, d.period)].append(d)
    result = []
    for files in keys.values():
        files.sort(key=lambda d: (d.mtime, d.name))
        if len(files) > 1:
            seen: set[str] = set()
            distinct = []
            for d in files:
                digest = sha256(d.path)
                if digest not in seen:
                    seen.add(digest)
                    distinct.append(d)
            files = distinct
        result.append(files[::-1])
    return result


# -- reading ----------------------------------------------------------------------------------


def normalise(name: str) -> str:
    return name.strip().strip('"').strip().lower()


def read_text_table(path: Path) -> pl.DataFrame | None:
    """Every cell as text, columns named in lower case, `__ligne` = the spreadsheet row; None
    when the file cannot be read at all (it is then rejected: an older delivery stands)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.strip():
        return None
    if data.startswith(b"PK\x03\x04"):
        try:
            frame = pl.read_excel(
                path, sheet_id=1, infer_schema_length=0, raise_if_empty=False, drop_empty_rows=False
            )
        except Exception:
            return None
        frame = frame.with_columns(
            pl.when(pl.col(c).str.strip_chars().is_in(MISSING))
            .then(None)
            .otherwise(pl.col(c))
            .alias(c)
            for c in frame.columns
        )
    else:
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                return None
        # UTF-8 with or without BOM, else Windows-1252 (UTF-16 is never sent: not handled).
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
            data = text.encode("utf-8")
        header = data.split(b"\n", 1)[0]
        counts = {sep: header.count(sep.encode()) for sep in (";", ",", "\t", "|")}
        separator = max(counts, key=lambda s: counts[s])
        if counts[separator] == 0:
            return None
        try:
            frame = pl.read_csv(
                data,
                separator=separator,
                infer_schema=False,
                null_values=list(MISSING),
                truncate_ragged_lines=True,
                raise_if_empty=False,
            )
        except pl.exceptions.PolarsError:
            return None
    names = [normalise(c) for c in frame.columns]
    if len(set(names)) != len(names):
        return None
    frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    return frame.with_row_index("__ligne", offset=2).with_columns(pl.col("__ligne").cast(pl.Int64))


def shaped(delivery: Delivery, frame: pl.DataFrame | None) -> tuple[Kind, pl.DataFrame] | None:
    """The frame with exactly its kind's columns (text), the file id and its month; None when a
    contract column is missing (the file is rejected whole)."""
    if frame is None:
        return None
    k = delivery.kind
    if k.table == "ssmsi_rows":
        codgeo = [c for c in frame.columns if CODGEO.match(c)]
        if len(codgeo) != 1:
            return None
        frame = frame.rename({codgeo[0]: "codgeo"})
        if "indicateur" in frame.columns:
            k = SSMSI_NEW
        elif "classe" in frame.columns:
            k = SSMSI_OLD
        else:
            return None
    wanted = [c.name for c in k.columns if not c.free_text]
    if any(c.name not in frame.columns for c in k.columns):
        return None
    columns = [pl.col("__ligne"), *(pl.col(c).cast(pl.String) for c in wanted)]
    extra = [pl.lit(delivery.file_id, pl.Int32).alias("__file")]
    if k.period == "month" and delivery.period:
        year, month = int(delivery.period[:4]), int(delivery.period[5:7])
        last = calendar.monthrange(year, month)[1]
        extra += [
            pl.lit(dt.date(year, month, 1)).alias("__debut"),
            pl.lit(dt.date(year, month, last)).alias("__fin"),
        ]
    return k, frame.select(*columns, *extra)


# -- validation -------------------------------------------------------------------------------


def pseudonymise(values: pl.Series, key: bytes) -> pl.Series:
    """HMAC-SHA256 of each distinct identifier once (identifiers repeat; HMAC is the cost)."""
    distinct = values.drop_nulls().unique().to_list()
    mapping = {v: hmac.digest(key, v.encode("utf-8"), "sha256").hex() for v in distinct}
    return values.replace_strict(mapping, default=None, return_dtype=pl.String)


def number(text: pl.Expr) -> pl.Expr:
    valid = pl.any_horizontal(text.str.contains(form) for form in NUMBER_FORMS)
    compact = text.str.replace_all("[\u00a0\u202f ]", "")
    normalised = (
        pl.when(compact.str.contains(",", literal=True))
        .then(compact.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
        .otherwise(compact)
    )
    return pl.when(valid).then(normalised.cast(pl.Float64, strict=False))


def day(text: pl.Expr) -> pl.Expr:
    return pl.coalesce(
        text.str.extract(ISO_DATE, 1).str.strptime(pl.Date, "%Y-%m-%d", strict=False),
        text.str.extract(FRENCH_DATE, 1).str.strptime(pl.Date, "%d/%m/%Y", strict=False),
    )


def validated(k: Kind, frame: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """The rows that break no rule (the rest is what the pipeline quarantines), typed, with
    `__file` and `__ligne`. Within a file, a repeated key keeps its last valid line."""
    columns = [c for c in k.columns if not c.free_text]
    hashed = [c for c in columns if c.hashed]
    if hashed:
        frame = frame.with_columns(
            pseudonymise(frame.get_column(c.name).str.strip_chars(), key) for c in hashed
        )
    if k.table == "ssmsi_rows":
        # A diffused figure without its count is quarantined (read on the raw text).
        diffusion = next(c.name for c in columns if c.out == "diffusion")
        count = next(c.name for c in columns if c.out == "nombre")
        frame = frame.with_columns(
            (
                (pl.col(diffusion).str.strip_chars().str.to_lowercase() == "diff")
                & pl.col(count).str.strip_chars().replace("", None).is_null()
            ).alias("__sans_nombre")
        )

    # Lazy from here: polars drops the helper columns no rule reads and runs rules in parallel.
    lazy = frame.lazy()

    def text(c: Col) -> pl.Expr:
        return pl.col(f"__t_{c.name}")

    cleaned = []
    for c in columns:
        t = pl.col(c.name).str.strip_chars()
        t = pl.when(t.is_in(MISSING)).then(None).otherwise(t)
        if c.pattern == COMMUNE:  # a code a spreadsheet turned into a number: zero restored
            t = pl.when(t.str.contains(r"^\d{4}$")).then(pl.lit("0") + t).otherwise(t)
        cleaned.append(t.alias(f"__t_{c.name}"))
    lazy = lazy.with_columns(cleaned)
    parsed = []
    for c in columns:
        if c.type in ("int", "decimal"):
            parsed.append(number(text(c)).alias(f"__n_{c.name}"))
        elif c.type == "date":
            parsed.append(day(text(c)).alias(f"__d_{c.name}"))
    if parsed:
        lazy = lazy.with_columns(parsed)

    failures: list[pl.Expr] = []
    values: list[pl.Expr] = []
    keys = [f"__t_{u}" for u in k.unique]
    for c in columns:
        t = text(c)
        if c.required:
            failures.append(t.is_null())
        value: pl.Expr
        if c.type == "text":
            given = t.is_not_null()
            value = t
            if c.none_value:
                given = given & (t != c.none_value)
                value = pl.when(t == c.none_value).then(None).otherwise(t)
            if c.pattern:
                failures.append(given & ~t.str.contains(c.pattern))
        elif c.type in ("int", "decimal"):
            n = pl.col(f"__n_{c.name}")
            if c.type == "int":
                bad = t.is_not_null() & (n.is_null() | (n != n.floor()))
                value = n.cast(pl.Int64, strict=False)
            else:
                bad = t.is_not_null() & (n.is_null() | n.is_nan() | n.is_infinite())
                value = n
            failures.append(bad)
            if c.low is not None or c.high is not None:
                low = float("-inf") if c.low is None else c.low
                high = float("inf") if c.high is None else c.high
                failures.append(~bad & n.is_not_null() & ((n < low) | (n > high)))
        elif c.type == "date":
            value = pl.col(f"__d_{c.name}")
            failures.append(t.is_not_null() & value.is_null())
        elif c.type == "enum":
            canonical = {a.lower(): a for a in c.allowed}
            value = t.str.to_lowercase().replace_strict(
                canonical, default=None, return_dtype=pl.String
            )
            failures.append(t.is_not_null() & value.is_null())
        else:  # oui_non
            value = t.str.to_lowercase().replace_strict(
                {"oui": True, "non": False}, default=None, return_dtype=pl.Boolean
            )
            failures.append(t.is_not_null() & value.is_null())
        if c.out:
            values.append(value.alias(c.out))
    if k.period_date:
        when = pl.col(f"__d_{k.period_date}")
        failures.append(
            when.is_not_null() & ((when < pl.col("__debut")) | (when > pl.col("__fin")))
        )
    for later, earlier in k.ordered:
        a, b = pl.col(f"__d_{later}"), pl.col(f"__d_{earlier}")
        failures.append(a.is_not_null() & b.is_not_null() & (a < b))
    if k.table == "ssmsi_rows":
        failures.append(pl.col("__sans_nombre"))

    failed = pl.any_horizontal(f.fill_null(False) for f in failures)
    lazy = lazy.filter(~failed).select("__file", "__ligne", *values, *keys)
    if k.unique:
        # Rows are in line order within a file: the last valid line of a key is kept.
        lazy = lazy.unique(subset=["__file", *keys], keep="last")
    return lazy.select("__file", "__ligne", *(v.meta.output_name() for v in values)).collect()


# -- staging into DuckDB ----------------------------------------------------------------------


@dataclass
class Stats:
    files_read: int = 0
    rows_read: int = 0
    rows_kept: int = 0


def first_readable(candidates: list[Delivery]) -> tuple[Delivery, Kind, pl.DataFrame] | None:
    """The newest delivery of a key that can be read (an unreadable file is rejected)."""
    for delivery in candidates:
        result = shaped(delivery, read_text_table(delivery.path))
        if result is not None:
            return delivery, *result
    return None


def read_all(
    pool: ThreadPoolExecutor, keys: list[list[Delivery]], window: int
) -> Iterator[tuple[Delivery, Kind, pl.DataFrame] | None]:
    """Keys read concurrently, in order, with at most `window` files in flight (memory)."""
    flight: deque[Future[tuple[Delivery, Kind, pl.DataFrame] | None]] = deque()
    for candidates in keys:
        flight.append(pool.submit(first_readable, candidates))
        if len(flight) > window:
            yield flight.popleft().result()
    while flight:
        yield flight.popleft().result()


class Stager:
    """Rows of one staged table gathered across files, validated and written in batches.

    A batch is validated and written by one background thread while the next is read (at
    most one batch waits), so that reading and validating overlap on two cores.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, key: bytes) -> None:
        self.con = con
        self.key = key
        self.stats = Stats()
        self.frames: dict[tuple[str, str], list[pl.DataFrame]] = defaultdict(list)
        self.rows: dict[tuple[str, str], int] = defaultdict(int)
        self.kinds: dict[tuple[str, str], Kind] = {}
        self.created: set[str] = set()
        self.writer = ThreadPoolExecutor(max_workers=1)
        self.writing: Future[None] | None = None

    def add(self, k: Kind, frame: pl.DataFrame) -> None:
        batch = (k.table, k.columns[2].name)  # one batch per schema of a table (SSMSI has two)
        self.kinds[batch] = k
        self.frames[batch].append(frame)
        self.rows[batch] += frame.height
        self.stats.files_read += 1
        self.stats.rows_read += frame.height
        if self.rows[batch] >= BATCH_ROWS:
            self.flush(batch)

    def flush(self, batch: tuple[str, str]) -> None:
        frames = self.frames.pop(batch, [])
        self.rows.pop(batch, None)
        if not frames:
            return
        self.wait()
        self.writing = self.writer.submit(self.validate_and_write, self.kinds[batch], frames)

    def wait(self) -> None:
        if self.writing is not None:
            self.writing.result()
            self.writing = None

    def validate_and_write(self, k: Kind, frames: list[pl.DataFrame]) -> None:
        whole = pl.concat(frames, how="vertical")
        frames.clear()
        # A batch holds whole files (a repeated key is judged within its file); a kind without
        # that rule (SSMSI's one big file) is validated a slice at a time.
        step = whole.height if k.unique else BATCH_ROWS
        for start in range(0, max(whole.height, 1), max(step, 1)):
            self.write(k.table, validated(k, whole.slice(start, step), self.key))

    def write(self, table: str, rows: pl.DataFrame) -> None:
        self.stats.rows_kept += rows.height
        self.con.register("__batch", rows.to_arrow())
        if table in self.created:
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM __batch")
        else:
            self.con.execute(f"CREATE TABLE {table} AS SELECT * FROM __batch")
            self.created.add(table)
        self.con.unregister("__batch")

    def finish(self) -> None:
        for batch in list(self.frames):
            self.flush(batch)
        self.wait()
        self.writer.shutdown()
        for k in (*KINDS, SSMSI_NEW):
            if k.table and k.table not in self.created:
                # No file of that kind: an empty table of the validated shape.
                empty = pl.DataFrame(
                    schema={c.name: pl.String for c in k.columns if not c.free_text}
                ).with_columns(
                    pl.lit(0, pl.Int32).alias("__file"),
                    pl.lit(0, pl.Int64).alias("__ligne"),
                    pl.lit(None, pl.Date).alias("__debut"),
                    pl.lit(None, pl.Date).alias("__fin"),
                )
                self.write(k.table, validated(k, empty, self.key))


def stage(
    con: duckdb.DuckDBPyConnection, keys: list[list[Delivery]], key: bytes, threads: int
) -> tuple[list[Delivery], Stats]:
    """Read the current delivery of every key (kind by kind), stage its valid rows; returns
    the deliveries that count and what was read."""
    for file_id, candidates in enumerate(keys, start=1):
        for d in candidates:
            d.file_id = file_id
    stager = Stager(con, key)
    current: list[Delivery] = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for result in read_all(pool, keys, window=2 * threads):
            if result is not None:
                delivery, k, frame = result
                current.append(delivery)
                stager.add(k, frame)
    stager.finish()
    return current, stager.stats


def register_deliveries(con: duckdb.DuckDBPyConnection, current: list[Delivery]) -> None:
    """`deliveries`: the current delivery of each key, with its rank in delivery order."""
    ordered = sorted(current, key=lambda d: (d.mtime, d.name))
    frame = pl.DataFrame(
        {
            "file_id": [d.file_id for d in ordered],
            "kind": [d.kind.name for d in ordered],
            "landlord": [d.landlord for d in ordered],
            "period": [d.period for d in ordered],
            "ordre": list(range(1, len(ordered) + 1)),
        },
        schema={
            "file_id": pl.Int32,
            "kind": pl.String,
            "landlord": pl.String,
            "period": pl.String,
            "ordre": pl.Int64,
        },
    )
    con.register("__deliveries", frame.to_arrow())
    con.execute(
        """
        CREATE TABLE deliveries AS
        SELECT *,
               CASE WHEN regexp_full_match(period, '\\d{4}-\\d{2}')
                    THEN CAST(strptime(period || '-01', '%Y-%m-%d') AS DATE) END AS mois,
               CASE WHEN regexp_matches(period, '^\\d{4}') THEN CAST(left(period, 4) AS INTEGER)
               END AS annee_fichier
        FROM __deliveries
        """
    )
    con.unregister("__deliveries")


# -- the four tables, set-based ---------------------------------------------------------------

SQL = """
CREATE TABLE epci_communes AS
WITH fichiers AS (
    SELECT DISTINCT d.annee_fichier, d.file_id
    FROM ref_epci AS e JOIN deliveries AS d ON d.file_id = e.__file
),
bornes AS (
    SELECT annee_fichier, file_id,
           CASE WHEN row_number() OVER (ORDER BY annee_fichier) = 1 THEN 0 ELSE annee_fichier END
               AS annee_debut,
           coalesce(lead(annee_fichier) OVER (ORDER BY annee_fichier) - 1, 9999) AS annee_fin
    FROM fichiers
)
SELECT b.annee_fichier, b.annee_debut, b.annee_fin, e.code_commune, e.nom_commune, e.code_epci,
       e.libelle_epci, e.code_departement
FROM bornes AS b JOIN ref_epci AS e ON e.__file = b.file_id;

-- Residences of each current stock file (landlord, stock year).
CREATE TABLE residences_stock AS
SELECT d.landlord AS code_bailleur, d.annee_fichier AS annee, s.id_residence,
       min(s.nom_residence) AS nom_residence, min(s.code_commune) AS code_commune,
       min(s.code_qpv) AS code_qpv, count(*) AS n_logements
FROM stock_rows AS s JOIN deliveries AS d ON d.file_id = s.__file
GROUP BY ALL;

CREATE TABLE noms AS
WITH candidats AS (
    SELECT 'residence' AS niveau, code_bailleur || ':' || id_residence AS code,
           coalesce(nullif(trim(nom_residence), ''), code_bailleur || ':' || id_residence) AS nom,
           annee AS priorite, 0 AS ligne
    FROM residences_stock
    UNION ALL
    SELECT 'qpv', q.code_qpv, nullif(trim(q.nom_qpv), ''), d.annee_fichier, q.__ligne
    FROM ref_qpv AS q JOIN deliveries AS d ON d.file_id = q.__file
    UNION ALL
    SELECT 'commune', code_commune, nullif(trim(nom_commune), ''), annee_fichier, 0
    FROM epci_communes
    UNION ALL
    SELECT 'epci', code_epci, nullif(trim(libelle_epci), ''), annee_fichier, 0
    FROM epci_communes WHERE code_epci IS NOT NULL
    UNION ALL
    SELECT 'departement', code_departement, nom_departement, 0, 0
    FROM read_csv('{departements}', all_varchar = true, header = true)
    UNION ALL
    SELECT 'bailleur', code_bailleur, nullif(trim(nom_bailleur), ''), 0, __ligne
    FROM ref_bailleurs
    UNION ALL
    SELECT 'ensemble', 'FR', 'France', 0, 0
)
SELECT niveau, code AS code_territoire, nom AS nom_territoire
FROM candidats
WHERE code IS NOT NULL AND nom IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY niveau, code ORDER BY priorite DESC, ligne DESC, nom
) = 1;

-- A landlord covers a month when it delivered an incidents file for it.
CREATE TABLE couverture AS
SELECT landlord AS code_bailleur, mois FROM deliveries WHERE kind = 'incidents';

-- Stock applicable to a year: the latest stock year <= it, else the earliest.
CREATE TABLE residences AS
WITH annees AS (SELECT DISTINCT code_bailleur, year(mois) AS annee FROM couverture),
stocks AS (SELECT DISTINCT code_bailleur, annee FROM residences_stock),
applicable AS (
    SELECT a.code_bailleur, a.annee,
           coalesce(max(s.annee) FILTER (WHERE s.annee <= a.annee), min(s.annee))
               AS annee_patrimoine
    FROM annees AS a JOIN stocks AS s ON s.code_bailleur = a.code_bailleur
    GROUP BY a.code_bailleur, a.annee
)
SELECT a.annee, r.annee AS annee_patrimoine, r.code_bailleur, r.id_residence,
       r.code_bailleur || ':' || r.id_residence AS code_residence, r.code_commune, r.code_qpv,
       e.code_epci, e.code_departement, r.n_logements
FROM applicable AS a
JOIN residences_stock AS r ON r.code_bailleur = a.code_bailleur AND r.annee = a.annee_patrimoine
LEFT JOIN epci_communes AS e
    ON e.code_commune = r.code_commune AND a.annee BETWEEN e.annee_debut AND e.annee_fin;

CREATE TABLE territoires AS
SELECT r.annee, r.annee_patrimoine, r.code_bailleur, r.id_residence, t.niveau,
       t.code_territoire, r.n_logements
FROM residences AS r,
LATERAL (
    SELECT * FROM (VALUES
        ('residence', r.code_residence), ('qpv', r.code_qpv), ('commune', r.code_commune),
        ('epci', r.code_epci), ('departement', r.code_departement),
        ('bailleur', r.code_bailleur), ('ensemble', 'FR')
    ) AS v (niveau, code_territoire)
    WHERE code_territoire IS NOT NULL
) AS t;

-- Each landlord code -> category, from its current mapping file (last line wins).
CREATE TABLE categories_bailleur AS
SELECT d.landlord AS code_bailleur, c.code_source, c.categorie
FROM ref_categories AS c JOIN deliveries AS d ON d.file_id = c.__file
QUALIFY row_number() OVER (
    PARTITION BY d.landlord, c.code_source ORDER BY d.ordre DESC, c.__ligne DESC
) = 1;

-- A re-delivered incident counts once, from the latest delivery (then its last line).
CREATE TABLE incidents AS
WITH derniers AS (
    SELECT d.landlord AS code_bailleur, i.id_incident, i.id_residence, i.code_categorie,
           CAST(date_trunc('month', i.date_signalement) AS DATE) AS mois
    FROM incident_rows AS i JOIN deliveries AS d ON d.file_id = i.__file
    QUALIFY row_number() OVER (
        PARTITION BY d.landlord, i.id_incident ORDER BY d.ordre DESC, i.__ligne DESC
    ) = 1
)
SELECT t.niveau, t.code_territoire, i.mois, c.categorie
FROM derniers AS i
JOIN couverture AS k ON k.code_bailleur = i.code_bailleur AND k.mois = i.mois
JOIN territoires AS t
    ON t.code_bailleur = i.code_bailleur AND t.id_residence = i.id_residence
    AND t.annee = year(i.mois)
LEFT JOIN categories_bailleur AS c
    ON c.code_bailleur = i.code_bailleur AND c.code_source = i.code_categorie;

CREATE TABLE out.indicateurs_incidents_mois AS
WITH denominateurs AS (
    SELECT t.niveau, t.code_territoire, c.mois, sum(t.n_logements) AS n_logements,
           min(t.annee_patrimoine) AS annee_patrimoine
    FROM couverture AS c
    JOIN territoires AS t ON t.code_bailleur = c.code_bailleur AND t.annee = year(c.mois)
    GROUP BY t.niveau, t.code_territoire, c.mois
    HAVING sum(t.n_logements) > 0
),
categories AS (
    SELECT unnest({categories}) AS categorie UNION ALL SELECT 'total'
),
comptes AS (
    SELECT niveau, code_territoire, mois, categorie, count(*) AS n_incidents
    FROM incidents WHERE categorie IS NOT NULL
    GROUP BY ALL
    UNION ALL
    SELECT niveau, code_territoire, mois, 'total', count(*)
    FROM incidents
    GROUP BY ALL
)
SELECT d.niveau, d.code_territoire, n.nom_territoire, d.mois, k.categorie,
       CAST(coalesce(c.n_incidents, 0) AS BIGINT) AS n_incidents,
       CAST(d.n_logements AS BIGINT) AS n_logements,
       CAST(1000.0 * coalesce(c.n_incidents, 0) / d.n_logements AS DOUBLE)
           AS taux_pour_1000_logements,
       CAST(d.annee_patrimoine AS INTEGER) AS annee_patrimoine
FROM denominateurs AS d
CROSS JOIN categories AS k
LEFT JOIN comptes AS c
    ON c.niveau = d.niveau AND c.code_territoire = d.code_territoire AND c.mois = d.mois
    AND c.categorie = k.categorie
LEFT JOIN noms AS n ON n.niveau = d.niveau AND n.code_territoire = d.code_territoire;

-- SSMSI: for each (commune, year, indicator) the row of the latest edition containing it.
CREATE TABLE out.indicateurs_delinquance_commune_annee AS
WITH lignes AS (
    SELECT s.code_commune,
           CASE WHEN s.annee < 100 THEN s.annee + 2000 ELSE s.annee END AS annee,
           s.indicateur, s.unite_de_compte, s.nombre, s.taux_pour_mille, s.population,
           s.logements, s.diffusion = 'diff' AS diffuse, d.annee_fichier AS edition
    FROM ssmsi_rows AS s JOIN deliveries AS d ON d.file_id = s.__file
    QUALIFY row_number() OVER (
        PARTITION BY s.code_commune,
                     CASE WHEN s.annee < 100 THEN s.annee + 2000 ELSE s.annee END,
                     s.indicateur
        ORDER BY d.annee_fichier DESC, d.ordre DESC, s.__ligne DESC
    ) = 1
)
SELECT l.code_commune, n.nom_territoire AS nom_commune, CAST(l.annee AS INTEGER) AS annee,
       l.indicateur, l.unite_de_compte,
       CAST(CASE WHEN l.diffuse THEN l.nombre END AS BIGINT) AS nombre,
       CAST(CASE WHEN l.diffuse THEN l.taux_pour_mille END AS DOUBLE) AS taux_pour_mille,
       CAST(l.population AS BIGINT) AS population, CAST(l.logements AS DOUBLE) AS logements,
       CAST(l.diffuse AS BOOLEAN) AS diffuse, CAST(l.edition AS INTEGER) AS edition,
       true AS annee_complete
FROM lignes AS l
LEFT JOIN noms AS n ON n.niveau = 'commune' AND n.code_territoire = l.code_commune;

CREATE TABLE out.indicateurs_delinquance_epci_annee AS
WITH agregats AS (
    SELECT e.code_epci, c.annee, c.indicateur,
           min(c.unite_de_compte) AS unite_de_compte,
           sum(c.nombre) FILTER (WHERE c.diffuse) AS nombre,
           coalesce(sum(c.population) FILTER (WHERE c.diffuse), 0) AS population,
           CAST(coalesce(sum(CAST(c.logements AS DECIMAL(38, 10))) FILTER (WHERE c.diffuse), 0)
                AS DOUBLE) AS logements,
           count(*) FILTER (WHERE NOT c.diffuse) AS n_communes_non_diffusees,
           count(*) FILTER (WHERE c.diffuse) AS n_communes_diffusees,
           max(c.edition) AS edition
    FROM out.indicateurs_delinquance_commune_annee AS c
    JOIN epci_communes AS e
        ON e.code_commune = c.code_commune AND c.annee BETWEEN e.annee_debut AND e.annee_fin
    WHERE e.code_epci IS NOT NULL
    GROUP BY e.code_epci, c.annee, c.indicateur
)
SELECT a.code_epci, n.nom_territoire AS nom_epci, CAST(a.annee AS INTEGER) AS annee,
       a.indicateur, a.unite_de_compte, CAST(a.nombre AS BIGINT) AS nombre,
       CAST(a.population AS BIGINT) AS population, CAST(a.logements AS DOUBLE) AS logements,
       CAST(a.n_communes_non_diffusees AS BIGINT) AS n_communes_non_diffusees,
       CAST(a.n_communes_diffusees AS BIGINT) AS n_communes_diffusees,
       CAST(CASE WHEN a.indicateur = 'Cambriolages de logement'
                 THEN 1000.0 * a.nombre / nullif(a.logements, 0)
                 ELSE 1000.0 * a.nombre / nullif(a.population, 0) END AS DOUBLE)
           AS taux_pour_mille,
       true AS annee_complete, a.edition
FROM agregats AS a
LEFT JOIN noms AS n ON n.niveau = 'epci' AND n.code_territoire = a.code_epci;

-- Allocations with a signed lease, in the EPCI of their commune for the signature year; Q1
-- compared exactly (uc in tenths, amounts as decimals).
CREATE TABLE out.indicateurs_mixite_epci_annee AS
WITH seuils AS (
    SELECT s.code_epci, s.annee, s.seuil_q1_euros_uc
    FROM ref_seuils AS s JOIN deliveries AS d ON d.file_id = s.__file
    QUALIFY row_number() OVER (
        PARTITION BY s.code_epci, s.annee ORDER BY d.ordre DESC, s.__ligne DESC
    ) = 1
),
objectifs AS (
    SELECT o.code_epci, o.annee, o.objectif_pct
    FROM ref_objectifs AS o JOIN deliveries AS d ON d.file_id = o.__file
    QUALIFY row_number() OVER (
        PARTITION BY o.code_epci, o.annee ORDER BY d.ordre DESC, o.__ligne DESC
    ) = 1
),
signees AS (
    SELECT CAST(year(a.date_signature_bail) AS INTEGER) AS annee, a.code_qpv IS NOT NULL AS en_qpv,
           e.code_epci, s.seuil_q1_euros_uc,
           CASE WHEN s.seuil_q1_euros_uc IS NULL OR a.revenu IS NULL THEN NULL
                ELSE CAST(a.revenu AS DECIMAL(18, 2)) * 10
                    < CAST(s.seuil_q1_euros_uc AS DECIMAL(18, 2))
                      * (10 + 5 * (a.nb_14_plus - 1) + 3 * a.nb_moins_14)
           END AS est_q1,
           coalesce(a.relogement_anru, false) AS relogement_anru,
           a.menage_prioritaire IN ('DALO', 'prioritaire') AS est_prioritaire
    FROM attribution_rows AS a
    LEFT JOIN epci_communes AS e
        ON e.code_commune = a.code_commune
        AND year(a.date_signature_bail) BETWEEN e.annee_debut AND e.annee_fin
    LEFT JOIN seuils AS s ON s.code_epci = e.code_epci AND s.annee = year(a.date_signature_bail)
    WHERE a.date_signature_bail IS NOT NULL
),
comptes AS (
    SELECT code_epci, annee, count(*) AS n_attributions,
           count_if(NOT en_qpv) AS n_attributions_hors_qpv,
           count_if(NOT en_qpv AND (est_q1 OR relogement_anru)) AS n_q1_hors_qpv,
           count_if(en_qpv) AS n_attributions_qpv,
           count_if(en_qpv AND NOT est_q1) AS n_hors_q1_qpv,
           count_if(est_prioritaire) AS n_menages_prioritaires,
           min(seuil_q1_euros_uc) AS seuil_q1_euros_uc
    FROM signees WHERE code_epci IS NOT NULL
    GROUP BY code_epci, annee
),
annees_completes AS (
    SELECT annee_fichier AS annee, count(DISTINCT mois) = 12 AS annee_complete
    FROM deliveries WHERE kind = 'attributions' GROUP BY annee_fichier
),
c AS (
    SELECT c.*, CAST(coalesce(o.objectif_pct, 25) AS DOUBLE) AS objectif_q1,
           CAST(50 AS DOUBLE) AS objectif_qpv,
           CAST(round(CAST(coalesce(o.objectif_pct, 25) AS DECIMAL(18, 6)) * 1000000) AS HUGEINT)
               AS e6_q1,
           CAST(50000000 AS HUGEINT) AS e6_qpv,
           coalesce(p.annee_complete, false) AS annee_complete, n.nom_territoire AS nom_epci
    FROM comptes AS c
    LEFT JOIN objectifs AS o ON o.code_epci = c.code_epci AND o.annee = c.annee
    LEFT JOIN annees_completes AS p ON p.annee = c.annee
    LEFT JOIN noms AS n ON n.niveau = 'epci' AND n.code_territoire = c.code_epci
)
SELECT code_epci, nom_epci, annee,
       CAST(n_attributions AS BIGINT) AS n_attributions,
       CAST(n_attributions_hors_qpv AS BIGINT) AS n_attributions_hors_qpv,
       CAST(n_q1_hors_qpv AS BIGINT) AS n_q1_hors_qpv,
       CASE WHEN n_attributions_hors_qpv = 0 THEN NULL
            ELSE n_q1_hors_qpv / n_attributions_hors_qpv END AS taux_q1_hors_qpv,
       objectif_q1 AS objectif_q1_hors_qpv_pct,
       CASE WHEN n_attributions_hors_qpv = 0 THEN CAST(0 AS BIGINT)
            ELSE CAST(greatest(0, (e6_q1 * n_attributions_hors_qpv + 99999999) // 100000000
                                  - n_q1_hors_qpv) AS BIGINT) END AS manque_q1_hors_qpv,
       CASE WHEN n_attributions_hors_qpv = 0 THEN NULL
            ELSE CAST(n_q1_hors_qpv AS HUGEINT) * 100000000 >= e6_q1 * n_attributions_hors_qpv
       END AS conforme_q1_hors_qpv,
       CAST(n_attributions_qpv AS BIGINT) AS n_attributions_qpv,
       CAST(n_hors_q1_qpv AS BIGINT) AS n_hors_q1_qpv,
       CASE WHEN n_attributions_qpv = 0 THEN NULL
            ELSE n_hors_q1_qpv / n_attributions_qpv END AS taux_hors_q1_qpv,
       objectif_qpv AS objectif_hors_q1_qpv_pct,
       CASE WHEN n_attributions_qpv = 0 THEN CAST(0 AS BIGINT)
            ELSE CAST(greatest(0, (e6_qpv * n_attributions_qpv + 99999999) // 100000000
                                  - n_hors_q1_qpv) AS BIGINT) END AS manque_hors_q1_qpv,
       CASE WHEN n_attributions_qpv = 0 THEN NULL
            ELSE CAST(n_hors_q1_qpv AS HUGEINT) * 100000000 >= e6_qpv * n_attributions_qpv
       END AS conforme_hors_q1_qpv,
       CAST(n_menages_prioritaires AS BIGINT) AS n_menages_prioritaires,
       CASE WHEN n_attributions = 0 THEN NULL
            ELSE n_menages_prioritaires / n_attributions END AS taux_menages_prioritaires,
       seuil_q1_euros_uc, annee_complete
FROM c;
"""


def bounded(
    con: duckdb.DuckDBPyConnection, threads: int, memory_limit: str, scratch: Path
) -> duckdb.DuckDBPyConnection:
    """The connection held to `memory_limit`, spilling what does not fit under `scratch`;
    row order is never relied on (every table is compared as a multiset), so DuckDB need not
    keep it, which lets it stream and spill more."""
    con.execute(f"SET threads = {threads}")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{scratch / 'spill'}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def compute(inbox: Path, output: Path, threads: int, memory_limit: str) -> dict[str, object]:
    started = time.perf_counter()
    key = os.environ.get("TRANQUILLITY_PSEUDO_KEY", "").encode() or secrets.token_bytes(32)
    scratch = Path(tempfile.mkdtemp(prefix="bench_baseline_", dir=output.parent))
    try:
        con = bounded(duckdb.connect(str(scratch / "work.duckdb")), threads, memory_limit, scratch)
        deliveries = scan(inbox)
        # Kind by kind, so that a kind's rows gather into full batches.
        rank = {k.name: i for i, k in enumerate((*KINDS, SSMSI_NEW))}
        keys = sorted(candidates_by_key(deliveries), key=lambda c: rank[c[0].kind.name])
        current, stats = stage(con, keys, key, threads)
        register_deliveries(con, current)
        read_done = time.perf_counter()
        output.unlink(missing_ok=True)
        con.execute(f"ATTACH '{output}' AS out")
        categories = "[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
        departements = SEEDS / "departements.csv"
        con.execute(
            SQL.replace("{categories}", categories).replace("{departements}", str(departements))
        )
        rows = {t: scalar(con, f"SELECT count(*) FROM out.{t}") for t in TABLES}
        con.execute("DETACH out")
        con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    finished = time.perf_counter()
    return {
        "seconds": round(finished - started, 3),
        "seconds_read": round(read_done - started, 3),
        "seconds_sql": round(finished - read_done, 3),
        "files_seen": len(deliveries),
        "files_read": stats.files_read,
        "rows_read": stats.rows_read,
        "rows_kept": stats.rows_kept,
        "rows": rows,
    }


# -- comparison with a publication ------------------------------------------------------------


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def rounded(relation: str, columns: list[tuple[str, str]]) -> str:
    """The relation with its DOUBLE columns rounded to 9 significant digits."""
    selected = []
    for name, dtype in columns:
        if dtype == "DOUBLE":
            selected.append(
                f"CASE WHEN {name} IS NULL OR {name} = 0 OR isnan({name}) OR isinf({name}) "
                f"THEN {name} ELSE round({name}, 8 - CAST(floor(log10(abs({name}))) AS INTEGER)) "
                f"END AS {name}"
            )
        else:
            selected.append(name)
    return f"SELECT {', '.join(selected)} FROM {relation}"


def compare(
    output: Path, publication: Path, threads: int, memory_limit: str
) -> dict[str, dict[str, object]]:
    """Per table: same column names in the same order, the same types, and the same multiset
    of rows (DOUBLEs rounded to 9 significant digits: sums depend on the order of addition)."""
    scratch = Path(tempfile.mkdtemp(prefix="bench_baseline_compare_", dir=output.parent))
    try:
        # Bounded like the computation: unbounded, DuckDB takes 80 % of the machine's memory
        # to compare the national incidents table (57 M rows) and a shared machine runs short.
        con = bounded(duckdb.connect(), threads, memory_limit, scratch)
        con.execute(f"ATTACH '{output}' AS mine (READ_ONLY)")
        con.execute(f"ATTACH '{publication}' AS pub (READ_ONLY)")
        result = {table: compare_table(con, table) for table in TABLES}
        con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def compare_table(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, object]:
    theirs = [(r[0], r[1]) for r in con.execute(f"DESCRIBE pub.{table}").fetchall()]
    ours = [(r[0], r[1]) for r in con.execute(f"DESCRIBE mine.{table}").fetchall()]
    same_columns = [n for n, _ in theirs] == [n for n, _ in ours]
    same_types = theirs == ours
    missing = extra = None
    rows_publication = scalar(con, f"SELECT count(*) FROM pub.{table}")
    rows_baseline = scalar(con, f"SELECT count(*) FROM mine.{table}")
    if same_columns:
        missing, extra = multiset_difference(con, table, theirs, rows_publication + rows_baseline)
    return {
        "rows_publication": rows_publication,
        "rows_baseline": rows_baseline,
        "same_columns": same_columns,
        "same_types": same_types,
        "only_in_publication": missing,
        "only_in_baseline": extra,
        "identical": same_columns and same_types and missing == 0 and extra == 0,
    }


def multiset_difference(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]], rows: int
) -> tuple[int, int]:
    """The counts of `pub EXCEPT ALL mine` and `mine EXCEPT ALL pub`, from each row's count on
    both sides.

    Neither EXCEPT ALL nor one grouping of the national incidents table (2 x 57 M rows) stays
    within the memory limit: the first spilled 12 GB and ran for over ten minutes, the second
    ran out of memory. So the rows are grouped a slice at a time, a slice being the rows whose
    hash falls in it: equal rows always share a slice, so the counts are exact, and a slice of
    about COMPARED_ROWS rows fits in memory.
    """
    pub_rows, our_rows = rounded(f"pub.{table}", columns), rounded(f"mine.{table}", columns)
    names = ", ".join(f'"{n}"' for n, _ in columns)
    slices = max(1, -(-rows // COMPARED_ROWS))
    missing = extra = 0
    for i in range(slices):
        row = con.execute(
            f"""
            SELECT coalesce(sum(greatest(n, 0)), 0), coalesce(sum(greatest(-n, 0)), 0)
            FROM (
                SELECT sum(__side) AS n
                FROM (
                    SELECT *, 1 AS __side FROM ({pub_rows})
                    UNION ALL
                    SELECT *, -1 AS __side FROM ({our_rows})
                )
                WHERE hash({names}) % {slices} = {i}
                GROUP BY {names}
            )
            """
        ).fetchone()
        if row:
            missing, extra = missing + int(row[0]), extra + int(row[1])
    return missing, extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inbox", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--compare", type=Path, metavar="PUBLICATION")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--memory-limit", default="1500MB")
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="also write the report (with its seconds) here"
    )
    args = parser.parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = compute(args.inbox, args.output.resolve(), args.threads, args.memory_limit)
    status = 0
    if args.compare:
        verdicts = compare(args.output, args.compare, args.threads, args.memory_limit)
        report["compare"] = verdicts
        status = 0 if all(t["identical"] for t in verdicts.values()) else 1
    print(json.dumps(report, ensure_ascii=False))
    if args.report:
        args.report.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
