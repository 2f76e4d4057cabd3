"""End to end on generated `tiny` deliveries: refresh -> gates -> publication.

A refresh costs a Dagster run and a full `dbt build`, so the module builds one published home
once (`published`: generate, then the first refresh) and no test changes it. Tests that only
read it share it (`published_home`, which fails a test that changed it); tests that drop files
or refresh get a private copy of it (`home_copy`). Each test passes alone and in any order; a
scenario that needs several refreshes keeps them inside one test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pipelines.cli import main
from pipelines.publish import CONTRACT_TABLES
from pipelines.settings import Home
from tests.conftest import check_refresh_over, home_environment, point_environment
from tests.strategies import InboxFile, inbox_files

CONTRACT_COLUMNS = {
    "indicateurs_incidents_mois": {
        "niveau": "VARCHAR",
        "code_territoire": "VARCHAR",
        "mois": "DATE",
        "categorie": "VARCHAR",
        "n_incidents": "BIGINT",
        "n_logements": "BIGINT",
        "taux_pour_1000_logements": "DOUBLE",
    },
    "indicateurs_delinquance_commune_annee": {
        "code_commune": "VARCHAR",
        "annee": "INTEGER",
        "indicateur": "VARCHAR",
        "unite_de_compte": "VARCHAR",
        "nombre": "BIGINT",
        "taux_pour_mille": "DOUBLE",
        "population": "BIGINT",
        "logements": "DOUBLE",
        "diffuse": "BOOLEAN",
    },
    "indicateurs_delinquance_epci_annee": {
        "code_epci": "VARCHAR",
        "annee": "INTEGER",
        "indicateur": "VARCHAR",
        "nombre": "BIGINT",
        "population": "BIGINT",
        "logements": "DOUBLE",
        "n_communes_non_diffusees": "BIGINT",
        "taux_pour_mille": "DOUBLE",
    },
    "indicateurs_mixite_epci_annee": {
        "code_epci": "VARCHAR",
        "annee": "INTEGER",
        "n_attributions_hors_qpv": "BIGINT",
        "n_q1_hors_qpv": "BIGINT",
        "taux_q1_hors_qpv": "DOUBLE",
        "objectif_q1_hors_qpv_pct": None,
        "manque_q1_hors_qpv": "BIGINT",
        "conforme_q1_hors_qpv": "BOOLEAN",
        "n_attributions_qpv": "BIGINT",
        "n_hors_q1_qpv": "BIGINT",
        "taux_hors_q1_qpv": "DOUBLE",
        "objectif_hors_q1_qpv_pct": None,
        "manque_hors_q1_qpv": "BIGINT",
        "conforme_hors_q1_qpv": "BOOLEAN",
        "n_menages_prioritaires": "BIGINT",
        "taux_menages_prioritaires": "DOUBLE",
    },
    "publication": {
        "publication_id": "VARCHAR",
        "publiee_le": "TIMESTAMP",
        "periode_debut": "DATE",
        "periode_fin": "DATE",
        "n_livraisons": "BIGINT",
        "n_controles": "BIGINT",
        "n_controles_en_echec": "BIGINT",
        "version_code": "VARCHAR",
    },
    "publication_livraisons": {
        "livraison_id": "BIGINT",
        "famille": "VARCHAR",
        "fichier": "VARCHAR",
        "sha256": "VARCHAR",
        "lignes_lues": "BIGINT",
        "lignes_chargees": "BIGINT",
        "lignes_quarantaine": "BIGINT",
        "statut": "VARCHAR",
    },
}


PSEUDO_KEY = "pipeline-test"


@dataclass(frozen=True)
class Published:
    """A home after `generate --scale tiny --seed 7` and its first refresh (exit code, output)."""

    home: Home
    code: int
    output: str


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """Built once per module and never changed: tests copy it (`home_copy`) to change it."""
    root = tmp_path_factory.mktemp("pipeline") / "home"
    with home_environment(root, TRANQUILLITY_PSEUDO_KEY=PSEUDO_KEY):
        home = Home(root).ensure()
        result = CliRunner().invoke(main, ["generate", "--scale", "tiny", "--seed", "7"])
        assert result.exit_code == 0, result.output
        code, output = _refresh()
    return Published(home, code, output)


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of everything under `root`, by relative path."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    }


@pytest.fixture
def published_home(published: Published, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """The shared published home, the environment pointed at it, for tests that only read."""
    assert published.code == 0, published.output
    point_environment(monkeypatch, published.home.root, TRANQUILLITY_PSEUDO_KEY=PSEUDO_KEY)
    before = _files(published.home.root)
    yield published.home
    assert _files(published.home.root) == before, "a read-only test changed the shared home"


def copy_home(source: Path, target: Path) -> Home:
    """A private copy of a home, file times kept (the ledger orders deliveries by them) and hard
    links kept (published/current.duckdb is a hard link to its publication file).

    Nothing the pipeline reads back stores an absolute path: the ledger's `fichier` is relative
    to inbox/, the Dagster instance (dagster.yaml, sqlite) is found from DAGSTER_HOME, and dbt's
    partial-parse cache is copied from the repository at each run. Absolute paths of the source
    remain only in records of past runs: Dagster's event log, dbt's artifacts in work/dbt_target
    (rewritten by the next build), Data Docs pages, logs and state/last_refresh.json (shown by
    `status`)."""
    linked: dict[tuple[int, int], str] = {}

    def copy(src: str, dst: str) -> str:
        stat = os.stat(src)
        if stat.st_nlink > 1:
            first = linked.setdefault((stat.st_dev, stat.st_ino), dst)
            if first != dst:
                os.link(first, dst)
                return dst
        return shutil.copy2(src, dst)

    shutil.copytree(source, target, symlinks=True, copy_function=copy)
    return Home(target)


@pytest.fixture
def home_copy(published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A private copy of the published home, the environment pointed at it."""
    assert published.code == 0, published.output
    home = copy_home(published.home.root, tmp_path / "home")
    point_environment(monkeypatch, home.root, TRANQUILLITY_PSEUDO_KEY=PSEUDO_KEY)
    return home


