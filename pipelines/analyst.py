"""The analysts' door: a connection that reads the database it opens, and nothing else.

`tranquillity sql` runs whatever an analyst types. DuckDB, opened read-only, still reaches the
file system (`COPY ... TO` any file, `read_blob` of the pseudonymisation key, `ATTACH` of the
working database with its quarantine of raw partner lines) and lets a query change the
settings. So the connection is opened with external access disabled (no file, no network,
no extension install or load from disk) and the configuration locked after the memory cap is
set: a query can read the tables of the file, nothing more. Operators' `--warehouse` queries
go through the same door.

Kept free of heavy imports: `tranquillity sql` must answer in a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.settings import connection_config

# What every refused query is told, before DuckDB's own first line.
REFUSAL = (
    "not allowed: `tranquillity sql` only reads the tables of the database it opens "
    "(no file, no other database, no extension, no setting)"
)


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """`path` read-only, closed to the file system, its configuration locked."""
    return duckdb.connect(
        str(path),
        read_only=True,
        config={
            **connection_config(),
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            # Last: nothing above may be changed by a query (SET, RESET, PRAGMA).
            "lock_configuration": True,
        },
    )


def is_refusal(exc: duckdb.Error) -> bool:
    """A query stopped by the door (not a mistake in the query itself)."""
    if isinstance(exc, duckdb.PermissionException):
        return True
    message = str(exc)
    return "the configuration has been locked" in message or (
        "Cannot execute statement" in message and "read-only mode" in message
    )
