"""Ingestion: dialects, ledger, duplicates, supersession, rejection and quarantine."""

from __future__ import annotations

import gc
import gzip
import weakref
from datetime import date, datetime
from pathlib import Path

import pytest

from pipelines.ingest import loader
from pipelines.ingest.loader import ingest_family
from pipelines.ingest.pseudonymise import pseudonym
from pipelines.quality.runner import QualityRun
from pipelines.settings import Home
from pipelines.warehouse import connect
from tests.conftest import (
    ATTRIBUTIONS_HEADER,
    INCIDENTS_HEADER,
    PATRIMOINE_HEADER,
    TEST_KEY,
    ingest,
    query,
    stock,
    write_delimited,
    write_xlsx,
)

T0 = 1_735_000_000  # a fixed mtime; deliveries are ordered by mtime then name


def _ledger(home: Home) -> dict[str, tuple]:
    rows = query(
        home,
        "SELECT fichier, statut, lignes_lues, lignes_chargees, lignes_quarantaine, dialecte, motif "
        "FROM raw.livraisons",
    )
    return {r[0].split("/", 1)[1]: r[1:] for r in rows}


# -- dialects ------------------------------------------------------------------------------


def test_semicolon_cp1252_decimal_comma_french_dates(home: Home) -> None:
    stock(home)
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.csv",
        INCIDENTS_HEADER,
        ["I1;03/01/2025;R1;L1;DÉG;hall;2;10/01/2025;oui;1 234,50;LOC1;tag dégradé œuvre"],
        encoding="cp1252",
        newline="\r\n",
        mtime=T0,
    )
    report = ingest(home, "landlord")
    assert report.rejected == []
    ledger = _ledger(home)["HMP_incidents_2025-01.csv"]
    assert ledger[:4] == ("chargee", 1, 1, 0)
    assert "windows-1252" in ledger[4] and "sep=;" in ledger[4]
    row = query(
        home,
        "SELECT date_signalement, date_cloture, cout_euros, code_categorie, plainte_deposee "
        "FROM raw.landlord_incidents",
    )[0]
    assert row == (date(2025, 1, 3), date(2025, 1, 10), 1234.5, "DÉG", True)
    # Accented stock names survive the Windows-1252 round trip (stock file is UTF-8 here).
    assert ("Cœur de ville",) in query(
        home, "SELECT DISTINCT nom_residence FROM raw.landlord_patrimoine"
    )


def test_comma_utf8_bom_iso_dates_and_na(home: Home) -> None:
    stock(home)
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.csv",
        INCIDENTS_HEADER,
        [
            "I1;2025-01-03;R1;NA;DEG;hall;2;NA;non;12.5;NA;",
            "I2;2025-01-04;R2;;DEG;Parking;1;;NON;;;",
        ],
        sep=",",
        bom=True,
        mtime=T0,
    )
    ingest(home, "landlord")
    ledger = _ledger(home)["HMP_incidents_2025-01.csv"]
    assert ledger[:4] == ("chargee", 2, 2, 0)
    assert "utf-8+BOM" in ledger[4] and "sep=," in ledger[4]
    rows = query(
        home,
        "SELECT id_incident, id_logement, date_cloture, cout_euros, lieu, plainte_deposee, "
        "pseudo_locataire FROM raw.landlord_incidents ORDER BY id_incident",
    )
    # 'NA' and '' are both missing; enum values are matched case-insensitively.
    assert rows == [
        ("I1", None, None, 12.5, "hall", False, None),
        ("I2", None, None, None, "parking", False, None),
    ]


def test_column_names_case_and_spaces_insensitive(home: Home) -> None:
    header = " ID_LOGEMENT ; Id_Residence;nom_residence;depcom;qpv;construct;nbpiece;surfhab;finan;STATUT "
    write_delimited(
        home.inbox_family("landlord") / "HMP_patrimoine_2025.csv",
        header,
        ["L1;R1;X;13055;;1972;3;65;PLAI;occupe"],
    )
    ingest(home, "landlord")
    assert _ledger(home)["HMP_patrimoine_2025.csv"][:3] == ("chargee", 1, 1)


