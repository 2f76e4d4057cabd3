"""The SSMSI commune crime base, in either of its published schemas.

SSMSI changed its file in 2025 (new column names, four-digit years, new indicators). Both
editions are mapped to one raw table so that downstream models see one shape; the edition
comes from the `CODGEO_<YYYY>` column name and decides, per (commune, year, indicator),
which row wins. Masked rows (`ndiff`) keep NULL counts: the `complement_info_*` columns hold
a département average of masked communes and must never stand in for the commune's value.

Each column is typed as SSMSI publishes it, in every edition since 2021 (data.gouv.fr,
"Bases statistiques communale, départementale et régionale de la délinquance enregistrée"):
- counts (`faits` / `nombre`) and populations (`POP` / `insee_pop`) are integers;
- dwellings (`LOG` / `insee_log`) are census estimates with decimals (`347,8571`): DOUBLE,
  never rounded, because SSMSI's own burglary rates divide by them;
- rates and département averages (`tauxpourmille`, `complementinfo*`, `taux_pour_mille`,
  `complement_info_*`) are decimals;
- years and census vintages (`annee`, `millPOP`, `millLOG`) have two digits up to 2024
  (`16` = 2016) and four since 2025 (`insee_*_millesime`): all are widened to four digits;
- decimals use a comma; fields are quoted (every field since 2025, strings only before),
  missing values are `NA` (quoted or not) and the 2023 edition was comma-separated. The
  reader and validator handle all of these generically (pipelines.ingest.reader/validate).
"""

from __future__ import annotations

import re

import polars as pl

from pipelines.ingest.reader import RawFrame, RejectedFile
from pipelines.ingest.specs import COMMUNE_PATTERN, Column, UnreadableName, check_year

CODGEO = re.compile(r"^codgeo_(\d{4})$")

NEW_SCHEMA: tuple[Column, ...] = (
    Column(
        "CODGEO", pattern=COMMUNE_PATTERN, pattern_label="code commune INSEE", target="code_commune"
    ),
    Column("annee", "int", minimum=1990, maximum=2100),
    Column("indicateur"),
    Column("unite_de_compte", required=False),
    Column("nombre", "int", required=False, minimum=0),
    Column("taux_pour_mille", "decimal", required=False, minimum=0),
    Column("est_diffuse", "enum", allowed=("diff", "ndiff"), target="diffusion"),
    Column("insee_pop", "int", required=False, minimum=0, target="population"),
    Column(
        "insee_pop_millesime",
        "int",
        required=False,
        minimum=1990,
        maximum=2100,
        target="population_millesime",
    ),
    Column("insee_log", "decimal", required=False, minimum=0, target="logements"),
    Column(
        "insee_log_millesime",
        "int",
        required=False,
        minimum=1990,
        maximum=2100,
        target="logements_millesime",
    ),
    Column("complement_info_nombre", "decimal", required=False),
    Column("complement_info_taux", "decimal", required=False),
)

OLD_SCHEMA: tuple[Column, ...] = (
    Column(
        "CODGEO", pattern=COMMUNE_PATTERN, pattern_label="code commune INSEE", target="code_commune"
    ),
    # Two-digit years (16 = 2016) are widened after typing.
    Column("annee", "int", minimum=0, maximum=2100),
    Column("classe", target="indicateur"),
    Column("unité.de.compte", required=False, target="unite_de_compte"),
    Column("valeur.publiée", "enum", allowed=("diff", "ndiff"), target="diffusion"),
    Column("faits", "int", required=False, minimum=0, target="nombre"),
    Column("tauxpourmille", "decimal", required=False, minimum=0, target="taux_pour_mille"),
    Column("complementinfoval", "decimal", required=False, target="complement_info_nombre"),
    Column("complementinfotaux", "decimal", required=False, target="complement_info_taux"),
    Column("POP", "int", required=False, minimum=0, target="population"),
    Column(
        "millPOP", "int", required=False, minimum=0, maximum=2100, target="population_millesime"
    ),
    Column("LOG", "decimal", required=False, minimum=0, target="logements"),
    Column("millLOG", "int", required=False, minimum=0, maximum=2100, target="logements_millesime"),
)

RAW_COLUMNS: dict[str, str] = {
    "code_commune": "VARCHAR",
    "annee": "INTEGER",
    "indicateur": "VARCHAR",
    "unite_de_compte": "VARCHAR",
    "nombre": "BIGINT",
    "taux_pour_mille": "DOUBLE",
    "diffuse": "BOOLEAN",
    "population": "BIGINT",
    "population_millesime": "INTEGER",
    "logements": "DOUBLE",
    "logements_millesime": "INTEGER",
    "complement_info_nombre": "DOUBLE",
    "complement_info_taux": "DOUBLE",
    "edition": "INTEGER",
    "schema_ssmsi": "VARCHAR",
}


def detect(raw: RawFrame) -> tuple[int, str, tuple[Column, ...]]:
    """Edition year, schema name and column specs, from the header; rejects anything else."""
    editions = [m for m in (CODGEO.match(h) for h in raw.header) if m]
    if len(editions) != 1:
        raise RejectedFile(
            "fichier SSMSI non reconnu: il faut exactement une colonne CODGEO_<AAAA> "
            "(fichier de police qui n'est ni evenements_<AAAA-MM> ni la base communale SSMSI)"
        )
    edition = int(editions[0].group(1))
    try:
        check_year(edition, "dans la colonne CODGEO_<AAAA> (édition SSMSI)")
    except UnreadableName as exc:
        raise RejectedFile(str(exc)) from exc
    raw.frame = raw.frame.rename({editions[0].group(0): "codgeo"})
    raw.header = ["codgeo" if h == editions[0].group(0) else h for h in raw.header]
    if "indicateur" in raw.header:
        return edition, "2025+", NEW_SCHEMA
    if "classe" in raw.header:
        return edition, "<=2024", OLD_SCHEMA
    raise RejectedFile(
        "fichier SSMSI non reconnu: ni colonne 'indicateur' (schéma 2025+) ni 'classe' (schéma <= 2024)"
    )


def _four_digits(column: str) -> pl.Expr:
    """`16` is 2016: the old schema writes years and census vintages on two digits."""
    return (
        pl.when(pl.col(column) < 100)
        .then(pl.col(column) + 2000)
        .otherwise(pl.col(column))
        .alias(column)
    )


def finish(loaded: pl.DataFrame, edition: int, schema: str) -> pl.DataFrame:
    """Four-digit years and vintages, a boolean `diffuse`, and no count on a masked row."""
    diffuse = pl.col("diffusion") == "diff"
    return loaded.with_columns(
        _four_digits("annee"),
        _four_digits("population_millesime"),
        _four_digits("logements_millesime"),
        diffuse.alias("diffuse"),
        pl.when(diffuse).then(pl.col("nombre")).alias("nombre"),
        pl.when(diffuse).then(pl.col("taux_pour_mille")).alias("taux_pour_mille"),
        pl.lit(edition).alias("edition"),
        pl.lit(schema).alias("schema_ssmsi"),
    ).drop("diffusion")
