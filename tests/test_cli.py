"""The `tranquillity` command: refresh through a real Dagster run, status, sql."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipelines.cli import format_table, main
from pipelines.settings import Home
from tests.conftest import INCIDENTS_HEADER, ingest, stock, write_delimited


def _deliver(home: Home) -> None:
    stock(home)
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.csv",
        INCIDENTS_HEADER,
        ["I1;2025-01-03;R1;;DEG;hall;2;;oui;;;", "I2;2025-01-03;R1;;DEG;hall;9;;oui;;;"],
    )
    write_delimited(home.inbox_family("landlord") / "HMP_procedures_2025-01.csv", "a;b", ["1;2"])


def test_refresh_without_reference_is_blocked_and_publishes_nothing(home: Home) -> None:
    """Landlord files only: their commune is in no EPCI file, a blocking check fails."""
    _deliver(home)
    runner = CliRunner()
    result = runner.invoke(main, ["refresh"])
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    landlord = next(line for line in lines if line.startswith("landlord"))
    # deliveries, current, superseded, duplicates, rejected, blocked, read, loaded, quarantined
    assert [c.strip() for c in landlord.split("|")][1:] == [
        *("3", "2", "0", "0", "1", "0"),
        *("5", "4", "1"),
    ]
    assert "rejected: landlord/HMP_procedures_2025-01.csv: colonnes manquantes" in result.output
    # Per file and rule, the first message names the column, the value and the rule.
    assert (
        "landlord/HMP_incidents_2025-01.csv: 1 x hors_bornes (first at line 3: "
        "gravite: '9' est hors de l'intervalle 1..4)"
    ) in result.output
    assert "Traceback" not in result.output and "Stack Trace" not in result.output
    assert f"log: {home.logs}/refresh-" in result.output
    (log,) = home.logs.glob("refresh-*.log")
    assert "PASS" in log.read_text() and "\x1b[" not in log.read_text()  # dbt's lines, plain
    assert "publication BLOCKED" in result.output
    # Progress while it ran, in plain lines (no terminal here): per family, per dbt layer.
    assert "ingested landlord: 3/3 files, 5 rows, " in result.output
    assert "ingested police: 0/0 files, 0 rows, 0 rows/s" in result.output
    assert re.search(r"^dbt staging: \d+/\d+ done, \d+s$", result.output, re.MULTILINE)
    assert "dbt tests: " in result.output and "\x1b[" not in result.output
    assert "assert_communes_in_epci_file [dbt_test]" in result.output
    assert "13055" in result.output  # the example names the offending commune
    assert not home.current_publication.exists()
    last = json.loads(home.last_refresh.read_text())
    assert last["outcome"] == "blocked" and last["exit_code"] == 3
    # Where the time went: each step that ran, in order, within the run (the gate stopped
    # the publication before it started).
    steps = {s["step"]: s for s in last["steps"]}
    assert {"raw_landlord", "dbt_models"} <= steps.keys() and "publication" not in steps
    starts = [s["started"] for s in last["steps"]]
    assert starts == sorted(starts) and last["started"] <= starts[0][:19]
    run_seconds = (
        datetime.fromisoformat(last["finished"]) - datetime.fromisoformat(last["started"])
    ).total_seconds()
    assert 0 <= steps["dbt_models"]["seconds"] <= run_seconds + 1
    assert "seconds per step:" in log.read_text()
    # The run is recorded in the project-local Dagster instance, ingestion included.
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(last["run_id"]) is not None
        materialized = instance.get_latest_materialization_event(
            dg.AssetKey(["raw", "landlord_incidents"])
        )
        assert materialized is not None
        assert materialized.asset_materialization.metadata["rows_quarantined"].value == 1
        assert instance.get_latest_materialization_event(dg.AssetKey(["publication"])) is None

    status = runner.invoke(main, ["status"])
    assert status.exit_code == 0
    assert "current publication: none yet" in status.output
    assert "last refresh: blocked (exit 3)" in status.output


def test_sql_on_warehouse_and_errors(home: Home) -> None:
    _deliver(home)
    ingest(home, "landlord")
    runner = CliRunner()
    ok = runner.invoke(
        main, ["sql", "--warehouse", "SELECT type_fichier, statut FROM raw.livraisons ORDER BY 1"]
    )
    assert ok.exit_code == 0
    assert "incidents    | chargee" in ok.output and "(3 rows)" in ok.output
    as_csv = runner.invoke(
        main,
        [
            "sql",
            "--warehouse",
            "--csv",
            "SELECT 1 AS a, NULL AS b, 'x;y' AS c, 1234.5 AS d, '06088' AS e, DATE '2025-01-31' AS f",
        ],
    )
    # The open-data dialect: BOM, `;`, decimal comma, codes and dates as written.
    assert as_csv.output == '\ufeffa;b;c;d;e;f\n1;;"x;y";1234,5;06088;2025-01-31\n'

    bad = runner.invoke(main, ["sql", "--warehouse", "SELECT * FROM nope"])
    assert bad.exit_code == 1 and "nope" in bad.output
    # No publication yet: a clear message, exit 1.
    missing = runner.invoke(main, ["sql", "SELECT 1"])
    assert missing.exit_code == 1 and "no publication yet" in missing.output


def test_sql_reads_the_publication_read_only(home: Home) -> None:
    home.published.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(home.current_publication)) as con:
        con.execute("CREATE TABLE t AS SELECT 42 AS n")
    runner = CliRunner()
    result = runner.invoke(main, ["sql", "SELECT n FROM t"])
    assert result.exit_code == 0 and "42" in result.output
    write = runner.invoke(main, ["sql", "CREATE TABLE u (x INT)"])
    assert write.exit_code == 1 and "read-only" in write.output.lower()


def test_sql_tables_lists_tables_with_rows_and_description(home: Home) -> None:
    home.published.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(home.current_publication)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS n FROM range(3)")
        con.execute("COMMENT ON TABLE t IS 'Trois lignes, pour l''exemple'")
        con.execute("CREATE TABLE u (x INT)")
    result = CliRunner().invoke(main, ["sql", "--tables", "--csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "\ufeffschema;table;lignes;description",
        "main;t;3;Trois lignes, pour l'exemple",
        'main;u;0;""',
    ]
    neither = CliRunner().invoke(main, ["sql"])
    assert neither.exit_code == 2 and "--tables" in neither.output


# Each way out of the publication an analyst's query could try, and what it would reach.
ESCAPES = {
    "copy_to_a_file": "COPY (SELECT 42 AS n) TO '{outside}/stolen.csv'",
    "export_database": "EXPORT DATABASE '{outside}/export'",
    "read_csv_of_a_file": "SELECT * FROM read_csv('{secret}')",
    "read_blob_of_the_key": "SELECT content FROM read_blob('{secret}')",
    "read_text_of_the_key": "SELECT content FROM read_text('{secret}')",
    "glob_the_home": "SELECT * FROM glob('{home}/**')",
    "attach_the_other_database": "ATTACH '{other}' AS w (READ_ONLY)",
    "install_an_extension": "INSTALL httpfs",
    "load_an_extension_file": "LOAD '{outside}/evil.duckdb_extension'",
    "set_external_access": "SET enable_external_access = true",
    "set_memory": "SET memory_limit = '100GB'",
    "pragma_threads": "PRAGMA threads = 64",
    "reset_a_setting": "RESET memory_limit",
}


@pytest.mark.parametrize("escape", sorted(ESCAPES))
@pytest.mark.parametrize("on_warehouse", [False, True], ids=["publication", "warehouse"])
def test_sql_refuses_every_way_out_of_the_database(
    home: Home, tmp_path: Path, escape: str, on_warehouse: bool
) -> None:
    """The attacker is an analyst with `tranquillity sql`: the key, the working warehouse and
    the file system stay out of reach, the settings stay as set, and the refusal says why."""
    home.published.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(home.current_publication)) as con:
        con.execute("CREATE TABLE t AS SELECT 42 AS n")
    with duckdb.connect(str(home.warehouse_db)) as con:
        con.execute("CREATE TABLE quarantaine AS SELECT 'ligne brute' AS contenu")
    secret = home.secrets / "pseudonymisation.key"
    secret.write_text("not-for-analysts\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    # From the publication, the working warehouse (raw lines, quarantine); and back.
    other = home.current_publication if on_warehouse else home.warehouse_db
    query = ESCAPES[escape].format(outside=outside, secret=secret, home=home.root, other=other)
    args = ["sql", *(["--warehouse"] if on_warehouse else []), query]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "not allowed: `tranquillity sql` only reads the tables" in result.output
    assert "not-for-analysts" not in result.output and "ligne brute" not in result.output
    assert "Traceback" not in result.output
    assert list(outside.iterdir()) == []
    # The door still opens for a plain query afterwards.
    ok = CliRunner().invoke(main, ["sql", "SELECT n FROM t"])
    assert ok.exit_code == 0 and "42" in ok.output


def test_format_table_aligns_and_spells_null() -> None:
    text = format_table(["name", "n"], [("a", 1), ("bbb", None)])
    assert text.splitlines() == [
        "name |    n",
        "-----+-----",
        "a    |    1",
        "bbb  | NULL",
        "(2 rows)",
    ]


def test_refresh_failure_is_one_line_and_a_log(home: Home) -> None:
    """A non-data failure (the working database is not a DuckDB file) in a real process:
    exit 1, one line naming the step and the error, the trace in a log under the home."""
    _deliver(home)
    home.warehouse_db.write_bytes(b"this is not a database" * 1000)
    tranquillity = Path(sys.executable).with_name("tranquillity")
    proc = subprocess.run(
        [str(tranquillity), "refresh"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # Only the announcement of the run on stdout, then exactly two lines on stderr.
    (announced,) = proc.stdout.splitlines()
    assert announced.startswith("refresh ") and " running; log: " in announced
    first, second = proc.stderr.splitlines()
    assert first.startswith("refresh FAILED at step raw_")
    assert "not a valid DuckDB database file" in first and "nothing was published" in first
    log = Path(second.removeprefix("full log (stack traces): "))
    assert log.parent == home.logs and log.exists() and announced.endswith(str(log))
    assert "Traceback" in log.read_text() or "Stack Trace" in log.read_text()
    last = json.loads(home.last_refresh.read_text())
    assert last["outcome"] == "failed" and last["exit_code"] == 1 and last["log"] == str(log)
    status = CliRunner().invoke(main, ["status"])
    assert f"log: {log}" in status.output and "not a valid DuckDB database file" in status.output


@pytest.mark.parametrize("command", ["generate", "refresh", "accept", "status", "sql"])
def test_help_states_defaults_exit_codes_and_environment(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Exit codes:" in result.output and "Environment:" in result.output
    assert "TRANQUILLITY_HOME" in result.output
    if command == "refresh":
        for name in ("TRANQUILLITY_PSEUDO_KEY", "TRANQUILLITY_DUCKDB_MEMORY", "DAGSTER_HOME"):
            assert name in result.output
        assert "3 a blocking check failed" in result.output
    if command == "generate":
        from pipelines.generate.common import SCALES

        flat = " ".join(result.output.split())
        for name, scale in SCALES.items():
            first, last = scale.default_months
            assert f"{name} {first:%Y-%m}:{last:%Y-%m}" in flat
        assert "[default: small]" in flat and "[default: 42]" in flat


def test_version() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"tranquillity, version {version('tranquillity')}"
