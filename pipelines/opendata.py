"""Open-data tables with statistical confidentiality (docs/open-data.md).

Counts between 1 and `seuil - 1` are masked (primary suppression); a rate, a shortfall or a
compliance flag computed from a masked count is masked with it; and within each table, a
masked cell must not be recoverable by subtracting published cells from a published total
(secondary suppression). An attacker knows every masked cell is at least 1, so a group is
also unsafe when its masked cells sum to their number (they must all be 1).

Each open table keeps one territorial level, so that the only totals inside a table are the
explicit ones handled here (the `total` category; `n_attributions` = outside + inside QPV).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

SEUIL_INCIDENTS = 5
SEUIL_EVENEMENTS = 5
SEUIL_ATTRIBUTIONS = 11
TOTAL = "total"


def _unsafe(masked_values: Sequence[int], total_published: bool) -> bool:
    """Whether a group's masked cells can be recovered from its published total."""
    if not total_published or not masked_values:
        return False
    return len(masked_values) == 1 or sum(masked_values) == len(masked_values)


def protect_group(
    values: list[int], masked: list[bool], total: int | None, total_masked: bool
) -> tuple[list[bool], bool]:
    """Secondary suppression of one group of cells adding up to a total.

    Masks the smallest published positive cell until the group is safe; when no such cell is
    left, masks the total instead.
    """
    masked = list(masked)
    while _unsafe(
        [v for v, m in zip(values, masked, strict=True) if m],
        total is not None and not total_masked,
    ):
        candidates = [
            (v, i) for i, (v, m) in enumerate(zip(values, masked, strict=True)) if not m and v > 0
        ]
        if candidates:
            masked[min(candidates)[1]] = True
        else:
            total_masked = True
    return masked, total_masked


def primary(count: pl.Expr, seuil: int) -> pl.Expr:
    return count.is_between(1, seuil - 1)


def suppress_long(
    frame: pl.DataFrame, keys: list[str], category: str, count: str, seuil: int
) -> pl.DataFrame:
    """Long table (one row per category, plus a `total` row): adds a boolean `secret`."""
    frame = frame.with_columns(primary(pl.col(count), seuil).alias("secret"))
    out = []
    for _, group in frame.group_by(keys, maintain_order=True):
        is_total = group.get_column(category) == TOTAL
        cells = group.filter(~is_total)
        totals = group.filter(is_total)
        values = cells.get_column(count).to_list()
        masked = cells.get_column("secret").to_list()
        total = totals.get_column(count)[0] if totals.height else None
        total_masked = bool(totals.get_column("secret")[0]) if totals.height else False
        masked, total_masked = protect_group(values, masked, total, total_masked)
        out.append(cells.with_columns(pl.Series("secret", masked, dtype=pl.Boolean)))
        if totals.height:
            out.append(totals.with_columns(pl.lit(total_masked).alias("secret")))
    if not out:
        return frame
    return pl.concat(out)


def _mask(frame: pl.DataFrame, columns: Sequence[str], when: pl.Expr) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(when).then(None).otherwise(pl.col(c)).alias(c) for c in columns
    )


@dataclass(frozen=True)
class OpenTable:
    name: str
    frame: pl.DataFrame


def incidents_tables(con: duckdb.DuckDBPyConnection) -> list[OpenTable]:
    """Incidents per territory, year and category; one table per territorial level."""
    tables = []
    for niveau in ("commune", "epci", "departement"):
        frame = _frame(
            con,
            """
            SELECT code_territoire, annee, categorie, n_incidents,
                   taux_annualise_pour_1000_logements
            FROM indicateurs_incidents_annee WHERE niveau = ?
            ORDER BY code_territoire, annee, categorie
            """,
            [niveau],
        )
        frame = suppress_long(
            frame, ["code_territoire", "annee"], "categorie", "n_incidents", SEUIL_INCIDENTS
        )
        frame = _mask(
            frame, ["n_incidents", "taux_annualise_pour_1000_logements"], pl.col("secret")
        )
        tables.append(OpenTable(f"incidents_{niveau}_annee", frame))
    return tables


