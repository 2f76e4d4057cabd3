"""The months a refresh recomputes: a new month costs a month, not the whole history.

The monthly marts (`indicateurs_incidents_mois` and the tables built from it) are dbt
incremental models: a refresh deletes and rebuilds only the rows its *window* reaches, then
tests, checks and publishes only those rows; every other row is the previous publication's,
unchanged. That is only right if the window holds every month whose figures may have changed
since the current publication, so the window is derived from the two states themselves, never
from what a run was asked to do:

- the deliveries current now against those the current publication was built from
  (`publication_livraisons`): an incidents delivery added, replaced or withdrawn changes its
  month, and the months of the incidents it shares an `id_incident` with (a re-delivered
  incident counts once, in the newest delivery's month); a landlord's stock of year Y changes
  the months whose applicable stock it may be (years >= Y, every year when Y is or was its
  earliest); any reference file (territories, categories, names) changes every month;
- no publication yet, code other than the publication's, a monthly mart missing from the
  working warehouse, or `refresh --force`: every month.

A backfill (`tranquillity refresh --mois 2024-01:2024-06`, a partition range in the UI) adds
its months to that window: it can widen it, never narrow it. A run that was blocked leaves the
working marts ahead of the publication; the next window, computed against the publication,
still holds its months.

Which rows of a model a changed month reaches (a 12-month rolling rate reaches the 23 months
after it, a yearly table the next year) is the model's `config.meta.fenetre` in its dbt YAML,
the one home that the dbt macros (dbt_project/macros/fenetre.sql) and `Reach` read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from pipelines.ingest.ledger import CURRENT, Status
from pipelines.settings import DBT_MANIFEST

WINDOW_VAR = "mois_a_recalculer"
WINDOW_TABLE = "audit.fenetres"  # its DDL: pipelines/warehouse.py


def first_of_month(value: str | date) -> date:
    """'2024-03', '2024-03-01' or a date -> the first day of that month."""
    if isinstance(value, date):
        return value.replace(day=1)
    year, month = value[:7].split("-")
    return date(int(year), int(month), 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> tuple[date, ...]:
    months = []
    month = first_of_month(first)
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return tuple(months)


@dataclass(frozen=True)
class Reach:
    """Which rows of an incremental model a changed month reaches (`config.meta.fenetre`)."""

    colonne: str
    unite: str  # 'mois' or 'annee'
    portee: int  # units after the month (0: the month itself)

    def values(self, months: Iterable[date]) -> list[date] | list[int]:
        if self.unite == "annee":
            return sorted({m.year + k for m in months for k in range(self.portee + 1)})
        return sorted({add_months(m, k) for m in months for k in range(self.portee + 1)})

    def predicate(self, months: Iterable[date] | None, alias: str = "") -> str:
        """SQL: the rows reached (the Python twin of the macro `fenetre_du_modele`)."""
        if months is None:
            return "true"
        values = self.values(months)
        if not values:
            return "false"
        column = f'{alias}"{self.colonne}"'
        if self.unite == "annee":
            return f"{column} IN ({', '.join(str(v) for v in values)})"
        dates = ", ".join(f"DATE '{v}'" for v in values)
        return f"{column} IN ({dates})"


def incremental_models(manifest: Mapping[str, Any]) -> dict[str, Reach]:
    """The models incremental by month, with their reach, from dbt's manifest."""
    found = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        config = node.get("config", {})
        reach = (config.get("meta") or {}).get("fenetre")
        incremental = config.get("materialized") == "incremental"
        if incremental != (reach is not None):
            raise RuntimeError(
                f"model {node['name']}: an incremental model must declare meta.fenetre "
                "(dbt_project/macros/fenetre.sql), and only an incremental one"
            )
        if reach is not None:
            found[str(node["name"])] = Reach(
                str(reach["colonne"]), str(reach["unite"]), int(reach["portee"])
            )
    return found


