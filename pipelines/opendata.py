"""Open-data tables with statistical confidentiality (docs/open-data.md).

Counts between 1 and `seuil - 1` are masked (primary suppression); a rate, a shortfall or a
compliance flag computed from a masked count is masked with it; and within each table, a
masked cell must not be recoverable by subtracting published cells from a published total
(secondary suppression). An attacker knows every masked cell is at least 1, so a group is
also unsafe when its masked cells sum to their number (they must all be 1). Across tables and
territorial levels, `protect_linked` (pipelines/disclosure.py) completes it.

Each open table keeps one territorial level, so that the only totals inside a table are the
explicit ones handled here (the `total` category; `n_attributions` = outside + inside QPV).

Every table is written twice, Parquet (typed) and a CSV in the conventions of French open
data (UTF-8 with BOM, `;`, decimal comma), described by a Frictionless data package
(`datapackage.json`) and a README. The descriptions of the columns that are published
columns are the dbt ones (the manifest), not a copy: only what open data adds is written here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import frictionless
import numpy as np
import polars as pl
import yaml

from pipelines.disclosure import (
    Hierarchy,
    LinkedTable,
    ProtectionCache,
    QpvCommunes,
    infer_parents,
    protect,
)
from pipelines.french_csv import write_csv
from pipelines.ingest.ledger import CURRENT
from pipelines.settings import connection_config

log = logging.getLogger(__name__)

SEUIL_INCIDENTS = 5
# The territorial levels of the open incidents tables (`incidents_<niveau>_annee`); `ensemble`
# is France as a whole (code `FR`), the published `niveau` of the national rows, the sum of the
# départements: its cells are settled after the repair of the others (`_DEFERRED`).
NIVEAUX_INCIDENTS = ("commune", "qpv", "epci", "departement", "ensemble")
FRANCE = "incidents_ensemble_annee"
SEUIL_EVENEMENTS = 5
SEUIL_ATTRIBUTIONS = 11
# Residences per hall severity level: a level is read from a residence's incidents, so their
# counts take the incidents' threshold; eviction procedures take the events' one.
SEUIL_HALLS = SEUIL_INCIDENTS
SEUIL_PROCEDURES = SEUIL_EVENEMENTS
TOTAL = "total"


def _unsafe(masked_values: Sequence[int], total_published: bool) -> bool:
    """Whether a group's masked cells can be recovered from its published total."""
    if not total_published or not masked_values:
        return False
    return len(masked_values) == 1 or sum(masked_values) == len(masked_values)


def protect_group(
    values: list[int], masked: list[bool], total: int | None, total_masked: bool
) -> tuple[list[bool], bool]:
    """Secondary suppression of one group of cells adding up to a total.

    Masks the smallest published positive cell until the group is safe; when no such cell is
    left, masks the total instead.
    """
    masked = list(masked)
    while _unsafe(
        [v for v, m in zip(values, masked, strict=True) if m],
        total is not None and not total_masked,
    ):
        candidates = [
            (v, i) for i, (v, m) in enumerate(zip(values, masked, strict=True)) if not m and v > 0
        ]
        if candidates:
            masked[min(candidates)[1]] = True
        else:
            total_masked = True
    return masked, total_masked


def primary(count: pl.Expr, seuil: int) -> pl.Expr:
    return count.is_between(1, seuil - 1)


def suppress_long(
    frame: pl.DataFrame, keys: list[str], category: str, count: str, seuil: int
) -> pl.DataFrame:
    """Long table (one row per category, plus a `total` row): adds a boolean `secret`.

    Rows come out grouped by `keys` (groups in order of first appearance, the `total` row
    last). Only groups holding a primary cell can need a secondary one: Python walks those,
    on plain lists (nationally 174,000 commune-years, of which a fraction has a small count;
    a DataFrame per group cost half a minute)."""
    frame = frame.with_columns(primary(pl.col(count), seuil).alias("secret"))
    if frame.height == 0:
        return frame
    order = (
        frame.with_row_index("_row")
        .with_columns(
            pl.struct(keys).rank("dense").alias("_group"),
            (pl.col(category) == TOTAL).alias("_total"),
        )
        .with_columns(pl.col("_row").min().over("_group").alias("_first"))
        .sort("_first", "_total", "_row")
    )
    rows = order.get_column("_row").to_list()
    groups = order.get_column("_first").to_list()
    totals = order.get_column("_total").to_list()
    values = order.get_column(count).to_list()
    secret = order.get_column("secret").to_list()
    touched = set(order.filter(pl.col("secret") & ~pl.col("_total")).get_column("_first"))
    start = 0
    while start < len(rows):
        end = start
        while end < len(rows) and groups[end] == groups[start]:
            end += 1
        if groups[start] in touched:
            cells = [k for k in range(start, end) if not totals[k]]
            whole = next((k for k in range(start, end) if totals[k]), None)
            masked, total_masked = protect_group(
                [values[k] for k in cells],
                [secret[k] for k in cells],
                values[whole] if whole is not None else None,
                bool(secret[whole]) if whole is not None else False,
            )
            for k, m in zip(cells, masked, strict=True):
                secret[k] = m
            if whole is not None:
                for k in range(start, end):
                    if totals[k]:
                        secret[k] = total_masked
        start = end
    return frame.select(pl.all().gather(rows)).with_columns(
        pl.Series("secret", secret, dtype=pl.Boolean)
    )


def _mask(frame: pl.DataFrame, columns: Sequence[str], when: pl.Expr) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(when).then(None).otherwise(pl.col(c)).alias(c) for c in columns
    )


@dataclass(frozen=True)
class OpenTable:
    name: str
    frame: pl.DataFrame


def incidents_tables(
    con: duckdb.DuckDBPyConnection, niveaux: Sequence[str] = NIVEAUX_INCIDENTS
) -> list[OpenTable]:
    """Incidents per territory, year and category; one table per territorial level (true
    values and the `secret` flag of the suppression within the table; `masked` empties)."""
    tables = []
    for niveau in niveaux:
        frame = _frame(
            con,
            """
            SELECT code_territoire, annee, categorie, n_incidents,
                   taux_annualise_pour_1000_logements
            FROM indicateurs_incidents_annee WHERE niveau = ?
            ORDER BY code_territoire, annee, categorie
            """,
            [niveau],
        )
        frame = suppress_long(
            frame, ["code_territoire", "annee"], "categorie", "n_incidents", SEUIL_INCIDENTS
        )
        tables.append(OpenTable(f"incidents_{niveau}_annee", frame))
    return tables


# The monthly incidents tables (`incidents_<niveau>_mois`): a département by category, an
# EPCI all categories together (`total` only). An EPCI by category and month would be about
# 600,000 cells nationally, 170,000 of them from 1 to 4, each linked to its year: more masked
# cells than the whole linked table holds today, for figures mostly masked.
NIVEAUX_MOIS = {"departement": None, "epci": TOTAL}
MONTHLY_RATE = "taux_pour_1000_logements"
# An EPCI's months of a year are published when the landlords cover at least this many of its
# dwellings every month (a published figure: `couverture_epci_mois`, so the choice tells
# nothing). Below, a month holds a few incidents: nationally, all EPCI-years gave 24,595
# monthly counts from 1 to 4 of 74,520, whose protection masked 700 more yearly EPCI totals;
# the 1,802 EPCI-years at 2,000 dwellings or more give 9 of 21,624.
MIN_LOGEMENTS_EPCI_MOIS = 2000


def monthly_tables(con: duckdb.DuckDBPyConnection) -> list[OpenTable]:
    """Incidents per territory, month and category (`NIVEAUX_MOIS`): within each table the
    categories against their `total`; each month sums to its year (`protect_linked`). The
    month is ISO text until the files are written (`typed`): a cell's key is JSON in the
    protection cache."""
    tables = []
    for niveau, only in NIVEAUX_MOIS.items():
        frame = _frame(
            con,
            f"""
            SELECT code_territoire, strftime(mois, '%Y-%m-%d') AS mois, categorie, n_incidents,
                   {MONTHLY_RATE}
            FROM indicateurs_incidents_mois
            WHERE niveau = ? AND (? IS NULL OR categorie = ?)
            QUALIFY ? = 'departement'
                OR min(n_logements) OVER (PARTITION BY code_territoire, year(mois)) >= ?
            ORDER BY code_territoire, mois, categorie
            """,
            [niveau, only, only, niveau, MIN_LOGEMENTS_EPCI_MOIS],
        )
        frame = suppress_long(
            frame, ["code_territoire", "mois"], "categorie", "n_incidents", SEUIL_INCIDENTS
        )
        tables.append(OpenTable(f"incidents_{niveau}_mois", frame))
    return tables


def events_table(con: duckdb.DuckDBPyConnection) -> OpenTable:
    """Police and prefecture events per département, year and type (the `total` type is
    protected with the other tables, by `protect_linked`)."""
    frame = _frame(
        con,
        """
        SELECT code_territoire AS code_departement, year(mois)::INTEGER AS annee, type_evenement,
               sum(n_evenements)::BIGINT AS n_evenements
        FROM evenements_police_mois WHERE niveau = 'departement'
        GROUP BY ALL ORDER BY ALL
        """,
    )
    frame = frame.with_columns(primary(pl.col("n_evenements"), SEUIL_EVENEMENTS).alias("secret"))
    return OpenTable("evenements_departement_annee", frame)