def test_xlsx_delivery_with_real_date_cells(home: Home) -> None:
    stock(home)
    write_xlsx(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.xlsx",
        INCIDENTS_HEADER,
        [
            [
                "I1",
                datetime(2025, 1, 3),
                "R1",
                "L1",
                "DEG",
                "hall",
                2,
                "2025-01-05",
                "oui",
                12.75,
                "LOC9",
                "x",
            ],
            ["I2", "04/01/2025", "R2", None, "DEG", "cave", 4, None, "non", None, None, None],
        ],
        mtime=T0,
    )
    ingest(home, "landlord")
    ledger = _ledger(home)["HMP_incidents_2025-01.xlsx"]
    assert ledger[:4] == ("chargee", 2, 2, 0)
    assert ledger[4] == "xlsx"
    rows = query(
        home,
        "SELECT id_incident, date_signalement, gravite, cout_euros FROM raw.landlord_incidents "
        "ORDER BY 1",
    )
    assert rows == [("I1", date(2025, 1, 3), 2, 12.75), ("I2", date(2025, 1, 4), 4, None)]


def test_gzip_csv_is_read(home: Home) -> None:
    path = home.inbox_family("allocations") / "attributions_2025-01.csv.gz"
    plain = write_delimited(
        home.root / "tmp.csv",
        ATTRIBUTIONS_HEADER,
        ["0131225000001;15/01/2025;01/02/2025;HMP;L1;13055;QN01301M;14500,50;2;1;DALO;etat;non"],
    )
    path.write_bytes(gzip.compress(plain.read_bytes()))
    ingest(home, "allocations")
    ledger = _ledger(home)["attributions_2025-01.csv.gz"]
    assert ledger[:4] == ("chargee", 1, 1, 0)
    assert "gzip" in ledger[4]


# -- ledger: duplicates, supersession, idempotence -----------------------------------------


def test_same_bytes_twice_load_once(home: Home) -> None:
    stock(home)
    rows = ["I1;2025-01-03;R1;L1;DEG;hall;2;;oui;;;"]
    folder = home.inbox_family("landlord")
    write_delimited(folder / "HMP_incidents_2025-01.csv", INCIDENTS_HEADER, rows, mtime=T0)
    write_delimited(
        folder / "HMP_incidents_2025-01_renvoi.csv", INCIDENTS_HEADER, rows, mtime=T0 + 10
    )
    report = ingest(home, "landlord")
    assert report.duplicates == 1
    ledger = _ledger(home)
    assert ledger["HMP_incidents_2025-01.csv"][0] == "chargee"
    assert ledger["HMP_incidents_2025-01_renvoi.csv"][0] == "doublon"
    assert query(home, "SELECT count(*) FROM raw.landlord_incidents") == [(1,)]


def test_identical_empty_files_of_different_months_are_two_deliveries(home: Home) -> None:
    """A header-only file says 'no incident this month': February's is not January's again."""
    stock(home)
    folder = home.inbox_family("landlord")
    for month in ("01", "02"):
        write_delimited(folder / f"HMP_incidents_2025-{month}.csv", INCIDENTS_HEADER, [], mtime=T0)
    report = ingest(home, "landlord")
    assert report.duplicates == 0
    ledger = _ledger(home)
    assert (
        ledger["HMP_incidents_2025-01.csv"][0]
        == ledger["HMP_incidents_2025-02.csv"][0]
        == "chargee"
    )


def test_refresh_twice_is_idempotent(home: Home) -> None:
    stock(home)
    ingest(home, "landlord")
    before = query(home, "SELECT count(*) FROM raw.livraisons")
    report = ingest(home, "landlord")
    assert report.new_deliveries == 0
    assert query(home, "SELECT count(*) FROM raw.livraisons") == before
    assert query(home, "SELECT count(*) FROM raw.landlord_patrimoine") == [(3,)]


