"""Where runtime data lives, and every setting an operator can change.

Everything the pipeline reads or writes at run time sits under one home folder
(`TRANQUILLITY_HOME`, docs/operations.md) so that a test, a demo and a production
deployment never share state by accident: point the variable elsewhere and you get a
fresh, isolated warehouse, Dagster instance and key file.

The settings are environment variables, listed once here with their default and meaning:
the Dagster resources take them as fields (pipelines.resources), the command line's help and
docs/operations.md are checked against this list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# dbt's parsed project: contract tables and incremental models are read from it.
DBT_MANIFEST = REPO_ROOT / "dbt_project" / "target" / "manifest.json"
FAMILIES: tuple[str, ...] = ("reference", "landlord", "police", "allocations")


@dataclass(frozen=True)
class Setting:
    """One environment variable an operator may set, its default and what it changes."""

    variable: str
    default: str | None
    meaning: str

    def value(self) -> str | None:
        """The variable's value, else the default (an empty variable counts as unset)."""
        return os.environ.get(self.variable) or self.default

    def describe(self) -> str:
        default = f" (default: {self.default})" if self.default is not None else ""
        return f"{self.meaning}{default}"


HOME_SETTING = Setting(
    "TRANQUILLITY_HOME",
    None,
    "home folder of all runtime data (default: ./warehouse in the repository)",
)
PSEUDO_KEY = Setting(
    "TRANQUILLITY_PSEUDO_KEY",
    None,
    "pseudonymisation key (default: $TRANQUILLITY_HOME/secrets/pseudonymisation.key, "
    "created on first use with mode 0600)",
)
DAGSTER_HOME = Setting(
    "DAGSTER_HOME", None, "Dagster instance, run history (default: $TRANQUILLITY_HOME/dagster)"
)
KEEP_PUBLICATIONS = Setting(
    "TRANQUILLITY_KEEP_PUBLICATIONS", "10", "publications kept in published/"
)
# 1.5 GB: the refresh's process tree stays under 3 GiB nationally. With 2 GB, dbt's process
# (2.3 GB) and the refresh's (0.7 GB) reached 3.05 GB; with 1.5 GB, 2.5 GB, the dbt build 5 %
# slower (two refreshes side by side, docs/operations.md). 8 GB let the tree reach 8.4 GB for
# no time gained.
DUCKDB_MEMORY = Setting(
    "TRANQUILLITY_DUCKDB_MEMORY",
    "1.5GB",
    "DuckDB memory cap of every connection (ingestion, dbt, checks, publication, open data)",
)


def connection_config(memory_limit: str | None = None) -> dict[str, Any]:
    """Every DuckDB connection's configuration: DuckDB takes 80 % of the machine's memory by
    default; the cap (also applied to dbt through profiles.yml) leaves room for polars and the
    OS, DuckDB spilling to disk beyond it. Here, beside the setting, so that a light module
    (`tranquillity sql`) needs nothing else to open a capped connection."""
    return {"memory_limit": memory_limit or str(DUCKDB_MEMORY.value())}


KEEP_DATA_DOCS = Setting(
    "TRANQUILLITY_KEEP_DATA_DOCS", "20", "runs whose Great Expectations Data Docs are kept"
)
ALERT_URL = Setting(
    "TRANQUILLITY_ALERT_URL",
    None,
    "URL each alert is POSTed to as JSON (default: none; alerts are still logged and "
    "written to $TRANQUILLITY_HOME/alerts.jsonl)",
)
GATE = Setting(
    "TRANQUILLITY_GATE",
    "hold",
    "what a delivery failing its family's suite does to the publication: hold (it is held and "
    "the publication goes ahead with its key's last accepted delivery) or strict (any held "
    "delivery blocks the publication until it is replaced)",
)
REPORTS = Setting(
    "TRANQUILLITY_RAPPORTS",
    "on",
    "official reports after each publication (docs/reports.md): on (both reports of the last "
    "year for every EPCI, rendered again only when their figures changed) or off",
)
# The values of REPORTS, the default first.
REPORTS_MODES: tuple[str, ...] = ("on", "off")
# The values of GATE, the default first.
GATE_MODES: tuple[str, ...] = ("hold", "strict")
SETTINGS: tuple[Setting, ...] = (
    HOME_SETTING,
    PSEUDO_KEY,
    DAGSTER_HOME,
    KEEP_PUBLICATIONS,
    DUCKDB_MEMORY,
    KEEP_DATA_DOCS,
    ALERT_URL,
    GATE,
    REPORTS,
)

# One run at a time: DuckDB has one writer, so a run the sensor or a schedule starts while
# another refreshes waits in Dagster's queue instead of failing on the warehouse's lock.
DAGSTER_YAML = """\
# Written by tranquillity (pipelines/settings.py), rewritten when it differs: project-local
# Dagster instance, telemetry off, one run at a time.
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
"""


def write_dagster_yaml(dagster_home: Path) -> Path:
    """The instance's dagster.yaml, brought to `DAGSTER_YAML` (a home made by an earlier
    version gets the new keys); also called by `make ui` for its DAGSTER_HOME."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    if not path.exists() or path.read_text(encoding="utf-8") != DAGSTER_YAML:
        # Whole or not at all: a daemon may be reading it.
        partial = path.with_name(f".dagster.yaml.{os.getpid()}.tmp")
        partial.write_text(DAGSTER_YAML, encoding="utf-8")
        partial.replace(path)
    return path


@dataclass(frozen=True)
class Home:
    """The folder layout of docs/operations.md, plus the project's private paths."""

    root: Path

    @classmethod
    def from_env(cls) -> Home:
        """The home named by `TRANQUILLITY_HOME`, else `./warehouse` in the repository."""
        return cls.at(HOME_SETTING.value())

    @classmethod
    def at(cls, value: str | None) -> Home:
        """The home at `value` (made absolute: dbt runs in another folder), else the default."""
        return cls(Path(value).expanduser().resolve() if value else REPO_ROOT / "warehouse")

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    def inbox_family(self, family: str) -> Path:
        return self.inbox / family

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def current_publication(self) -> Path:
        return self.published / "current.duckdb"

    @property
    def work(self) -> Path:
        """Private build area: the single-writer working database lives here."""
        return self.root / "work"

    @property
    def warehouse_db(self) -> Path:
        return self.work / "warehouse.duckdb"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def last_refresh(self) -> Path:
        return self.state / "last_refresh.json"

    @property
    def alerts(self) -> Path:
        """Every alert raised, one JSON object a line (pipelines.alerts)."""
        return self.root / "alerts.jsonl"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def data_docs(self) -> Path:
        """Great Expectations Data Docs, one folder per refresh run (`<run_id>/index.html`)."""
        return self.root / "data_docs"

    @property
    def logs(self) -> Path:
        """One log file per refresh: everything Dagster and dbt printed, stack traces included."""
        return self.root / "logs"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def ensure(self) -> Home:
        """Create the folders (idempotent) and the Dagster instance's settings."""
        for family in FAMILIES:
            self.inbox_family(family).mkdir(parents=True, exist_ok=True)
        for path in (self.published, self.work, self.state, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        self.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_dagster_yaml(self.dagster_home)
        return self