def halls_table(con: duckdb.DuckDBPyConnection) -> OpenTable:
    """Residences per EPCI, quarter and hall severity level (`niveau_gravite_halls_trimestre`,
    located by the EPCI of their commune that year), with a `total` level; every level of
    every EPCI-quarter is a row (0 included), so that a reader can tell a 0 from a mask."""
    frame = _frame(
        con,
        """
        WITH residences AS (
            SELECT t.code_epci, h.annee, h.numero_trimestre, h.niveau_gravite
            FROM niveau_gravite_halls_trimestre AS h
            JOIN territoires_communes AS t
              ON t.annee = h.annee AND t.code_commune = h.code_commune
            WHERE t.code_epci IS NOT NULL
        ),
        cellules AS (
            SELECT DISTINCT r.code_epci, r.annee, r.numero_trimestre, n.niveau_gravite
            FROM residences AS r
            CROSS JOIN (SELECT DISTINCT unnest(?) AS niveau_gravite) AS n
        )
        SELECT c.code_epci, c.annee, c.numero_trimestre, c.niveau_gravite,
               count(r.code_epci)::BIGINT AS n_residences
        FROM cellules AS c
        LEFT JOIN residences AS r USING (code_epci, annee, numero_trimestre, niveau_gravite)
        GROUP BY c.code_epci, c.annee, c.numero_trimestre, c.niveau_gravite
        ORDER BY c.code_epci, c.annee, c.numero_trimestre,
                 c.niveau_gravite = 'total', list_position(?, c.niveau_gravite)
        """,
        [[*_dbt_var("niveaux_gravite"), TOTAL], [*_dbt_var("niveaux_gravite"), TOTAL]],
    )
    frame = frame.with_columns(
        pl.when(pl.col("niveau_gravite") == TOTAL)
        .then(pl.col("n_residences").sum().over("code_epci", "annee", "numero_trimestre"))
        .otherwise(pl.col("n_residences"))
        .alias("n_residences")
    )
    frame = frame.with_columns(primary(pl.col("n_residences"), SEUIL_HALLS).alias("secret"))
    return OpenTable("gravite_halls_epci_trimestre", frame)


PROCEDURES_COUNTS = ["n_procedures", "n_procedures_injonction_prefet"]


def procedures_table(con: duckdb.DuckDBPyConnection) -> OpenTable:
    """Eviction procedures per EPCI, year, step and motive, with a `total` motive; those
    started on the prefect's injunction are a part of each cell (protected with it)."""
    frame = _frame(
        con,
        """
        WITH cellules AS (
            SELECT code_epci, annee, etape, motif, n_procedures, n_procedures_injonction_prefet
            FROM procedures_expulsion_epci_annee
        )
        SELECT * FROM cellules
        UNION ALL
        SELECT code_epci, annee, etape, 'total', sum(n_procedures)::BIGINT,
               sum(n_procedures_injonction_prefet)::BIGINT
        FROM cellules GROUP BY ALL
        ORDER BY code_epci, annee, list_position(?, etape), motif = 'total',
                 list_position(?, motif)
        """,
        [_dbt_var("etapes_procedure"), _dbt_var("motifs_procedure")],
    )
    return OpenTable(
        "procedures_epci_annee",
        frame.with_columns(
            primary(pl.col(c), SEUIL_PROCEDURES).alias(f"secret_{c}") for c in PROCEDURES_COUNTS
        ),
    )


def _dbt_var(name: str) -> list[str]:
    """An enumeration whose home is the dbt project's vars."""
    from pipelines.dbt_project import DBT_PROJECT_DIR

    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return list(project["vars"][name])


MIXITE_COUNTS = [
    "n_attributions",
    "n_attributions_hors_qpv",
    "n_q1_hors_qpv",
    "n_attributions_qpv",
    "n_hors_q1_qpv",
    "n_menages_prioritaires",
]
# Figures computed from counts: masked when one of their counts is.
MIXITE_DERIVED = {
    "taux_q1_hors_qpv": ["n_q1_hors_qpv", "n_attributions_hors_qpv"],
    "manque_q1_hors_qpv": ["n_q1_hors_qpv", "n_attributions_hors_qpv"],
    "conforme_q1_hors_qpv": ["n_q1_hors_qpv", "n_attributions_hors_qpv"],
    "taux_hors_q1_qpv": ["n_hors_q1_qpv", "n_attributions_qpv"],
    "manque_hors_q1_qpv": ["n_hors_q1_qpv", "n_attributions_qpv"],
    "conforme_hors_q1_qpv": ["n_hors_q1_qpv", "n_attributions_qpv"],
    "taux_menages_prioritaires": ["n_menages_prioritaires", "n_attributions"],
}


def mixite_table(con: duckdb.DuckDBPyConnection) -> OpenTable:
    """Social mix per EPCI and year; n_attributions = outside QPV + inside QPV is the one total."""
    frame = _frame(
        con,
        """
        SELECT code_epci, annee, n_attributions, n_attributions_hors_qpv, n_q1_hors_qpv,
               taux_q1_hors_qpv, objectif_q1_hors_qpv_pct, manque_q1_hors_qpv, conforme_q1_hors_qpv,
               n_attributions_qpv, n_hors_q1_qpv, taux_hors_q1_qpv, objectif_hors_q1_qpv_pct,
               manque_hors_q1_qpv, conforme_hors_q1_qpv, n_menages_prioritaires,
               taux_menages_prioritaires
        FROM indicateurs_mixite_epci_annee ORDER BY code_epci, annee
        """,
    )
    counts = MIXITE_COUNTS
    secret = {
        c: frame.get_column(c).is_between(1, SEUIL_ATTRIBUTIONS - 1).to_list() for c in counts
    }
    # Secondary suppression on n_attributions = n_attributions_hors_qpv + n_attributions_qpv.
    for row in range(frame.height):
        parts = [frame["n_attributions_hors_qpv"][row], frame["n_attributions_qpv"][row]]
        masked, total_masked = protect_group(
            parts,
            [secret["n_attributions_hors_qpv"][row], secret["n_attributions_qpv"][row]],
            frame["n_attributions"][row],
            secret["n_attributions"][row],
        )
        secret["n_attributions_hors_qpv"][row], secret["n_attributions_qpv"][row] = masked
        secret["n_attributions"][row] = total_masked
    frame = frame.with_columns(
        pl.Series(f"secret_{c}", secret[c], dtype=pl.Boolean) for c in counts
    )
    return OpenTable("mixite_epci_annee", frame)


# Tables that hold no count of incidents, events or allocations: what the figures cover
# (periods, landlords' months, dwellings), the territories, and the SSMSI's figures (already
# diffused under the SSMSI's own rule). Nothing in them is masked and they stay out of the
# linked table; they must never carry a delivery's row counts, which would give a landlord's
# monthly incidents away. {name: (publication table and the columns it needs, query)}
REFERENCE_TABLES = {
    "territoires": (
        ("territoires_communes", "nom_epci"),
        """
        SELECT annee, code_commune, nom_commune, code_epci, nom_epci, code_departement,
               nom_departement
        FROM territoires_communes ORDER BY annee, code_commune
        """,
    ),
    "territoires_qpv": (
        ("territoires_qpv", "code_qpv"),
        """
        SELECT annee, code_qpv, nom_qpv, code_commune, code_epci, code_departement
        FROM territoires_qpv ORDER BY annee, code_qpv, code_commune
        """,
    ),
    "periodes_couvertes": (
        ("periodes_couvertes", "annee_complete"),
        """
        SELECT type_fichier, annee, n_sources, n_sources_completes, n_mois_couverts_min,
               annee_complete
        FROM periodes_couvertes ORDER BY type_fichier, annee
        """,
    ),
    "couverture_epci_mois": (
        ("couverture_epci_mois", "n_bailleurs"),
        """
        SELECT code_epci, mois, n_bailleurs, n_logements
        FROM couverture_epci_mois ORDER BY code_epci, mois
        """,
    ),
    "couverture_bailleurs_mois": (
        ("publication_livraisons", "nom_bailleur"),
        """
        SELECT DISTINCT code_bailleur, nom_bailleur, strptime(periode, '%Y-%m')::DATE AS mois
        FROM publication_livraisons
        WHERE type_fichier = 'incidents' AND {CURRENT}
        ORDER BY code_bailleur, mois
        """,
    ),
    "delinquance_epci_annee": (
        ("indicateurs_delinquance_epci_annee", "edition"),
        """
        SELECT code_epci, annee, indicateur, unite_de_compte, nombre, population, logements,
               n_communes_diffusees, n_communes_non_diffusees, taux_pour_mille, edition
        FROM indicateurs_delinquance_epci_annee ORDER BY code_epci, annee, indicateur
        """,
    ),
}


def reference_tables(con: duckdb.DuckDBPyConnection) -> list[OpenTable]:
    """The open tables without a secret, those whose source the publication holds."""
    present = set(
        con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall()
    )
    return [
        OpenTable(name, _frame(con, query.format(CURRENT=CURRENT)))
        for name, (source, query) in REFERENCE_TABLES.items()
        if source in present
    ]


def masked(table: OpenTable) -> OpenTable:
    """The published view of a table: masked counts (and what is computed from them) empty."""
    frame = table.frame
    if table.name in REFERENCE_TABLES:
        return table
    if table.name.startswith("incidents_"):
        columns = [
            c
            for c in ("n_incidents", "taux_annualise_pour_1000_logements", MONTHLY_RATE)
            if c in frame.columns
        ]
        return OpenTable(table.name, _mask(frame, columns, pl.col("secret")))
    if table.name == "evenements_departement_annee":
        return OpenTable(table.name, _mask(frame, ["n_evenements"], pl.col("secret")))
    if table.name == "gravite_halls_epci_trimestre":
        return OpenTable(table.name, _mask(frame, ["n_residences"], pl.col("secret")))
    if table.name == "procedures_epci_annee":
        for c in PROCEDURES_COUNTS:
            frame = _mask(frame, [c], pl.col(f"secret_{c}"))
        return OpenTable(table.name, frame)
    # Anything computed from a masked count would give it away (k = taux * n, manque, conforme).
    for column, sources in MIXITE_DERIVED.items():
        frame = _mask(frame, [column], pl.any_horizontal(pl.col(f"secret_{s}") for s in sources))
    for c in MIXITE_COUNTS:
        frame = _mask(frame, [c], pl.col(f"secret_{c}"))
    frame = frame.with_columns(
        pl.any_horizontal(pl.col(f"secret_{c}") for c in MIXITE_COUNTS).alias("secret")
    )
    return OpenTable(table.name, frame)


