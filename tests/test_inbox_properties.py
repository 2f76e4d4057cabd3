"""Property: whatever partners drop in the inbox, ingestion records every file and never fails.

Files are drawn from the grammar of the deliveries with mutations (tests/strategies.py):
impossible or malformed periods, unknown codes, odd extensions, subfolders and stray files,
missing, extra, repeated and shuffled columns, wrong types and impossible dates in cells,
encodings, gzip, XLSX, truncations and junk bytes. For every draw:
- no exception leaves an ingestion step;
- every file is either a delivery in the ledger or listed as not a delivery, with a reason;
- no file needed the catch-all for unexpected errors (every failure was foreseen);
- rows read = rows loaded + rows quarantined, and the raw tables hold exactly what the ledger
  says was loaded.
The fast suite runs a fixed set of examples; `make test PYTEST_ARGS="-m slow"` runs many more,
freshly drawn. The refresh exit code (0 or 3) over such files is checked in test_pipeline.py.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pipelines.ingest.ledger import UNEXPECTED
from pipelines.ingest.loader import ingest_family, is_temporary, scan_inbox
from pipelines.ingest.specs import ALL_KINDS, SSMSI_KIND
from pipelines.settings import FAMILIES, Home
from pipelines.warehouse import connect
from tests.conftest import TEST_KEY, check_refresh_over, home_environment, stock
from tests.strategies import InboxFile, inbox_files

TABLES = {k.name: k.table for k in (*ALL_KINDS, SSMSI_KIND)}
LOADED = ("chargee", "remplacee")
STATUSES = {"chargee", "remplacee", "doublon", "rejetee", "bloquee"}

BATCHES = st.lists(inbox_files(), min_size=1, max_size=4, unique_by=lambda f: f.where.lower())
COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


def check_ingestion(files: list[InboxFile]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home").ensure()
        stock(home)  # a valid stock, so that incident files can load
        for file in files:
            file.write(home.inbox)
        con = connect(home)
        try:
            for family in FAMILIES:
                ingest_family(con, home, family, TEST_KEY.encode())
            ledger = con.execute(
                "SELECT livraison_id, fichier, type_fichier, statut, motif, lignes_lues, "
                "lignes_chargees, lignes_quarantaine FROM raw.livraisons"
            ).fetchall()
            quarantined = dict(
                con.execute(
                    "SELECT livraison_id, count(*) FROM raw.quarantaine GROUP BY ALL"
                ).fetchall()
            )
            for lid, fichier, kind, statut, motif, read, loaded, in_quarantine in ledger:
                assert statut in STATUSES, (fichier, statut)
                assert not (motif or "").startswith(UNEXPECTED), (fichier, motif)
                if statut == "rejetee":
                    assert motif and read == loaded == in_quarantine == 0, (fichier, motif)
                if statut in LOADED:
                    assert read == loaded + in_quarantine, fichier
                    rows = con.execute(
                        f"SELECT count(*) FROM raw.{TABLES[kind]} WHERE livraison_id = ?", [lid]
                    ).fetchall()[0][0]
                    assert rows == loaded, (fichier, rows, loaded)
                if statut in (*LOADED, "bloquee"):
                    assert quarantined.get(lid, 0) == in_quarantine, fichier
        finally:
            con.close()
        recorded = {fichier for _, fichier, *_ in ledger}
        ignored = {where for where, why in scan_inbox(home).ignored if why}
        for file in files:
            if any(is_temporary(part) for part in Path(file.where).parts):
                continue
            assert file.where in recorded | ignored, file.where


@settings(max_examples=25, derandomize=True, **COMMON)
@given(BATCHES)
def test_any_inbox_ingests_without_error(files: list[InboxFile]) -> None:
    check_ingestion(files)


@pytest.mark.slow
@settings(max_examples=600, **COMMON)
@given(BATCHES)
def test_any_inbox_ingests_without_error_long(files: list[InboxFile]) -> None:
    check_ingestion(files)


_TINY: dict[str, Path] = {}


def _tiny_inbox() -> Path:
    """The tiny sample, generated once per process and copied into each example's home."""
    if "inbox" not in _TINY:
        from pipelines.generate import generate

        folder = Path(tempfile.mkdtemp()) / "inbox"
        generate("tiny", 7, folder)
        _TINY["inbox"] = folder
    return _TINY["inbox"]


@pytest.mark.slow
@settings(max_examples=8, phases=[Phase.generate], **COMMON)
@given(st.lists(inbox_files(), min_size=1, max_size=6, unique_by=lambda f: f.where.lower()))
def test_any_inbox_refreshes_to_a_publication_or_a_blocked_gate(files: list[InboxFile]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "home"
        shutil.copytree(_tiny_inbox(), root / "inbox")
        with home_environment(root):
            check_refresh_over(Home(root).ensure(), files)
