"""Write-audit-publish mechanics on a small hand-made warehouse (no dbt needed).

The publication swap must be atomic: a process killed at any moment leaves
`current.duckdb` readable and equal to the previous publication, and the next publication
succeeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.publish import CONTRACT_TABLES, prune, write_publication
from pipelines.settings import Home
from pipelines.warehouse import connect
from tests.test_dictionary import check_dictionary_matches_columns


def _fake_marts(home: Home, value: int) -> None:
    con = connect(home)
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        for table in CONTRACT_TABLES:
            con.execute(
                f"CREATE OR REPLACE TABLE marts.{table} AS SELECT {value} AS v, range AS i FROM range(50000)"
            )
        con.execute("CREATE OR REPLACE TABLE marts.extra AS SELECT 1 AS x")
        # The sources of the open-data tables, with their real columns.
        con.execute(
            "CREATE OR REPLACE TABLE marts.indicateurs_incidents_annee AS SELECT 'commune' AS niveau, "
            "'13055' AS code_territoire, 2025 AS annee, unnest(['degradation', 'autre', 'total']) AS categorie, "
            "unnest([3, 7, 10]) AS n_incidents, 1.5 AS taux_annualise_pour_1000_logements"
        )
        con.execute(
            "CREATE OR REPLACE TABLE marts.evenements_police_mois AS SELECT 'departement' AS niveau, "
            "'13' AS code_territoire, DATE '2025-01-01' AS mois, 'intervention_police' AS type_evenement, "
            "3 AS n_evenements"
        )
        con.execute(
            f"CREATE OR REPLACE TABLE marts.indicateurs_mixite_epci_annee AS SELECT {value} AS v, "
            "'200054807' AS code_epci, 2025 AS annee, 30 AS n_attributions, 20 AS n_attributions_hors_qpv, "
            "4 AS n_q1_hors_qpv, 0.2 AS taux_q1_hors_qpv, 25.0 AS objectif_q1_hors_qpv_pct, "
            "1 AS manque_q1_hors_qpv, false AS conforme_q1_hors_qpv, 10 AS n_attributions_qpv, "
            "9 AS n_hors_q1_qpv, 0.9 AS taux_hors_q1_qpv, 50.0 AS objectif_hors_q1_qpv_pct, "
            "0 AS manque_hors_q1_qpv, true AS conforme_hors_q1_qpv, 12 AS n_menages_prioritaires, "
            "0.4 AS taux_menages_prioritaires"
        )
        con.execute(
            "INSERT INTO raw.livraisons (livraison_id, famille, type_fichier, periode, fichier, sha256, "
            "recue_le, lignes_lues, lignes_chargees, lignes_quarantaine, statut) VALUES "
            "(?, 'landlord', 'incidents', '2025-01', ?, 'x', now(), 1, 1, 0, 'chargee')",
            [value, f"landlord/X_incidents_2025-01_{value}.csv"],
        )
    finally:
        con.close()


def _publish(home: Home, run_id: str = "run", keep: int = 10) -> str:
    con = connect(home)
    try:
        return write_publication(con, home, run_id=run_id, n_controles=3, keep=keep).publication_id
    finally:
        con.close()


def _value(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"SELECT DISTINCT v FROM {CONTRACT_TABLES[0]}").fetchall()[0][0]


def test_publication_contents_and_history(home: Home) -> None:
    _fake_marts(home, 1)
    first = _publish(home)
    current = home.current_publication
    assert _value(current) == 1
    with duckdb.connect(str(current), read_only=True) as con:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        publication = con.execute(
            "SELECT publication_id, periode_debut, periode_fin, n_livraisons, n_controles, "
            "n_controles_en_echec FROM publication"
        ).fetchall()
    assert {*CONTRACT_TABLES, "extra", "publication", "publication_livraisons"} <= tables
    # The data dictionary (tests/test_dictionary.py): one row per column, comments kept.
    check_dictionary_matches_columns(current)
    with duckdb.connect(str(current), read_only=True) as con:
        comment = con.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'publication' "
            "AND column_name = 'n_livraisons'"
        ).fetchall()
    assert comment[0][0].endswith("Unité : livraisons.")
    assert publication[0][0] == first
    assert str(publication[0][1]) == "2025-01-01" and str(publication[0][2]) == "2025-01-31"
    assert publication[0][3:] == (1, 3, 0)
    assert os.stat(current).st_ino == os.stat(home.published / f"{first}.duckdb").st_ino
    open_dir = home.published / "open" / first
    assert {p.name for p in open_dir.iterdir()} >= {
        "incidents_commune_annee.parquet",
        "incidents_commune_annee.csv",
        "mixite_epci_annee.csv",
        "evenements_departement_annee.parquet",
    }


def test_history_is_pruned_but_current_kept(home: Home) -> None:
    # TRANQUILLITY_KEEP_PUBLICATIONS reaches write_publication through the warehouse resource
    # (tests/test_settings.py).
    _fake_marts(home, 1)
    ids = []
    for _ in range(4):
        ids.append(_publish(home, keep=2))
    kept = sorted(p.stem for p in home.published.glob("2*.duckdb"))
    assert kept == sorted(ids[-2:])
    assert sorted(p.name for p in (home.published / "open").iterdir()) == sorted(ids[-2:])
    assert prune(home, 2) == []


@pytest.mark.parametrize("stage", ["copy", "before_rename", "before_swap"])
def test_sigkill_during_publication_keeps_previous(home: Home, stage: str) -> None:
    _fake_marts(home, 1)
    first = _publish(home)
    before = home.current_publication.read_bytes()
    _fake_marts(home, 2)
    # A child process publishes but is held at one stage, then killed with SIGKILL.
    script = textwrap.dedent(
        f"""
        import os, sys, time
        import pipelines.publish as publish
        from pipelines.warehouse import connect
        from pipelines.settings import Home

        stage = {stage!r}
        ready = {str(home.root / "ready")!r}

        def hold():
            open(ready, "w").close()
            time.sleep(120)

        if stage == "copy":
            real = publish.published_tables
            def slow_tables(con):
                tables = real(con)
                hold()
                return tables
            publish.published_tables = slow_tables
        elif stage == "before_rename":
            publish._fsync = lambda path: hold()
        else:
            real_replace = os.replace
            def replace(src, dst):
                if str(dst).endswith("current.duckdb"):
                    hold()
                return real_replace(src, dst)
            publish.os.replace = replace
        from pathlib import Path
        home = Home(Path({str(home.root)!r}))
        con = connect(home)
        publish.write_publication(con, home, run_id="killed", n_controles=1)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ))
    deadline = time.time() + 60
    while not (home.root / "ready").exists():
        assert child.poll() is None, "publisher exited before reaching the stage"
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert home.current_publication.read_bytes() == before
    assert _value(home.current_publication) == 1
    # The next publication succeeds and cleans the leftovers of the killed one.
    second = _publish(home)
    assert second != first and _value(home.current_publication) == 2
    assert not list(home.published.glob(".*"))
    assert not list((home.published / "open").glob(".*"))