# --- secondary suppression across the tables (pipelines/disclosure.py) ---------------------

# {table: (key columns, count columns)} of every open table with masked counts. In every
# table but the allocations', the last key is a category whose `total` row sums the others.
_LINKED = {
    **{
        f"incidents_{niveau}_annee": (["code_territoire", "annee", "categorie"], ["n_incidents"])
        for niveau in NIVEAUX_INCIDENTS
    },
    **{
        f"incidents_{niveau}_mois": (["code_territoire", "mois", "categorie"], ["n_incidents"])
        for niveau in NIVEAUX_MOIS
    },
    "evenements_departement_annee": (
        ["code_departement", "annee", "type_evenement"],
        ["n_evenements"],
    ),
    "mixite_epci_annee": (["code_epci", "annee"], MIXITE_COUNTS),
    "gravite_halls_epci_trimestre": (
        ["code_epci", "annee", "numero_trimestre", "niveau_gravite"],
        ["n_residences"],
    ),
    "procedures_epci_annee": (["code_epci", "annee", "etape", "motif"], PROCEDURES_COUNTS),
}
# Tables whose cells the repair never masks for another's sake, settled after it
# (pipelines/disclosure.py `_settle`): France's equations join every département of a year, and
# a repair over the joined year took more than half an hour nationally instead of seconds.
_DEFERRED = frozenset({FRANCE})
_SEUILS = {
    "incidents": SEUIL_INCIDENTS,
    "evenements": SEUIL_EVENEMENTS,
    "mixite": SEUIL_ATTRIBUTIONS,
    "gravite": SEUIL_HALLS,
    "procedures": SEUIL_PROCEDURES,
}


def _flag(table: str, count: str) -> str:
    """The flag of a count: `secret` in a table of one count, `secret_<count>` otherwise."""
    return f"secret_{count}" if len(_LINKED[table][1]) > 1 else "secret"


def linked_table(
    tables: Sequence[OpenTable], hierarchy: Hierarchy, qpvs: QpvCommunes | None = None
) -> LinkedTable:
    """Every count cell of the open tables and every relation an attacker knows between
    them (docs/open-data.md): totals of categories, of types, of levels, of motives and of
    allocations; EPCI and département = sum of their communes, per year and category; a QPV
    within its communes (`qpvs`); parts at most their whole."""
    linked = LinkedTable()
    frames = {t.name: t.frame for t in tables}
    for name, frame in frames.items():
        keys, counts = _LINKED[name]
        seuil = _SEUILS[name.split("_")[0]]
        for row in frame.select(*keys, *counts, *{_flag(name, c) for c in counts}).iter_rows(
            named=True
        ):
            for count in counts:
                if row[count] is not None:
                    key = (name, *(row[k] for k in keys), count)
                    masked = bool(row[_flag(name, count)])
                    linked.add(key, int(row[count]), seuil, masked, name in _DEFERRED)
    # Totals of categories, event types, severity levels and motives, per row of the rest.
    for name in _LINKED:
        if name not in frames or name == "mixite_epci_annee":
            continue
        keys, counts = _LINKED[name]
        for count in counts:
            parts: dict[tuple[object, ...], list[tuple[object, ...]]] = {}
            for cells_row in frames[name].select(keys).iter_rows():
                if cells_row[-1] != TOTAL:
                    parts.setdefault(cells_row[:-1], []).append((name, *cells_row, count))
            for rest, cells in parts.items():
                linked.total((name, *rest, TOTAL, count), cells)
    # A year of a territory and category is the sum of its months.
    for niveau in NIVEAUX_MOIS:
        name = f"incidents_{niveau}_mois"
        if name not in frames:
            continue
        months: dict[tuple[object, ...], list[tuple[object, ...]]] = {}
        for code, mois, categorie in frames[name].select(_LINKED[name][0]).iter_rows():
            months.setdefault((code, int(mois[:4]), categorie), []).append(
                (name, code, mois, categorie, "n_incidents")
            )
        for (code, annee, categorie), cells in months.items():
            linked.total(
                (f"incidents_{niveau}_annee", code, annee, categorie, "n_incidents"), cells
            )
    # Procedures on the prefect's injunction: a part of the procedures of their cell.
    if "procedures_epci_annee" in frames:
        keys, (whole, part) = _LINKED["procedures_epci_annee"]
        for cells_row in frames["procedures_epci_annee"].select(keys).iter_rows():
            name = "procedures_epci_annee"
            linked.at_most((name, *cells_row, part), (name, *cells_row, whole))
    # Allocations: n_attributions = outside + inside QPV; each part at most its whole.
    if "mixite_epci_annee" in frames:
        for code, annee in (
            frames["mixite_epci_annee"].select(_LINKED["mixite_epci_annee"][0]).iter_rows()
        ):
            row_key = ("mixite_epci_annee", code, annee)
            linked.total(
                (*row_key, "n_attributions"),
                [(*row_key, "n_attributions_hors_qpv"), (*row_key, "n_attributions_qpv")],
            )
            for part, whole in [
                ("n_q1_hors_qpv", "n_attributions_hors_qpv"),
                ("n_hors_q1_qpv", "n_attributions_qpv"),
                ("n_menages_prioritaires", "n_attributions"),
            ]:
                linked.at_most((*row_key, part), (*row_key, whole))
    # The hierarchy: per year and category, an EPCI or a département is the sum of its communes.
    if "incidents_commune_annee" in frames:
        communes = frames["incidents_commune_annee"].select("code_territoire", "annee", "categorie")
        members: dict[tuple[str, object, object, object], list[tuple[object, ...]]] = {}
        for code, annee, categorie in communes.iter_rows():
            parents = hierarchy.get(annee, {}).get(code, (None, None))
            for niveau, parent in zip(("epci", "departement"), parents, strict=True):
                if parent is not None:
                    members.setdefault((niveau, parent, annee, categorie), []).append(
                        ("incidents_commune_annee", code, annee, categorie, "n_incidents")
                    )
        for niveau in ("epci", "departement"):
            name = f"incidents_{niveau}_annee"
            if name not in frames:
                continue
            for code, annee, categorie in (
                frames[name].select("code_territoire", "annee", "categorie").iter_rows()
            ):
                children = members.get((niveau, code, annee, categorie), [])
                if children:  # none: the hierarchy does not know the territory
                    linked.total((name, code, annee, categorie, "n_incidents"), children)
        if {"incidents_epci_annee", "incidents_departement_annee"} <= frames.keys():
            _departement_of_epcis(linked, members)
        if "incidents_qpv_annee" in frames and qpvs is not None:
            _qpvs_in_communes(linked, frames["incidents_qpv_annee"], qpvs)
    # France is the sum of its départements, per year and category.
    if {FRANCE, "incidents_departement_annee"} <= frames.keys():
        departements: dict[tuple[object, object], list[tuple[object, ...]]] = {}
        for code, annee, categorie in (
            frames["incidents_departement_annee"].select(_LINKED[FRANCE][0]).iter_rows()
        ):
            departements.setdefault((annee, categorie), []).append(
                ("incidents_departement_annee", code, annee, categorie, "n_incidents")
            )
        for code, annee, categorie in frames[FRANCE].select(_LINKED[FRANCE][0]).iter_rows():
            linked.total(
                (FRANCE, code, annee, categorie, "n_incidents"),
                departements.get((annee, categorie), []),
            )
    return linked


def _qpvs_in_communes(linked: LinkedTable, qpv_frame: pl.DataFrame, qpvs: QpvCommunes) -> None:
    """What an attacker knows of a QPV from the public composition, exactly: a QPV over
    several communes has a part in each, unpublished (a hidden variable, at least 0: the
    attacker's program solves for it too), and per year and category the QPVs inside a
    commune plus the parts of those over it are at most the commune. The parts' values only
    have to be feasible (a transportation problem, solved per group of communes that QPVs
    join); the repair never audits nor masks them."""
    qpv_table, commune_table = "incidents_qpv_annee", "incidents_commune_annee"
    for annee, composition in sorted(qpvs.items()):
        years = qpv_frame.filter(pl.col("annee") == annee)
        for categorie in years.get_column("categorie").unique().sort().to_list():

            def cell(table: str, code: str, annee: int = annee, cat: str = categorie) -> tuple:
                return (table, code, annee, cat, "n_incidents")

            def value(key: tuple) -> int:
                i = linked.index.get(key)
                return 0 if i is None else linked.cells[i].value

            inside: dict[str, list[str]] = {}
            over: dict[str, list[str]] = {}
            for qpv, its in composition.items():
                for commune in its:
                    (inside if len(its) == 1 else over).setdefault(commune, []).append(qpv)
            parts = _feasible_parts(
                {q: value(cell(qpv_table, q)) for q, its in composition.items() if len(its) > 1},
                {q: its for q, its in composition.items() if len(its) > 1},
                {
                    c: value(cell(commune_table, c))
                    - sum(value(cell(qpv_table, q)) for q in inside.get(c, []))
                    for c in over
                },
            )
            if parts is None:
                linked.dropped += 1
                continue
            for (qpv, commune), v in parts.items():
                linked.hide(("incidents_qpv_part", qpv, commune, annee, categorie), v)
            for qpv, its in composition.items():
                if len(its) > 1:
                    linked.total(
                        cell(qpv_table, qpv),
                        [("incidents_qpv_part", qpv, c, annee, categorie) for c in its],
                    )
            for commune in {*inside, *over}:
                linked.at_most_sum(
                    [cell(qpv_table, q) for q in inside.get(commune, [])]
                    + [
                        ("incidents_qpv_part", q, commune, annee, categorie)
                        for q in over.get(commune, [])
                    ],
                    [cell(commune_table, commune)],
                )