def test_newer_delivery_for_same_key_supersedes(home: Home) -> None:
    stock(home)
    folder = home.inbox_family("landlord")
    write_delimited(
        folder / "HMP_incidents_2025-01.csv",
        INCIDENTS_HEADER,
        ["I1;2025-01-03;R1;;DEG;hall;2;;oui;;;"],
        mtime=T0,
    )
    ingest(home, "landlord")
    write_delimited(
        folder / "HMP_incidents_2025-01_corrige.csv",
        INCIDENTS_HEADER,
        ["I1;2025-01-03;R1;;DEG;hall;3;;oui;;;", "I2;2025-01-09;R2;;DEG;cave;1;;non;;;"],
        mtime=T0 + 86_400,
    )
    ingest(home, "landlord")
    ledger = query(
        home,
        "SELECT fichier, statut, remplacee_par FROM raw.livraisons WHERE type_fichier = 'incidents' "
        "ORDER BY livraison_id",
    )
    (_old, old_status, replaced_by), (new, new_status, _) = ledger
    assert (old_status, new_status) == ("remplacee", "chargee")
    newest_id = query(home, "SELECT livraison_id FROM raw.livraisons WHERE fichier = ?", [new])[0][
        0
    ]
    assert replaced_by == newest_id
    # Both stay in the ledger and in raw; downstream keeps the current delivery only.
    assert query(home, "SELECT count(*) FROM raw.landlord_incidents") == [(3,)]


def test_older_file_arriving_late_does_not_supersede(home: Home) -> None:
    """Order is the file's modification time, then its name, not the order of arrival."""
    stock(home)
    folder = home.inbox_family("landlord")
    write_delimited(
        folder / "HMP_incidents_2025-01_v2.csv",
        INCIDENTS_HEADER,
        ["I1;2025-01-03;R1;;DEG;hall;2;;oui;;;"],
        mtime=T0 + 100,
    )
    ingest(home, "landlord")
    write_delimited(
        folder / "HMP_incidents_2025-01.csv",
        INCIDENTS_HEADER,
        ["I1;2025-01-03;R1;;DEG;hall;4;;oui;;;"],
        mtime=T0,
    )
    ingest(home, "landlord")
    ledger = _ledger(home)
    assert ledger["HMP_incidents_2025-01_v2.csv"][0] == "chargee"
    assert ledger["HMP_incidents_2025-01.csv"][0] == "remplacee"


def test_same_mtime_ordered_by_name(home: Home) -> None:
    stock(home)
    folder = home.inbox_family("landlord")
    for name in ("HMP_incidents_2025-01_b.csv", "HMP_incidents_2025-01_a.csv"):
        write_delimited(
            folder / name,
            INCIDENTS_HEADER,
            [f"I1;2025-01-03;R1;;DEG;hall;2;;oui;;{name};"],
            mtime=T0,
        )
    ingest(home, "landlord")
    ledger = _ledger(home)
    assert ledger["HMP_incidents_2025-01_b.csv"][0] == "chargee"
    assert ledger["HMP_incidents_2025-01_a.csv"][0] == "remplacee"


# -- rejection and quarantine -------------------------------------------------------------


