"""Publication suites: the marts validated as they will be published.

Each contract table has a suite `data_quality/suites/publication_<table>.yml`; its datasets are
SQL queries on the working warehouse (the table itself, or a reconciliation across its rows).
Large datasets declare `partition_by`: they are validated in hash partitions of those columns
(at most PARTITION_ROWS rows each), so the national table (tens of millions of rows) never
sits whole in pandas and key uniqueness stays exact.

A table incremental by month is published with only the rows of the refresh's window rebuilt
(pipelines/window.py): its datasets that declare `fenetre: <column>` validate those rows only
(the others are the previous publication's, validated then). A dataset without it, or a run
over every month, validates the whole table.

The checks run where the data is. Every expectation of these suites is a per-row property, so
DuckDB first selects the rows that one of them could flag (`suspects`, a predicate derived from
the expectations themselves, wider than they are: it ignores their `when`), and GX judges
those rows. Nationally that replaces 56.8 million rows copied into pandas by the handful a
bad build produces, with the same verdicts, failure counts and examples; the Data Docs then
count the rows GX saw, not the table's (data_quality/README.md).
"""

from __future__ import annotations

import math
from dataclasses import replace

import duckdb
import polars as pl

from pipelines.audit import CheckOutcome
from pipelines.quality.runner import QualityRun, new_results
from pipelines.quality.suites import Suite, suite
from pipelines.quality.suspects import suspects
from pipelines.window import INCREMENTAL_MODELS, Window

PARTITION_ROWS = 1_000_000


def suite_for(table: str) -> Suite:
    return suite(f"publication_{table}")


def validate_table(
    con: duckdb.DuckDBPyConnection,
    run: QualityRun,
    table: str,
    window: Window | None = None,
    *,
    where_the_data_is: bool = True,
) -> list[CheckOutcome]:
    """Run every dataset of the table's suite; one outcome per expectation.
    `where_the_data_is=False` shows GX every row (the tests compare the two)."""
    table_suite = suite_for(table)
    reach = INCREMENTAL_MODELS.get(table)
    found: list[CheckOutcome] = []
    for dataset in table_suite.datasets:
        results = new_results(table_suite, dataset, table)
        assert dataset.sql, f"{table_suite.path.name}: dataset {dataset.name} has no sql"
        query = f"SELECT * FROM ({dataset.sql}) AS d"
        filters = []
        if reach is not None and window is not None and dataset.window_column:
            reached = replace(reach, colonne=dataset.window_column)
            filters.append(reached.predicate(window.months, "d."))
        suspect = suspects(dataset) if where_the_data_is else None
        if suspect is not None:
            filters.append(suspect)
        parts = 1
        if dataset.partition_by:
            counted = " AND ".join(["true", *filters])
            rows = con.execute(f"SELECT count(*) FROM ({dataset.sql}) AS d WHERE {counted}")
            parts = max(1, math.ceil(rows.fetchall()[0][0] / PARTITION_ROWS))
        for part in range(parts):
            conditions = list(filters)
            if parts > 1:
                key = ", ".join(f'd."{c}"' for c in dataset.partition_by)
                conditions.append(f"hash({key}) % {parts} = {part}")
            sql = f"{query} WHERE {' AND '.join(conditions)}" if conditions else query
            frame = pl.from_arrow(con.sql(sql).to_arrow_table())
            run.validate(table_suite, dataset, frame, results)  # type: ignore[arg-type]
        found.extend(result.outcome() for result in results.values())
    return found
