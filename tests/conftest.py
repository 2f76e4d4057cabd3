"""Shared fixtures: an isolated home folder per test and writers for every dialect."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
import xlsxwriter
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.ingest.loader import FamilyReport, ingest_family
from pipelines.settings import Home
from pipelines.warehouse import connect

TEST_KEY = "test-key-not-secret"

PATRIMOINE_HEADER = (
    "id_logement;id_residence;nom_residence;DEPCOM;QPV;CONSTRUCT;NBPIECE;SURFHAB;FINAN;statut"
)
INCIDENTS_HEADER = (
    "id_incident;date_signalement;id_residence;id_logement;code_categorie;lieu;gravite;"
    "date_cloture;plainte_deposee;cout_euros;id_locataire;commentaire"
)
ATTRIBUTIONS_HEADER = (
    "num_unique_demande;date_attribution;date_signature_bail;code_bailleur;id_logement;DEPCOM;QPV;"
    "revenu_annuel_euros;nb_personnes_14_ans_et_plus;nb_enfants_moins_14_ans;menage_prioritaire;"
    "reservataire;relogement_anru"
)


# Variables the pipeline itself writes into os.environ while it runs, in process: the command
# line, the process's entry point, sets the home (absolute), DAGSTER_HOME and DO_NOT_TRACK for
# what it starts (pipelines/cli.py), and GX analytics are turned off before GX is imported
# (pipelines/quality/runner.py); tests/test_settings.py keeps that list closed. A test that
# refreshes must not leave them pointing at its home for the tests after it.
PIPELINE_WRITES = (
    "TRANQUILLITY_HOME",
    "GX_ANALYTICS_ENABLED",
    "DAGSTER_HOME",
    "DO_NOT_TRACK",
)


def point_environment(mp: pytest.MonkeyPatch, root: Path, **extra: str) -> None:
    """Through `mp`: TRANQUILLITY_HOME (and DAGSTER_HOME) at `root`, telemetry off, `extra`
    set; and whatever the pipeline writes during the test restored when `mp` undoes."""
    for name in PIPELINE_WRITES:
        # Leave the value as it is, but have `mp` record it: its undo then restores it, or
        # removes the variable if it was unset, whatever the code under test wrote meanwhile.
        value = os.environ.get(name)
        mp.setenv(name, value or "")
        if value is None:
            mp.delenv(name)
    # An operator's shell must not change what a test sees: no alert POSTed to their
    # receiver, no strict gate unless the test asks for it.
    for name in ("TRANQUILLITY_ALERT_URL", "TRANQUILLITY_GATE"):
        mp.delenv(name, raising=False)
    values = {
        "TRANQUILLITY_HOME": str(root),
        "DAGSTER_HOME": str(root / "dagster"),
        "DO_NOT_TRACK": "1",
        # Rendering the reports costs seconds per refresh: only the tests of the reports
        # (tests/test_reports.py) turn them on.
        "TRANQUILLITY_RAPPORTS": "off",
        **extra,
    }
    for name, value in values.items():
        mp.setenv(name, value)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A fresh TRANQUILLITY_HOME with a fixed pseudonymisation key."""
    root = tmp_path / "home"
    point_environment(monkeypatch, root, TRANQUILLITY_PSEUDO_KEY=TEST_KEY)
    yield Home(root).ensure()


@contextmanager
def home_environment(root: Path, **extra: str) -> Iterator[None]:
    """`point_environment` for a block, on its own `pytest.MonkeyPatch`: for module-scoped
    fixtures and Hypothesis examples, where the function-scoped `monkeypatch` cannot go."""
    with pytest.MonkeyPatch.context() as mp:
        point_environment(mp, root, **extra)
        yield


def write_delimited(
    path: Path,
    header: str,
    rows: Sequence[str],
    *,
    sep: str = ";",
    encoding: str = "utf-8",
    bom: bool = False,
    mtime: float | None = None,
    newline: str = "\n",
) -> Path:
    """Write a delivery; header and rows are given ';'-separated and re-joined with `sep`."""
    lines = [header, *rows]
    text = newline.join(line.replace(";", sep) for line in lines) + newline
    data = text.encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def write_xlsx(
    path: Path, header: str, rows: Sequence[Sequence[object]], mtime: float | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("export")
    date_format = workbook.add_format({"num_format": "dd/mm/yyyy"})
    sheet.write_row(0, 0, header.split(";"))
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if value is None:
                continue
            if hasattr(value, "year"):
                sheet.write_datetime(r, c, value, date_format)
            else:
                sheet.write(r, c, value)
    workbook.close()
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def ingest(home: Home, family: str, strict: bool = False) -> FamilyReport:
    con = connect(home)
    try:
        return ingest_family(con, home, family, TEST_KEY.encode(), strict=strict)
    finally:
        con.close()


def query(home: Home, sql: str, params: Sequence[object] = ()) -> list[tuple]:
    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def stock(
    home: Home, landlord: str = "HMP", year: str = "2025", mtime: float = 1_700_000_000
) -> Path:
    """A small valid stock: residences R1 (QPV) and R2."""
    return write_delimited(
        home.inbox_family("landlord") / f"{landlord}_patrimoine_{year}.csv",
        PATRIMOINE_HEADER,
        [
            "L1;R1;Les Écureuils;13055;QN01301M;1972;3;65,5;PLAI;occupe",
            "L2;R1;Les Écureuils;13055;QN01301M;1972;4;80;PLUS;vacant",
            "L3;R2;Cœur de ville;13055;;1990;2;45;PLUS;occupe",
        ],
        mtime=mtime,
    )


def check_refresh_over(home: Home, files: list[Any]) -> None:
    """Drop `files` in the home's inbox and refresh: exit 0 or 3, no trace, each file recorded
    as a delivery (rows read = loaded + quarantined) or listed as not one."""
    for file in files:
        file.write(home.inbox)
    result = CliRunner().invoke(main, ["refresh"])
    code, output = result.exit_code, result.output
    assert code in (0, 3), output
    assert "Traceback" not in output and "Stack Trace" not in output
    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        ledger = {
            f: (statut, motif, lues, chargees, quarantaine)
            for f, statut, motif, lues, chargees, quarantaine in con.execute(
                "SELECT fichier, statut, motif, lignes_lues, lignes_chargees, lignes_quarantaine "
                "FROM raw.livraisons"
            ).fetchall()
        }
    for file in files:
        if file.where in ledger:
            statut, motif, lues, chargees, quarantaine = ledger[file.where]
            assert not (motif or "").startswith("erreur inattendue"), (file.where, motif)
            if statut in ("chargee", "remplacee"):
                assert lues == chargees + quarantaine, file.where
        else:
            assert f"inbox/{file.where}" in output or "more files not read" in output, file.where
