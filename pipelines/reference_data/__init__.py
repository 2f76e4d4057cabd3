"""Reference data shipped with the project (INSEE census 2021 + current administrative split).

See README.md in this folder for sources and licences, ``build_communes.py`` to rebuild.
"""

from __future__ import annotations

import pathlib

import polars as pl

COLUMNS = [
    "code_commune",
    "nom_commune",
    "code_departement",
    "code_region",
    "population",
    "logements",
    "appartements",
    "code_epci",
    "nom_epci",
]

COMMUNES_PATH = pathlib.Path(__file__).with_name("communes.csv.gz")

_STRING_COLUMNS = (
    "code_commune",
    "nom_commune",
    "code_departement",
    "code_region",
    "code_epci",
    "nom_epci",
)


def load_communes() -> pl.DataFrame:
    """Return one row per current commune; codes stay strings (leading zeros, Corsica 2A/2B)."""
    schema: dict[str, pl.DataType | type[pl.DataType]] = {c: pl.String for c in _STRING_COLUMNS}
    schema.update({"population": pl.Int64, "logements": pl.Int64, "appartements": pl.Int64})
    df = pl.read_csv(COMMUNES_PATH, schema_overrides=schema)
    return df.with_columns(pl.col(pl.String).fill_null("")).select(COLUMNS)