def _refresh(*options: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["refresh", *options])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def table_fingerprint(path: Path, table: str) -> str:
    """Order-independent hash of a table's contents."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
    return hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()


def test_first_refresh_publishes_contract_tables(published: Published) -> None:
    code, output = published.code, published.output
    assert code == 0, output
    assert "published " in output
    current = published.home.current_publication
    with duckdb.connect(str(current), read_only=True) as con:
        for table, columns in CONTRACT_COLUMNS.items():
            described = {r[0]: r[1] for r in con.execute(f'DESCRIBE "{table}"').fetchall()}
            for column, sql_type in columns.items():
                assert column in described, f"{table}.{column} missing"
                if sql_type is not None:
                    assert described[column] == sql_type, f"{table}.{column}: {described[column]}"
            if table in CONTRACT_TABLES:
                assert con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0] > 0, table
        publication = con.execute(
            "SELECT n_controles_en_echec, n_controles, n_livraisons FROM publication"
        ).fetchall()
        assert publication[0][0] == 0 and publication[0][1] > 50 and publication[0][2] > 10
    # Every step's time, the open data's share of the publication's among them.
    steps = {s["step"]: s for s in json.loads(published.home.last_refresh.read_text())["steps"]}
    assert {"raw_landlord", "dbt_models", "publication", "rapports"} <= steps.keys()
    publishing = steps["publication"]
    assert 0 < publishing["open_data_seconds"] <= publishing["seconds"]


@pytest.mark.parametrize("table", CONTRACT_TABLES)
def test_sql_queries_each_contract_table(published_home: Home, table: str) -> None:
    result = CliRunner().invoke(main, ["sql", "--csv", f"SELECT count(*) AS n FROM {table}"])
    assert result.exit_code == 0, result.output
    assert int(result.output.splitlines()[1]) > 0


def test_second_refresh_same_contents_and_reader_never_blocked(home_copy: Home) -> None:
    current = home_copy.current_publication
    before = {t: table_fingerprint(current, t) for t in CONTRACT_TABLES}
    first_id = _publication_id(current)
    before_bytes = current.read_bytes()
    # Nothing new: no run, nothing published, said so (exit 0).
    code, output = _refresh()
    assert code == 0, output
    assert f"nothing new since publication {first_id}" in output
    assert "running" not in output and current.read_bytes() == before_bytes
    assert json.loads(home_copy.last_refresh.read_text())["outcome"] == "nothing_new"
    # An analyst keeps a read-only connection open on the publication during the refresh.
    analyst = duckdb.connect(str(current), read_only=True)
    try:
        code, output = _refresh("--force")
        assert code == 0, output
        # The analyst still reads the publication they opened, without error.
        assert analyst.execute("SELECT publication_id FROM publication").fetchall() == [(first_id,)]
    finally:
        analyst.close()
    assert _publication_id(current) != first_id
    after = {t: table_fingerprint(current, t) for t in CONTRACT_TABLES}
    assert after == before
    # History is kept: the first publication is still there.
    assert (home_copy.published / f"{first_id}.duckdb").exists()


def test_unmapped_code_blocks_then_mapping_publishes(home_copy: Home) -> None:
    current = home_copy.current_publication
    before_bytes = current.read_bytes()
    landlord_dir = home_copy.inbox_family("landlord")
    mapping_file = sorted(
        home_copy.inbox_family("reference").glob("correspondance_categories_*.csv")
    )[0]
    landlord = mapping_file.stem.removeprefix("correspondance_categories_")
    stock_file = sorted(landlord_dir.glob(f"{landlord}_patrimoine_*"))[-1]
    year = stock_file.stem.rsplit("_", 1)[-1]
    stock = _read_any(stock_file)
    residence = stock.get_column(_col(stock, "id_residence"))[0]
    month = f"{year}-12"
    incidents = landlord_dir / f"{landlord}_incidents_{month}.csv"
    incidents.write_text(
        "id_incident;date_signalement;id_residence;id_logement;code_categorie;lieu;gravite;"
        "date_cloture;plainte_deposee;cout_euros;id_locataire;commentaire\n"
        f"ZZ1;{month}-05;{residence};;CODE-INCONNU;hall;2;;non;;;\n"
    )
    code, output = _refresh()
    assert code == 3, output
    assert "assert_incident_codes_all_mapped" in output and "CODE-INCONNU" in output
    assert current.read_bytes() == before_bytes
    # An expected outcome: a summary, no stack trace; Dagster's events went to the log.
    assert "Traceback" not in output and "Stack Trace" not in output
    assert "dagster - ERROR" not in output and "START sql" not in output
    log = Path(output.rsplit("log: ", 1)[1].split()[0])
    assert log.parent == home_copy.logs and "Stack Trace" in log.read_text()

    # The landlord delivers an updated mapping: the next refresh publishes.
    text = mapping_file.read_bytes()
    encoding = "utf-8-sig" if text.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        decoded = text.decode(encoding)
    except UnicodeDecodeError:
        encoding, decoded = "cp1252", text.decode("cp1252")
    sep = ";" if decoded.splitlines()[0].count(";") else ","
    newer = mapping_file.with_name(f"{mapping_file.stem}_maj.csv")
    newer.write_bytes(
        (decoded.rstrip("\r\n") + f"\nCODE-INCONNU{sep}Nouveau code{sep}autre\n").encode(encoding)
    )
    code, output = _refresh()
    assert code == 0, output
    assert current.read_bytes() != before_bytes
    with duckdb.connect(str(current), read_only=True) as con:
        n = con.execute(
            "SELECT n_incidents FROM indicateurs_incidents_mois WHERE niveau = 'residence' "
            "AND code_territoire = ? AND mois = ? AND categorie = 'autre'",
            [f"{landlord}:{residence}", f"{month}-01"],
        ).fetchall()
    assert n == [(1,)]


def test_a_held_delivery_never_stops_the_publication(
    home_copy: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One landlord's bad files are held (not loaded, listed, reported): the rest publishes,
    with the key's last accepted delivery or without the key. `TRANQUILLITY_GATE=strict`
    blocks instead, until a newer delivery replaces the held one."""
    current = home_copy.current_publication
    landlord_dir = home_copy.inbox_family("landlord")
    files = sorted(
        (p for p in landlord_dir.glob("*_incidents_*") if p.suffix == ".csv"),
        key=lambda p: (-len(p.read_bytes().splitlines()), p.name),
    )
    original = files[0]
    assert len(original.read_bytes().splitlines()) > 12, "needs a file of 10+ incidents"
    landlord, _, month = original.stem.split("_")[:3]
    other = next(p for p in files if p.stem.startswith(f"{landlord}_") and month not in p.stem)
    # A "corrected" file for that month that is in fact another month's extract: every row
    # is dated outside the file's month. Row rules alone would quarantine it all and publish
    # a month with no incidents; the delivery suite holds it as a whole.
    wrong = landlord_dir / f"{landlord}_incidents_{month}_corrige.csv"
    wrong.write_bytes(other.read_bytes())
    later = original.stat().st_mtime + 86_400
    os.utime(wrong, (later, later))
    # The same mistake for a month the landlord never delivered: no accepted delivery to fall
    # back on, so the landlord does not cover that month.
    new_month = "2030-01"
    unknown = landlord_dir / f"{landlord}_incidents_{new_month}.csv"
    unknown.write_bytes(other.read_bytes())
    os.utime(unknown, (later, later))

    # Strict: any held delivery blocks; the publication stays as it was.
    before_bytes = current.read_bytes()
    monkeypatch.setenv("TRANQUILLITY_GATE", "strict")
    code, output = _refresh()
    assert code == 3, output
    assert f"landlord/{wrong.name}" in output and "incidents_du_mois_du_fichier" in output
    assert "blocks the publication (TRANQUILLITY_GATE=strict)" in output
    assert current.read_bytes() == before_bytes
    docs = home_copy.data_docs
    assert any(docs.glob("*/index.html")), "Data Docs written for the run"
    # This run's own pages, not those of the first refresh that came with the copied home.
    run_docs = Path(output.split("data docs (Great Expectations): ", 1)[1].split()[0])
    assert run_docs.parent.parent == docs and run_docs.exists(), run_docs

    # The default: held, and the publication goes ahead (exit 0), listing them.
    monkeypatch.delenv("TRANQUILLITY_GATE")
    code, output = _refresh()
    assert code == 0, output
    for held in (wrong, unknown):
        assert "HELD delivery (not loaded; the publication goes ahead" in output
        assert f"landlord/{held.name}" in output
    with duckdb.connect(str(home_copy.warehouse_db), read_only=True) as con:
        loaded = con.execute(
            "SELECT count(*) FROM raw.landlord_incidents i JOIN raw.livraisons l "
            "USING (livraison_id) WHERE l.fichier IN (?, ?)",
            [f"landlord/{wrong.name}", f"landlord/{unknown.name}"],
        ).fetchall()[0][0]
    assert loaded == 0  # nothing of a held delivery enters the raw tables
    statuses = _incident_statuses(current, landlord, (month, new_month))
    with duckdb.connect(str(current), read_only=True) as con:
        covered = {
            str(m)[:7]
            for (m,) in con.execute(
                "SELECT DISTINCT mois FROM indicateurs_incidents_mois "
                "WHERE niveau = 'bailleur' AND code_territoire = ?",
                [landlord],
            ).fetchall()
        }
        n_livraisons, listed = con.execute(
            "SELECT (SELECT n_livraisons FROM publication), "
            "count(*) FILTER (WHERE statut = 'chargee') FROM publication_livraisons"
        ).fetchall()[0]
    # The original stays current for its month, the held ones are listed as such.
    assert statuses == {
        f"landlord/{original.name}": "chargee",
        f"landlord/{wrong.name}": "bloquee",
        f"landlord/{unknown.name}": "bloquee",
    }
    assert month in covered and new_month not in covered
    assert n_livraisons == listed  # the held ones did not feed it

    # The landlord sends the right file for that month, newer: it replaces the held one.
    lines = original.read_bytes().splitlines(keepends=True)
    fixed = landlord_dir / f"{landlord}_incidents_{month}_corrige2.csv"
    fixed.write_bytes(b"".join(lines[:-1]))  # one incident withdrawn by the landlord
    os.utime(fixed, (later + 60, later + 60))
    code, output = _refresh()
    assert code == 0, output
    held = [line for line in output.splitlines() if line.startswith("HELD")]
    assert not any(wrong.name in line for line in held), held  # replaced: no longer held
    assert any(unknown.name in line for line in held), held  # still held, still reported
    statuses = _incident_statuses(current, landlord, (month, new_month))
    assert statuses == {f"landlord/{fixed.name}": "chargee", f"landlord/{unknown.name}": "bloquee"}


