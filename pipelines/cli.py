"""The `tranquillity` command (contract section 1).

Heavy imports (Dagster, the generator) happen inside the commands that need them, so that
`tranquillity sql` answers an analyst in a fraction of a second.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from pipelines.settings import FAMILIES, Home

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BLOCKED = 3

# Dagster's step-by-step DEBUG lines drown the summary; the UI keeps the full event log.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _home() -> Home:
    home = Home.from_env().ensure()
    # Project-local Dagster instance, never the user's ~/.dagster; no telemetry.
    os.environ.setdefault("DAGSTER_HOME", str(home.dagster_home))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    return home


def _parse_months(value: str | None) -> tuple[date, date] | None:
    if not value:
        return None
    try:
        start, end = value.split(":")
        first = datetime.strptime(start, "%Y-%m").date()
        last = datetime.strptime(end, "%Y-%m").date()
    except ValueError as exc:
        raise click.BadParameter("expected YYYY-MM:YYYY-MM, e.g. 2024-01:2025-12") from exc
    if last < first:
        raise click.BadParameter("the last month is before the first")
    return first, last


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Tranquillity and social-mix warehouse for French social housing."""


@main.command()
@click.option("--scale", type=click.Choice(["tiny", "small", "national"]), default="small")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Target folder (default: the inbox of TRANQUILLITY_HOME).",
)
@click.option("--months", default=None, help="YYYY-MM:YYYY-MM (default depends on the scale).")
def generate(scale: str, seed: int, out: Path | None, months: str | None) -> None:
    """Write a complete, realistic, deterministic set of deliveries (all four families)."""
    from pipelines.generate import generate as run_generate

    target = out if out is not None else _home().inbox
    started = time.perf_counter()
    counts = run_generate(scale, seed, target, _parse_months(months), progress=click.echo)
    elapsed = time.perf_counter() - started
    click.echo(f"generated scale={scale} seed={seed} into {target} in {elapsed:.1f}s")
    for name, value in counts.items():
        click.echo(f"  {name}: {value}")