def test_wrong_columns_reject_the_whole_file(home: Home) -> None:
    write_delimited(
        home.inbox_family("landlord") / "HMP_patrimoine_2025.csv",
        "id_logement;residence;DEPCOM;statut",
        ["L1;R1;13055;occupe"],
    )
    report = ingest(home, "landlord")
    ((fichier, reason),) = report.rejected
    assert fichier == "landlord/HMP_patrimoine_2025.csv"
    assert "colonnes manquantes" in reason and "id_residence" in reason and "SURFHAB" in reason
    status, read, loaded, quarantined, _dialect, motif = _ledger(home)["HMP_patrimoine_2025.csv"]
    assert (status, read, loaded, quarantined) == ("rejetee", 0, 0, 0)
    assert motif == reason
    assert query(home, "SELECT count(*) FROM raw.landlord_patrimoine") == [(0,)]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("HMP_patrimoine_2025.csv", b"", "fichier vide"),
        ("HMP_patrimoine_2025.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "pas un fichier CSV"),
        ("HMP_patrimoine_2025.xlsx", b"PK\x03\x04garbage", "XLSX illisible"),
        ("notes.txt", b"a;b\n1;2\n", "nom de fichier non reconnu"),
    ],
)
def test_unreadable_files_are_rejected_with_one_reason(
    home: Home, name: str, content: bytes, expected: str
) -> None:
    (home.inbox_family("landlord") / name).write_bytes(content)
    report = ingest(home, "landlord")
    assert len(report.rejected) == 1
    assert expected in report.rejected[0][1]


def test_header_only_file_is_a_valid_empty_delivery(home: Home) -> None:
    stock(home)
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-02.csv", INCIDENTS_HEADER, []
    )
    ingest(home, "landlord")
    assert _ledger(home)["HMP_incidents_2025-02.csv"][:4] == ("chargee", 0, 0, 0)


def test_bad_rows_are_quarantined_with_line_and_reason(home: Home) -> None:
    stock(home)
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.csv",
        INCIDENTS_HEADER,
        [
            "I1;2025-01-03;R1;L1;DEG;hall;2;2025-01-10;oui;120,5;LOC1;",  # line 2: ok
            "I2;2025-02-03;R1;;DEG;hall;2;;non;;;",  # line 3: outside the month
            "I3;2025-01-05;R1;;DEG;hall;5;;non;;;",  # line 4: gravite out of range
            "I4;2025-01-05;R1;;DEG;salon;1;;non;;;",  # line 5: lieu not allowed
            "I5;2025-01-05;R1;;DEG;hall;1;2025-01-01;non;;;",  # line 6: closed before reported
            "I6;32/01/2025;R1;;DEG;hall;1;;non;;;",  # line 7: not a date
            "I7;2025-01-05;R9;;DEG;hall;1;;non;;;",  # line 8: residence not in stock: loaded
            "I8;2025-01-05;R1;;;hall;1;;non;;;",  # line 9: missing code
            "I9;2025-01-05;R1;;DEG;hall;1;;peut-être;abc;;",  # line 10: two problems
            "I1;2025-01-06;R1;L1;DEG;hall;3;;oui;;LOC1;",  # line 11: repeats I1 -> line 2 quarantined
        ],
    )
    ingest(home, "landlord")
    status, read, loaded, quarantined, _d, _m = _ledger(home)["HMP_incidents_2025-01.csv"]
    assert status == "chargee"
    assert read == 10 and loaded == 2 and quarantined == 8 and read == loaded + quarantined
    rules = dict(query(home, "SELECT ligne, regle FROM raw.quarantaine ORDER BY ligne"))
    assert rules == {
        2: "doublon_dans_fichier",
        3: "date_hors_periode",
        4: "hors_bornes",
        5: "valeur_non_admise",
        6: "dates_incoherentes",
        7: "date_invalide",
        9: "valeur_manquante",
        10: "valeur_non_admise",
    }
    motifs = dict(query(home, "SELECT ligne, motif FROM raw.quarantaine ORDER BY ligne"))
    assert motifs[2] == "id_incident répété: la ligne 11 le remplace"
    assert motifs[3] == "date_signalement: '2025-02-03' est hors du mois du fichier (2025-01)"
    assert motifs[4] == "gravite: '5' est hors de l'intervalle 1..4"
    assert "salon" in motifs[5] and "hall, cage_escalier" in motifs[5]
    assert motifs[9] == "code_categorie: valeur obligatoire manquante"
    assert "plainte_deposee" in motifs[10] and "cout_euros: 'abc' n'est pas un nombre" in motifs[10]
    # A residence missing from the stock is not a broken row: loaded, and judged by dbt against
    # the stock that applies at each build (a better stock may arrive later).
    assert query(
        home, "SELECT id_incident, gravite FROM raw.landlord_incidents ORDER BY id_incident"
    ) == [("I1", 3), ("I7", 1)]
    # Quarantined content keeps the raw values for the partner, minus free text.
    contenu = query(home, "SELECT contenu FROM raw.quarantaine WHERE ligne = 10")[0][0]
    assert '"cout_euros":"abc"' in contenu and "commentaire" not in contenu


