"""Both SSMSI schemas, masked rows, editions; police events."""

from __future__ import annotations

import gzip

from pipelines.settings import Home
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
