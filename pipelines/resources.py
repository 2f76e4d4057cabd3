"""Dagster resources: the configuration surface of a refresh run.

Every setting of docs/operations.md is a field of one of these resources, given as
`dg.EnvVar` when its variable is set (Dagster reads it when the run starts, and the UI shows
which variable each value comes from), else the default from pipelines.settings. Nothing
below reads the environment itself: a test or a deployment configures a run by building the
resources, as dagster-university's `resources.py` does.

- `WarehouseResource`: the home folder, the working DuckDB database (opened through
  dagster-duckdb's `DuckDBResource`, which waits for another process's write lock), its
  memory cap, the pseudonymisation key and how many publications are kept.
- `QualityResource`: Great Expectations for the run. It owns one GX context from the first
  validation to the end of the run and renders the run's Data Docs once, when the run ends;
  it also says whether a held delivery blocks the publication (the gate mode).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from pipelines.ingest.pseudonymise import load_key
from pipelines.lock import acquire, release
from pipelines.quality.runner import QualityRun
from pipelines.settings import (
    DUCKDB_MEMORY,
    GATE,
    GATE_MODES,
    HOME_SETTING,
    KEEP_DATA_DOCS,
    KEEP_PUBLICATIONS,
    PSEUDO_KEY,
    REPORTS,
    REPORTS_MODES,
    Home,
    Setting,
    connection_config,
)
from pipelines.warehouse import ensure_schema


def from_environment(setting: Setting) -> Any:
    """A resource field's value: the variable when it is set, else the setting's default."""
    if os.environ.get(setting.variable):
        return dg.EnvVar(setting.variable)
    return setting.default


def from_environment_int(setting: Setting) -> Any:
    if os.environ.get(setting.variable):
        return dg.EnvVar.int(setting.variable)
    return int(setting.default or 0)


class WarehouseResource(dg.ConfigurableResource):
    """The single-writer DuckDB working database under the home folder."""

    home: str | None = Field(
        default=None, description=f"{HOME_SETTING.variable}: {HOME_SETTING.describe()}"
    )
    memory_limit: str = Field(
        default=str(DUCKDB_MEMORY.default),
        description=f"{DUCKDB_MEMORY.variable}: {DUCKDB_MEMORY.describe()}",
    )
    pseudonymisation_key: str | None = Field(
        default=None, description=f"{PSEUDO_KEY.variable}: {PSEUDO_KEY.describe()}"
    )
    keep_publications: int = Field(
        default=int(KEEP_PUBLICATIONS.default or 10),
        description=f"{KEEP_PUBLICATIONS.variable}: {KEEP_PUBLICATIONS.describe()}",
    )

    _lock: Path | None = PrivateAttr(default=None)

    def get_home(self) -> Home:
        return Home.at(self.home).ensure()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """One refresh at a time, whoever started it (pipelines/lock.py): the run holds the
        refresh lock from its first step to its last."""
        self._lock = acquire(self.get_home(), by=f"run {context.run_id}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lock is not None:
            release(self._lock)
            self._lock = None

    def pseudonymisation(self) -> bytes:
        return load_key(self.get_home().secrets, self.pseudonymisation_key)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write connection with the raw and audit schemas in place, closed at the end
        (even on error: dagster-duckdb closes only on success) so the next step, or dbt's
        process, can open the file."""
        database = DuckDBResource(
            database=str(self.get_home().warehouse_db),
            connection_config=connection_config(self.memory_limit),
        )
        with database.get_connection() as con:
            try:
                ensure_schema(con)
                yield con
            finally:
                con.close()


class QualityResource(dg.ConfigurableResource):
    """Great Expectations for one run: one context, Data Docs rendered once at the end."""

    warehouse: WarehouseResource
    keep_data_docs: int = Field(
        default=int(KEEP_DATA_DOCS.default or 20),
        description=f"{KEEP_DATA_DOCS.variable}: {KEEP_DATA_DOCS.describe()}",
    )
    gate: str = Field(
        default=GATE.default or GATE_MODES[0],
        description=f"{GATE.variable}: {GATE.describe()}",
    )
    _run: QualityRun | None = PrivateAttr(default=None)

    @property
    def strict(self) -> bool:
        """Whether a held delivery blocks the publication (`TRANQUILLITY_GATE=strict`)."""
        if self.gate not in GATE_MODES:
            raise ValueError(
                f"{GATE.variable}={self.gate!r}: expected one of {', '.join(GATE_MODES)}"
            )
        return self.gate == "strict"

    def docs_index(self, run_id: str) -> Path:
        """Where the run's Data Docs will be (rendered when the run ends)."""
        return self.warehouse.get_home().data_docs / run_id / "index.html"

    def for_run(self, run_id: str) -> QualityRun:
        """The run's GX context, created at the first validation."""
        if self._run is None or self._run.docs_dir != self.docs_index(run_id).parent:
            _prune(self.docs_index(run_id).parent.parent, self.keep_data_docs)
            self._run = QualityRun(self.docs_index(run_id).parent)
        return self._run

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """The run is over: render every validation of the run on one Data Docs site."""
        if self._run is not None:
            self._run.build_docs()
            self._run = None


def _prune(docs_root: Path, keep: int) -> None:
    """Keep the newest Data Docs folders only, room made for the run starting."""
    if not docs_root.exists():
        return
    folders = sorted(
        (p for p in docs_root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime
    )
    for old in folders[: max(0, len(folders) - keep + 1)]:
        shutil.rmtree(old, ignore_errors=True)


class ReportsResource(dg.ConfigurableResource):
    """Whether the official reports follow each publication (docs/reports.md)."""

    mode: str = Field(
        default=REPORTS.default or "on", description=f"{REPORTS.variable}: {REPORTS.describe()}"
    )

    def enabled(self) -> bool:
        if self.mode not in REPORTS_MODES:
            raise dg.Failure(
                description=f"{REPORTS.variable}={self.mode!r}: choose among {', '.join(REPORTS_MODES)}"
            )
        return self.mode == "on"


def run_resources() -> dict[str, Any]:
    """The resources of the code location, configured from the environment."""
    warehouse = WarehouseResource(
        home=from_environment(HOME_SETTING),
        memory_limit=from_environment(DUCKDB_MEMORY),
        pseudonymisation_key=from_environment(PSEUDO_KEY),
        keep_publications=from_environment_int(KEEP_PUBLICATIONS),
    )
    return {
        "warehouse": warehouse,
        "quality": QualityResource(
            warehouse=warehouse,
            keep_data_docs=from_environment_int(KEEP_DATA_DOCS),
            gate=from_environment(GATE),
        ),
        "reports": ReportsResource(mode=from_environment(REPORTS)),
    }
