"""The data dictionary inside the publication (pipelines/dictionary.py).

The fast tests read the marts YAML (every column described, with a `config.meta.unite` key)
and run `write_dictionary` on a hand-made database. `check_dictionary` reads a real
publication: tests/test_pipeline.py calls it on its `tiny` one, and
`TRANQUILLITY_DOCS_HOME=<a home with a publication> pytest tests/test_dictionary.py` runs it
here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.dictionary import (
    DICTIONARY_TABLE,
    PYTHON_TABLES,
    UNIT_KEY,
    Column,
    column_comment,
    write_dictionary,
)

REPO = Path(__file__).resolve().parents[1]
MARTS = REPO / "dbt_project" / "models" / "marts"

# Types whose columns must have a unit; text and boolean columns must have none.
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT", "DECIMAL")
TEMPORAL = ("DATE", "TIMESTAMP", "TIME", "INTERVAL")
WITHOUT_UNIT = ("VARCHAR", "BOOLEAN")


def needs_unit(data_type: str) -> bool:
    return data_type.upper().startswith(NUMERIC + TEMPORAL)


def _mart_models() -> list[tuple[str, dict]]:
    return [
        (path.name, model)
        for path in sorted(MARTS.rglob("*.yml"))
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", [])
    ]


# --- the marts YAML ---------------------------------------------------------------------


def test_every_mart_column_has_a_description_and_a_unit_key() -> None:
    models = _mart_models()
    assert len(models) >= 11
    problems = []
    for file, model in models:
        if not str(model.get("description") or "").strip():
            problems.append(f"{file}: model {model['name']} has no description")
        for column in model.get("columns", []):
            where = f"{file}: {model['name']}.{column['name']}"
            if not str(column.get("description") or "").strip():
                problems.append(f"{where}: no description")
            meta = (column.get("config") or {}).get("meta") or {}
            if UNIT_KEY not in meta:
                problems.append(f"{where}: no config.meta.{UNIT_KEY} (null if no unit applies)")
            elif meta[UNIT_KEY] is not None and not str(meta[UNIT_KEY]).strip():
                problems.append(f"{where}: empty unit (write null)")
    assert not problems, "\n".join(problems)


def test_ratios_and_percentages_say_which_they_are() -> None:
    """A `*_pct` column is a percentage, a `ratio 0..1` one says so: the trap between
    `taux_q1_hors_qpv` (0.25) and `objectif_q1_hors_qpv_pct` (25)."""
    problems = []
    units = {}
    for file, model in _mart_models():
        for column in model.get("columns", []):
            name, text = column["name"], str(column.get("description") or "").lower()
            unit = ((column.get("config") or {}).get("meta") or {}).get(UNIT_KEY)
            units[(model["name"], name)] = unit
            where = f"{file}: {model['name']}.{name}"
            if name.endswith("_pct") and unit != "%":
                problems.append(f"{where}: a *_pct column has unit {unit!r}, not '%'")
            if unit == "%" and "pourcentage" not in text:
                problems.append(f"{where}: unit % but the description does not say pourcentage")
            if unit == "ratio 0..1" and ("ratio" not in text or "entre 0 et 1" not in text):
                problems.append(
                    f"{where}: a ratio whose description does not say 'ratio entre 0 et 1'"
                )
    assert units[("indicateurs_mixite_epci_annee", "taux_q1_hors_qpv")] == "ratio 0..1"
    assert units[("indicateurs_mixite_epci_annee", "objectif_q1_hors_qpv_pct")] == "%"
    assert not problems, "\n".join(problems)


def test_python_tables_are_described() -> None:
    for table, entry in PYTHON_TABLES.items():
        assert entry.description.strip(), table
        assert entry.columns, table
        for name, column in entry.columns.items():
            assert column.description.strip(), f"{table}.{name}"
            assert column.unite is None or column.unite.strip(), f"{table}.{name}"


# --- write_dictionary on a hand-made database -------------------------------------------


def test_write_dictionary_comments_and_lists_every_column(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    node = {
        "resource_type": "model",
        "name": "t",
        "description": "La table d'essai.",
        "columns": {
            "n": {
                "description": "Un nombre",
                "meta": {},
                "config": {"meta": {"unite": "logements"}},
            },
            "code": {"description": "Un code d'essai.", "config": {"meta": {"unite": None}}},
        },
    }
    manifest.write_text(json.dumps({"nodes": {"model.x.t": node}}), encoding="utf-8")
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{tmp_path / 'pub.duckdb'}' AS pub")
        con.execute("CREATE TABLE pub.t AS SELECT 1::BIGINT AS n, 'a' AS code, 2 AS autre")
        con.execute("CREATE TABLE pub.publication AS SELECT 'x' AS publication_id")
        write_dictionary(con, "pub", ("t", "publication", DICTIONARY_TABLE), manifest)
        con.execute("DETACH pub")
    with duckdb.connect(str(tmp_path / "pub.duckdb"), read_only=True) as con:
        rows = con.execute(f"SELECT * FROM {DICTIONARY_TABLE}").fetchall()
        comments = dict(
            con.execute(
                "SELECT table_name || '.' || column_name, comment FROM duckdb_columns() "
                "WHERE database_name = current_database()"
            ).fetchall()
        )
        tables = dict(
            con.execute(
                "SELECT table_name, comment FROM duckdb_tables() "
                "WHERE database_name = current_database()"
            ).fetchall()
        )
    assert rows[:4] == [
        ("t", "n", "BIGINT", "logements", "Un nombre"),
        ("t", "code", "VARCHAR", None, "Un code d'essai."),
        ("t", "autre", "INTEGER", None, None),  # not in the YAML: no description
        ("publication", "publication_id", "VARCHAR", None, column_comment_of("publication")),
    ]
    assert [r[0] for r in rows[4:]] == [DICTIONARY_TABLE] * 5
    assert comments["t.n"] == "Un nombre. Unité : logements."
    assert comments["t.code"] == "Un code d'essai."
    assert comments["t.autre"] is None
    assert tables["t"] == "La table d'essai."
    assert tables[DICTIONARY_TABLE] == PYTHON_TABLES[DICTIONARY_TABLE].description
    check_dictionary_matches_columns(tmp_path / "pub.duckdb")


def column_comment_of(table: str) -> str:
    return PYTHON_TABLES[table].columns["publication_id"].description


# --- against a real publication (called by tests/test_pipeline.py) ----------------------


def check_dictionary_matches_columns(db_path: Path) -> None:
    """`dictionnaire` has exactly one row per column of `duckdb_columns()`, types included."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        actual = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall()
        listed = con.execute(f"SELECT nom_table, colonne, type FROM {DICTIONARY_TABLE}").fetchall()
    assert len(listed) == len(set(listed)), "a column listed twice in dictionnaire"
    missing, extra = set(actual) - set(listed), set(listed) - set(actual)
    assert not missing and not extra, f"not in dictionnaire: {missing}; not in the file: {extra}"


