"""The open-data folder of a publication, as the reports read it.

Reports read nothing else (contract section 5): every confidentiality rule applied to the
open tables then holds in every report by construction, and a report can be rebuilt by
anyone from the published files. Which cell is masked is read from the folder itself (the
`secret` property of each field in `datapackage.json`), except for the social-mix figures
computed from counts, whose sources have their one home in `pipelines/opendata.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.opendata import MIXITE_DERIVED
from pipelines.reports.model import Cell, Kind, Source
from pipelines.settings import connection_config


class OpenDataError(ValueError):
    """The open-data folder cannot feed a report (missing, incomplete, unknown EPCI)."""


@dataclass
class OpenFolder:
    """`published/open/<publication_id>/`: the package description and its Parquet tables."""

    path: Path
    _tables: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)

    @cached_property
    def package(self) -> dict[str, Any]:
        descriptor = self.path / "datapackage.json"
        if not descriptor.is_file():
            raise OpenDataError(f"{self.path}: no datapackage.json (not an open-data folder)")
        package: dict[str, Any] = json.loads(descriptor.read_text(encoding="utf-8"))
        return package

    @property
    def publication_id(self) -> str:
        return str(self.package["publication_id"])

    @property
    def created(self) -> str:
        return str(self.package["created"])

    @property
    def periode(self) -> tuple[date, date]:
        periode = self.package["periode"]
        return date.fromisoformat(periode["debut"]), date.fromisoformat(periode["fin"])

    @cached_property
    def _resources(self) -> dict[str, dict[str, Any]]:
        return {r["name"].replace("-", "_"): r for r in self.package["resources"]}

    def has(self, name: str) -> bool:
        return name in self._resources

    def table(self, name: str) -> pl.DataFrame:
        """An open table, from its Parquet twin (types kept: codes are text)."""
        if name not in self._tables:
            if name not in self._resources:
                raise OpenDataError(f"{self.path}: no open table {name}")
            self._tables[name] = pl.read_parquet(
                self.path / self._resources[name]["parquet"]["path"]
            )
        return self._tables[name]

    def flags(self, name: str) -> dict[str, list[str]]:
        """For each masked column of a table, the flag columns that say it is masked."""
        resource = self._resources[name]
        out: dict[str, list[str]] = {}
        for f in resource["schema"]["fields"]:
            if f.get("secret"):
                out[f["name"]] = [f["secret"]]
        for column in resource.get("secret", {}).get("colonnes_masquees", []):
            if column not in out and column in MIXITE_DERIVED:
                out[column] = [f"secret_{s}" for s in MIXITE_DERIVED[column]]
        unexplained = set(resource.get("secret", {}).get("colonnes_masquees", [])) - set(out)
        if unexplained:
            raise OpenDataError(f"{name}: no flag says when {sorted(unexplained)} are masked")
        return out

    def primary_key(self, name: str) -> list[str]:
        key = self._resources[name]["schema"]["primaryKey"]
        return [key] if isinstance(key, str) else list(key)

    def cell(self, name: str, row: dict[str, Any], column: str, kind: Kind) -> Cell:
        """The report cell of one open-data value, with its provenance and masking."""
        flags = self.flags(name).get(column, [])
        masked = row[column] is None and any(bool(row[f]) for f in flags)
        source = Source(name, tuple((k, row[k]) for k in self.primary_key(name)), column)
        return Cell(row[column], kind, masked, source)


def current_publication_id(published: Path) -> str:
    """The id of the current publication: only to find its open-data folder (no figure is
    read from the publication file)."""
    current = published / "current.duckdb"
    if not current.is_file():
        raise OpenDataError(f"{current}: no publication yet (run `tranquillity refresh`)")
    with duckdb.connect(str(current), read_only=True, config=connection_config()) as con:
        row = con.execute("SELECT publication_id FROM publication").fetchone()
    if row is None:
        raise OpenDataError(f"{current}: the publication table is empty")
    return str(row[0])


def open_folder(home_published: Path, publication_id: str | None = None) -> OpenFolder:
    """The open-data folder of a publication (the current one by default)."""
    if publication_id is None:
        publication_id = current_publication_id(home_published)
    folder = OpenFolder(home_published / "open" / publication_id)
    if not folder.path.is_dir():
        raise OpenDataError(f"{folder.path}: the publication has no open-data folder")
    return folder
