"""Checks run where the data is: the rows an expectation could flag, as a SQL predicate.

GX validates pandas frames, row by row in Python-driven metrics, and costs about a second per
validation whatever the frame's size. Every expectation the suites use is a per-row property,
so the rows it could flag can be written as a SQL condition over the same columns, derived
from the expectation itself (one home per rule: nothing here restates a threshold). DuckDB
selects those rows and GX judges them:
- a publication table of 56.8 million rows reaches pandas as the handful a bad build produces
  (pipelines.quality.publication);
- a batch of delivery profiles where no row could fail needs no GX run at all
  (pipelines.quality.deliveries).
The condition is wider than the expectation or equal to it (a `when` is kept only where it
translates plainly from pandas, and a NULL in it keeps the row), never narrower: the verdicts, failure counts and examples are those of GX over every row,
which tests/test_quality.py checks on random tables against GX shown every row.
"""

from __future__ import annotations

import ast
from typing import Any

import duckdb
import polars as pl

from pipelines.quality.suites import Dataset, Expectation


def _literal(value: Any) -> str | None:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return repr(value)


def _column(name: Any) -> str:
    return 'd."{}"'.format(str(name).replace('"', '""'))


_OPERATORS = {ast.Eq: "=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _when(condition: str) -> str | None:
    """A pandas `query` condition in SQL, or None unless it is plain comparisons of columns
    and constants joined by and/or. `!=` is taken only against a text constant: pandas
    holds NaN != NaN, DuckDB does not."""
    try:
        tree = ast.parse(condition, mode="eval").body
    except SyntaxError:
        return None

    def operand(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return _column(node.id)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return "true" if node.value else "false"
        if isinstance(node, ast.Constant):
            return _literal(node.value)
        return None

    def sql(node: ast.expr) -> str | None:
        if isinstance(node, ast.BoolOp):
            parts = [sql(v) for v in node.values]
            if any(p is None for p in parts):
                return None
            joiner = " AND " if isinstance(node.op, ast.And) else " OR "
            return "(" + joiner.join(str(p) for p in parts) + ")"
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = operand(node.left), operand(node.comparators[0])
            op = node.ops[0]
            if left is None or right is None:
                return None
            if isinstance(op, ast.NotEq):
                texts = [n for n in (node.left, node.comparators[0]) if isinstance(n, ast.Constant)]
                return f"({left} <> {right})" if texts and isinstance(texts[0].value, str) else None
            if type(op) in _OPERATORS:
                return f"({left} {_OPERATORS[type(op)]} {right})"
        return None

    return sql(tree)


def _could_fail(expectation: Expectation) -> str | None:
    """A SQL condition true on every row the expectation could flag (its `when` where it
    translates: a NULL there keeps the row), or None when none can be written."""
    base = _base(expectation)
    if base is None or expectation.when is None:
        return base
    when = _when(expectation.when)
    return base if when is None else f"({when} IS NOT FALSE AND {base})"


def _base(expectation: Expectation) -> str | None:
    kwargs = expectation.kwargs
    if kwargs.get("mostly") is not None:
        return None  # a share of every row: GX must see them all
    kind = expectation.expectation
    if kind == "expect_column_values_to_be_between":
        column = _column(kwargs["column"])
        bounds = []
        for key, strict, operator in (
            ("min_value", "strict_min", "<"),
            ("max_value", "strict_max", ">"),
        ):
            if kwargs.get(key) is None:
                continue
            value = _literal(kwargs[key])
            if value is None:
                return None
            # A bound is inclusive unless `strict_*`: then the bound itself fails too.
            bounds.append(f"{column} {operator}{'=' if kwargs.get(strict) else ''} {value}")
        # NaN, which pandas takes for a missing value (never flagged), is above every number
        # in DuckDB: selected, then passed by GX.
        return f"({' OR '.join(bounds)})" if bounds else None
    if kind == "expect_column_values_to_be_in_set":
        values = [_literal(v) for v in kwargs["value_set"]]
        if not values or any(v is None for v in values):
            return None
        column = _column(kwargs["column"])
        return f"({column} IS NOT NULL AND {column} NOT IN ({', '.join(map(str, values))}))"
    if kind == "expect_column_values_to_be_null":
        return f"{_column(kwargs['column'])} IS NOT NULL"
    if kind == "expect_column_values_to_match_regex":
        return f"{_column(kwargs['column'])} IS NOT NULL"  # Python's regexes are not DuckDB's
    if kind == "expect_column_pair_values_to_be_equal":
        return f"{_column(kwargs['column_A'])} IS DISTINCT FROM {_column(kwargs['column_B'])}"
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        return f"({_column(kwargs['column_A'])} > {_column(kwargs['column_B'])}) IS NOT TRUE"
    return None


def suspects(dataset: Dataset) -> str | None:
    """The rows of the dataset that one of its expectations could flag, as a SQL predicate
    (None: every row must be shown to GX, e.g. for uniqueness)."""
    conditions = [_could_fail(e) for e in dataset.expectations]
    if not conditions or any(c is None for c in conditions):
        return None
    return "(" + " OR ".join(c for c in conditions if c is not None) + ")"


def suspect_rows(frame: pl.DataFrame, dataset: Dataset) -> pl.DataFrame | None:
    """The rows of an in-memory frame that one of the dataset's expectations could flag, in
    the frame's order (None: no predicate, every row must be shown to GX)."""
    predicate = suspects(dataset)
    if predicate is None:
        return None
    with duckdb.connect() as con:
        con.register("d", frame.with_row_index("__rang"))
        found = con.sql(f"SELECT * FROM d WHERE {predicate} ORDER BY __rang").to_arrow_table()
    return pl.from_arrow(found).drop("__rang").cast(frame.schema)  # type: ignore[union-attr]