def _feasible_parts(
    totals: dict[str, int], communes: dict[str, list[str]], room: dict[str, int]
) -> dict[tuple[str, str], int] | None:
    """Parts p[qpv, commune] >= 0 with sum over communes = the QPV's total and sum over QPVs
    <= the commune's room, or None when there is none (the counts contradict the
    composition). A transportation problem: its vertices are integral, HiGHS returns one."""
    from scipy.optimize import linprog

    pairs = [(q, c) for q, its in communes.items() for c in its]
    if not pairs:
        return {}
    names = sorted(room)
    a_eq = np.zeros((len(totals), len(pairs)))
    a_ub = np.zeros((len(names), len(pairs)))
    qs = sorted(totals)
    for k, (q, c) in enumerate(pairs):
        a_eq[qs.index(q), k] = 1
        a_ub[names.index(c), k] = 1
    result = linprog(
        np.zeros(len(pairs)),
        A_eq=a_eq,
        b_eq=[totals[q] for q in qs],
        A_ub=a_ub,
        b_ub=[room[c] for c in names],
        bounds=(0, None),
        method="highs",
    )
    if result.status != 0:
        return None
    return {pair: round(float(x)) for pair, x in zip(pairs, result.x, strict=True)}


def _departement_of_epcis(
    linked: LinkedTable, members: dict[tuple[str, object, object, object], list[tuple[object, ...]]]
) -> None:
    """A département = its EPCIs wholly inside it + its communes outside them. Implied by the
    commune relations (the attacker's feasible set is unchanged), but written out so that the
    repair sees the shortest way to protect an EPCI: another EPCI of the département, not the
    département itself found at the end of a long walk through masked communes."""
    epci_of: dict[tuple[object, object, object], object] = {}
    for (niveau, parent, annee, categorie), children in members.items():
        if niveau == "epci":
            for child in children:
                epci_of[(child[1], annee, categorie)] = parent
    departement_of: dict[tuple[object, object, object], object] = {}
    for (niveau, parent, annee, categorie), children in members.items():
        if niveau == "departement":
            for child in children:
                departement_of[(child[1], annee, categorie)] = parent
    # An EPCI is nested when every commune of it (this year and category) is in one département.
    nested: dict[tuple[object, object, object], object] = {}
    for (niveau, parent, annee, categorie), children in members.items():
        if niveau == "epci":
            deps = {departement_of.get((c[1], annee, categorie)) for c in children}
            if len(deps) == 1 and None not in deps:
                nested[(parent, annee, categorie)] = deps.pop()
    for (niveau, parent, annee, categorie), children in members.items():
        if niveau != "departement":
            continue
        parts: list[tuple[object, ...]] = []
        inside: set[object] = set()
        for child in children:
            epci = epci_of.get((child[1], annee, categorie))
            if epci is not None and nested.get((epci, annee, categorie)) == parent:
                inside.add(epci)
            else:
                parts.append(child)
        if not inside:
            continue  # nothing new: the relation of its communes says it all
        parts += [
            ("incidents_epci_annee", epci, annee, categorie, "n_incidents")
            for epci in sorted(inside, key=str)
        ]
        whole = ("incidents_departement_annee", parent, annee, categorie, "n_incidents")
        if all(p in linked.index for p in parts):
            linked.total(whole, parts)


def protect_linked(
    tables: Sequence[OpenTable],
    hierarchy: Hierarchy,
    cache: Path | None = None,
    qpvs: QpvCommunes | None = None,
) -> tuple[list[OpenTable], LinkedTable]:
    """Secondary suppression across every open table: the `secret` flags after the repair.

    `cache` (a JSON file, rewritten): the repair of each component of the previous
    publication, reused where a component is unchanged (pipelines/disclosure.py `protect`):
    nationally, the repair of five years takes minutes, and a new month changes one year."""
    linked = linked_table(tables, hierarchy, qpvs)
    if linked.dropped:
        log.warning("%d relations do not hold on the counts (hierarchy?): left out", linked.dropped)
    known: ProtectionCache = {}
    if cache is not None and cache.exists():
        try:
            known = json.loads(cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable: protect everything again
            known = {}
    store: ProtectionCache = {}
    protect(linked, cache=known, store=store)
    if cache is not None:
        partial = cache.with_name(f".{cache.name}.partial")
        partial.write_text(json.dumps(store), encoding="utf-8")
        os.replace(partial, cache)
    out = []
    for table in tables:
        keys, counts = _LINKED[table.name]
        frame = table.frame
        for count in counts:
            flag = _flag(table.name, count)
            flags = [
                linked.cells[linked.index[(table.name, *row[:-2], count)]].masked
                if row[-1] is not None
                else bool(row[-2])
                for row in frame.select(*keys, flag, count).iter_rows()
            ]
            frame = frame.with_columns(pl.Series(flag, flags, dtype=pl.Boolean))
        out.append(OpenTable(table.name, frame))
    return out, linked


def masked_share(tables: Sequence[OpenTable]) -> dict[str, tuple[int, int]]:
    """(masked, all) count cells per table."""
    shares = {}
    for table in tables:
        _, counts = _LINKED[table.name]
        n = sum(table.frame.get_column(c).is_not_null().sum() for c in counts)
        k = sum(
            (
                table.frame.get_column(_flag(table.name, c))
                & table.frame.get_column(c).is_not_null()
            ).sum()
            for c in counts
        )
        shares[table.name] = (int(k), int(n))
    return shares


def publication_qpvs(con: duckdb.DuckDBPyConnection) -> QpvCommunes | None:
    """QPV -> its communes per year: the publication's `territoires_qpv` when it holds one."""
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    if "territoires_qpv" not in tables:
        return None
    qpvs: QpvCommunes = {}
    for annee, qpv, commune in con.execute(
        "SELECT annee, code_qpv, code_commune FROM territoires_qpv ORDER BY ALL"
    ).fetchall():
        qpvs.setdefault(annee, {}).setdefault(qpv, []).append(commune)
    return qpvs


def publication_hierarchy(con: duckdb.DuckDBPyConnection) -> Hierarchy | None:
    """Commune -> EPCI and département per year: the publication's `territoires_communes`
    (annee, code_commune, code_epci, code_departement) when it holds one, else None."""
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    if "territoires_communes" not in tables:
        return None
    hierarchy: Hierarchy = {}
    for annee, commune, epci, departement in con.execute(
        "SELECT annee, code_commune, code_epci, code_departement FROM territoires_communes"
    ).fetchall():
        hierarchy.setdefault(annee, {})[commune] = (epci, departement)
    return hierarchy


def infer_hierarchy(con: duckdb.DuckDBPyConnection) -> Hierarchy:
    """The hierarchy implied by the publication's counts: each EPCI's (département's)
    monthly dwellings and incidents per category are the sum of its communes'
    (`infer_parents`). Not unique in general (12 communes of `small` placed wrongly): a
    diagnostic, not a source for the protection."""
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    hierarchy: Hierarchy = {}
    if "indicateurs_incidents_mois" in tables:
        sql = """
            SELECT niveau, year(mois)::INTEGER AS annee, code_territoire,
                   strftime(mois, '%m') || categorie AS dim, n_incidents::DOUBLE AS v
            FROM indicateurs_incidents_mois WHERE niveau IN ('commune', 'epci', 'departement')
            UNION ALL
            SELECT niveau, year(mois)::INTEGER, code_territoire, strftime(mois, '%m') || '#',
                   max(n_logements)::DOUBLE
            FROM indicateurs_incidents_mois WHERE niveau IN ('commune', 'epci', 'departement')
            GROUP BY ALL
        """
    else:
        sql = """
            SELECT niveau, annee, code_territoire, categorie AS dim, n_incidents::DOUBLE AS v
            FROM indicateurs_incidents_annee WHERE niveau IN ('commune', 'epci', 'departement')
        """
    rows = con.execute(sql).fetchall()
    dims: dict[int, dict[str, int]] = {}
    for _, annee, _, dim, _ in rows:
        dims.setdefault(annee, {}).setdefault(dim, 0)
    for annee in dims:
        dims[annee] = {d: k for k, d in enumerate(sorted(dims[annee]))}
    vectors: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for niveau, annee, code, dim, value in rows:
        level = vectors.setdefault((niveau, annee), {})
        if code not in level:
            level[code] = np.zeros(len(dims[annee]))
        level[code][dims[annee][dim]] = value or 0
    for annee in dims:
        communes = vectors.get(("commune", annee), {})
        parents: list[dict[str, str]] = []
        for niveau in ("epci", "departement"):
            try:
                parents.append(infer_parents(communes, vectors.get((niveau, annee), {})))
            except RuntimeError as error:
                log.warning("%s %s: %s; no cross-level protection", niveau, annee, error)
                parents.append({})
        hierarchy[annee] = {c: (parents[0].get(c), parents[1].get(c)) for c in communes}
    return hierarchy


def _frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> pl.DataFrame:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)


