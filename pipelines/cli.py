"""The `tranquillity` command (docs/command-line.md).

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

# (file, rule) pairs of quarantined rows shown after a refresh; the rest is in raw.quarantaine.
QUARANTINE_LINES = 20
# Deliveries read with a remark (e.g. commune codes given back their leading zero) shown.
NOTE_LINES = 5

_ENVIRONMENT = {
    "TRANQUILLITY_HOME": "home folder of all runtime data (default: ./warehouse in the repository)",
    "TRANQUILLITY_PSEUDO_KEY": "pseudonymisation key (default: $TRANQUILLITY_HOME/secrets/"
    "pseudonymisation.key, created on first use with mode 0600)",
    "DAGSTER_HOME": "Dagster instance, run history (default: $TRANQUILLITY_HOME/dagster)",
    "TRANQUILLITY_KEEP_PUBLICATIONS": "publications kept in published/ (default: 10)",
    "TRANQUILLITY_DUCKDB_MEMORY": "DuckDB memory cap for ingestion and dbt (default: 8GB)",
    "TRANQUILLITY_KEEP_DATA_DOCS": "runs whose Great Expectations Data Docs are kept (default: 20)",
}
_HOME_ONLY = ("TRANQUILLITY_HOME",)
REFRESH_EXITS = (
    "0 published (the new publication is current)",
    "3 a blocking check failed: nothing published, the last publication stays current",
    "1 any other failure (one line here, the stack trace in the log file)",
)


def _epilog(exits: tuple[str, ...], env: tuple[str, ...] = tuple(_ENVIRONMENT)) -> str:
    """Exit codes and environment variables, as an epilog click prints verbatim."""
    lines = ["\b", "Exit codes:", *(f"  {e}" for e in exits), "", "\b", "Environment:"]
    lines += [f"  {name}: {_ENVIRONMENT[name]}" for name in env]
    lines += ["", "Documentation: docs/ in the repository (docs/README.md)."]
    return "\n".join(lines)


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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tranquillity")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without install
        return "unknown"


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    epilog=_epilog(("0 success", "1 failure", "3 refresh: a gate blocked the publication")),
)
@click.version_option(_version(), "--version", "-V", prog_name="tranquillity")
def main() -> None:
    """Tranquillity and social-mix warehouse for French social housing.

    Partners drop files in $TRANQUILLITY_HOME/inbox/; `refresh` loads them, builds the
    indicators, checks them and publishes published/current.duckdb; `sql` queries it.
    """


@main.command(epilog=_epilog(("0 written", "2 bad option"), _HOME_ONLY))
@click.option(
    "--scale",
    type=click.Choice(["tiny", "small", "national"]),
    default="small",
    help="tiny: 7 communes, 2 landlords, 3 months (tests); small: départements 06 and 13, "
    "10 landlords, 24 months (demo); national: every commune, 500 landlords, 5 years.",
)
@click.option("--seed", type=int, default=42, help="Same seed, same bytes.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    show_default="$TRANQUILLITY_HOME/inbox",
    help="Target folder: receives reference/, landlord/, police/ and allocations/.",
)
@click.option(
    "--months",
    default=None,
    show_default="tiny 2025-01:2025-03, small 2024-01:2025-12, national 2021-01:2025-12",
    help="YYYY-MM:YYYY-MM, the months delivered.",
)
def generate(scale: str, seed: int, out: Path | None, months: str | None) -> None:
    """Write a complete, realistic, deterministic set of deliveries (all four families).

    Files are written as partners really send them (their dialects, encodings, decimal
    commas, XLSX, SSMSI's published shape) with a few realistic faults to quarantine.
    """
    from pipelines.generate import generate as run_generate

    target = out if out is not None else _home().inbox
    started = time.perf_counter()
    counts = run_generate(scale, seed, target, _parse_months(months), progress=click.echo)
    elapsed = time.perf_counter() - started
    click.echo(f"generated scale={scale} seed={seed} into {target} in {elapsed:.1f}s")
    for name, value in counts.items():
        click.echo(f"  {name}: {value}")


@main.command(epilog=_epilog(REFRESH_EXITS))
def refresh() -> None:
    """Load what is new in the inbox, rebuild and check everything, publish if every gate passes.

    Runs the Dagster job `refresh` in this process (one DuckDB writer): ingestion with the
    delivery quality gate, `dbt build`, the publication suites, then the atomic publication
    and its open data. Prints a summary: deliveries per family, rejected and blocked files,
    quarantined rows per file and rule with the first message, failed checks. Everything
    Dagster and dbt print goes to a log file (path printed), never to the terminal.
    """
    from pipelines.refresh import run_refresh

    home = _home()
    run = run_refresh(
        home, announce=lambda r: click.echo(f"refresh {r.run_id} running; log: {r.log}")
    )
    real = [f for f in run.failures if not f.is_gate]
    outcome: dict[str, Any] = {
        "started": run.started.isoformat(timespec="seconds"),
        "finished": (run.finished or run.started).isoformat(timespec="seconds"),
        "run_id": run.run_id,
        "log": str(run.log),
    }
    if real:
        first = real[0]
        outcome |= {"outcome": "failed", "exit_code": EXIT_FAILURE, "error": first.error}
        _write_last_refresh(home, outcome)
        others = f" (+{len(real) - 1} other failed steps)" if len(real) > 1 else ""
        unchanged = (
            f", {home.current_publication} is unchanged"
            if home.current_publication.exists()
            else ""
        )
        click.echo(
            f"refresh FAILED at step {first.step}: {first.error}{others}; "
            f"nothing was published{unchanged}",
            err=True,
        )
        click.echo(f"full log (stack traces): {run.log}", err=True)
        sys.exit(EXIT_FAILURE)

    import duckdb

    try:
        summary = _ledger(home) if home.warehouse_db.exists() else []
        _print_ledger(summary)
        _print_rejections(home, since=run.started)
        checks = _checks_of_run(home, run.run_id)
    except duckdb.Error as exc:  # e.g. a dbt process still closing the file after a failure
        click.echo(f"warehouse unavailable for the summary: {str(exc).splitlines()[0]}", err=True)
        summary, checks = [], []
    outcome["families"] = summary
    blocking = [c for c in checks if c.blocks]
    warnings = [c for c in checks if c.statut == "warn"]
    outcome["checks"] = {
        "total": len(checks),
        "blocking_failed": len(blocking),
        "warnings": len(warnings),
    }
    docs = home.data_docs / run.run_id / "index.html"
    if docs.exists():
        outcome["data_docs"] = str(docs)
    if run.publication_id is not None:
        outcome |= {
            "outcome": "published",
            "exit_code": EXIT_OK,
            "publication_id": run.publication_id,
        }
        _write_last_refresh(home, outcome)
        click.echo(f"checks: {len(checks)} run, 0 blocking failed, {len(warnings)} warnings")
        for check in warnings[:10]:
            click.echo(f"  warning: {check.describe()}")
        if docs.exists():
            click.echo(f"data docs (Great Expectations): {docs}")
        click.echo(f"published {run.publication_id}: {home.current_publication}")
        click.echo(f"run {run.run_id}; log: {run.log}")
        return
    if blocking:
        outcome |= {"outcome": "blocked", "exit_code": EXIT_BLOCKED}
        _write_last_refresh(home, outcome)
        failed = [c for c in blocking if c.statut != "skipped"]
        click.echo(
            f"publication BLOCKED: {len(failed)} blocking checks failed (of {len(checks)} run); "
            f"the current publication is unchanged ({home.current_publication})",
            err=True,
        )
        for check in failed:
            click.echo(f"  - {check.describe()}", err=True)
        skipped = len(blocking) - len(failed)
        if skipped:
            click.echo(
                f"  ({skipped} downstream models and tests skipped because of them)", err=True
            )
        click.echo(
            f'details: tranquillity sql --warehouse "SELECT * FROM audit.controles '
            f"WHERE run_id = '{run.run_id}' AND statut <> 'pass'\"",
            err=True,
        )
        if docs.exists():
            click.echo(f"data docs (Great Expectations): {docs}", err=True)
        click.echo(f"run {run.run_id}; log: {run.log}", err=True)
        sys.exit(EXIT_BLOCKED)
    # Neither published nor blocked, and no step failed: nothing explains it but the log.
    outcome |= {"outcome": "failed", "exit_code": EXIT_FAILURE, "error": "nothing published"}
    _write_last_refresh(home, outcome)
    click.echo(
        "refresh FAILED: no step failed and no gate blocked, yet nothing was published",
        err=True,
    )
    click.echo(f"full log: {run.log}", err=True)
    sys.exit(EXIT_FAILURE)


def _checks_of_run(home: Home, run_id: str) -> list[Any]:
    if not home.warehouse_db.exists():
        return []
    import duckdb

    from pipelines.audit import outcomes_of_run

    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        return outcomes_of_run(con, run_id)


@main.command(
    epilog=_epilog(("0 recorded", "1 not a blocked delivery, or the warehouse is busy"), _HOME_ONLY)
)
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


@main.command(epilog=_epilog(("0 always",), _HOME_ONLY))
def status() -> None:
    """Current publication, last refresh outcome (with its log), and what the ledger holds."""
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
        if last.get("error"):
            click.echo(f"  error: {last['error']}")
        if last.get("data_docs"):
            click.echo(f"  data docs: {last['data_docs']}")
        if last.get("log"):
            click.echo(f"  log: {last['log']}")
    else:
        click.echo("last refresh: never")
    if home.warehouse_db.exists():
        try:
            summary = _ledger(home)
        except Exception as exc:  # a refresh holds the write lock
            click.echo(f"ledger: unavailable ({str(exc).splitlines()[0]})")
        else:
            _print_ledger(summary)


@main.command(
    epilog=_epilog(("0 success", "1 no database yet, or the database's error"), _HOME_ONLY)
)
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.option(
    "--warehouse",
    "on_warehouse",
    is_flag=True,
    help="Query the working warehouse (raw tables, ledger, quarantine) instead of the publication.",
)
def sql(query: str, as_csv: bool, on_warehouse: bool) -> None:
    """Run a read-only QUERY on published/current.duckdb and print the result.

    Example: tranquillity sql "SELECT * FROM indicateurs_mixite_epci_annee LIMIT 5"
    """
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
        remarks = con.execute(
            "SELECT fichier, remarques FROM raw.livraisons "
            "WHERE remarques IS NOT NULL AND recue_le >= ? ORDER BY fichier",
            [started_naive(since)],
        ).fetchall()
        quarantined = con.execute(
            """
            SELECT l.fichier, q.regle, count(*) AS n, min(q.ligne) AS premiere_ligne,
                   arg_min(q.motif, q.ligne) AS premier_motif,
                   count(*) OVER () AS paires
            FROM raw.quarantaine q JOIN raw.livraisons l USING (livraison_id)
            WHERE l.recue_le >= ? GROUP BY ALL ORDER BY n DESC, l.fichier, q.regle
            LIMIT ?
            """,
            [started_naive(since), QUARANTINE_LINES],
        ).fetchall()
    for fichier, motif in rejected:
        click.echo(f"rejected: {fichier}: {motif}")
    _print_ignored(home)
    for fichier, motif in blocked:
        click.echo(f"BLOCKED delivery (not loaded, blocks publication): {fichier}: {motif}")
    _echo_some(
        [f"note: {fichier}: {remark}" for fichier, remark in remarks],
        "more notes: tranquillity sql --warehouse "
        '"SELECT fichier, remarques FROM raw.livraisons WHERE remarques IS NOT NULL"',
    )
    if quarantined:
        click.echo("quarantined rows this refresh (per file and rule, with the first message):")
        for fichier, regle, n, first, message, _ in quarantined:
            click.echo(f"  {fichier}: {n} x {regle} (first at line {first}: {message})")
        more = quarantined[0][5] - len(quarantined)
        if more > 0:
            click.echo(
                f"  ... and {more} more (file, rule) pairs: tranquillity sql --warehouse "
                '"SELECT * FROM raw.quarantaine"'
            )


def _print_ignored(home: Home) -> None:
    """Files of the inbox that are not deliveries (subfolders, outside the family folders):
    never loaded, said at every refresh so that a partner's misplaced file is noticed."""
    from pipelines.ingest.loader import scan_inbox

    _echo_some(
        [f"ignored (not a delivery): inbox/{f}: {why}" for f, why in scan_inbox(home).ignored],
        "more files not read (subfolders or outside the family folders; see docs/deliveries.md)",
    )


def _echo_some(lines: list[str], more: str) -> None:
    """The first NOTE_LINES lines, then how many more and where to see them."""
    for line in lines[:NOTE_LINES]:
        click.echo(line)
    if len(lines) > NOTE_LINES:
        click.echo(f"  ... and {len(lines) - NOTE_LINES} {more}")


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