def _manifest_models() -> dict[str, Reach]:
    if not DBT_MANIFEST.exists():
        from pipelines.dbt_project import ensure_manifest

        ensure_manifest()
    return incremental_models(json.loads(DBT_MANIFEST.read_text(encoding="utf-8")))


INCREMENTAL_MODELS: dict[str, Reach] = _manifest_models()


@dataclass(frozen=True)
class Window:
    """The months a run recomputes: `months` None is every month; () is none."""

    months: tuple[date, ...] | None
    reasons: tuple[str, ...] = field(default=())
    # The publication the months were computed against: the publication step rewrites only
    # the window's rows of a clone of it, and of no other.
    base: str | None = None

    @classmethod
    def every_month(cls, reason: str) -> Window:
        return cls(None, (reason,))

    @property
    def every(self) -> bool:
        return self.months is None

    def union(self, other: Window) -> Window:
        reasons = tuple(dict.fromkeys((*self.reasons, *other.reasons)))
        base = self.base or other.base
        if self.months is None or other.months is None:
            return Window(None, reasons, base)
        return Window(tuple(sorted(set(self.months) | set(other.months))), reasons, base)

    def dbt_vars(self) -> dict[str, Any]:
        if self.months is None:
            return {}
        return {WINDOW_VAR: [m.isoformat() for m in self.months]}

    def describe(self) -> str:
        if self.months is None:
            return "every month"
        if not self.months:
            return "no month"
        return f"{len(self.months)} month(s): {describe_months(self.months)}"


def describe_months(months: tuple[date, ...]) -> str:
    """2024-01..2024-03, 2024-07: consecutive months as one range."""
    spans: list[list[date]] = []
    for month in months:
        if spans and add_months(spans[-1][1], 1) == month:
            spans[-1][1] = month
        else:
            spans.append([month, month])
    return ", ".join(f"{a:%Y-%m}" if a == b else f"{a:%Y-%m}..{b:%Y-%m}" for a, b in spans)


def required_window(con: duckdb.DuckDBPyConnection, current_publication: Path) -> Window:
    """Every month whose figures may differ from the current publication's (module doc)."""
    from pipelines.publish import version_code

    if not current_publication.exists():
        return Window.every_month("no publication yet")
    marts = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'"
        ).fetchall()
    }
    missing = sorted(set(INCREMENTAL_MODELS) - marts)
    if missing:
        return Window.every_month(f"not yet in the working warehouse: {', '.join(missing)}")
    con.execute(f"ATTACH '{current_publication}' AS fenetre_pub (READ_ONLY)")
    try:
        published = con.execute(
            "SELECT publication_id, version_code FROM fenetre_pub.publication"
        ).fetchall()
        if not published or published[0][1] != version_code():
            found = published[0][1] if published else "none"
            return Window.every_month(f"code changed ({found} -> {version_code()})")
        return replace(_changed_months(con), base=str(published[0][0]))
    finally:
        con.execute("DETACH fenetre_pub")


