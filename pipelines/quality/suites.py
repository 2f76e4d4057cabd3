"""Great Expectations suites kept as data (`data_quality/suites/*.yml`).

Thresholds and severities are decisions of the people who own the data, not code: a data
steward can tighten a tolerance or turn a warning into a block by editing one YAML line, and
the review of that line is the review of the decision. This module only reads and checks the
files; `pipelines.quality.runner` turns them into GX suites.

A suite file:

    suite: livraisons_landlord
    description: why these expectations exist
    datasets:
      - name: profils                 # the frame validated (see data_quality/README.md)
        sql: SELECT ...               # optional: query on the working warehouse
        partition_by: [col, ...]      # optional: validate in hash partitions of these columns
        index_columns: [fichier]      # columns named in failure examples
        fenetre: mois                 # optional: the column a refresh's window of months
                                      # restricts (a table incremental by month, window.py)
        include: [_commun_livraisons] # optional: expectations of a partial file (_*.yml)
        expectations:
          - id: quarantaine_massive
            expectation: expect_column_values_to_be_between
            kwargs: {column: part_quarantaine, max_value: 0.5}
            when: 'lignes_lues >= 20'  # optional row condition (pandas query syntax)
            severity: block            # block | warn
            why: words a partner understands
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipelines.settings import REPO_ROOT

SUITES_DIR = REPO_ROOT / "data_quality" / "suites"
SEVERITIES = ("block", "warn")

# Expectations whose verdict is a per-row property: they stay exact when a large table is
# validated partition by partition. Compound uniqueness stays exact too when the partitions
# are hash partitions of (a subset of) the same columns.
ROW_WISE = {
    "expect_column_values_to_be_between",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_match_regex",
    "expect_column_pair_values_to_be_equal",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_compound_columns_to_be_unique",
    "expect_column_values_to_be_unique",
}


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Expectation:
    id: str
    expectation: str
    kwargs: dict[str, Any]
    severity: str
    why: str
    when: str | None = None

    @property
    def blocking(self) -> bool:
        return self.severity == "block"


@dataclass(frozen=True)
class Dataset:
    name: str
    expectations: tuple[Expectation, ...]
    sql: str | None = None
    partition_by: tuple[str, ...] = ()
    index_columns: tuple[str, ...] = ()
    window_column: str | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    datasets: tuple[Dataset, ...]
    path: Path

    def dataset(self, name: str) -> Dataset:
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        raise SuiteError(f"{self.path.name}: no dataset named {name!r}")


def gx_class_name(expectation: str) -> str:
    """`expect_column_values_to_be_between` -> `ExpectColumnValuesToBeBetween`."""
    return "".join(part.capitalize() for part in expectation.split("_"))


def _expectation(path: Path, where: str, entry: dict[str, Any]) -> Expectation:
    import great_expectations.expectations as gxe

    missing = {"id", "expectation", "severity", "why"} - entry.keys()
    if missing:
        raise SuiteError(f"{path.name}: {where}: missing {', '.join(sorted(missing))}")
    if entry["severity"] not in SEVERITIES:
        raise SuiteError(
            f"{path.name}: {where} {entry['id']}: severity must be block or warn, "
            f"not {entry['severity']!r}"
        )
    if not hasattr(gxe, gx_class_name(entry["expectation"])):
        raise SuiteError(
            f"{path.name}: {where} {entry['id']}: unknown expectation {entry['expectation']!r}"
        )
    if not re.fullmatch(r"[a-z0-9_]+", str(entry["id"])):
        raise SuiteError(f"{path.name}: {where}: id {entry['id']!r} must be snake_case")
    return Expectation(
        id=str(entry["id"]),
        expectation=entry["expectation"],
        kwargs=dict(entry.get("kwargs") or {}),
        severity=entry["severity"],
        why=" ".join(str(entry["why"]).split()),
        when=entry.get("when"),
    )


def _partial(path: Path) -> list[dict[str, Any]]:
    """Expectations shared by several suites (a `_name.yml` file holding `expectations:`)."""
    if not path.exists():
        raise SuiteError(f"included file {path.name} does not exist")
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(document.get("expectations") or [])


def load_suite(path: Path) -> Suite:
    """Read and check one suite file."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path.name}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or "suite" not in document:
        raise SuiteError(f"{path.name}: expected a mapping with 'suite' and 'datasets'")
    datasets = []
    for index, raw in enumerate(document.get("datasets") or []):
        where = f"datasets[{index}]"
        entries = [
            (part.name, entry)
            for part in (SUITES_DIR / f"{name}.yml" for name in raw.get("include") or [])
            for entry in _partial(part)
        ] + [(path.name, entry) for entry in raw.get("expectations") or []]
        expectations = tuple(
            _expectation(path, f"{where} expectation (from {origin})", entry)
            for origin, entry in entries
        )
        ids = [e.id for e in expectations]
        if len(ids) != len(set(ids)):
            raise SuiteError(f"{path.name}: {where}: duplicate expectation ids")
        partition_by = tuple(raw.get("partition_by") or ())
        if partition_by:
            not_row_wise = [e.id for e in expectations if e.expectation not in ROW_WISE]
            if not_row_wise:
                raise SuiteError(
                    f"{path.name}: {where}: partitioned datasets only take row-wise "
                    f"expectations; not: {', '.join(not_row_wise)}"
                )
        datasets.append(
            Dataset(
                name=str(raw["name"]),
                expectations=expectations,
                sql=raw.get("sql"),
                partition_by=partition_by,
                index_columns=tuple(raw.get("index_columns") or ()),
                window_column=raw.get("fenetre"),
            )
        )
    if not datasets:
        raise SuiteError(f"{path.name}: no dataset")
    return Suite(
        name=str(document["suite"]),
        description=" ".join(str(document.get("description", "")).split()),
        datasets=tuple(datasets),
        path=path,
    )


@cache
def suite(name: str) -> Suite:
    """The suite of that name from `data_quality/suites/<name>.yml`."""
    path = SUITES_DIR / f"{name}.yml"
    if not path.exists():
        raise SuiteError(f"no suite file {path}")
    loaded = load_suite(path)
    if loaded.name != name:
        raise SuiteError(f"{path.name}: declares suite {loaded.name!r}, expected {name!r}")
    return loaded


def all_suites() -> list[Suite]:
    return [
        suite(path.stem)
        for path in sorted(SUITES_DIR.glob("*.yml"))
        if not path.name.startswith("_")
    ]