def test_incidents_before_their_stock_are_loaded_and_judged_against_the_applicable_one(
    home: Home,
) -> None:
    """The stock at 1 January arrives months after the year's first incidents: they are
    loaded whatever stock has arrived (the order of arrival never decides), and the delivery
    suite weighs them against the applicable stock (latest year <= theirs, else earliest)."""
    rows = [f"I{i};2025-01-03;R1;;DEG;hall;2;;oui;;;" for i in range(12)]
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.csv", INCIDENTS_HEADER, rows
    )
    report = ingest(home, "landlord")  # no stock at all: held (every residence unknown)
    assert [f for f, _ in report.waiting] == ["landlord/HMP_incidents_2025-01.csv"]
    assert "residences_connues_du_patrimoine" in report.waiting[0][1]
    assert query(home, "SELECT count(*) FROM raw.quarantaine") == [(0,)]
    stock(home, year="2024")  # last year's stock arrives: it applies to 2025 too
    report = ingest(home, "landlord")
    assert not report.waiting
    assert query(home, "SELECT count(*) FROM raw.landlord_incidents") == [(12,)]


def test_allocation_rules(home: Home) -> None:
    write_delimited(
        home.inbox_family("allocations") / "attributions_2025-03.csv",
        ATTRIBUTIONS_HEADER,
        [
            "0131225000001;2025-03-02;2025-03-20;HMP;L1;13055;QN01301M;14500,5;2;1;dalo;etat;oui",
            "0131225000002;2025-03-02;2025-02-20;HMP;;13055;;9000;1;0;non;bailleur;non",  # lease before
            # commune (3 digits: not a code that lost its leading zero), adults
            "0131225000003;2025-03-02;;HMP;;130;;9000;0;0;non;bailleur;non",
            "0131225000004;2025-03-02;;HMP;;2A004;QX1;9000;1;0;urgent;mairie;non",  # qpv, enums
        ],
    )
    ingest(home, "allocations")
    rows = query(home, "SELECT ligne, motif FROM raw.quarantaine ORDER BY ligne")
    assert [r[0] for r in rows] == [3, 4, 5]
    assert "date_signature_bail: '2025-02-20' est antérieure à date_attribution" in rows[0][1]
    assert "DEPCOM: '130' n'est pas un code commune INSEE valide" in rows[1][1]
    assert "nb_personnes_14_ans_et_plus: '0' est hors de l'intervalle 1..30" in rows[1][1]
    assert (
        "QPV" in rows[2][1] and "menage_prioritaire" in rows[2][1] and "reservataire" in rows[2][1]
    )
    loaded = query(
        home,
        "SELECT menage_prioritaire, relogement_anru, revenu_annuel_euros FROM raw.allocations_attributions",
    )
    assert loaded == [("DALO", True, 14500.5)]


# -- pseudonymisation ---------------------------------------------------------------------


