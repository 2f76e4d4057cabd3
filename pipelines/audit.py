"""The audit trail of every check of every run, in the working warehouse.

Dagster's skip of downstream steps is not a guarantee (dagster-dbt lets a Python asset run
after a failing dbt test: dagster #25112), so each check writes its outcome here, keyed by
run id, and the publish step reads this table itself before publishing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from pipelines.warehouse import AUDIT_DDL


@dataclass(frozen=True)
class CheckOutcome:
    """One check's verdict. `statut`: pass, fail, warn, error (could not run), skipped."""

    controle: str
    origine: str  # dbt_test | dbt_unit_test | dbt_model | gx | python
    cible: str | None
    bloquant: bool
    statut: str
    nb_echecs: int | None = None
    message: str | None = None
    exemples: str | None = None

    def describe(self) -> str:
        """One line for a person: which check, on what, how many rows, a few examples."""
        count = f", {self.nb_echecs} failing rows" if self.nb_echecs is not None else ""
        text = f"{self.controle} [{self.origine}] on {self.cible or '-'}: {self.statut}{count}"
        if self.message and self.statut == "error":
            text += f" ({self.message.splitlines()[0][:200]})"
        if self.exemples:
            text += f"\n      examples: {self.exemples[:600]}"
        return text

    @property
    def blocks(self) -> bool:
        return self.bloquant and self.statut in ("fail", "error", "skipped")


def record(con: duckdb.DuckDBPyConnection, run_id: str, outcomes: list[CheckOutcome]) -> None:
    con.execute(AUDIT_DDL)
    now = datetime.now(UTC).replace(tzinfo=None)
    con.executemany(
        "INSERT INTO audit.controles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run_id,
                o.controle,
                o.origine,
                o.cible,
                o.bloquant,
                o.statut,
                o.nb_echecs,
                o.message,
                o.exemples,
                now,
            )
            for o in outcomes
        ],
    )


def outcomes_of_run(con: duckdb.DuckDBPyConnection, run_id: str) -> list[CheckOutcome]:
    """Every recorded outcome of a run (none when the audit table does not exist yet)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'audit' AND table_name = 'controles'"
    ).fetchall()[0][0]
    if not exists:
        return []
    rows = con.execute(
        "SELECT controle, origine, cible, bloquant, statut, nb_echecs, message, exemples "
        "FROM audit.controles WHERE run_id = ? ORDER BY origine, controle",
        [run_id],
    ).fetchall()
    return [CheckOutcome(*row) for row in rows]
