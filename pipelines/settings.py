"""Where runtime data lives.

Everything the pipeline reads or writes at run time sits under one home folder
(`TRANQUILLITY_HOME`, docs/operations.md) so that a test, a demo and a production
deployment never share state by accident: point the variable elsewhere and you get a
fresh, isolated warehouse, Dagster instance and key file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FAMILIES: tuple[str, ...] = ("reference", "landlord", "police", "allocations")

_DAGSTER_YAML = """\
# Written by tranquillity: project-local Dagster instance, telemetry off.
telemetry:
  enabled: false
"""


@dataclass(frozen=True)
class Home:
    """The folder layout of docs/operations.md, plus the project's private paths."""

    root: Path

    @classmethod
    def from_env(cls) -> Home:
        """The home named by `TRANQUILLITY_HOME`, else `./warehouse` in the repository."""
        value = os.environ.get("TRANQUILLITY_HOME")
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
        """Create the folders (idempotent) and a telemetry-free Dagster instance."""
        for family in FAMILIES:
            self.inbox_family(family).mkdir(parents=True, exist_ok=True)
        for path in (self.published, self.work, self.state, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        self.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
        dagster_yaml = self.dagster_home / "dagster.yaml"
        if not dagster_yaml.exists():
            dagster_yaml.write_text(_DAGSTER_YAML)
        return self
