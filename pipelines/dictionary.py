"""The publication's data dictionary: a COMMENT on every published table and column, and the
`dictionnaire` table listing every published column (`SELECT * FROM dictionnaire`).

Each description has one home, never copied:

- the marts: their dbt YAML (`dbt_project/models/marts/**`), the `description:` of the model
  and of each column, the column's unit in `config.meta.unite`. They are read here from dbt's
  manifest, as dbt itself reads them for `persist_docs` (dbt_project.yml), which writes the
  same descriptions as COMMENTs into the marts of the working warehouse;
- the tables written by pipelines/publish.py itself (`publication`, `publication_livraisons`)
  and `dictionnaire`: `PYTHON_TABLES` below.

Units (`unite`, French): every numeric or temporal column has one: what a count counts
(`incidents`, `logements`...), the base of a rate (`pour 1 000 logements`), `ratio 0..1` for a
proportion between 0 and 1, `%` for a percentage (0 to 100, columns `*_pct`), the scale of a
year, rank or identifier (`année`, `rang (0 à 3)`, `identifiant`), the granularity of a date.
Text and boolean columns (codes, labels, flags) have none: `unite` is NULL.

A column's COMMENT is its description followed by `Unité : <unite>.` when it has one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

DICTIONARY_TABLE = "dictionnaire"
UNIT_KEY = "unite"


@dataclass(frozen=True)
class Column:
    description: str
    unite: str | None = None


@dataclass(frozen=True)
class Table:
    description: str
    columns: dict[str, Column] = field(default_factory=dict)


# The tables pipelines/publish.py builds itself (not dbt models): their one home.
PYTHON_TABLES: dict[str, Table] = {
    "publication": Table(
        "Une ligne décrivant la publication : identifiant, date, période couverte, livraisons, "
        "contrôles et version du code qui l'a produite.",
        {
            "publication_id": Column(
                "Identifiant de la publication : instant UTC de sa création à la milliseconde "
                "(par exemple 20261126T103019800Z), aussi nom du fichier "
                "published/<publication_id>.duckdb et de son dossier de données ouvertes."
            ),
            "publiee_le": Column("Date et heure de la publication.", "horodatage UTC"),
            "periode_debut": Column(
                "Premier jour du plus ancien mois des livraisons mensuelles courantes "
                "(incidents, procédures, événements, attributions).",
                "jour",
            ),
            "periode_fin": Column(
                "Dernier jour du plus récent mois des livraisons mensuelles courantes.", "jour"
            ),
            "n_livraisons": Column(
                "Livraisons dont la publication est faite (lignes chargee de "
                "publication_livraisons ; les livraisons retenues n'y comptent pas).",
                "livraisons",
            ),
            "n_controles": Column(
                "Contrôles enregistrés pour l'exécution qui l'a produite (tests et modèles dbt, "
                "attentes Great Expectations, contrôles d'ingestion).",
                "contrôles",
            ),
            "n_controles_en_echec": Column(
                "Contrôles bloquants en échec : toujours 0 (sinon rien n'est publié).",
                "contrôles",
            ),
            "version_code": Column(
                "Version du code qui l'a produite : version du paquet et commit git "
                "(par exemple 0.1.0+5ae5ace721c4)."
            ),
            "run_id": Column(
                "Identifiant de l'exécution Dagster du rafraîchissement ; clé de ses contrôles "
                "dans audit.controles de la base de travail."
            ),
            "annees_completes": Column(
                "Années complètes de chaque série mensuelle, par type de fichier (par exemple "
                "'attributions 2024, 2025 ; incidents 2024') : celles dont chaque source a livré "
                "les 12 mois (détail dans periodes_couvertes). Une année absente est partielle : "
                "ses chiffres annuels ne valent pas ceux d'une année entière ; NULL si aucune.",
            ),
            "mois_recalcules": Column(
                "Mois recalculés par ce rafraîchissement dans les tables mensuelles "
                "incrémentales (indicateurs_incidents_mois et les tables qui en dérivent), par "
                "exemple '2025-01, 2025-03..2025-04' : ceux dont les livraisons ont changé depuis "
                "la publication précédente, et ceux demandés (--mois) ; les autres lignes sont "
                "celles de la publication précédente. 'tous' : tout a été recalculé ; 'aucun' : "
                "aucun mois."
            ),
        },
    ),
    "publication_livraisons": Table(
        "Les livraisons dont la publication est faite : la livraison courante de chaque clé "
        "(type de fichier, bailleur, période), avec son empreinte sha256, et les livraisons "
        "retenues (bloquee) en attente d'une nouvelle livraison de leur clé.",
        {
            "livraison_id": Column(
                "Identifiant de la livraison dans le registre (raw.livraisons de la base de "
                "travail).",
                "identifiant",
            ),
            "famille": Column("Famille : reference, landlord, police ou allocations."),
            "type_fichier": Column(
                "Type de fichier (patrimoine, incidents, ssmsi, attributions...)."
            ),
            "code_bailleur": Column(
                "Code du bailleur tiré du nom de fichier, quand le type de fichier en a un."
            ),
            "nom_bailleur": Column(
                "Nom du bailleur (fichier bailleurs de référence) ; NULL quand le fichier n'est "
                "pas celui d'un bailleur."
            ),
            "periode": Column(
                "Période tirée du nom de fichier (AAAA ou AAAA-MM) ; l'édition pour les "
                "fichiers SSMSI."
            ),
            "fichier": Column(
                "Chemin du fichier sous la boîte de dépôt (inbox), par exemple "
                "landlord/HAB06_incidents_2025-03_corrige.csv."
            ),
            "sha256": Column("Empreinte SHA-256 des octets du fichier."),
            "lignes_lues": Column("Lignes de données lues.", "lignes"),
            "lignes_chargees": Column("Lignes chargées.", "lignes"),
            "lignes_quarantaine": Column(
                "Lignes mises en quarantaine (lignes_lues = lignes_chargees + lignes_quarantaine).",
                "lignes",
            ),
            "statut": Column(
                "Statut dans le registre : chargee (a servi à la publication) ou bloquee "
                "(retenue par les contrôles de sa famille, non chargée : lignes_chargees vaut 0)."
            ),
        },
    ),
    DICTIONARY_TABLE: Table(
        "Dictionnaire des données : une ligne par colonne de chaque table publiée (y compris "
        "publication, publication_livraisons et dictionnaire), avec son type, son unité et sa "
        "description ; les mêmes textes sont les COMMENT des tables et colonnes "
        "(duckdb_tables(), duckdb_columns()).",
        {
            "nom_table": Column("Nom de la table publiée."),
            "colonne": Column("Nom de la colonne."),
            "type": Column("Type DuckDB de la colonne (VARCHAR, BIGINT, DOUBLE, DATE...)."),
            "unite": Column(
                "Unité de la colonne : ce que compte un nombre (incidents, logements...), la "
                "base d'un taux (pour 1 000 logements), ratio 0..1 pour une proportion entre 0 "
                "et 1, % pour un pourcentage (0 à 100), année, granularité d'une date ; NULL "
                "pour les textes et booléens (codes, libellés, indicateurs vrai/faux)."
            ),
            "description": Column("Description de la colonne (en français)."),
        },
    ),
}


def mart_descriptions(manifest: Path) -> dict[str, Table]:
    """Descriptions and units of every dbt model, from dbt's manifest (the marts YAML)."""
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"].values()
    tables = {}
    for node in nodes:
        if node["resource_type"] != "model":
            continue
        columns = {}
        for name, column in node.get("columns", {}).items():
            meta = {**column.get("meta", {}), **(column.get("config") or {}).get("meta", {})}
            columns[name] = Column(column.get("description") or "", meta.get(UNIT_KEY) or None)
        tables[node["name"]] = Table(node.get("description") or "", columns)
    return tables