@main.command()
def refresh() -> None:
    """Materialize everything from the inbox through Dagster; publish if every gate passes."""
    home = _home()
    from pipelines.dbt_project import ensure_manifest

    ensure_manifest()
    from dagster import DagsterInstance

    from pipelines.definitions import defs

    started = datetime.now(UTC)
    outcome: dict[str, Any] = {"started": started.isoformat(timespec="seconds")}
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def("refresh").execute_in_process(
            instance=instance, raise_on_error=False, run_config=_QUIET
        )
    outcome["run_id"] = result.run_id
    outcome["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    import duckdb

    try:
        summary = _ledger(home) if home.warehouse_db.exists() else []
        outcome["families"] = summary
        _print_ledger(summary)
        _print_rejections(home, since=started)
        checks = _checks_of_run(home, result.run_id)
    except duckdb.Error as exc:  # e.g. a dbt process still closing the file after a failure
        click.echo(f"warehouse unavailable for the summary: {str(exc).splitlines()[0]}", err=True)
        summary, checks = [], []
    blocking = [c for c in checks if c.blocks]
    warnings = [c for c in checks if c.statut == "warn"]
    outcome["checks"] = {
        "total": len(checks),
        "blocking_failed": len(blocking),
        "warnings": len(warnings),
    }
    docs = home.data_docs / result.run_id / "index.html"
    if docs.exists():
        outcome["data_docs"] = str(docs)
    published = [
        e
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.asset_key is not None
        and e.asset_key.path == ["publication"]
    ]
    if published:
        metadata = published[0].materialization.metadata
        publication_id = metadata["publication_id"].value
        outcome |= {"outcome": "published", "exit_code": EXIT_OK, "publication_id": publication_id}
        _write_last_refresh(home, outcome)
        click.echo(f"checks: {len(checks)} run, 0 blocking failed, {len(warnings)} warnings")
        for check in warnings[:10]:
            click.echo(f"  warning: {check.describe()}")
        if docs.exists():
            click.echo(f"data docs (Great Expectations): {docs}")
        click.echo(f"published {publication_id}: {home.current_publication}")
        return
    if blocking:
        outcome |= {"outcome": "blocked", "exit_code": EXIT_BLOCKED}
        _write_last_refresh(home, outcome)
        click.echo(
            f"publication BLOCKED: {sum(c.statut != 'skipped' for c in blocking)} blocking checks "
            f"failed (of {len(checks)} run); "
            f"the current publication is unchanged ({home.current_publication})",
            err=True,
        )
        failed = [c for c in blocking if c.statut != "skipped"]
        for check in failed:
            click.echo(f"  - {check.describe()}", err=True)
        skipped = len(blocking) - len(failed)
        if skipped:
            click.echo(
                f"  ({skipped} downstream models and tests skipped because of them)", err=True
            )
        click.echo(
            f'details: tranquillity sql --warehouse "SELECT * FROM audit.controles '
            f"WHERE run_id = '{result.run_id}' AND statut <> 'pass'\"",
            err=True,
        )
        if docs.exists():
            click.echo(f"data docs (Great Expectations): {docs}", err=True)
        sys.exit(EXIT_BLOCKED)
    outcome |= {"outcome": "failed", "exit_code": EXIT_FAILURE}
    _write_last_refresh(home, outcome)
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error if event.step_failure_data else None
            while error is not None and error.cause is not None:
                error = error.cause  # the user code's own exception, not Dagster's wrapper
            message = error.message.strip() if error else ""
            click.echo(f"step {event.step_key} failed: {message}", err=True)
    click.echo("refresh failed: nothing was published", err=True)
    sys.exit(EXIT_FAILURE)


def _checks_of_run(home: Home, run_id: str) -> list[Any]:
    if not home.warehouse_db.exists():
        return []
    import duckdb

    from pipelines.audit import outcomes_of_run

    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        return outcomes_of_run(con, run_id)


@main.command()
@click.argument("fichier")
@click.option("--motif", required=True, help="Why the delivery is right despite the suite.")
def accept(fichier: str, motif: str) -> None:
    """Load a blocked delivery at the next refresh despite its blocking expectations.

    For real changes the suite cannot tell from a broken extract (a stock sold to another
    landlord). Recorded with the file's sha256, the reason and the user in raw.derogations.
    """
    import getpass

    from pipelines.ingest.loader import NotBlocked, accept_blocked, connect

    home = _home()
    try:
        con = connect(home)
    except Exception as exc:  # a refresh holds the write lock
        click.echo(f"error: warehouse unavailable: {str(exc).splitlines()[0]}", err=True)
        sys.exit(EXIT_FAILURE)
    try:
        found = accept_blocked(con, fichier, motif, getpass.getuser())
    except NotBlocked as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    finally:
        con.close()
    click.echo(f"accepted {found}: it will be loaded by the next `tranquillity refresh`")


@main.command()
def status() -> None:
    """Current publication, last refresh outcome, and what the ledger holds."""
    home = _home()
    click.echo(f"home: {home.root}")
    if home.current_publication.exists():
        click.echo(f"current publication: {home.current_publication}")
        _print_publication(home.current_publication)
    else:
        click.echo("current publication: none yet")
    if home.last_refresh.exists():
        last = json.loads(home.last_refresh.read_text())
        click.echo(
            f"last refresh: {last.get('outcome')} (exit {last.get('exit_code')}), "
            f"started {last.get('started')}, finished {last.get('finished')}, run {last.get('run_id')}"
        )
        checks = last.get("checks") or {}
        if checks:
            click.echo(
                f"  checks: {checks.get('total')} run, {checks.get('blocking_failed')} blocking "
                f"failed, {checks.get('warnings', 0)} warnings"
            )
        if last.get("data_docs"):
            click.echo(f"  data docs: {last['data_docs']}")
    else:
        click.echo("last refresh: never")
    if home.warehouse_db.exists():
        try:
            summary = _ledger(home)
        except Exception as exc:  # a refresh holds the write lock
            click.echo(f"ledger: unavailable ({str(exc).splitlines()[0]})")
        else:
            _print_ledger(summary)


@main.command()
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.option(
    "--warehouse",
    "on_warehouse",
    is_flag=True,
    help="Query the working warehouse (raw tables, ledger, quarantine) instead of the publication.",
)
def sql(query: str, as_csv: bool, on_warehouse: bool) -> None:
    """Run a read-only query on published/current.duckdb and print the result."""
    import duckdb

    home = Home.from_env()
    path = home.warehouse_db if on_warehouse else home.current_publication
    if not path.exists():
        what = "working warehouse" if on_warehouse else "publication"
        click.echo(f"error: no {what} yet at {path}: run `tranquillity refresh` first", err=True)
        sys.exit(EXIT_FAILURE)
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            cursor = con.execute(query)
            if cursor.description is None:
                return
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
    except duckdb.Error as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    if as_csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    else:
        click.echo(format_table(names, rows))


def format_table(names: list[str], rows: list[tuple[Any, ...]]) -> str:
    """A plain aligned text table: numbers right-aligned, NULL spelled out, nothing cut."""
    cells = [["NULL" if v is None else str(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(names))
    ]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]

    def line(values: list[str]) -> str:
        return " | ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(list(names)), "-+-".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def _ledger(home: Home) -> list[dict[str, Any]]:
    import duckdb

    from pipelines.ingest.loader import ledger_summary

    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        return ledger_summary(con)


def _print_ledger(summary: list[dict[str, Any]]) -> None:
    by_family = {row["famille"]: row for row in summary}
    names = [
        "family",
        "deliveries",
        "current",
        "superseded",
        "duplicates",
        "rejected",
        "blocked",
        "rows_read",
        "rows_loaded",
        "rows_quarantined",
    ]
    rows = []
    for family in FAMILIES:
        r = by_family.get(family, {})
        rows.append(
            (
                family,
                r.get("livraisons", 0),
                r.get("courantes", 0),
                r.get("remplacees", 0),
                r.get("doublons", 0),
                r.get("rejetees", 0),
                r.get("bloquees", 0),
                r.get("lignes_lues", 0),
                r.get("lignes_chargees", 0),
                r.get("lignes_quarantaine", 0),
            )
        )
    click.echo(format_table(names, rows))


def _print_rejections(home: Home, since: datetime) -> None:
    import duckdb

    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        rejected = con.execute(
            "SELECT fichier, motif FROM raw.livraisons WHERE statut = 'rejetee' AND recue_le >= ? "
            "ORDER BY fichier",
            [started_naive(since)],
        ).fetchall()
        blocked = con.execute(
            "SELECT fichier, motif FROM raw.livraisons "
            "WHERE statut = 'bloquee' AND remplacee_par IS NULL ORDER BY modifie_le, fichier"
        ).fetchall()
        quarantined = con.execute(
            """
            SELECT l.fichier, q.regle, count(*) AS n, min(q.ligne) AS premiere_ligne
            FROM raw.quarantaine q JOIN raw.livraisons l USING (livraison_id)
            WHERE l.recue_le >= ? GROUP BY ALL ORDER BY n DESC, l.fichier LIMIT 10
            """,
            [started_naive(since)],
        ).fetchall()
    for fichier, motif in rejected:
        click.echo(f"rejected: {fichier}: {motif}")
    for fichier, motif in blocked:
        click.echo(f"BLOCKED delivery (not loaded, blocks publication): {fichier}: {motif}")
    if quarantined:
        click.echo("quarantined rows this refresh (top rules; see raw.quarantaine):")
        for fichier, regle, n, first in quarantined:
            click.echo(f"  {fichier}: {n} x {regle} (first at line {first})")


def started_naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _print_publication(path: Path) -> None:
    import duckdb

    try:
        with duckdb.connect(str(path), read_only=True) as con:
            cursor = con.execute("SELECT * FROM publication")
            names = [d[0] for d in cursor.description]
            for row in cursor.fetchall():
                for name, value in zip(names, row, strict=True):
                    click.echo(f"  {name}: {value}")
    except duckdb.Error as exc:
        click.echo(f"  (unreadable: {str(exc).splitlines()[0]})")


def _write_last_refresh(home: Home, outcome: dict[str, Any]) -> None:
    tmp = home.last_refresh.with_suffix(".tmp")
    tmp.write_text(json.dumps(outcome, indent=2, default=str))
    tmp.replace(home.last_refresh)


if __name__ == "__main__":  # pragma: no cover
    main()