def _incident_statuses(publication: Path, landlord: str, months: tuple[str, str]) -> dict:
    """File -> status of the landlord's incidents deliveries of those months, as published."""
    with duckdb.connect(str(publication), read_only=True) as con:
        return dict(
            con.execute(
                "SELECT fichier, statut FROM publication_livraisons WHERE code_bailleur = ? "
                "AND type_fichier = 'incidents' AND periode IN (?, ?)",
                [landlord, *months],
            ).fetchall()
        )


def test_gx_outcomes_recorded_for_every_delivery_family(published_home: Home) -> None:
    with duckdb.connect(str(published_home.warehouse_db), read_only=True) as con:
        run_id = con.execute(
            "SELECT run_id FROM audit.controles ORDER BY execute_le DESC LIMIT 1"
        ).fetchall()[0][0]
        rows = con.execute(
            "SELECT cible, count(*), count(*) FILTER (WHERE bloquant), "
            "count(*) FILTER (WHERE statut = 'fail') FROM audit.controles "
            "WHERE run_id = ? AND origine = 'gx' AND controle LIKE 'livraisons_%' GROUP BY cible",
            [run_id],
        ).fetchall()
    by_family = {r[0]: r[1:] for r in rows}
    assert set(by_family) == {"reference", "landlord", "police", "allocations"}
    for n, n_blocking, n_failed in by_family.values():
        assert n >= 10 and n_blocking >= 8 and n_failed == 0


