"""Both SSMSI schemas, masked rows, editions; police events."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from pipelines.ingest import validate
from pipelines.settings import Home
from pipelines.warehouse import connect
from tests.conftest import ingest, query, write_delimited

NEW_HEADER = (
    "CODGEO_2025;annee;indicateur;unite_de_compte;nombre;taux_pour_mille;est_diffuse;insee_pop;"
    "insee_pop_millesime;insee_log;insee_log_millesime;complement_info_nombre;complement_info_taux"
)
OLD_HEADER = (
    "CODGEO_2024;annee;classe;unité.de.compte;valeur.publiée;faits;tauxpourmille;complementinfoval;"
    "complementinfotaux;POP;millPOP;LOG;millLOG"
)


def test_new_schema_gzip_with_masked_rows(home: Home) -> None:
    plain = write_delimited(
        home.root / "ssmsi.csv",
        NEW_HEADER,
        [
            "13055;2024;Cambriolages de logement;logement;4210;4.9;diff;873076;2021;860000;2021;;",
            "04001;2024;Cambriolages de logement;logement;;;ndiff;350;2021;200;2021;1.7;4.2",
            # A masked row that (wrongly) carries a count: the count is not kept.
            "04002;2024;Cambriolages de logement;logement;3;8.1;ndiff;420;2021;210;2021;1.7;4.2",
        ],
    )
    (home.inbox_family("police") / "donnee-comm-data.gouv-2025-geographie2025.csv.gz").write_bytes(
        gzip.compress(plain.read_bytes())
    )
    ingest(home, "police")
    rows = query(
        home,
        "SELECT code_commune, annee, nombre, taux_pour_mille, diffuse, population, logements, "
        "complement_info_nombre, edition, schema_ssmsi FROM raw.police_ssmsi ORDER BY code_commune",
    )
    assert rows == [
        ("04001", 2024, None, None, False, 350, 200, 1.7, 2025, "2025+"),
        ("04002", 2024, None, None, False, 420, 210, 1.7, 2025, "2025+"),
        ("13055", 2024, 4210, 4.9, True, 873076, 860000, None, 2025, "2025+"),
    ]
    assert query(home, "SELECT type_fichier, periode, statut FROM raw.livraisons") == [
        ("ssmsi", "2025", "chargee")
    ]


def test_old_schema_two_digit_years_decimal_comma(home: Home) -> None:
    write_delimited(
        home.inbox_family("police")
        / "donnee-data.gouv-2024-geographie2024-produit-le2024-07-05.csv",
        OLD_HEADER,
        [
            "13055;23;Coups et blessures volontaires;victime;diff;3120;3,6;;;873076;20;860000;20",
            "04001;23;Coups et blessures volontaires;victime;ndiff;;;2,1;5,3;350;20;200;20",
            "04001;xx;Coups et blessures volontaires;victime;ndiff;;;2,1;5,3;350;20;200;20",
            "13055;22;Coups et blessures volontaires;victime;diff;;3,1;;;873076;20;860000;20",
            # A département average that is not a number (division by zero upstream).
            "04002;23;Coups et blessures volontaires;victime;ndiff;;;2,1;inf;350;20;200;20",
        ],
    )
    ingest(home, "police")
    rows = query(
        home,
        "SELECT code_commune, annee, indicateur, unite_de_compte, nombre, taux_pour_mille, diffuse, "
        "edition, schema_ssmsi FROM raw.police_ssmsi ORDER BY code_commune",
    )
    assert rows == [
        (
            "04001",
            2023,
            "Coups et blessures volontaires",
            "victime",
            None,
            None,
            False,
            2024,
            "<=2024",
        ),
        (
            "13055",
            2023,
            "Coups et blessures volontaires",
            "victime",
            3120,
            3.6,
            True,
            2024,
            "<=2024",
        ),
    ]
    quarantined = query(home, "SELECT ligne, regle FROM raw.quarantaine ORDER BY ligne")
    assert quarantined == [(4, "type_invalide"), (5, "nombre_manquant"), (6, "type_invalide")]
    assert query(
        home, "SELECT lignes_lues, lignes_chargees, lignes_quarantaine FROM raw.livraisons"
    ) == [(5, 2, 3)]


def test_police_file_that_is_not_ssmsi_is_rejected(home: Home) -> None:
    write_delimited(home.inbox_family("police") / "export.csv", "commune;faits", ["13055;3"])
    report = ingest(home, "police")
    assert "CODGEO_<AAAA>" in report.rejected[0][1]


def test_events(home: Home) -> None:
    write_delimited(
        home.inbox_family("police") / "evenements_2025-06.csv",
        "id_evenement;date;DEPCOM;QPV;code_bailleur;id_residence;type;duree_jours",
        [
            "E1;12/06/2025;13055;QN01301M;HMP;R1;interdiction_paraitre;30",
            "E2;13/06/2025;13055;;;;point_deal_demantele;",
            "E3;13/07/2025;13055;;;;intervention_police;",
        ],
        encoding="cp1252",
    )
    ingest(home, "police")
    assert query(
        home, "SELECT id_evenement, type, duree_jours FROM raw.police_evenements ORDER BY 1"
    ) == [
        ("E1", "interdiction_paraitre", 30),
        ("E2", "point_deal_demantele", None),
    ]
    assert query(home, "SELECT ligne, regle FROM raw.quarantaine") == [(4, "date_hors_periode")]


# The commune base as SSMSI has published it on data.gouv.fr since 2021, byte for byte in
# shape: dwellings are census estimates with decimals (`LOG`, `insee_log`), decimals use a
# comma (or a point once re-exported), masked values are `NA`, quoted or not.
PUBLISHED_SHAPES = {
    # 2025+ editions: every field quoted, "NA" included, decimal comma, 4-digit vintages.
    "2025+ quoted decimal comma": (
        "donnee-data.gouv-2025-geographie2026-produit-le2026-06-25.csv.gz",
        '"CODGEO_2026";"annee";"indicateur";"unite_de_compte";"nombre";"taux_pour_mille";'
        '"est_diffuse";"insee_pop";"insee_pop_millesime";"insee_log";"insee_log_millesime";'
        '"complement_info_nombre";"complement_info_taux"\n'
        '"33318";"2025";"Cambriolages de logement";"Infraction";"355";"10,2266504";"diff";'
        '"67339";"2023";"34713,5";"2022";"NA";"NA"\n'
        '"01001";"2025";"Cambriolages de logement";"Infraction";"NA";"NA";"ndiff";"832";'
        '"2023";"372,4286";"2022";"1,2345678";"3,3148464"\n',
    ),
    # The same re-exported by a spreadsheet: decimal point, nothing quoted, bare NA.
    "2025+ bare decimal point": (
        "ssmsi_communes_2025.csv",
        "CODGEO_2025;annee;indicateur;unite_de_compte;nombre;taux_pour_mille;est_diffuse;"
        "insee_pop;insee_pop_millesime;insee_log;insee_log_millesime;complement_info_nombre;"
        "complement_info_taux\n"
        "33318;2025;Cambriolages de logement;Infraction;355;10.2266504;diff;67339;2023;"
        "34713.5;2022;NA;NA\n"
        "01001;2025;Cambriolages de logement;Infraction;NA;NA;ndiff;832;2023;372.4286;2022;"
        "1.2345678;3.3148464\n",
    ),
    # 2024 edition: ';', strings quoted, numbers bare, decimal comma, bare NA, 2-digit years.
    "<=2024 semicolon": (
        "donnee-data.gouv-2023-geographie2024-produit-le2024-07-05.csv",
        '"CODGEO_2024";"annee";"classe";"unité.de.compte";"valeur.publiée";"faits";'
        '"tauxpourmille";"complementinfoval";"complementinfotaux";"POP";"millPOP";"LOG";'
        '"millLOG"\n'
        '"33318";"23";"Cambriolages de logement";"infraction";"diff";355;10,2266504;NA;NA;'
        '67339;"21";34713,5;"20"\n'
        '"01001";"23";"Cambriolages de logement";"infraction";"ndiff";NA;NA;1,2345678;'
        '3,3148464;832;"21";372,4286;"20"\n',
    ),
    # 2023 edition: comma-separated, so the decimal commas sit inside quoted fields.
    "<=2024 comma-separated": (
        "donnee-data.gouv-2022-geographie2023-produit-le2023-07-17.csv",
        '"CODGEO_2023","annee","classe","unité.de.compte","valeur.publiée","faits",'
        '"tauxpourmille","complementinfoval","complementinfotaux","POP","millPOP","LOG",'
        '"millLOG"\n'
        '"33318","23","Cambriolages de logement","infraction","diff",355,"10,2266504",NA,NA,'
        '67339,"21","34713,5","20"\n'
        '"01001","23","Cambriolages de logement","infraction","ndiff",NA,NA,"1,2345678",'
        '"3,3148464",832,"21","372,4286","20"\n',
    ),
}


@pytest.mark.parametrize("shape", sorted(PUBLISHED_SHAPES))
def test_published_shapes_load_without_quarantine(home: Home, shape: str) -> None:
    name, text = PUBLISHED_SHAPES[shape]
    data = text.encode("utf-8")
    path = home.inbox_family("police") / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    report = ingest(home, "police")
    assert report.rejected == [] and report.blocked == []
    assert query(home, "SELECT regle, motif FROM raw.quarantaine") == []
    rows = query(
        home,
        "SELECT code_commune, nombre, taux_pour_mille, diffuse, population, logements, "
        "population_millesime, logements_millesime, complement_info_nombre "
        "FROM raw.police_ssmsi ORDER BY code_commune",
    )
    vintages = (2023, 2022) if shape.startswith("2025") else (2021, 2020)
    assert rows == [
        ("01001", None, None, False, 832, 372.4286, *vintages, 1.2345678),
        ("33318", 355, 10.2266504, True, 67339, 34713.5, *vintages, None),
    ]
    assert query(home, "SELECT lignes_lues, lignes_chargees, statut FROM raw.livraisons") == [
        (2, 2, "chargee")
    ]


def test_warehouse_of_an_earlier_version_keeps_its_rows_and_takes_decimals(home: Home) -> None:
    """Dwellings were BIGINT before: the next ingestion widens the column in place."""
    home.warehouse_db.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(home.warehouse_db)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(
            "CREATE TABLE raw.police_ssmsi (livraison_id BIGINT, ligne BIGINT, "
            "code_commune VARCHAR, logements BIGINT)"
        )
        con.execute("INSERT INTO raw.police_ssmsi VALUES (1, 2, '06088', 1234)")
    connect(home).close()
    name, text = PUBLISHED_SHAPES["2025+ bare decimal point"]
    (home.inbox_family("police") / name).write_text(text, encoding="utf-8")
    ingest(home, "police")
    assert query(
        home,
        "SELECT code_commune, logements, edition FROM raw.police_ssmsi ORDER BY code_commune",
    ) == [("01001", 372.4286, 2025), ("06088", 1234.0, None), ("33318", 34713.5, 2025)]
    assert query(
        home,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'police_ssmsi' AND column_name = 'logements'",
    ) == [("DOUBLE",)]


@pytest.mark.parametrize("scale", ["tiny", "small"])
def test_generated_ssmsi_files_have_the_published_shape_and_load_whole(
    home: Home, scale: str
) -> None:
    """The generator writes what SSMSI publishes (decimal dwellings in both schemas, every
    field quoted since 2025), so the tests exercise the real shape, not an easier one."""
    from pipelines.generate.common import SCALES, month_range
    from pipelines.generate.police import write_ssmsi
    from pipelines.generate.territory import build_territory

    months = month_range(*SCALES[scale].default_months)
    territory = build_territory(SCALES[scale], 42, months)
    write_ssmsi(home.inbox, 42, territory.communes, territory.residences, months)
    files = sorted(home.inbox_family("police").iterdir())
    assert [f.name.endswith(".csv.gz") for f in files] == [True, False]
    new = gzip.decompress(files[0].read_bytes()).decode("utf-8").splitlines()
    old = files[1].read_text(encoding="utf-8").splitlines()
    assert all(line.startswith('"') and line.endswith('"') for line in new)
    assert any(';"NA";' in line for line in new) and any(";NA;" in line for line in old)
    report = ingest(home, "police")
    assert report.rejected == [] and report.blocked == []
    assert query(home, "SELECT count(*) FROM raw.quarantaine") == [(0,)]
    assert query(home, "SELECT sum(lignes_chargees) FROM raw.livraisons") == [
        (len(new) - 1 + len(old) - 1,)
    ]
    # Decimal dwelling counts in both schemas, decimal comma in both files.
    by_schema = dict(
        query(
            home,
            "SELECT schema_ssmsi, avg((logements <> floor(logements))::int) "
            "FROM raw.police_ssmsi GROUP BY ALL",
        )
    )
    assert by_schema.keys() == {"2025+", "<=2024"}
    assert all(share > 0.5 for share in by_schema.values()), by_schema
    # Census vintages on four digits whatever the schema wrote (`21` in the old one).
    assert query(
        home,
        "SELECT min(population_millesime), max(population_millesime), "
        "min(logements_millesime), max(logements_millesime) FROM raw.police_ssmsi",
    ) == [(2021, 2022, 2020, 2021)]


def test_a_file_judged_in_slices_loads_as_it_does_whole(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A national SSMSI file is judged in slices of rows (pipelines/ingest/validate.py,
    SLICE_ROWS): the rows loaded, the quarantine with its reasons and lines, and the
    ledger's remarks are those of the file judged whole."""
    rows = []
    for i in range(11):
        code = f"{4001 + i}" if i % 4 == 0 else f"{13001 + i:05d}"  # 4-digit codes padded
        count = "x" if i == 3 else "" if i in (5, 8) else str(10 + i)  # bad, then missing
        rows.append(f"{code};2024;Cambriolages de logement;logement;{count};4.9;diff;800;2021;;;;")
    name = "donnee-comm-data.gouv-2025-geographie2025.csv"
    sliced = Home.at(tmp_path / "sliced").ensure()
    for where in (home, sliced):
        write_delimited(where.inbox_family("police") / name, NEW_HEADER, rows)

    def loaded(where: Home) -> list[list[tuple]]:
        return [
            query(where, "SELECT * EXCLUDE (livraison_id) FROM raw.police_ssmsi ORDER BY ligne"),
            query(where, "SELECT ligne, regle, motif, contenu FROM raw.quarantaine ORDER BY 1"),
            query(where, "SELECT lignes_lues, lignes_chargees, remarques FROM raw.livraisons"),
        ]

    ingest(home, "police")
    monkeypatch.setattr(validate, "SLICE_ROWS", 3)
    ingest(sliced, "police")
    whole = loaded(home)
    assert [len(part) for part in whole] == [8, 3, 1]
    assert "complété" in whole[2][0][2]
    assert loaded(sliced) == whole