def column_comment(column: Column) -> str:
    """The COMMENT of a column: its description, then its unit when it has one."""
    text = column.description.strip()
    if not column.unite:
        return text
    return f"{text}{' ' if text.endswith('.') else '. '}Unité : {column.unite}."


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def write_dictionary(
    con: duckdb.DuckDBPyConnection, catalog: str, tables: Sequence[str], manifest: Path
) -> None:
    """COMMENT every table and column of the attached database `catalog`, and create its
    `dictionnaire` table (one row per column, `tables` in that order, then any other table).

    A table or column with no description (absent from the YAML) gets no COMMENT and a NULL
    description: tests/test_dictionary.py checks there is none in a real publication."""
    known = {**mart_descriptions(manifest), **PYTHON_TABLES}
    con.execute(
        f"CREATE TABLE {catalog}.{DICTIONARY_TABLE} (nom_table VARCHAR, colonne VARCHAR, "
        "type VARCHAR, unite VARCHAR, description VARCHAR)"
    )
    columns = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = 'main' ORDER BY table_name, column_index",
        [catalog],
    ).fetchall()
    order = {table: i for i, table in enumerate(tables)}
    columns.sort(key=lambda c: (order.get(c[0], len(order)), c[0]))
    rows: list[tuple[str, str, str, str | None, str | None]] = []
    commented: set[str] = set()
    for table, column, data_type in columns:
        entry = known.get(table)
        target = f'{catalog}.main."{table}"'
        if entry and entry.description and table not in commented:
            con.execute(f"COMMENT ON TABLE {target} IS {_literal(entry.description.strip())}")
            commented.add(table)
        described = entry.columns.get(column) if entry else None
        if described and described.description:
            con.execute(
                f'COMMENT ON COLUMN {target}."{column}" IS {_literal(column_comment(described))}'
            )
            rows.append((table, column, data_type, described.unite, described.description.strip()))
        else:
            rows.append((table, column, data_type, None, None))
    con.executemany(f"INSERT INTO {catalog}.{DICTIONARY_TABLE} VALUES (?, ?, ?, ?, ?)", rows)