def _publication_id(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT publication_id FROM publication").fetchall()[0][0]


def _read_any(path: Path) -> pl.DataFrame:
    from pipelines.ingest.reader import read_delivery

    return read_delivery(path).frame


def _col(frame: pl.DataFrame, name: str) -> str:
    return next(c for c in frame.columns if c.lower() == name)


def test_copy_of_inbox_is_all_duplicates(home_copy: Home) -> None:
    """Re-dropping the same bytes under other names loads nothing twice."""
    folder = home_copy.inbox_family("allocations")
    files = sorted(folder.glob("*.csv"))
    for file in files:
        shutil.copy2(file, folder / f"{file.stem}_copie{file.suffix}")
        # A copy kept in a subfolder is not a delivery at all (docs/deliveries.md).
        (folder / "copie").mkdir(exist_ok=True)
        shutil.copy2(file, folder / "copie" / file.name)
    from pipelines.ingest.loader import ingest_family
    from pipelines.warehouse import connect as connect_warehouse

    con = connect_warehouse(home_copy)
    try:
        report = ingest_family(con, home_copy, "allocations", PSEUDO_KEY.encode())
    finally:
        con.close()
    assert report.duplicates == len(files) and report.rows_loaded == 0
    assert sorted(f for f, _ in report.ignored) == [f"allocations/copie/{f.name}" for f in files]


def test_open_data_is_confidential(published_home: Home) -> None:
    from tests.test_opendata import check_open_directory

    publication_id = _publication_id(published_home.current_publication)
    check_open_directory(published_home.published / "open" / publication_id)


def test_the_linked_attacker_recovers_nothing(published_home: Home) -> None:
    """Contract section 5 on a real publication: the attacker reads every open file, knows
    the hierarchy the publication carries, and pins no masked cell; with the protection
    within each table only (the tables before `protect_linked`), it does, which proves that
    the hierarchy links something here."""
    from pipelines import opendata
    from tests.test_opendata import attack, exposed_cells

    publication = published_home.current_publication
    with duckdb.connect(str(publication), read_only=True) as con:
        hierarchy = opendata.publication_hierarchy(con)
        truth, qpvs = opendata.counted_tables(con)
    assert hierarchy, "the publication carries territoires_communes"
    assert qpvs, "the publication carries territoires_qpv"
    names = {t.name for t in truth}
    assert {"incidents_qpv_annee", "incidents_epci_mois", "procedures_epci_annee"} <= names
    assert exposed_cells(opendata.linked_table(truth, hierarchy, qpvs)) != []
    folder = published_home.published / "open" / _publication_id(publication)
    assert attack(folder, truth, hierarchy, qpvs) == []


def test_docs_describe_the_publication(published_home: Home) -> None:
    """docs/ names every published table and column of a real publication, and no other."""
    from tests.test_docs import check_docs_match_publication, check_open_data_docs_match

    check_docs_match_publication(published_home.current_publication)
    publication_id = _publication_id(published_home.current_publication)
    check_open_data_docs_match(published_home.published / "open" / publication_id)


def test_dictionary_describes_the_publication(published_home: Home) -> None:
    """Every published table and column has a COMMENT and a row in `dictionnaire`."""
    from tests.test_dictionary import check_dictionary

    check_dictionary(published_home.current_publication)


# Code columns a publication may carry without a name: none.
UNNAMED_CODES: set[tuple[str, str]] = set()


def check_every_code_has_a_name(db_path: Path) -> int:
    """Every `code_territoire` / `code_*` column of every published table is followed by its name
    column (`nom_territoire` / `nom_*`), never NULL nor empty where the code is given. Returns
    the number of (table, code column) pairs checked."""
    checked = 0
    with duckdb.connect(str(db_path), read_only=True) as con:
        columns: dict[str, list[str]] = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "ORDER BY table_name, ordinal_position"
        ).fetchall():
            columns.setdefault(table, []).append(column)
        for table, names in columns.items():
            for i, code in enumerate(names):
                if not code.startswith("code_") or (table, code) in UNNAMED_CODES:
                    continue
                name = "nom_" + code.removeprefix("code_")
                assert names[i + 1 : i + 2] == [name], f"{table}.{code} is not followed by {name}"
                missing = con.execute(
                    f'SELECT DISTINCT "{code}" FROM "{table}" WHERE "{code}" IS NOT NULL '
                    f"AND coalesce(trim(\"{name}\"), '') = '' ORDER BY 1 LIMIT 5"
                ).fetchall()
                assert not missing, f"{table}.{code} without {name}: {missing}"
                checked += 1
    return checked