# --- description of the files (datapackage.json, README) ---------------------------------

LICENCE = {
    "name": "etalab-2.0",
    "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
    "title": "Licence Ouverte / Open Licence version 2.0",
}
TRUE, FALSE = "true", "false"


@dataclass(frozen=True)
class Kind:
    """How a kind of column is typed (Parquet, Table Schema) and what its unit is."""

    dtype: type[pl.DataType]
    type: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None


KINDS = {
    "code": Kind(pl.String, "string"),
    "texte": Kind(pl.String, "string"),
    "annee": Kind(pl.Int32, "integer", "année sur 4 chiffres", 1900, 2100),
    "effectif": Kind(pl.Int64, "integer", "nombre", 0),
    "taux_1000": Kind(pl.Float64, "number", "pour 1 000 logements et par an", 0),
    "taux_1000_mois": Kind(pl.Float64, "number", "pour 1 000 logements, dans le mois", 0),
    "ratio": Kind(pl.Float64, "number", "ratio entre 0 et 1", 0, 1),
    "pct": Kind(pl.Float64, "number", "en %", 0, 100),
    "booleen": Kind(pl.Boolean, "boolean"),
    "mois": Kind(pl.Date, "date", "premier jour du mois"),
    "trimestre": Kind(pl.Int32, "integer", "trimestre de l'année (1 à 4)", 1, 4),
    "logements": Kind(pl.Float64, "number", "logements (estimation du recensement)", 0),
    "taux_mille_ssmsi": Kind(
        pl.Float64,
        "number",
        "pour 1 000 habitants (pour 1 000 logements : cambriolages de logement)",
        0,
    ),
}


@dataclass(frozen=True)
class Column:
    """One column of an open table.

    `source` ("model.column") is the published column it is: its description is dbt's (the
    manifest). `text` is only what the open data adds (or the whole description of a column
    the open data adds); `secret` is the flag that empties the column.
    """

    name: str
    title: str
    kind: str
    source: str | None = None
    text: str = ""
    secret: str | None = None
    required: bool = False
    pattern: str | None = None
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    title: str
    description: str
    source: str
    # None: a table without masked counts (REFERENCE_TABLES).
    seuil: int | None
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...] = field(default_factory=tuple)


def _masked_text(flag: str, seuil: int) -> str:
    return f"Vide (masqué) quand `{flag}` vaut true (secret statistique, seuil {seuil})."


_CODES = {
    "commune": (
        "code INSEE de la commune (5 caractères, texte : 06088, 2A004)",
        r"^([0-9]{5}|2[AB][0-9]{3})$",
    ),
    "qpv": ("code du quartier prioritaire (8 caractères, texte : QN01301M)", r"^Q[0-9A-Z]{7}$"),
    "epci": ("code SIREN de l'EPCI (9 chiffres, texte)", r"^[0-9]{9}$"),
    "departement": ("code du département (texte : 06, 2A, 971)", r"^([0-9]{2,3}|2[AB])$"),
    "ensemble": ("`FR`, la France entière (somme des départements)", r"^FR$"),
}
_NIVEAUX = {
    "commune": "commune",
    "qpv": "quartier prioritaire (QPV)",
    "epci": "EPCI",
    "departement": "département",
    "ensemble": "France entière",
}
# "Incidents <par ...>, année et catégorie"
_PAR = {n: f"par {label}" for n, label in _NIVEAUX.items()} | {"ensemble": "en France entière"}


def _incident_columns(model: str, niveau: str, period: Column) -> tuple[Column, ...]:
    """The key and count columns every incidents table shares, yearly or monthly."""
    code, pattern = _CODES[niveau]
    return (
        Column(
            "code_territoire",
            "Code du territoire" if niveau == "ensemble" else f"Code {_NIVEAUX[niveau]}",
            "code",
            f"{model}.code_territoire",
            f"Ici : {code}.",
            required=True,
            pattern=pattern,
        ),
        period,
        Column("categorie", "Catégorie d'incident", "texte", f"{model}.categorie", required=True),
        Column(
            "n_incidents", "Nombre d'incidents", "effectif", f"{model}.n_incidents", secret="secret"
        ),
    )


def _incidents_spec(niveau: str) -> TableSpec:
    model = "indicateurs_incidents_annee"
    return TableSpec(
        title=f"Incidents {_PAR[niveau]}, année et catégorie",
        description=(
            f"Incidents signalés dans le parc social {_PAR[niveau]}, par année et catégorie "
            "(mois couverts de l'année), avec le taux annualisé ; une ligne `total` par "
            f"territoire et année. Effectifs de 1 à {SEUIL_INCIDENTS - 1} masqués."
        ),
        source=model,
        seuil=SEUIL_INCIDENTS,
        primary_key=("code_territoire", "annee", "categorie"),
        columns=(
            *_incident_columns(
                model,
                niveau,
                Column("annee", "Année", "annee", f"{model}.annee", required=True),
            ),
            Column(
                "taux_annualise_pour_1000_logements",
                "Taux annualisé pour 1 000 logements",
                "taux_1000",
                f"{model}.taux_annualise_pour_1000_logements",
                secret="secret",
            ),
            Column(
                "secret",
                "Secret statistique",
                "booleen",
                text=(
                    "Vrai quand le nombre d'incidents (et son taux) est masqué : effectif de 1 à "
                    f"{SEUIL_INCIDENTS - 1}, ou masquage secondaire (une cellule masquée ne doit "
                    "pas se déduire de la ligne `total`)."
                ),
                required=True,
            ),
        ),
    )


def _monthly_spec(niveau: str) -> TableSpec:
    model = "indicateurs_incidents_mois"
    categories = (
        "par catégorie (une ligne `total` par territoire et mois)"
        if NIVEAUX_MOIS[niveau] is None
        else "toutes catégories confondues (catégorie `total` seulement)"
    )
    return TableSpec(
        title=f"Incidents {_PAR[niveau]} et mois",
        description=(
            f"Incidents signalés dans le parc social {_PAR[niveau]} et mois couvert, "
            f"{categories}, avec le taux du mois pour 1 000 logements. Les mois d'une année "
            f"s'additionnent en l'année publiée. Effectifs de 1 à {SEUIL_INCIDENTS - 1} masqués."
        ),
        source=model,
        seuil=SEUIL_INCIDENTS,
        primary_key=("code_territoire", "mois", "categorie"),
        columns=(
            *_incident_columns(
                model, niveau, Column("mois", "Mois", "mois", f"{model}.mois", required=True)
            ),
            Column(
                MONTHLY_RATE,
                "Taux du mois pour 1 000 logements",
                "taux_1000_mois",
                f"{model}.{MONTHLY_RATE}",
                secret="secret",
            ),
            Column(
                "secret",
                "Secret statistique",
                "booleen",
                text=(
                    "Vrai quand le nombre d'incidents (et son taux) est masqué : effectif de 1 à "
                    f"{SEUIL_INCIDENTS - 1}, ou masquage secondaire (ligne `total`, année)."
                ),
                required=True,
            ),
        ),
    )


def _types_evenement() -> tuple[str, ...]:
    """The event types: their home is the dbt project's vars (`types_evenement`)."""
    return (*_dbt_var("types_evenement"), TOTAL)


def _events_spec() -> TableSpec:
    model = "evenements_police_mois"
    code, pattern = _CODES["departement"]
    return TableSpec(
        title="Événements police et préfecture par département, année et type",
        description=(
            "Événements police et préfecture (interdictions de paraître, fermetures "
            "administratives, points de deal démantelés, interventions, injonctions de "
            "résiliation de bail) par département, année et type, sommés sur les mois de "
            f"l'année ; le type `total` les compte tous. Effectifs de 1 à {SEUIL_EVENEMENTS - 1} "
            "masqués."
        ),
        source=model,
        seuil=SEUIL_EVENEMENTS,
        primary_key=("code_departement", "annee", "type_evenement"),
        columns=(
            Column(
                "code_departement",
                "Code département",
                "code",
                f"{model}.code_territoire",
                f"Ici : {code}.",
                required=True,
                pattern=pattern,
            ),
            Column(
                "annee",
                "Année",
                "annee",
                f"{model}.mois",
                "Ici : l'année de ces mois.",
                required=True,
            ),
            Column(
                "type_evenement",
                "Type d'événement",
                "texte",
                f"{model}.type_evenement",
                required=True,
                enum=_types_evenement(),
            ),
            Column(
                "n_evenements",
                "Nombre d'événements",
                "effectif",
                f"{model}.n_evenements",
                "Ici : somme des mois de l'année.",
                secret="secret",
            ),
            Column(
                "secret",
                "Secret statistique",
                "booleen",
                text=f"Vrai quand le nombre d'événements est masqué (effectif de 1 à "
                f"{SEUIL_EVENEMENTS - 1}).",
                required=True,
            ),
        ),
    )


_MIXITE_TITLES = {
    "code_epci": ("Code EPCI", "code"),
    "annee": ("Année de signature du bail", "annee"),
    "n_attributions": ("Nombre d'attributions", "effectif"),
    "n_attributions_hors_qpv": ("Attributions hors QPV", "effectif"),
    "n_q1_hors_qpv": ("Attributions hors QPV au 1er quartile", "effectif"),
    "taux_q1_hors_qpv": ("Part du 1er quartile hors QPV", "ratio"),
    "objectif_q1_hors_qpv_pct": ("Objectif 1er quartile hors QPV", "pct"),
    "manque_q1_hors_qpv": ("Attributions manquantes (1er quartile hors QPV)", "effectif"),
    "conforme_q1_hors_qpv": ("Objectif hors QPV atteint", "booleen"),
    "n_attributions_qpv": ("Attributions en QPV", "effectif"),
    "n_hors_q1_qpv": ("Attributions en QPV hors 1er quartile", "effectif"),
    "taux_hors_q1_qpv": ("Part hors 1er quartile en QPV", "ratio"),
    "objectif_hors_q1_qpv_pct": ("Objectif hors 1er quartile en QPV", "pct"),
    "manque_hors_q1_qpv": ("Attributions manquantes (hors 1er quartile en QPV)", "effectif"),
    "conforme_hors_q1_qpv": ("Objectif en QPV atteint", "booleen"),
    "n_menages_prioritaires": ("Attributions à des ménages prioritaires", "effectif"),
    "taux_menages_prioritaires": ("Part des ménages prioritaires", "ratio"),
}