def _changed_months(con: duckdb.DuckDBPyConnection) -> Window:
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fenetre_diff AS
        WITH maintenant AS (
            SELECT livraison_id, famille, type_fichier, code_bailleur, periode
            FROM raw.livraisons WHERE {CURRENT}
        ), publiees AS (
            SELECT livraison_id, famille, type_fichier, code_bailleur, periode
            FROM fenetre_pub.publication_livraisons WHERE statut = '{Status.LOADED}'
        )
        (SELECT * FROM maintenant EXCEPT SELECT * FROM publiees)
        UNION
        (SELECT * FROM publiees EXCEPT SELECT * FROM maintenant)
        """
    )
    reference = con.execute(
        "SELECT DISTINCT type_fichier FROM fenetre_diff WHERE famille = 'reference' ORDER BY 1"
    ).fetchall()
    if reference:
        kinds = ", ".join(r[0] for r in reference)
        return Window.every_month(f"reference deliveries changed ({kinds})")
    # Months covered now or at the publication, per landlord: the months a stock may reach.
    coverage = _now_or_published("incidents", "strptime(periode, '%Y-%m')::DATE AS mois")
    stock_years = _now_or_published("patrimoine", "periode::INTEGER AS annee")
    rows = con.execute(
        f"""
        WITH incidents AS (
            SELECT DISTINCT strptime(periode, '%Y-%m')::DATE AS mois, 'incidents' AS pourquoi
            FROM fenetre_diff WHERE type_fichier = 'incidents'
        ), redelivered AS (
            -- Incidents of a changed delivery delivered again elsewhere: their other months.
            SELECT DISTINCT date_trunc('month', autre.date_signalement)::DATE AS mois,
                   'incidents' AS pourquoi
            FROM raw.landlord_incidents AS change
            JOIN fenetre_diff AS d ON d.livraison_id = change.livraison_id
            JOIN raw.landlord_incidents AS autre
              ON autre.code_bailleur = change.code_bailleur
             AND autre.id_incident = change.id_incident
             AND autre.livraison_id <> change.livraison_id
            WHERE d.type_fichier = 'incidents' AND autre.date_signalement IS NOT NULL
        ), stocks AS (
            SELECT DISTINCT c.mois, 'patrimoine' AS pourquoi
            FROM fenetre_diff AS d
            JOIN ({coverage}) AS c ON c.code_bailleur = d.code_bailleur
            WHERE d.type_fichier = 'patrimoine'
              AND (year(c.mois) >= d.periode::INTEGER
                   OR d.periode::INTEGER <= (SELECT min(s.annee) FROM ({stock_years}) AS s
                                             WHERE s.code_bailleur = d.code_bailleur))
        )
        SELECT mois, list(DISTINCT pourquoi ORDER BY pourquoi)
        FROM (SELECT * FROM incidents UNION ALL SELECT * FROM redelivered
              UNION ALL SELECT * FROM stocks)
        GROUP BY mois ORDER BY mois
        """
    ).fetchall()
    months = tuple(r[0] for r in rows)
    why = sorted({w for r in rows for w in r[1]})
    reasons = tuple(f"{w} deliveries changed" for w in why)
    return Window(months, reasons)


def _now_or_published(kind: str, period: str) -> str:
    """SQL: (code_bailleur, period) of a kind's deliveries current now or at the publication."""
    return " UNION ".join(
        f"SELECT code_bailleur, {period} FROM {ledger} WHERE type_fichier = '{kind}' AND {where}"
        for ledger, where in (
            ("raw.livraisons", CURRENT),
            ("fenetre_pub.publication_livraisons", f"statut = '{Status.LOADED}'"),
        )
    )


def record_window(con: duckdb.DuckDBPyConnection, run_id: str, window: Window) -> None:
    """The run's window, for the checks and the publication of the same run to read."""
    con.execute(
        f"INSERT OR REPLACE INTO {WINDOW_TABLE} "
        "(run_id, tous_les_mois, mois, raisons, publication_base) VALUES (?, ?, ?, ?, ?)",
        [run_id, window.every, list(window.months or ()), list(window.reasons), window.base],
    )


def recorded_window(con: duckdb.DuckDBPyConnection, run_id: str) -> Window | None:
    """The window the run's dbt step recorded, if it did."""
    rows = con.execute(
        f"SELECT tous_les_mois, mois, raisons, publication_base FROM {WINDOW_TABLE} "
        "WHERE run_id = ?",
        [run_id],
    ).fetchall()
    if not rows:
        return None
    every, months, reasons, base = rows[0]
    return Window(None if every else tuple(months), tuple(reasons), base)


def window_of_run(con: duckdb.DuckDBPyConnection, run_id: str) -> Window:
    """The window the run's dbt step recorded; every month when it recorded none (the dbt
    step did not run: the safe side)."""
    found = recorded_window(con, run_id)
    return found if found is not None else Window.every_month("no window recorded")