def test_every_published_code_has_a_name(published_home: Home, tmp_path: Path) -> None:
    """Issue "The analyst's warehouse", point 1: no published code lacks its name, and the check
    sees a code whose name is missing (a copy of the publication with one name emptied)."""
    assert check_every_code_has_a_name(published_home.current_publication) >= 14
    broken = tmp_path / "broken.duckdb"
    shutil.copy(published_home.current_publication, broken)
    with duckdb.connect(str(broken)) as con:
        con.execute(
            "UPDATE indicateurs_incidents_mois SET nom_territoire = '' "
            "WHERE niveau = 'commune' AND code_territoire = "
            "(SELECT min(code_territoire) FROM indicateurs_incidents_mois WHERE niveau = 'commune')"
        )
    with pytest.raises(
        AssertionError, match=r"indicateurs_incidents_mois\.code_territoire without"
    ):
        check_every_code_has_a_name(broken)


def test_a_partial_year_is_never_presented_as_complete(published_home: Home) -> None:
    """The tiny sample delivers January to March 2025 only: a partial year. Every yearly table
    says so row by row, and the publication lists no complete year; SSMSI years are whole."""
    with duckdb.connect(str(published_home.current_publication), read_only=True) as con:
        periods = con.execute(
            "SELECT type_fichier, annee, n_mois_couverts_min, annee_complete "
            "FROM periodes_couvertes ORDER BY ALL"
        ).fetchall()
        assert {kind for kind, *_ in periods} == {
            "incidents",
            "procedures",
            "evenements",
            "attributions",
        }
        assert all(year == 2025 and months <= 3 and not done for _, year, months, done in periods)
        for table in (
            "indicateurs_mixite_epci_annee",
            "indicateurs_incidents_annee",
            "procedures_expulsion_annee",
            "procedures_expulsion_epci_annee",
        ):
            complete, rows = con.execute(
                f"SELECT count(*) FILTER (WHERE annee_complete), count(*) FROM {table}"
            ).fetchall()[0]
            assert rows > 0 and complete == 0, table
        for table in (
            "indicateurs_delinquance_commune_annee",
            "indicateurs_delinquance_epci_annee",
        ):
            assert con.execute(f"SELECT bool_and(annee_complete) FROM {table}").fetchall() == [
                (True,)
            ]
        assert con.execute("SELECT annees_completes FROM publication").fetchall() == [(None,)]


