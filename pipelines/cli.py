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
from typing import TYPE_CHECKING, Any

import click

from pipelines.settings import DAGSTER_HOME, FAMILIES, GATE, HOME_SETTING, SETTINGS, Home

if TYPE_CHECKING:
    from pipelines.refresh import DeliveryNews

EXIT_FAILURE = 1

# Deliveries read with a remark (e.g. commune codes given back their leading zero) shown.
NOTE_LINES = 5

# The settings of pipelines/settings.py, for the help of every command.
_ENVIRONMENT = {setting.variable: setting.describe() for setting in SETTINGS}
_HOME_ONLY = ("TRANQUILLITY_HOME",)
REFRESH_EXITS = (
    "0 published (the new publication is current), or nothing new (nothing published)",
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
    """The home of this command, made the environment of what it starts.

    The command is the process's entry point: Dagster (its instance, the resources' EnvVar
    fields) and dbt's process (profiles.yml) read the home from the environment, so it is
    set here once, absolute (dbt runs in another folder)."""
    home = Home.from_env().ensure()
    os.environ[HOME_SETTING.variable] = str(home.root)
    # Project-local Dagster instance, never the user's ~/.dagster; no telemetry.
    os.environ.setdefault(DAGSTER_HOME.variable, str(home.dagster_home))
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


def _backfill_months(value: str | None) -> tuple[date, date] | None:
    """`--mois`: one month or a range, within the monthly partitions."""
    if value is None:
        return None
    from pipelines.partitions import monthly_partitions

    months = _parse_months(value if ":" in value else f"{value}:{value}")
    assert months is not None
    keys = monthly_partitions.get_partition_keys()
    first, last = date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])
    if months[0] < first or months[1] > last:
        raise click.BadParameter(
            f"{value}: the monthly partitions go from {first:%Y-%m} to {last:%Y-%m}",
            param_hint="--mois",
        )
    return months


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
@click.option(
    "--force",
    is_flag=True,
    help="Run and publish even when nothing is new since the current publication, "
    "recomputing every month.",
)
@click.option(
    "--mois",
    "months",
    default=None,
    metavar="YYYY-MM[:YYYY-MM]",
    help="Backfill: recompute these months (monthly partitions) as well as those the "
    "deliveries changed, even with nothing new.",
)
def refresh(force: bool, months: str | None) -> None:
    """Load what is new in the inbox, rebuild and check everything, publish if every gate passes.

    Runs the Dagster job `refresh` in this process (one DuckDB writer): ingestion with the
    delivery quality gate, `dbt build`, the publication suites, then the atomic publication
    and its open data. Prints a summary: deliveries per family, rejected and held files,
    quarantined rows per file and rule with the first message, failed checks. Everything
    Dagster and dbt print goes to a log file (path printed), never to the terminal, which
    shows how far the run is: files and rows per second per family, dbt nodes per layer. With
    nothing new since the current publication (no new, replaced or accepted delivery, same
    code), it says so and publishes nothing. Only the months the deliveries changed are
    recomputed in the monthly tables, and said (docs/operations.md, "Incremental refreshes").
    """
    from pipelines.lock import RefreshRunning
    from pipelines.refresh import Verdict
    from pipelines.refresh import refresh as run

    window = _backfill_months(months)
    home = _home()
    try:
        outcome = run(
            home,
            announce=lambda r: click.echo(f"refresh {r.run_id} running; log: {r.log}"),
            force=force,
            months=window,
        )
    except RefreshRunning as exc:
        click.echo(f"refresh not started: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    if outcome.verdict is Verdict.NOTHING_NEW:
        from pipelines.ingest.loader import scan_inbox

        _print_ignored(scan_inbox(home).ignored)  # misplaced files still get their answer
        click.echo(
            f"nothing new since publication {outcome.run.publication_id} (no new, replaced or "
            f"accepted delivery): nothing published; {home.current_publication} is unchanged "
            "(`tranquillity refresh --force` rebuilds anyway)"
        )
        return
    log = outcome.run.log
    if outcome.failed_step is not None:
        others = (
            f" (+{outcome.other_failures} other failed steps)" if outcome.other_failures else ""
        )
        unchanged = (
            f", {home.current_publication} is unchanged"
            if home.current_publication.exists()
            else ""
        )
        click.echo(
            f"refresh FAILED at step {outcome.failed_step}: {outcome.error}{others}; "
            f"nothing was published{unchanged}",
            err=True,
        )
        click.echo(f"full log (stack traces): {log}", err=True)
        sys.exit(outcome.verdict.exit_code)
    if outcome.summary_error:
        click.echo(f"warehouse unavailable for the summary: {outcome.summary_error}", err=True)
    else:
        _print_ledger(outcome.families)
    if outcome.news is not None:
        _print_news(outcome.news)
    if outcome.window is not None:
        click.echo(
            f"months recomputed: {outcome.window.describe()} ({'; '.join(outcome.window.reasons)})"
        )
    checks, warnings, docs = outcome.checks, outcome.warnings, outcome.data_docs
    if outcome.verdict is Verdict.PUBLISHED:
        click.echo(f"checks: {len(checks)} run, 0 blocking failed, {len(warnings)} warnings")
        for check in warnings[:10]:
            click.echo(f"  warning: {check.describe()}")
        if docs is not None:
            click.echo(f"data docs (Great Expectations): {docs}")
        click.echo(f"published {outcome.run.publication_id}: {home.current_publication}")
        from pipelines.reports.batch import INDEX, RAPPORTS

        index = home.published / "open" / str(outcome.run.publication_id) / RAPPORTS / INDEX
        if index.exists():
            click.echo(f"reports (CIL and CLSPD reviews of every EPCI): {index}")
        click.echo(f"run {outcome.run.run_id}; log: {log}")
        return
    if outcome.verdict is Verdict.BLOCKED:
        failed = [c for c in outcome.blocking if c.statut != "skipped"]
        click.echo(
            f"publication BLOCKED: {len(failed)} blocking checks failed (of {len(checks)} run); "
            f"the current publication is unchanged ({home.current_publication})",
            err=True,
        )
        for check in failed:
            click.echo(f"  - {check.describe()}", err=True)
        skipped = len(outcome.blocking) - len(failed)
        if skipped:
            click.echo(
                f"  ({skipped} downstream models and tests skipped because of them)", err=True
            )
        click.echo(
            f'details: tranquillity sql --warehouse "SELECT * FROM audit.controles '
            f"WHERE run_id = '{outcome.run.run_id}' AND statut <> 'pass'\"",
            err=True,
        )
        if docs is not None:
            click.echo(f"data docs (Great Expectations): {docs}", err=True)
        click.echo(f"run {outcome.run.run_id}; log: {log}", err=True)
        sys.exit(outcome.verdict.exit_code)
    # Neither published nor blocked, and no step failed: nothing explains it but the log.
    click.echo(
        "refresh FAILED: no step failed and no gate blocked, yet nothing was published",
        err=True,
    )
    click.echo(f"full log: {log}", err=True)
    sys.exit(outcome.verdict.exit_code)


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

    from pipelines.ingest.ledger import NotBlocked, accept_blocked
    from pipelines.warehouse import connect

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
        run = f", run {last['run_id']}" if last.get("run_id") else ""
        click.echo(
            f"last refresh: {last.get('outcome')} (exit {last.get('exit_code')}), "
            f"started {last.get('started')}, finished {last.get('finished')}{run}"
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
    _print_other_run(home, last.get("run_id") if home.last_refresh.exists() else None)
    if home.warehouse_db.exists():
        try:
            summary = _ledger(home)
        except Exception as exc:  # a refresh holds the write lock
            click.echo(f"ledger: unavailable ({str(exc).splitlines()[0]})")
        else:
            _print_ledger(summary)


@main.command(
    epilog=_epilog(
        (
            "0 success",
            "1 no database yet, the database's error, or a query that tries to leave the "
            "database (files, ATTACH, extensions, SET)",
            "2 no QUERY and no --tables",
        ),
        _HOME_ONLY,
    )
)
@click.argument("query", required=False)
@click.option(
    "--tables",
    "list_tables",
    is_flag=True,
    help="List the tables with their number of rows and their description, instead of a QUERY.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.option(
    "--warehouse",
    "on_warehouse",
    is_flag=True,
    help="Query the working warehouse (raw tables, ledger, quarantine) instead of the publication.",
)
def sql(query: str | None, list_tables: bool, as_csv: bool, on_warehouse: bool) -> None:
    """Run a read-only QUERY on published/current.duckdb and print the result.

    The query reads the tables of the database and nothing else: files (COPY, read_csv,
    read_blob...), other databases (ATTACH), extensions and settings (SET) are refused.

    Example: tranquillity sql "SELECT * FROM indicateurs_mixite_epci_annee LIMIT 5"
    """
    import duckdb

    if list_tables:
        query = TABLES_QUERY
    elif not query:
        raise click.UsageError("give a QUERY, or --tables to list the tables")

    from pipelines.analyst import REFUSAL, connect_read_only, is_refusal

    home = Home.from_env()
    path = home.warehouse_db if on_warehouse else home.current_publication
    if not path.exists():
        what = "working warehouse" if on_warehouse else "publication"
        click.echo(f"error: no {what} yet at {path}: run `tranquillity refresh` first", err=True)
        sys.exit(EXIT_FAILURE)
    try:
        with connect_read_only(path) as con:
            if as_csv:
                import polars as pl

                relation = con.sql(query)
                if relation is None:  # a statement without a result
                    return
                frame = pl.DataFrame(relation.to_arrow_table())
            else:
                cursor = con.execute(query)
                if cursor.description is None:
                    return
                names = [d[0] for d in cursor.description]
                rows = cursor.fetchall()
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if is_refusal(exc):
            click.echo(f"error: {REFUSAL}: {first}", err=True)
        else:
            click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    if as_csv:
        # The open-data dialect (docs/open-data.md): an extract opens in French Excel.
        from pipelines.french_csv import write_csv

        write_csv(frame, sys.stdout)
    else:
        click.echo(format_table(names, rows))


@main.command(
    epilog=_epilog(
        (
            "0 the reports are written",
            "1 no publication yet, an EPCI the publication does not know, or an unknown format",
        ),
        _HOME_ONLY,
    )
)
@click.option("--epci", "code_epci", required=True, help="SIREN code of the EPCI (9 digits).")
@click.option("--annee", type=int, required=True, help="Year of the report (YYYY).")
@click.option(
    "--format",
    "formats",
    default="html,pdf,xlsx",
    show_default=True,
    help="Comma-separated formats among html, pdf, xlsx.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into (default: the publication's published/open/<id>/rapports/).",
)
def report(code_epci: str, annee: int, formats: str, out: Path | None) -> None:
    """Write the two official reports of one EPCI and year from the current publication's
    open data: the allocation review (CIL) and the tranquillity review (CLSPD), each as
    self-contained HTML, PDF and XLSX.

    Example: tranquillity report --epci 200030195 --annee 2025 --format html,xlsx
    """
    from pipelines.reports import OpenDataError, write_reports
    from pipelines.reports.batch import RAPPORTS
    from pipelines.reports.data import open_folder

    home = Home.from_env()
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    try:
        folder = open_folder(home.published)
        target = out if out is not None else folder.path / RAPPORTS
        written = write_reports(folder, code_epci.strip(), annee, target, chosen)
    except OpenDataError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    for path in written:
        click.echo(str(path))


# The tables of the database, with their rows and the comment the publication gives each.
TABLES_QUERY = """
SELECT schema_name AS schema, table_name AS "table", estimated_size AS lignes,
       coalesce(comment, '') AS description
FROM duckdb_tables()
WHERE NOT internal AND NOT temporary
ORDER BY schema_name = 'main' DESC, schema_name, table_name
"""


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
    from pipelines.analyst import connect_read_only
    from pipelines.ingest.ledger import ledger_summary

    with connect_read_only(home.warehouse_db) as con:
        return ledger_summary(con)


def _print_other_run(home: Home, known_run: str | None) -> None:
    """The newest run of the refresh job in the Dagster instance, when it is not the one
    `state/last_refresh.json` describes: started from the UI, the sensor or a schedule (or
    still running), its outcome is Dagster's. `status` then reports the last run, whoever
    started it."""
    if not (home.dagster_home / "dagster.yaml").exists():
        return
    import dagster as dg

    try:
        with dg.DagsterInstance.get() as instance:
            records = instance.get_run_records(filters=dg.RunsFilter(job_name="refresh"), limit=1)
    except Exception as exc:  # an instance from another Dagster version: say so, go on
        click.echo(f"dagster runs: unavailable ({str(exc).splitlines()[0]})")
        return
    if not records or records[0].dagster_run.run_id == known_run:
        return
    run = records[0].dagster_run
    tags = run.tags
    origin = (
        f"sensor {tags['dagster/sensor_name']}"
        if "dagster/sensor_name" in tags
        else f"schedule {tags['dagster/schedule_name']}"
        if "dagster/schedule_name" in tags
        else "the UI or another process"
    )
    started = records[0].start_time or records[0].create_timestamp.timestamp()
    when = datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds")
    click.echo(
        f"last run: {run.status.value.lower()}, started {when} from {origin}, run {run.run_id} "
        "(details in the Dagster UI: make ui)"
    )


def _print_ledger(summary: list[dict[str, Any]]) -> None:
    by_family = {row["famille"]: row for row in summary}
    names = [
        "family",
        "deliveries",
        "current",
        "superseded",
        "duplicates",
        "rejected",
        "held",
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


def _print_news(news: DeliveryNews) -> None:
    """What this refresh's deliveries came to: rejected, not deliveries, blocked, read with a
    remark, quarantined rows per file and rule."""
    for fichier, motif in news.rejected:
        click.echo(f"rejected: {fichier}: {motif}")
    _print_ignored(news.ignored)
    effect = (
        "blocks the publication (TRANQUILLITY_GATE=strict)"
        if GATE.value() == "strict"
        else "the publication goes ahead with its key's last accepted delivery"
    )
    for fichier, motif in news.blocked:
        click.echo(f"HELD delivery (not loaded; {effect}): {fichier}: {motif}")
    _echo_some(
        [f"note: {fichier}: {remark}" for fichier, remark in news.remarks],
        "more notes: tranquillity sql --warehouse "
        '"SELECT fichier, remarques FROM raw.livraisons WHERE remarques IS NOT NULL"',
    )
    if news.quarantined:
        click.echo("quarantined rows this refresh (per file and rule, with the first message):")
        for q in news.quarantined:
            click.echo(
                f"  {q.fichier}: {q.rows} x {q.regle} (first at line {q.first_line}: "
                f"{q.first_message})"
            )
        more = news.quarantined_pairs - len(news.quarantined)
        if more > 0:
            click.echo(
                f"  ... and {more} more (file, rule) pairs: tranquillity sql --warehouse "
                '"SELECT * FROM raw.quarantaine"'
            )


def _print_ignored(ignored: list[tuple[str, str]]) -> None:
    """Files of the inbox that are not deliveries (subfolders, outside the family folders):
    never loaded, said at every refresh so that a partner's misplaced file is noticed."""
    _echo_some(
        [f"ignored (not a delivery): inbox/{f}: {why}" for f, why in ignored],
        "more files not read (subfolders or outside the family folders; see docs/deliveries.md)",
    )


def _echo_some(lines: list[str], more: str) -> None:
    """The first NOTE_LINES lines, then how many more and where to see them."""
    for line in lines[:NOTE_LINES]:
        click.echo(line)
    if len(lines) > NOTE_LINES:
        click.echo(f"  ... and {len(lines) - NOTE_LINES} {more}")


def _print_publication(path: Path) -> None:
    import duckdb

    from pipelines.analyst import connect_read_only

    try:
        with connect_read_only(path) as con:
            cursor = con.execute("SELECT * FROM publication")
            names = [d[0] for d in cursor.description]
            for row in cursor.fetchall():
                for name, value in zip(names, row, strict=True):
                    click.echo(f"  {name}: {value}")
    except duckdb.Error as exc:
        click.echo(f"  (unreadable: {str(exc).splitlines()[0]})")


if __name__ == "__main__":  # pragma: no cover
    main()
