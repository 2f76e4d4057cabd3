"""Dagster resources: the working warehouse and the home folder it lives in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.ingest.loader import connect
from pipelines.ingest.pseudonymise import load_key
from pipelines.settings import Home


class WarehouseResource(dg.ConfigurableResource):
    """The single-writer DuckDB working database under the home folder.

    `home` defaults to `TRANQUILLITY_HOME` (docs/command-line.md), read when the run starts,
    so tests and deployments point the whole pipeline elsewhere with one variable.
    """

    home: str | None = None

    def get_home(self) -> Home:
        home = Home(Path(self.home).resolve()) if self.home else Home.from_env()
        return home.ensure()

    def pseudonymisation_key(self) -> bytes:
        return load_key(self.get_home().secrets)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write connection, closed at the end so the next step can open the file."""
        con = connect(self.get_home())
        try:
            yield con
        finally:
            con.close()