def test_no_clear_identifier_anywhere(published_home: Home) -> None:
    """Every identifier delivered in clear (all dialects, XLSX included) is absent from every
    text column of every table of the working database and of the publication."""
    from pipelines.ingest.reader import read_delivery

    secrets: set[str] = set()
    for family, column in (("landlord", "id_locataire"), ("allocations", "num_unique_demande")):
        for path in published_home.inbox_family(family).rglob("*"):
            if path.is_file() and (
                "incidents" in path.name or "procedures" in path.name or family == "allocations"
            ):
                frame = read_delivery(path).frame
                if column in frame.columns:
                    secrets |= set(
                        frame.get_column(column).drop_nulls().str.strip_chars().to_list()
                    )
    secrets.discard("")
    assert len(secrets) > 20
    for database in (published_home.warehouse_db, published_home.current_publication):
        with duckdb.connect(str(database), read_only=True) as con:
            con.execute("CREATE TEMP TABLE secrets (s VARCHAR)")
            con.executemany("INSERT INTO secrets VALUES (?)", [(s,) for s in secrets])
            columns = con.execute(
                "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                "WHERE data_type = 'VARCHAR' AND table_schema NOT IN ('temp') "
                "AND table_catalog = current_database()"
            ).fetchall()
            assert columns
            for schema, table, column in columns:
                hits = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" t JOIN secrets '
                    f'ON position(secrets.s IN t."{column}") > 0'
                ).fetchall()[0][0]
                assert hits == 0, f"clear identifier in {database.name}:{schema}.{table}.{column}"