def check_dictionary(db_path: Path) -> None:
    """Every table and column of a publication has a COMMENT, and `dictionnaire` describes
    every column with its unit (numeric and temporal columns have one, text and boolean none),
    in the same words as the comments."""
    from pipelines.publish import CONTRACT_TABLES

    check_dictionary_matches_columns(db_path)
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = con.execute(
            "SELECT table_name, comment FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall()
        columns = con.execute(
            "SELECT c.table_name, c.column_name, c.data_type, c.comment, d.unite, d.description "
            "FROM duckdb_columns() c JOIN dictionnaire d "
            "ON d.nom_table = c.table_name AND d.colonne = c.column_name "
            "WHERE c.database_name = current_database() AND c.schema_name = 'main'"
        ).fetchall()
        order = [r[0] for r in con.execute(f"SELECT nom_table FROM {DICTIONARY_TABLE}").fetchall()]
    names = {t for t, _ in tables}
    assert names >= {*CONTRACT_TABLES, *PYTHON_TABLES}, names
    problems = [f"table {t}: no comment" for t, comment in tables if not (comment or "").strip()]
    for table, column, data_type, comment, unite, description in columns:
        where = f"{table}.{column} ({data_type})"
        if not (description or "").strip():
            problems.append(f"{where}: no description in dictionnaire")
            continue
        if comment != column_comment(Column(description, unite)):
            problems.append(f"{where}: comment {comment!r} is not description + unit")
        if needs_unit(data_type) and not (unite or "").strip():
            problems.append(f"{where}: numeric or temporal, no unit")
        if data_type.upper().startswith(WITHOUT_UNIT) and unite is not None:
            problems.append(f"{where}: text or boolean with unit {unite!r}")
    assert not problems, "\n".join(problems)
    first_seen = list(dict.fromkeys(order))
    assert first_seen[: len(CONTRACT_TABLES)] == list(CONTRACT_TABLES)
    assert first_seen[-len(PYTHON_TABLES) :] == [
        "publication",
        "publication_livraisons",
        DICTIONARY_TABLE,
    ]


@pytest.mark.skipif(
    not os.environ.get("TRANQUILLITY_DOCS_HOME"),
    reason="set TRANQUILLITY_DOCS_HOME to a home holding a publication",
)
def test_dictionary_of_an_existing_publication() -> None:
    check_dictionary(Path(os.environ["TRANQUILLITY_DOCS_HOME"]) / "published" / "current.duckdb")