def _mixite_spec() -> TableSpec:
    model = "indicateurs_mixite_epci_annee"
    pattern = _CODES["epci"][1]
    columns = []
    for name, (title, kind) in _MIXITE_TITLES.items():
        secret = None
        if name in MIXITE_COUNTS:
            secret = f"secret_{name}"
        columns.append(
            Column(
                name,
                title,
                kind,
                f"{model}.{name}",
                text=(
                    "Vide (masqué) quand l'un des effectifs dont il est calculé est masqué ("
                    + ", ".join(f"`secret_{s}`" for s in MIXITE_DERIVED[name])
                    + ")."
                    if name in MIXITE_DERIVED
                    else ""
                ),
                secret=secret,
                required=name in ("code_epci", "annee"),
                pattern=pattern if name == "code_epci" else None,
            )
        )
    for count in MIXITE_COUNTS:
        columns.append(
            Column(
                f"secret_{count}",
                f"Secret statistique : {count}",
                "booleen",
                text=f"Vrai quand `{count}` est masqué.",
                required=True,
            )
        )
    columns.append(
        Column(
            "secret",
            "Secret statistique (ligne)",
            "booleen",
            text="Vrai quand au moins un effectif de la ligne est masqué.",
            required=True,
        )
    )
    return TableSpec(
        title="Mixité sociale des attributions par EPCI et année",
        description=(
            "Mixité sociale des attributions de logements sociaux (art. L441-1 du CCH) par EPCI "
            "et année de signature du bail : part des attributions hors QPV au 1er quartile de "
            "revenus, part des attributions en QPV hors 1er quartile, ménages prioritaires. "
            f"Effectifs de 1 à {SEUIL_ATTRIBUTIONS - 1} masqués (revenus d'origine fiscale)."
        ),
        source=model,
        seuil=SEUIL_ATTRIBUTIONS,
        primary_key=("code_epci", "annee"),
        columns=tuple(columns),
    )


_NOT_MASKED = (
    "Aucune valeur n'y est masquée : elle ne contient aucun effectif d'incidents, "
    "d'évènements ou d'attributions."
)


def _reference_specs() -> dict[str, TableSpec]:
    territory, periods = "territoires_communes", "periodes_couvertes"
    ssmsi = "indicateurs_delinquance_epci_annee"
    commune_code, commune_pattern = _CODES["commune"]
    epci_code, epci_pattern = _CODES["epci"]
    dep_code, dep_pattern = _CODES["departement"]
    return {
        "territoires": TableSpec(
            title="Communes, EPCI et départements par année",
            description=(
                "La composition des territoires avec laquelle les chiffres de chaque année ont "
                "été calculés (fichier EPCI applicable à l'année), avec les noms. " + _NOT_MASKED
            ),
            source=territory,
            seuil=None,
            primary_key=("annee", "code_commune"),
            columns=(
                Column("annee", "Année", "annee", f"{territory}.annee", required=True),
                Column(
                    "code_commune",
                    "Code commune",
                    "code",
                    f"{territory}.code_commune",
                    f"Ici : {commune_code}.",
                    required=True,
                    pattern=commune_pattern,
                ),
                Column("nom_commune", "Commune", "texte", f"{territory}.nom_commune"),
                Column(
                    "code_epci",
                    "Code EPCI",
                    "code",
                    f"{territory}.code_epci",
                    f"Ici : {epci_code}.",
                    pattern=epci_pattern,
                ),
                Column("nom_epci", "EPCI", "texte", f"{territory}.nom_epci"),
                Column(
                    "code_departement",
                    "Code département",
                    "code",
                    f"{territory}.code_departement",
                    f"Ici : {dep_code}.",
                    pattern=dep_pattern,
                ),
                Column("nom_departement", "Département", "texte", f"{territory}.nom_departement"),
            ),
        ),
        "territoires_qpv": TableSpec(
            title="Quartiers prioritaires (QPV) et leurs communes par année",
            description=(
                "La composition des quartiers prioritaires (fichier QPV applicable à l'année) : "
                "une ligne par QPV et commune, avec l'EPCI et le département de la commune. "
                + _NOT_MASKED
            ),
            source="territoires_qpv",
            seuil=None,
            primary_key=("annee", "code_qpv", "code_commune"),
            columns=(
                Column("annee", "Année", "annee", "territoires_qpv.annee", required=True),
                Column(
                    "code_qpv",
                    "Code QPV",
                    "code",
                    "territoires_qpv.code_qpv",
                    f"Ici : {_CODES['qpv'][0]}.",
                    required=True,
                    pattern=_CODES["qpv"][1],
                ),
                Column("nom_qpv", "QPV", "texte", "territoires_qpv.nom_qpv"),
                Column(
                    "code_commune",
                    "Code commune",
                    "code",
                    "territoires_qpv.code_commune",
                    f"Ici : {commune_code}.",
                    required=True,
                    pattern=commune_pattern,
                ),
                Column(
                    "code_epci",
                    "Code EPCI",
                    "code",
                    "territoires_qpv.code_epci",
                    f"Ici : {epci_code}.",
                    pattern=epci_pattern,
                ),
                Column(
                    "code_departement",
                    "Code département",
                    "code",
                    "territoires_qpv.code_departement",
                    f"Ici : {dep_code}.",
                    pattern=dep_pattern,
                ),
            ),
        ),
        "periodes_couvertes": TableSpec(
            title="Années couvertes par les livraisons",
            description=(
                "Pour chaque série mensuelle (incidents, procédures, évènements, attributions) "
                "et année : nombre de sources, mois couverts, année complète ou non. " + _NOT_MASKED
            ),
            source=periods,
            seuil=None,
            primary_key=("type_fichier", "annee"),
            columns=(
                Column("type_fichier", "Série", "texte", f"{periods}.type_fichier", required=True),
                Column("annee", "Année", "annee", f"{periods}.annee", required=True),
                Column("n_sources", "Sources", "effectif", f"{periods}.n_sources"),
                Column(
                    "n_sources_completes",
                    "Sources complètes",
                    "effectif",
                    f"{periods}.n_sources_completes",
                ),
                Column(
                    "n_mois_couverts_min",
                    "Mois couverts (au moins)",
                    "effectif",
                    f"{periods}.n_mois_couverts_min",
                ),
                Column(
                    "annee_complete",
                    "Année complète",
                    "booleen",
                    f"{periods}.annee_complete",
                    required=True,
                ),
            ),
        ),
        "couverture_epci_mois": TableSpec(
            title="Bailleurs et logements couverts par EPCI et mois",
            description=(
                "Pour chaque EPCI et mois couvert par au moins un bailleur : le nombre de "
                "bailleurs qui le couvrent et leurs logements (dénominateur des taux "
                "d'incidents). " + _NOT_MASKED
            ),
            source="couverture_epci_mois",
            seuil=None,
            primary_key=("code_epci", "mois"),
            columns=(
                Column(
                    "code_epci",
                    "Code EPCI",
                    "code",
                    "couverture_epci_mois.code_epci",
                    f"Ici : {epci_code}.",
                    required=True,
                    pattern=epci_pattern,
                ),
                Column("mois", "Mois", "mois", "couverture_epci_mois.mois", required=True),
                Column(
                    "n_bailleurs",
                    "Bailleurs couvrant le mois",
                    "effectif",
                    "couverture_epci_mois.n_bailleurs",
                ),
                Column(
                    "n_logements",
                    "Logements couverts",
                    "effectif",
                    "couverture_epci_mois.n_logements",
                ),
            ),
        ),
        "couverture_bailleurs_mois": TableSpec(
            title="Mois couverts par chaque bailleur",
            description=(
                "Une ligne par bailleur et mois dont il a livré le fichier d'incidents (un "
                "bailleur couvre un mois quand il l'a livré). Le nombre de lignes des fichiers "
                "n'est pas publié. " + _NOT_MASKED
            ),
            source="publication_livraisons",
            seuil=None,
            primary_key=("code_bailleur", "mois"),
            columns=(
                Column(
                    "code_bailleur",
                    "Code bailleur",
                    "code",
                    None,
                    "Code du bailleur social (tiré du nom de ses fichiers).",
                    required=True,
                ),
                Column("nom_bailleur", "Bailleur", "texte", None, "Nom du bailleur."),
                Column(
                    "mois",
                    "Mois",
                    "mois",
                    None,
                    "Mois couvert : le bailleur a livré son fichier d'incidents de ce mois.",
                    required=True,
                ),
            ),
        ),
        "delinquance_epci_annee": TableSpec(
            title="Délinquance enregistrée par EPCI et année (SSMSI)",
            description=(
                "Crimes et délits enregistrés par la police et la gendarmerie (base communale "
                "du SSMSI) sommés sur les communes de l'EPCI dont le SSMSI diffuse le chiffre. "
                "Le SSMSI applique sa propre règle de diffusion ; rien n'est masqué en plus."
            ),
            source=ssmsi,
            seuil=None,
            primary_key=("code_epci", "annee", "indicateur"),
            columns=(
                Column(
                    "code_epci",
                    "Code EPCI",
                    "code",
                    f"{ssmsi}.code_epci",
                    f"Ici : {epci_code}.",
                    required=True,
                    pattern=epci_pattern,
                ),
                Column("annee", "Année", "annee", f"{ssmsi}.annee", required=True),
                Column("indicateur", "Indicateur", "texte", f"{ssmsi}.indicateur", required=True),
                Column("unite_de_compte", "Unité de compte", "texte", f"{ssmsi}.unite_de_compte"),
                Column("nombre", "Nombre", "effectif", f"{ssmsi}.nombre"),
                Column("population", "Population", "effectif", f"{ssmsi}.population"),
                Column("logements", "Logements", "logements", f"{ssmsi}.logements"),
                Column(
                    "n_communes_diffusees",
                    "Communes diffusées",
                    "effectif",
                    f"{ssmsi}.n_communes_diffusees",
                ),
                Column(
                    "n_communes_non_diffusees",
                    "Communes non diffusées",
                    "effectif",
                    f"{ssmsi}.n_communes_non_diffusees",
                ),
                Column(
                    "taux_pour_mille",
                    "Taux pour mille",
                    "taux_mille_ssmsi",
                    f"{ssmsi}.taux_pour_mille",
                ),
                Column("edition", "Édition SSMSI", "annee", f"{ssmsi}.edition"),
            ),
        ),
    }