def test_misnamed_and_misplaced_files_do_not_stop_the_publication(home_copy: Home) -> None:
    """An impossible period in a name used to crash the landlord step at every refresh."""
    landlord_dir = home_copy.inbox_family("landlord")
    incidents = sorted(landlord_dir.glob("*_incidents_*.csv"))[0]
    landlord = incidents.name.split("_incidents_")[0]
    misnamed = landlord_dir / f"{landlord}_incidents_2025-13.csv"
    shutil.copy2(incidents, misnamed)
    (landlord_dir / "archives").mkdir()
    shutil.copy2(incidents, landlord_dir / "archives" / incidents.name.replace("_20", "_19"))
    (home_copy.inbox / "a_ranger.csv").write_text("déposé au mauvais endroit\n")
    before = _publication_id(home_copy.current_publication)
    code, output = _refresh()
    assert code == 0, output
    assert _publication_id(home_copy.current_publication) != before
    assert (
        f"rejected: landlord/{misnamed.name}: mois impossible dans le nom du fichier: 2025-13"
        in output
    )
    assert f"ignored (not a delivery): inbox/landlord/archives/{landlord}_incidents_19" in output
    assert "ignored (not a delivery): inbox/a_ranger.csv: à la racine de inbox/" in output
    assert "Traceback" not in output and "Stack Trace" not in output
    with duckdb.connect(str(home_copy.warehouse_db), read_only=True) as con:
        files = {f for (f,) in con.execute("SELECT fichier FROM raw.livraisons").fetchall()}
    assert f"landlord/{misnamed.name}" in files
    assert not any("archives" in f or f == "a_ranger.csv" for f in files)


@settings(
    max_examples=1,
    derandomize=True,
    phases=[Phase.generate],
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(files=st.lists(inbox_files(), min_size=6, max_size=6, unique_by=lambda f: f.where.lower()))
def test_any_inbox_files_end_in_a_publication_or_a_blocked_gate(
    published: Published, tmp_path_factory: pytest.TempPathFactory, files: list[InboxFile]
) -> None:
    """Files drawn from the delivery grammar with mutations (tests/strategies.py) dropped into
    a published home: the refresh ends in 0 or 3, never 1, and says why for each file. Each
    example gets its own copy of the published home."""
    assert published.code == 0, published.output
    root = tmp_path_factory.mktemp("inbox_files") / "home"
    home = copy_home(published.home.root, root)
    with home_environment(root, TRANQUILLITY_PSEUDO_KEY=PSEUDO_KEY):
        check_refresh_over(home, files)
