"""The working warehouse: how it is opened, and the layout of everything Python writes in it.

One DuckDB file under the home (`work/warehouse.duckdb`), one writer at a time: the refresh
run, or `tranquillity accept`. Python owns two schemas there, `raw` (the delivery ledger, the
operators' overrides, the quarantine and one table per kind of delivery) and `audit` (every
check's outcome); dbt owns the rest. Their DDL lives here, next to the connection that
creates it, so that any process opening the warehouse finds it complete: the Dagster
resource, the command line and the tests all open it through `connect` (or the resource,
which adds dagster-duckdb's retry when another process holds the lock).

A warehouse built by an earlier version is brought to the current layout in place, without
losing a row (`upgrade`): columns are added, types widened.
"""

from __future__ import annotations

import duckdb

from pipelines.ingest import ssmsi
from pipelines.ingest.ledger import LEDGER_COLUMNS, ledger_ddl
from pipelines.ingest.specs import ALL_KINDS, SSMSI_KIND, DeliveryKind
from pipelines.settings import Home, connection_config

# The column types of specs.py (`Column.type`) as DuckDB types.
SQL_TYPES = {
    "text": "VARCHAR",
    "int": "BIGINT",
    "decimal": "DOUBLE",
    "date": "DATE",
    "enum": "VARCHAR",
    "oui_non": "BOOLEAN",
}

RAW_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.derogations (
    fichier VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    motif VARCHAR NOT NULL,
    accordee_par VARCHAR,
    accordee_le TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.quarantaine (
    livraison_id BIGINT NOT NULL,
    fichier VARCHAR NOT NULL,
    ligne BIGINT NOT NULL,
    regle VARCHAR NOT NULL,
    motif VARCHAR NOT NULL,
    contenu VARCHAR
);
"""

AUDIT_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.controles (
    run_id VARCHAR NOT NULL,
    controle VARCHAR NOT NULL,
    origine VARCHAR NOT NULL,
    cible VARCHAR,
    bloquant BOOLEAN NOT NULL,
    statut VARCHAR NOT NULL,
    nb_echecs BIGINT,
    message VARCHAR,
    exemples VARCHAR,
    execute_le TIMESTAMP NOT NULL
);
-- The months each run recomputed (pipelines/window.py): its checks and its publication read it.
CREATE TABLE IF NOT EXISTS audit.fenetres (
    run_id VARCHAR PRIMARY KEY,
    tous_les_mois BOOLEAN NOT NULL,
    mois DATE[] NOT NULL,
    raisons VARCHAR[] NOT NULL,
    publication_base VARCHAR,
    calculee_le TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""


def connect(home: Home, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """The working warehouse (single writer), with the Python-owned schemas in place."""
    home.ensure()
    con = duckdb.connect(str(home.warehouse_db), config=connection_config(memory_limit))
    ensure_schema(con)
    return con


def raw_columns(kind: DeliveryKind) -> dict[str, str]:
    """Raw table layout: delivery id, line number, landlord (from the file name), typed columns."""
    if kind is SSMSI_KIND:
        columns = dict(ssmsi.RAW_COLUMNS)
    else:
        columns = {c.column: SQL_TYPES[c.type] for c in kind.kept_columns}
    head = {"livraison_id": "BIGINT", "ligne": "BIGINT"}
    if kind.landlord_in_name:
        head["code_bailleur"] = "VARCHAR"
    return head | columns


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create (idempotent) and upgrade the raw and audit schemas: ledger, overrides,
    quarantine, one table per kind of delivery, check outcomes."""
    con.execute(ledger_ddl())
    upgrade(con, "livraisons", {c.name: c.sql for c in LEDGER_COLUMNS})
    con.execute(RAW_DDL)
    for kind in (*ALL_KINDS, SSMSI_KIND):
        expected = raw_columns(kind)
        columns = ", ".join(f"{name} {sql}" for name, sql in expected.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS raw.{kind.table} ({columns})")
        upgrade(con, kind.table, expected)
    con.execute(AUDIT_DDL)


# Type changes a warehouse built by an earlier version may need, all lossless widenings
# (e.g. SSMSI dwellings were BIGINT before their published decimals were kept).
_WIDENINGS = {("BIGINT", "DOUBLE"), ("INTEGER", "BIGINT"), ("INTEGER", "DOUBLE")}


def upgrade(con: duckdb.DuckDBPyConnection, table: str, expected: dict[str, str]) -> None:
    """Bring a raw table of an older warehouse to the current layout without losing a row:
    new columns are added (NULL for old rows), widened types are altered in place."""
    present = {
        name: sql_type
        for name, sql_type in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = ?",
            [table],
        ).fetchall()
    }
    for name, sql_type in expected.items():
        if name not in present:
            con.execute(f"ALTER TABLE raw.{table} ADD COLUMN {name} {sql_type}")
        elif (present[name], sql_type) in _WIDENINGS:
            con.execute(f"ALTER TABLE raw.{table} ALTER {name} TYPE {sql_type}")