def _halls_spec() -> TableSpec:
    model = "niveau_gravite_halls_trimestre"
    code, pattern = _CODES["epci"]
    return TableSpec(
        title="Résidences par niveau de gravité des halls, EPCI et trimestre",
        description=(
            "Nombre de résidences des bailleurs couvrant le trimestre à chaque niveau de "
            "gravité des parties communes (vert, jaune, orange, rouge : seuils de la graine "
            "`seuils_gravite_halls`), par EPCI (celui de la commune de la résidence cette "
            "année-là) et trimestre ; le niveau `total` les compte toutes. Effectifs de 1 à "
            f"{SEUIL_HALLS - 1} masqués."
        ),
        source=model,
        seuil=SEUIL_HALLS,
        primary_key=("code_epci", "annee", "numero_trimestre", "niveau_gravite"),
        columns=(
            Column(
                "code_epci",
                "Code EPCI",
                "code",
                None,
                f"EPCI de la commune de la résidence : {code}.",
                required=True,
                pattern=pattern,
            ),
            Column("annee", "Année", "annee", f"{model}.annee", required=True),
            Column(
                "numero_trimestre",
                "Trimestre",
                "trimestre",
                f"{model}.numero_trimestre",
                required=True,
            ),
            Column(
                "niveau_gravite",
                "Niveau de gravité",
                "texte",
                f"{model}.niveau_gravite",
                "Ici aussi `total` : toutes les résidences.",
                required=True,
                enum=(*_dbt_var("niveaux_gravite"), TOTAL),
            ),
            Column(
                "n_residences",
                "Nombre de résidences",
                "effectif",
                None,
                "Résidences à ce niveau de gravité pendant le trimestre.",
                secret="secret",
            ),
            Column(
                "secret",
                "Secret statistique",
                "booleen",
                text=(
                    "Vrai quand le nombre de résidences est masqué : effectif de 1 à "
                    f"{SEUIL_HALLS - 1}, ou masquage secondaire (niveau `total`)."
                ),
                required=True,
            ),
        ),
    )


def _procedures_spec() -> TableSpec:
    model = "procedures_expulsion_epci_annee"
    code, pattern = _CODES["epci"]
    return TableSpec(
        title="Procédures d'expulsion par EPCI, année, étape et motif",
        description=(
            "Procédures d'expulsion et de résiliation de bail ayant atteint chaque étape dans "
            "l'année, par EPCI (celui du logement), étape et motif ; le motif `total` les "
            "compte toutes ; celles engagées sur injonction du préfet sont comptées à part. "
            f"Effectifs de 1 à {SEUIL_PROCEDURES - 1} masqués."
        ),
        source=model,
        seuil=SEUIL_PROCEDURES,
        primary_key=("code_epci", "annee", "etape", "motif"),
        columns=(
            Column(
                "code_epci",
                "Code EPCI",
                "code",
                f"{model}.code_epci",
                f"Ici : {code}.",
                required=True,
                pattern=pattern,
            ),
            Column("annee", "Année", "annee", f"{model}.annee", required=True),
            Column(
                "etape",
                "Étape",
                "texte",
                f"{model}.etape",
                required=True,
                enum=tuple(_dbt_var("etapes_procedure")),
            ),
            Column(
                "motif",
                "Motif",
                "texte",
                f"{model}.motif",
                "Ici aussi `total` : tous les motifs.",
                required=True,
                enum=(*_dbt_var("motifs_procedure"), TOTAL),
            ),
            *(
                Column(
                    count,
                    title,
                    "effectif",
                    f"{model}.{count}",
                    secret=f"secret_{count}",
                )
                for count, title in zip(
                    PROCEDURES_COUNTS,
                    ("Procédures", "Procédures sur injonction du préfet"),
                    strict=True,
                )
            ),
            *(
                Column(
                    f"secret_{count}",
                    f"Secret statistique : {count}",
                    "booleen",
                    text=f"Vrai quand `{count}` est masqué.",
                    required=True,
                )
                for count in PROCEDURES_COUNTS
            ),
        ),
    )


def table_specs() -> dict[str, TableSpec]:
    """What each open table is, by file name."""
    specs = {f"incidents_{n}_annee": _incidents_spec(n) for n in NIVEAUX_INCIDENTS}
    specs |= {f"incidents_{n}_mois": _monthly_spec(n) for n in NIVEAUX_MOIS}
    specs["evenements_departement_annee"] = _events_spec()
    specs["mixite_epci_annee"] = _mixite_spec()
    specs["gravite_halls_epci_trimestre"] = _halls_spec()
    specs["procedures_epci_annee"] = _procedures_spec()
    specs.update(_reference_specs())
    return specs


def published_descriptions() -> dict[str, str]:
    """{"model.column": description} of the published columns, from dbt's manifest (the
    descriptions' one home is the models' YAML)."""
    from pipelines.dbt_project import ensure_manifest

    manifest = json.loads(ensure_manifest().read_text(encoding="utf-8"))
    return {
        f"{node['name']}.{name}": " ".join(column.get("description", "").split())
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        for name, column in node.get("columns", {}).items()
    }


def describe(column: Column, seuil: int | None, descriptions: dict[str, str]) -> str:
    """The French description of a column: dbt's, what open data adds, the unit, the mask."""
    parts = []
    if column.source is not None:
        published = descriptions.get(column.source, "")
        if not published:
            raise ValueError(f"{column.source} has no description in the dbt models")
        parts.append(published.rstrip(".") + ".")
    if column.text:
        parts.append(column.text)
    unit = KINDS[column.kind].unit
    if unit and column.kind != "annee":
        parts.append(f"Unité : {unit}.")
    if column.secret is not None:
        if seuil is None:
            raise ValueError(f"{column.name} is masked in a table without a threshold")
        parts.append(_masked_text(column.secret, seuil))
    if not parts:
        raise ValueError(f"{column.name} has no description")
    return " ".join(parts)


def _field(column: Column, seuil: int | None, descriptions: dict[str, str]) -> dict[str, object]:
    kind = KINDS[column.kind]
    descriptor: dict[str, object] = {
        "name": column.name,
        "title": column.title,
        "description": describe(column, seuil, descriptions),
        "type": kind.type,
    }
    if kind.type == "number":
        descriptor["decimalChar"] = ","
    if kind.type == "boolean":
        descriptor["trueValues"] = [TRUE]
        descriptor["falseValues"] = [FALSE]
    constraints: dict[str, object] = {}
    if column.required:
        constraints["required"] = True
    if kind.minimum is not None:
        constraints["minimum"] = kind.minimum
    if kind.maximum is not None:
        constraints["maximum"] = kind.maximum
    if column.pattern:
        constraints["pattern"] = column.pattern
    if column.enum:
        constraints["enum"] = list(column.enum)
    if constraints:
        descriptor["constraints"] = constraints
    if column.secret is not None:
        descriptor["secret"] = column.secret  # custom: the flag that empties this field
    return descriptor


