"""Shared fixtures: an isolated home folder per test and writers for every dialect."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import pytest
import xlsxwriter

from pipelines.ingest.loader import FamilyReport, connect, ingest_family
from pipelines.settings import Home

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


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A fresh TRANQUILLITY_HOME with a fixed pseudonymisation key."""
    root = tmp_path / "home"
    monkeypatch.setenv("TRANQUILLITY_HOME", str(root))
    monkeypatch.setenv("TRANQUILLITY_PSEUDO_KEY", TEST_KEY)
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    yield Home(root).ensure()


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


def ingest(home: Home, family: str) -> FamilyReport:
    con = connect(home)
    try:
        return ingest_family(con, home, family, TEST_KEY.encode())
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