def test_no_clear_personal_identifier_in_any_table(home: Home) -> None:
    stock(home)
    clear_tenants = ["LOC-0001", "LOC-0002"]
    clear_requests = ["0131225000001", "0131225000002"]
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.csv",
        INCIDENTS_HEADER,
        [
            f"I1;2025-01-03;R1;;DEG;hall;2;;oui;;{clear_tenants[0]};voisin M. Dupont",
            f"I2;2025-02-03;R1;;DEG;hall;2;;oui;;{clear_tenants[1]};",  # quarantined
        ],
    )
    write_delimited(
        home.inbox_family("allocations") / "attributions_2025-03.csv",
        ATTRIBUTIONS_HEADER,
        [
            f"{clear_requests[0]};2025-03-02;;HMP;;13055;;14500;2;1;non;etat;non",
            f"{clear_requests[1]};2025-04-02;;HMP;;13055;;14500;2;1;non;etat;non",  # quarantined
        ],
    )
    ingest(home, "landlord")
    ingest(home, "allocations")
    secrets = [*clear_tenants, *clear_requests, "Dupont"]
    columns = query(
        home,
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE data_type = 'VARCHAR'",
    )
    assert columns
    for schema, table, column in columns:
        for secret in secrets:
            hits = query(
                home,
                f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}" LIKE ?',
                [f"%{secret}%"],
            )
            assert hits == [(0,)], f"{secret} in {schema}.{table}.{column}"
    expected = pseudonym(clear_tenants[0], TEST_KEY.encode())
    assert query(home, "SELECT pseudo_locataire FROM raw.landlord_incidents") == [(expected,)]
    assert len(expected) == 64


def test_key_file_created_once_with_mode_0600(tmp_path, monkeypatch) -> None:
    from pipelines.ingest.pseudonymise import load_key

    monkeypatch.delenv("TRANQUILLITY_PSEUDO_KEY", raising=False)
    first = load_key(tmp_path / "secrets")
    assert (tmp_path / "secrets" / "pseudonymisation.key").stat().st_mode & 0o777 == 0o600
    assert load_key(tmp_path / "secrets") == first and len(first) == 64


# -- memory ----------------------------------------------------------------------------------


def test_a_written_batch_leaves_none_of_its_frames_alive(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch's rows (a million nationally) are gone once written, even with Python's
    automatic collector off: the delivery gate's Great Expectations run leaves reference
    cycles that held them until a full collection (3.6 GB of a national ingestion)."""
    monkeypatch.setattr(loader, "FLUSH_FILES", 2)
    monkeypatch.setattr(loader, "CHUNK_FILES", 2)
    # A stock that loses 60 % of its lines in a year: the gate has Great Expectations judge
    # its batch (a batch with nothing suspect is passed without it).
    for year, lines, mtime in (("2024", 1000, T0), ("2025", 400, T0 + 1)):
        write_delimited(
            home.inbox_family("landlord") / f"HMP_patrimoine_{year}.csv",
            PATRIMOINE_HEADER,
            [f"L{i};R{i // 20};Résidence;13055;;1980;3;60;PLUS;occupe" for i in range(lines)],
            mtime=mtime,
        )
    for month in range(1, 5):
        rows = [f"I{month}{i};2024-{month:02d}-0{1 + i};R1;;VAND;hall;2;;non;;;" for i in range(5)]
        write_delimited(
            home.inbox_family("landlord") / f"HMP_incidents_2024-{month:02d}.csv",
            INCIDENTS_HEADER,
            rows,
            mtime=T0 + 10 + month,
        )
    alive: list[str] = []
    flushes: list[int] = []
    write = loader.FamilyIngestion.flush

    def flush(self: loader.FamilyIngestion) -> None:
        frames = [frame for pairs in self.batch.tables.values() for _, frame in pairs]
        held = [weakref.ref(frame) for frame in frames]
        del frames
        write(self)
        flushes.append(len(held))
        alive.extend(f"flush {len(flushes)}" for ref in held if ref() is not None)

    monkeypatch.setattr(loader.FamilyIngestion, "flush", flush)
    con = connect(home)
    gc.disable()
    try:
        report = ingest_family(con, home, "landlord", TEST_KEY.encode(), QualityRun(tmp_path))
    finally:
        gc.enable()
        con.close()
    assert [f for f, _ in report.blocked] == ["landlord/HMP_patrimoine_2025.csv"]
    assert report.rows_loaded == 1000 + 4 * 5
    assert sum(flushes) == 6 and len([n for n in flushes if n]) >= 3, flushes
    assert not alive, alive