def typed(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """The columns of the spec, in its order and with its types (codes text, counts
    integers, rates doubles), whatever DuckDB's rows were inferred as."""
    names = [c.name for c in spec.columns]
    if frame.columns != names:
        raise ValueError(f"open table columns {frame.columns} are not the described {names}")
    return frame.select(
        pl.col(c.name).str.to_date("%Y-%m-%d")
        if frame.schema[c.name] == pl.String and KINDS[c.kind].dtype == pl.Date
        else pl.col(c.name).cast(KINDS[c.kind].dtype)
        for c in spec.columns
    )


def _resource(
    name: str, spec: TableSpec, rows: int, descriptions: dict[str, str]
) -> frictionless.Resource:
    masked = sorted(
        {c.name for c in spec.columns if c.secret is not None or c.name in MIXITE_DERIVED}
    )
    schema = frictionless.Schema.from_descriptor(
        {
            "fields": [_field(c, spec.seuil, descriptions) for c in spec.columns],
            "missingValues": [""],
            "primaryKey": list(spec.primary_key),
        }
    )
    resource = frictionless.Resource(
        name=name.replace("_", "-"),
        title=spec.title,
        description=spec.description,
        path=f"{name}.csv",
        format="csv",
        mediatype="text/csv",
        encoding="utf-8",
        dialect=frictionless.Dialect(controls=[frictionless.formats.CsvControl(delimiter=";")]),
        schema=schema,
        licenses=[LICENCE],
        sources=[{"title": f"Table publiée `{spec.source}` (entrepôt tranquillity)"}],
    )
    # Custom properties. frictionless reads Parquet only with fastparquet (not a dependency):
    # the Parquet twin is named here rather than described as a resource of its own.
    resource.custom.update(
        {
            "parquet": {"path": f"{name}.parquet", "mediatype": "application/vnd.apache.parquet"},
            "lignes": rows,
        }
    )
    if spec.seuil is not None:
        resource.custom["secret"] = {"seuil": spec.seuil, "colonnes_masquees": masked}
    return resource


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_package(
    target: Path,
    tables: list[OpenTable],
    publication: dict[str, object],
    specs: dict[str, TableSpec],
    descriptions: dict[str, str],
) -> Path:
    """datapackage.json: one CSV resource per table, with its Table Schema (Frictionless)."""
    package = frictionless.Package(
        name="tranquillity-donnees-ouvertes",
        title="Tranquillité résidentielle et mixité sociale dans le parc social",
        description=(
            "Indicateurs de tranquillité résidentielle (incidents, événements police et "
            "préfecture) et de mixité sociale des attributions dans le parc social, avec "
            "secret statistique : les petits effectifs sont masqués (champ vide) et le "
            "drapeau `secret` de la ligne vaut true. Chaque ressource CSV a un jumeau Parquet "
            "(propriété `parquet`). Voir README.md."
        ),
        version=str(publication["publication_id"]),
        created=_iso(publication["publiee_le"]),
        licenses=[LICENCE],
        keywords=["logement social", "tranquillité résidentielle", "mixité sociale", "QPV"],
        resources=[_resource(t.name, specs[t.name], t.frame.height, descriptions) for t in tables],
    )
    package.custom.update(
        {
            "publication_id": str(publication["publication_id"]),
            "periode": {
                "debut": _iso(publication["periode_debut"]),
                "fin": _iso(publication["periode_fin"]),
            },
        }
    )
    path = target / "datapackage.json"
    with frictionless.system.use_context(standards="v1"):
        package.to_json(str(path))
    return path


def readme(
    tables: list[OpenTable], publication: dict[str, object], specs: dict[str, TableSpec]
) -> str:
    """README.md of an open-data folder, in French."""
    lines = [
        "# Tranquillité résidentielle et mixité sociale dans le parc social — données ouvertes",
        "",
        f"Publication `{publication['publication_id']}` du {_iso(publication['publiee_le'])}, "
        f"période du {_iso(publication['periode_debut'])} au {_iso(publication['periode_fin'])}.",
        "",
        "## Fichiers",
        "",
        "Chaque table est fournie en deux formats aux mêmes colonnes : Parquet (typé, à "
        "privilégier) et CSV. `datapackage.json` (Frictionless Data Package) décrit chaque "
        "CSV : titres et descriptions des colonnes, types, unités, contraintes, clé primaire.",
        "",
        "| table | fichiers | lignes | contenu |",
        "|---|---|---|---|",
    ]
    for table in tables:
        spec = specs[table.name]
        lines.append(
            f"| {spec.title} | `{table.name}.csv`, `{table.name}.parquet` | "
            f"{table.frame.height} | {spec.description} |"
        )
    lines += [
        "",
        "## Secret statistique",
        "",
        "Les petits effectifs sont masqués : la valeur est vide et le drapeau `secret` de la "
        "ligne vaut `true`. Seuils :",
        "",
        f"- incidents : effectifs de 1 à {SEUIL_INCIDENTS - 1} masqués (seuil {SEUIL_INCIDENTS}) ;",
        f"- événements police et préfecture : de 1 à {SEUIL_EVENEMENTS - 1} (seuil "
        f"{SEUIL_EVENEMENTS}) ;",
        f"- attributions : de 1 à {SEUIL_ATTRIBUTIONS - 1} (seuil {SEUIL_ATTRIBUTIONS}), "
        "revenus d'origine fiscale.",
        "",
        "Un effectif nul (0) n'est pas masqué. Un taux, un manque ou un "
        "indicateur de conformité calculé à partir d'un effectif masqué est masqué avec lui. "
        "Pour qu'une cellule masquée ne puisse pas être retrouvée par différence avec un total "
        "publié (ligne `total`, `n_attributions` = hors QPV + en QPV, un EPCI ou un "
        "département comme somme de ses communes, la France comme somme des départements), d'autres cellules peuvent être masquées "
        "(secret secondaire) : leur drapeau vaut aussi `true`. "
        "Dans la table de "
        "mixité, chaque effectif a son drapeau `secret_<effectif>` ; `secret` vaut `true` dès "
        "qu'un effectif de la ligne est masqué. Dans `datapackage.json`, la propriété `secret` "
        "d'un champ nomme le drapeau qui le vide, et celle d'une ressource donne le seuil.",
        "",
        "## Format des CSV",
        "",
        "UTF-8 avec BOM, séparateur `;`, virgule décimale, sans séparateur de milliers, "
        "valeur vide pour une valeur absente ou masquée, booléens `true` / `false`, dates "
        "au format AAAA-MM-JJ, guillemets seulement si nécessaire. Les codes (commune, EPCI, "
        "département) sont du texte : `06088`, `2A004`, `06`.",
        "",
        "### Ouvrir un CSV dans Excel",
        "",
        "Un double-clic ouvre le fichier avec les accents, les colonnes et les décimales "
        "corrects, mais Excel convertit les codes en nombres : `06088` devient `6088`. Pour "
        "garder les zéros initiaux : Données > À partir d'un fichier texte/CSV, origine "
        "« 65001 : Unicode (UTF-8) », délimiteur « Point-virgule », puis « Transformer les "
        "données » et type « Texte » pour les colonnes de codes (`code_*`). LibreOffice Calc : "
        "à l'ouverture, cocher « Point-virgule » et choisir le type « Texte » pour ces colonnes.",
        "",
        "## Licence",
        "",
        f"[{LICENCE['title']}]({LICENCE['path']}) (Etalab 2.0) : réutilisation libre, "
        "y compris commerciale, sous réserve de mentionner la source et la date de mise à jour.",
        "",
    ]
    return "\n".join(lines)


def _publication(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    cursor = con.execute(
        "SELECT publication_id, publiee_le, periode_debut, periode_fin FROM publication"
    )
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    if row is None:
        raise ValueError("the publication table is empty")
    return dict(zip(names, row, strict=True))


def counted_tables(
    con: duckdb.DuckDBPyConnection,
) -> tuple[list[OpenTable], QpvCommunes | None]:
    """The open tables with masked counts that the publication has the sources of, each
    protected within itself only, and the QPVs' composition that links the QPV table."""
    columns = set(
        con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall()
    )
    present = {table for table, _ in columns}
    # A QPV's figures are published only beside the composition that links them to their
    # communes' (contract section 5); a publication made before it has none.
    qpvs = publication_qpvs(con)
    niveaux = [n for n in NIVEAUX_INCIDENTS if n != "qpv" or qpvs is not None]
    tables = incidents_tables(con, niveaux)
    if ("indicateurs_incidents_mois", MONTHLY_RATE) in columns:
        tables += monthly_tables(con)
    tables += [events_table(con), mixite_table(con)]
    if {"niveau_gravite_halls_trimestre", "territoires_communes"} <= present:
        tables.append(halls_table(con))
    if "procedures_expulsion_epci_annee" in present:
        tables.append(procedures_table(con))
    return tables, qpvs


def open_tables(
    publication: Path,
    hierarchy: Hierarchy | None = None,
    *,
    linked: bool = True,
    cache: Path | None = None,
) -> tuple[list[OpenTable], dict[str, object]]:
    """Every open table of a publication file, protected (across tables unless `linked` is
    false: the protection within each table only), and the publication's row."""
    with duckdb.connect(str(publication), read_only=True, config=connection_config()) as con:
        tables, qpvs = counted_tables(con)
        references = reference_tables(con)
        info = _publication(con)
        if linked and hierarchy is None:
            hierarchy = publication_hierarchy(con)
            if hierarchy is None:
                log.warning(
                    "no territoires_communes in the publication: tables protected one by one"
                )
    # Closed first: the repair's minutes (and its workers) run without DuckDB's buffers.
    if linked and hierarchy is not None:
        tables, _ = protect_linked(tables, hierarchy, cache, qpvs)
    return [masked(t) for t in tables + references], info


def write_open_data(
    publication: Path,
    target: Path,
    hierarchy: Hierarchy | None = None,
    *,
    cache: Path | None = None,
) -> list[str]:
    """Build every open table from a publication file; write into `target` its Parquet and
    French CSV files, `datapackage.json` and `README.md`. `hierarchy` (commune -> EPCI and
    département per year) defaults to the publication's (`publication_hierarchy`); without
    one, the protection across levels is not applied (a warning says so). `cache`: see
    `protect_linked`."""
    specs = table_specs()
    descriptions = published_descriptions()
    target.mkdir(parents=True, exist_ok=True)
    tables, info = open_tables(publication, hierarchy, cache=cache)
    tables = [OpenTable(t.name, typed(t.frame, specs[t.name])) for t in tables]
    for table in tables:
        table.frame.write_parquet(target / f"{table.name}.parquet")
        write_csv(table.frame, target / f"{table.name}.csv")
    write_package(target, tables, info, specs, descriptions)
    (target / "README.md").write_text(readme(tables, info, specs), encoding="utf-8")
    return [t.name for t in tables]