def events_table(con: duckdb.DuckDBPyConnection) -> OpenTable:
    """Police and prefecture events per département, year and type (no total row: none to protect)."""
    frame = _frame(
        con,
        """
        SELECT code_territoire AS code_departement, year(mois)::INTEGER AS annee, type_evenement,
               sum(n_evenements)::BIGINT AS n_evenements
        FROM evenements_police_mois WHERE niveau = 'departement'
        GROUP BY ALL ORDER BY ALL
        """,
    )
    frame = frame.with_columns(primary(pl.col("n_evenements"), SEUIL_EVENEMENTS).alias("secret"))
    return OpenTable(
        "evenements_departement_annee", _mask(frame, ["n_evenements"], pl.col("secret"))
    )


def mixite_table(con: duckdb.DuckDBPyConnection) -> OpenTable:
    """Social mix per EPCI and year; n_attributions = outside QPV + inside QPV is the one total."""
    frame = _frame(
        con,
        """
        SELECT code_epci, annee, n_attributions, n_attributions_hors_qpv, n_q1_hors_qpv,
               taux_q1_hors_qpv, objectif_q1_hors_qpv_pct, manque_q1_hors_qpv, conforme_q1_hors_qpv,
               n_attributions_qpv, n_hors_q1_qpv, taux_hors_q1_qpv, objectif_hors_q1_qpv_pct,
               manque_hors_q1_qpv, conforme_hors_q1_qpv, n_menages_prioritaires,
               taux_menages_prioritaires
        FROM indicateurs_mixite_epci_annee ORDER BY code_epci, annee
        """,
    )
    counts = [
        "n_attributions",
        "n_attributions_hors_qpv",
        "n_q1_hors_qpv",
        "n_attributions_qpv",
        "n_hors_q1_qpv",
        "n_menages_prioritaires",
    ]
    secret = {
        c: frame.get_column(c).is_between(1, SEUIL_ATTRIBUTIONS - 1).to_list() for c in counts
    }
    # Secondary suppression on n_attributions = n_attributions_hors_qpv + n_attributions_qpv.
    for row in range(frame.height):
        parts = [frame["n_attributions_hors_qpv"][row], frame["n_attributions_qpv"][row]]
        masked, total_masked = protect_group(
            parts,
            [secret["n_attributions_hors_qpv"][row], secret["n_attributions_qpv"][row]],
            frame["n_attributions"][row],
            secret["n_attributions"][row],
        )
        secret["n_attributions_hors_qpv"][row], secret["n_attributions_qpv"][row] = masked
        secret["n_attributions"][row] = total_masked
    frame = frame.with_columns(
        pl.Series(f"secret_{c}", secret[c], dtype=pl.Boolean) for c in counts
    )
    # Anything computed from a masked count would give it away (k = taux * n, manque, conforme).
    derived = {
        "taux_q1_hors_qpv": ["n_q1_hors_qpv", "n_attributions_hors_qpv"],
        "manque_q1_hors_qpv": ["n_q1_hors_qpv", "n_attributions_hors_qpv"],
        "conforme_q1_hors_qpv": ["n_q1_hors_qpv", "n_attributions_hors_qpv"],
        "taux_hors_q1_qpv": ["n_hors_q1_qpv", "n_attributions_qpv"],
        "manque_hors_q1_qpv": ["n_hors_q1_qpv", "n_attributions_qpv"],
        "conforme_hors_q1_qpv": ["n_hors_q1_qpv", "n_attributions_qpv"],
        "taux_menages_prioritaires": ["n_menages_prioritaires", "n_attributions"],
    }
    for column, sources in derived.items():
        frame = _mask(frame, [column], pl.any_horizontal(pl.col(f"secret_{s}") for s in sources))
    for c in counts:
        frame = _mask(frame, [c], pl.col(f"secret_{c}"))
    frame = frame.with_columns(
        pl.any_horizontal(pl.col(f"secret_{c}") for c in counts).alias("secret")
    )
    return OpenTable("mixite_epci_annee", frame)


def _frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> pl.DataFrame:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)


def write_open_data(publication: Path, target: Path) -> list[str]:
    """Build every open table from a publication file; write Parquet and CSV into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(publication), read_only=True) as con:
        tables = [*incidents_tables(con), events_table(con), mixite_table(con)]
    for table in tables:
        table.frame.write_parquet(target / f"{table.name}.parquet")
        table.frame.write_csv(target / f"{table.name}.csv", separator=";", null_value="")
    return [t.name for t in tables]
