"""Deliveries in the shape partners really send them, not an easier one (docs/deliveries.md).

Each test writes a file the way a partner's tool writes it (French Excel, Excel's "CSV UTF-8",
an information system's export, R, a hand-kept workbook, INSEE's reference file) and asserts
what is loaded, what is quarantined (with the row number a spreadsheet shows) and the typed
values. The last tests run the generator's own writers and its tiny output through the loader.
"""

from __future__ import annotations

import csv
import io
import pathlib
from datetime import date, datetime

import polars as pl
import pytest
import xlsxwriter

from pipelines.ingest.reader import read_delivery
from pipelines.ingest.specs import ALLOCATION_KINDS, REFERENCE_KINDS
from pipelines.ingest.validate import validate
from pipelines.settings import Home
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

T0 = 1_735_000_000


def _csv(rows: list[list[object]], sep: str, eol: str) -> str:
    """Records as a spreadsheet writes them: quoted only when needed, quotes doubled."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator=eol, quoting=csv.QUOTE_MINIMAL)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buf.getvalue()


def _deliver(
    path: pathlib.Path, text: str, encoding: str = "utf-8", bom: bool = False
) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path


def _ledger(home: Home, name: str) -> tuple:
    return query(
        home,
        "SELECT lignes_lues, lignes_chargees, lignes_quarantaine, dialecte FROM raw.livraisons "
        "WHERE fichier LIKE ?",
        [f"%/{name}"],
    )[0]


# -- free text: separators, double quotes, line breaks, typographic characters ---------------

NAMES = [
    'Résidence "Les Cèdres"',
    "Les Pins, bât. A ; tranche 2",
    "Cœur d’îlot « Sud »…",
    "Le Hameau\nEntrée B",
]


@pytest.mark.parametrize(
    ("sep", "encoding", "bom", "eol"),
    [
        (";", "cp1252", False, "\r\n"),  # French Excel
        (",", "utf-8", True, "\r\n"),  # Excel "CSV UTF-8"
        (";", "utf-8", False, "\n"),  # information system
        (",", "utf-8", False, "\n"),  # R / Python
    ],
)
def test_quoted_free_text_in_every_csv_dialect(
    home: Home, sep: str, encoding: str, bom: bool, eol: str
) -> None:
    """Separators, doubled quotes and line breaks (LF or CRLF) inside quoted fields are read as
    text; a record spanning several lines is one row, numbered as a spreadsheet shows it."""
    folder = home.inbox_family("landlord")
    header = PATRIMOINE_HEADER.split(";")
    stock_rows = [
        [
            f"L{i}",
            f"R{i}",
            name,
            "13055",
            "",
            "1990",
            "3",
            "65,5" if sep == ";" else "65.5",
            "PLUS",
            "occupe",
        ]
        for i, name in enumerate(NAMES, start=1)
    ]
    _deliver(
        folder / "HMP_patrimoine_2025.csv", _csv([header, *stock_rows], sep, eol), encoding, bom
    )
    incidents = [
        INCIDENTS_HEADER.split(";"),
        # row 2: a comment with the separator, quotes and a CRLF line break
        [
            "I1",
            "2025-01-03",
            "R1",
            "",
            "DEG",
            "hall",
            "2",
            "",
            "oui",
            "",
            "",
            'Porte forcée ; voir "rapport"\r\nRelance le lendemain',
        ],
        # row 3: commas, guillemets, an ellipsis and an LF line break
        [
            "I2",
            "2025-01-04",
            "R2",
            "",
            "DEG",
            "cave",
            "3",
            "",
            "non",
            "",
            "",
            "Tags, « encore »…\nsuite",
        ],
        # row 4: gravite out of range -> quarantined as row 4 (line 6 of the text file)
        ["I3", "2025-01-05", "R3", "", "DEG", "hall", "9", "", "non", "", "", "Hall occupé"],
        ["I4", "2025-01-06", "R4", "", "DEG", "hall", "1", "", "non", "", "", ""],
    ]
    _deliver(folder / "HMP_incidents_2025-01.csv", _csv(incidents, sep, eol), encoding, bom)
    ingest(home, "landlord")
    assert _ledger(home, "HMP_patrimoine_2025.csv")[:3] == (4, 4, 0)
    assert query(home, "SELECT nom_residence FROM raw.landlord_patrimoine ORDER BY ligne") == [
        (n,) for n in NAMES
    ]
    assert _ledger(home, "HMP_incidents_2025-01.csv")[:3] == (4, 3, 1)
    assert query(home, "SELECT ligne, regle FROM raw.quarantaine") == [(4, "hors_bornes")]
    assert query(
        home, "SELECT id_incident, gravite, lieu FROM raw.landlord_incidents ORDER BY ligne"
    ) == [("I1", 2, "hall"), ("I2", 3, "cave"), ("I4", 1, "hall")]


def test_reference_names_with_quotes_and_separators(home: Home) -> None:
    folder = home.inbox_family("reference")
    bailleurs = [
        ["code_bailleur", "nom_bailleur", "siren"],
        ["AZURLOG", 'SA d’HLM "Azurlog Résidences"', "426804753"],
        ["HMP", "Habitat Marseille Provence ; OPH", ""],
    ]
    _deliver(folder / "bailleurs.csv", _csv(bailleurs, ";", "\n"))
    mapping = [
        ["code_source", "libelle_source", "categorie"],
        ["DEG-01", "Tags, graffitis ; inscriptions", "degradation"],
        ["OCC-01", 'Squat "parties communes"', "occupation_hall"],
    ]
    _deliver(folder / "correspondance_categories_HMP.csv", _csv(mapping, ";", "\n"))
    report = ingest(home, "reference")
    assert report.rejected == [] and report.rows_quarantined == 0
    assert query(home, "SELECT nom_bailleur FROM raw.reference_bailleurs ORDER BY ligne") == [
        ('SA d’HLM "Azurlog Résidences"',),
        ("Habitat Marseille Provence ; OPH",),
    ]
    assert query(
        home, "SELECT libelle_source FROM raw.reference_correspondance_categories ORDER BY ligne"
    ) == [("Tags, graffitis ; inscriptions",), ('Squat "parties communes"',)]


# -- dates with a time of day, amounts with thousands separators ------------------------------


def test_dates_with_a_time_of_day(home: Home) -> None:
    """Information-system exports: the date is kept, the time dropped; a malformed time or a
    time zone is a date the partner must fix."""
    stock(home)
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.csv",
        INCIDENTS_HEADER,
        [
            "I1;15/01/2025 14:32;R1;;DEG;hall;2;15/01/2025 09:05;oui;;;",  # closed earlier that day
            "I2;2025-01-15T14:32:00;R1;;DEG;hall;2;2025-01-16T08:00:00;oui;;;",
            "I3;2025-01-15 14:32:00.000;R1;;DEG;hall;2;;oui;;;",
            "I4;15/01/2025 14:32:59;R1;;DEG;hall;2;;oui;;;",
            "I5;2025-01-15T25:00:00;R1;;DEG;hall;2;;oui;;;",  # row 6: no such hour
            "I6;2025-01-15T14:32:00Z;R1;;DEG;hall;2;;oui;;;",  # row 7: a time zone
            "I7;15/01/2025 n/a;R1;;DEG;hall;2;;oui;;;",  # row 8: not a time
        ],
        mtime=T0,
    )
    ingest(home, "landlord")
    assert query(
        home,
        "SELECT id_incident, date_signalement, date_cloture FROM raw.landlord_incidents "
        "ORDER BY ligne",
    ) == [
        ("I1", date(2025, 1, 15), date(2025, 1, 15)),
        ("I2", date(2025, 1, 15), date(2025, 1, 16)),
        ("I3", date(2025, 1, 15), None),
        ("I4", date(2025, 1, 15), None),
    ]
    rows = query(home, "SELECT ligne, regle, motif FROM raw.quarantaine ORDER BY ligne")
    assert [r[:2] for r in rows] == [
        (6, "date_invalide"),
        (7, "date_invalide"),
        (8, "date_invalide"),
    ]
    assert rows[0][2] == (
        "date_signalement: '2025-01-15T25:00:00' n'est pas une date "
        "(AAAA-MM-JJ ou JJ/MM/AAAA, heure facultative)"
    )


@pytest.mark.parametrize(
    ("encoding", "space"),
    [("cp1252", "\u00a0"), ("utf-8", "\u202f"), ("utf-8", " ")],
    ids=["no-break space (Excel, cp1252)", "narrow no-break space (fr-FR)", "space"],
)
def test_amounts_with_thousands_separators(home: Home, encoding: str, space: str) -> None:
    stock(home)
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.csv",
        INCIDENTS_HEADER,
        [
            f"I1;03/01/2025;R1;;DEG;hall;2;;oui;1{space}250,50;;",
            f"I2;03/01/2025;R1;;DEG;hall;2;;oui;12{space}345{space}678,9;;",
            "I3;03/01/2025;R1;;DEG;hall;2;;oui;1.250,50;;",  # points between thousands
            "I4;03/01/2025;R1;;DEG;hall;2;;oui;0,5;;",
            "I5;03/01/2025;R1;;DEG;hall;2;;oui;1,250.50;;",  # row 6: English grouping, ambiguous
            "I6;03/01/2025;R1;;DEG;hall;2;;oui;12,50 €;;",  # row 7: a unit
            f"I7;03/01/2025;R1;;DEG;hall;2;;oui;12{space}34;;",  # row 8: not groups of three
        ],
        encoding=encoding,
        newline="\r\n",
        mtime=T0,
    )
    ingest(home, "landlord")
    assert query(home, "SELECT id_incident, cout_euros FROM raw.landlord_incidents ORDER BY 1") == [
        ("I1", 1250.5),
        ("I2", 12345678.9),
        ("I3", 1250.5),
        ("I4", 0.5),
    ]
    assert query(home, "SELECT ligne, regle FROM raw.quarantaine ORDER BY ligne") == [
        (6, "type_invalide"),
        (7, "type_invalide"),
        (8, "type_invalide"),
    ]


# -- commune codes that a spreadsheet turned into numbers -----------------------------------


def test_commune_codes_lose_no_leading_zero_in_any_commune_column(home: Home) -> None:
    """A 4-digit all-numeric commune code can only be a 5-character code without its leading
    zero: it gets it back in every commune-pattern column, and the delivery says how many."""
    folder = home.inbox_family("reference")
    write_delimited(
        folder / "epci_2025.csv",
        "CODGEO;LIBGEO;EPCI;LIBEPCI;DEP;REG",
        [
            "6088;Nice;200030195;Métropole Nice Côte d'Azur;06;93",
            "1001;L'Abergement-Clémenciat;200069193;CC de la Dombes;01;84",
            "13055;Marseille;200054807;Métropole d'Aix-Marseille-Provence;13;93",
            "2A004;Ajaccio;242010056;CA du Pays Ajaccien;2A;94",
            "608;Trop court;200030195;X;06;93",  # row 6: 3 digits, not a truncated code
        ],
    )
    write_delimited(
        folder / "qpv_2024.csv",
        "code_qpv;nom_qpv;code_commune;population",
        ["QN00601M;Les Moulins;6088;8 200"],
    )
    ingest(home, "reference")
    assert query(home, "SELECT codgeo FROM raw.reference_epci ORDER BY ligne") == [
        ("06088",),
        ("01001",),
        ("13055",),
        ("2A004",),
    ]
    assert query(home, "SELECT ligne, regle FROM raw.quarantaine") == [(6, "format_invalide")]
    assert query(home, "SELECT code_commune, population FROM raw.reference_qpv") == [
        ("06088", 8200)
    ]
    # the repair is reported, per column, with the delivery's validation
    raw = read_delivery(folder / "epci_2025.csv")
    epci_kind = next(k for k in REFERENCE_KINDS if k.name == "epci")
    checked = validate(raw, epci_kind, period="2025", key=TEST_KEY.encode())
    assert checked.notes == [
        "CODGEO: 2 code(s) à 4 chiffres complété(s) d'un zéro initial "
        "(code commune saisi comme un nombre, ex. 6088 -> 06088)"
    ]


def test_xlsx_as_spreadsheet_users_leave_it(home: Home) -> None:
    """Numbers in numeric cells, a commune code typed as a number, datetime cells, an empty
    row between records (the next rows keep their sheet row numbers) and rows of spaces below."""
    header = PATRIMOINE_HEADER.split(";")
    path = home.inbox_family("landlord") / "HMP_patrimoine_2025.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("patrimoine")
    sheet.write_row(0, 0, header)
    sheet.write_row(1, 0, ["L1", "R1", "Les Écureuils", 6088, None, 1972, 3, 65.5, 10, "occupe"])
    sheet.write_row(2, 0, ["L2", "R1", "Les Écureuils", 6088, None, 1972, 4, 80, 10, "vacant"])
    # row 4 left empty by the user
    sheet.write_row(4, 0, ["L3", "R2", "Cœur de ville", 13055, None, 1990, 2.0, 45, 50, "occupe"])
    sheet.write_row(5, 0, ["L4", "R2", "Cœur de ville", 13055, None, 1990, 2.5, 45, 50, "occupe"])
    for r in (6, 7):
        sheet.write_string(r, 0, " ")
    workbook.close()
    write_xlsx(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.xlsx",
        INCIDENTS_HEADER,
        [
            [
                "I1",
                datetime(2025, 1, 3, 14, 32),
                "R1",
                None,
                "DEG",
                "hall",
                2,
                datetime(2025, 1, 3, 18, 5),
                "oui",
                1250.5,
                None,
                "Porte\nforcée",
            ]
        ],
    )
    ingest(home, "landlord")
    read, loaded, quarantined, dialect = _ledger(home, "HMP_patrimoine_2025.xlsx")
    assert (read, loaded, quarantined) == (4, 3, 1)
    assert dialect == "xlsx lignes vides ignorées=3"
    # The padded commune codes are said in the ledger, never done silently.
    assert query(
        home,
        "SELECT remarques FROM raw.livraisons WHERE fichier = 'landlord/HMP_patrimoine_2025.xlsx'",
    ) == [
        (
            "DEPCOM: 2 code(s) à 4 chiffres complété(s) d'un zéro initial "
            "(code commune saisi comme un nombre, ex. 6088 -> 06088)",
        )
    ]
    # 2.5 rooms: quarantined as sheet row 6 (the empty row 4 keeps its number)
    assert query(home, "SELECT ligne, regle FROM raw.quarantaine") == [(6, "type_invalide")]
    assert query(
        home,
        "SELECT ligne, depcom, construct, nbpiece, surfhab, finan FROM raw.landlord_patrimoine "
        "ORDER BY ligne",
    ) == [
        (2, "06088", 1972, 3, 65.5, "10"),
        (3, "06088", 1972, 4, 80.0, "10"),
        (5, "13055", 1990, 2, 45.0, "50"),
    ]
    assert query(
        home,
        "SELECT date_signalement, date_cloture, gravite, cout_euros FROM raw.landlord_incidents",
    ) == [(date(2025, 1, 3), date(2025, 1, 3), 2, 1250.5)]


# -- rows that are not data ----------------------------------------------------------------


def test_empty_rows_are_skipped_not_counted_and_keep_row_numbers(home: Home) -> None:
    stock(home)
    text = "\r\n".join(
        [
            INCIDENTS_HEADER,
            "I1;03/01/2025;R1;;DEG;hall;2;;oui;;;",
            ";;;;;;;;;;;",  # row 3: separators only (Excel)
            "",  # row 4: a blank line
            "I2;03/01/2025;R1;;DEG;hall;7;;oui;;;",  # row 5: quarantined as row 5
            "  ;NA; ;;;;;;;;;",  # row 6: blanks and NA only
            ";;;;;;;;;;;",
            ";;;;;;;;;;;",
            "",  # and a final blank line
        ]
    )
    _deliver(home.inbox_family("landlord") / "HMP_incidents_2025-01.csv", text + "\r\n", "cp1252")
    _deliver(
        home.inbox_family("landlord") / "HMP_incidents_2025-02.csv",
        INCIDENTS_HEADER + "\r\n;;;;;;;;;;;\r\n;;;;;;;;;;;\r\n",
    )
    ingest(home, "landlord")
    read, loaded, quarantined, dialect = _ledger(home, "HMP_incidents_2025-01.csv")
    assert (read, loaded, quarantined) == (2, 1, 1)
    assert dialect == "csv utf-8 sep=; lignes vides ignorées=6"
    assert query(home, "SELECT ligne, regle FROM raw.quarantaine") == [(5, "hors_bornes")]
    # a header and rows of separators: a valid delivery with no incident
    assert _ledger(home, "HMP_incidents_2025-02.csv")[:3] == (0, 0, 0)


# -- INSEE's EPCI composition file ------------------------------------------------------------

EPCI_HEADER = "CODGEO;LIBGEO;EPCI;LIBEPCI;DEP;REG"


def test_epci_file_with_communes_outside_any_epci(home: Home) -> None:
    """INSEE writes ZZZZZZZZZ / Sans objet for the island communes outside any EPCI: loaded as
    no EPCI (NULL); overseas départements on 3 characters, Corsica 2A."""
    write_delimited(
        home.inbox_family("reference") / "epci_2025.csv",
        EPCI_HEADER,
        [
            "85113;L'Île-d'Yeu;ZZZZZZZZZ;Sans objet;85;52",
            "22016;Île-de-Bréhat;ZZZZZZZZZ;Sans objet;22;53",
            "97411;Saint-Denis;249740119;CA Intercommunale du Nord de la Réunion;974;04",
            "2A004;Ajaccio;242010056;CA du Pays Ajaccien;2A;94",
            "29155;Ouessant;ZZZZZZZZ;Sans objet;29;53",  # row 6: 8 Z, not INSEE's code
            "29083;Île-de-Sein;;Sans objet;29;53",  # row 7: no EPCI code at all
        ],
    )
    write_delimited(
        home.inbox_family("reference") / "seuils_q1_2025.csv",
        "code_epci;annee;seuil_q1_euros_uc",
        ["ZZZZZZZZZ;2025;9000", "249740119;2025;8 750,5"],  # row 2: no threshold for "no EPCI"
    )
    ingest(home, "reference")
    assert query(
        home, "SELECT codgeo, epci, libepci, dep FROM raw.reference_epci ORDER BY ligne"
    ) == [
        ("85113", None, "Sans objet", "85"),
        ("22016", None, "Sans objet", "22"),
        ("97411", "249740119", "CA Intercommunale du Nord de la Réunion", "974"),
        ("2A004", "242010056", "CA du Pays Ajaccien", "2A"),
    ]
    rows = query(home, "SELECT fichier, ligne, regle FROM raw.quarantaine ORDER BY 1, 2")
    assert rows == [
        ("reference/epci_2025.csv", 6, "format_invalide"),
        ("reference/epci_2025.csv", 7, "valeur_manquante"),
        ("reference/seuils_q1_2025.csv", 2, "format_invalide"),
    ]
    assert query(home, "SELECT code_epci, seuil_q1_euros_uc FROM raw.reference_seuils_q1") == [
        ("249740119", 8750.5)
    ]


# -- allocations as the SNE exports them and as they are re-saved ---------------------------


def test_allocations_as_exported_and_resaved(home: Home) -> None:
    folder = home.inbox_family("allocations")
    # SNE: decimal point, cents, empty id_logement and date_signature_bail
    write_delimited(
        folder / "attributions_2025-01.csv",
        ATTRIBUTIONS_HEADER,
        [
            "006230436384T;2025-01-02;;HMP;;13055;QN01301M;26610.69;1;0;non;collectivite;non",
            "006230320550P;2025-01-02;2025-02-07;HMP;R1-004;13055;;31554.00;1;2;DALO;etat;non",
        ],
    )
    # re-saved with French Excel: cp1252, CRLF, JJ/MM/AAAA, thousands, 6088, screen labels
    write_delimited(
        folder / "attributions_2025-02.csv",
        ATTRIBUTIONS_HEADER,
        [
            "006211148219N;01/02/2025;21/03/2025;HMP;;6088;QN00601M;25\u00a0051,00;2;0;Dalo;action_logement;Non",
            "006230138294X;02/02/2025;;HMP;;6004;;2\u00a0710,50;2;1;Prioritaire;etat;Oui",
            ";;;;;;;;;;;;",
        ],
        encoding="cp1252",
        newline="\r\n",
    )
    # through R's write.csv2: strings quoted, NA for missing, decimal comma
    write_delimited(
        folder / "attributions_2025-03.csv",
        '"' + ATTRIBUTIONS_HEADER.replace(";", '";"') + '"',
        [
            '"006231172108H";"2025-03-01";NA;"HMP";NA;"06088";NA;37246,5;2;0;"non";"bailleur";"non"',
        ],
    )
    report = ingest(home, "allocations")
    assert report.rejected == [] and report.rows_quarantined == 0
    assert query(
        home,
        "SELECT date_attribution, date_signature_bail, id_logement, depcom, qpv, "
        "revenu_annuel_euros, menage_prioritaire, relogement_anru "
        "FROM raw.allocations_attributions ORDER BY date_attribution, ligne",
    ) == [
        (date(2025, 1, 2), None, None, "13055", "QN01301M", 26610.69, "non", False),
        (date(2025, 1, 2), date(2025, 2, 7), "R1-004", "13055", None, 31554.0, "DALO", False),
        (date(2025, 2, 1), date(2025, 3, 21), None, "06088", "QN00601M", 25051.0, "DALO", False),
        (date(2025, 2, 2), None, None, "06004", None, 2710.5, "prioritaire", True),
        (date(2025, 3, 1), None, None, "06088", None, 37246.5, "non", False),
    ]
    assert _ledger(home, "attributions_2025-02.csv")[3] == (
        "csv windows-1252 sep=; lignes vides ignorées=1"
    )
    raw = read_delivery(folder / "attributions_2025-02.csv")
    checked = validate(raw, ALLOCATION_KINDS[0], period="2025-02", key=TEST_KEY.encode())
    assert checked.notes and checked.notes[0].startswith("DEPCOM: 2 code(s)")


# -- the generator's writers and output, through the loader ----------------------------------


def _landlord_dialects() -> list:
    from pipelines.generate import writers as w

    return [
        w.SEMICOLON_CP1252,
        w.EXCEL_CP1252,
        w.COMMA_BOM,
        w.SEMICOLON_BOM_NA,
        w.COMMA_UTF8_NA_UPPER,
        w.SEMICOLON_UTF8_FR,
        w.XLSX,
        w.XLSX_TEXT_DATES,
    ]


@pytest.mark.parametrize("dialect", _landlord_dialects(), ids=lambda d: d.name)
def test_generator_dialects_round_trip_through_the_loader(home: Home, dialect) -> None:
    """Awkward values written by the generator's writers in every landlord dialect load back
    exactly (names, codes, dates, amounts), with nothing quarantined."""
    from pipelines.generate import writers as w
    from pipelines.generate.incidents import export_incidents

    names = ['Résidence "Les Cèdres"', "Les Pins, bât. A", "Cœur d’îlot ; « Sud »…"]
    patrimoine = pl.DataFrame(
        {
            "id_logement": ["L1", "L2", "L3"],
            "id_residence": ["R1", "R2", "R3"],
            "nom_residence": names,
            "DEPCOM": ["06088", "13055", "2A004"],
            "QPV": ["QN00601M", None, None],
            "CONSTRUCT": [1972, 1990, 2001],
            "NBPIECE": [3, 4, 2],
            "SURFHAB": [65.5, 80.0, 45.25],
            "FINAN": ["10", "50", "51"],
            "statut": ["occupe", "vacant", "occupe"],
        }
    )
    incidents = pl.DataFrame(
        {
            "id_incident": ["INC2025-000001", "INC2025-000002", "INC2025-000003"],
            "date_signalement": [date(2025, 1, 3), date(2025, 1, 15), date(2025, 1, 31)],
            "id_residence": ["R1", "R2", "R3"],
            "id_logement": ["L1", None, None],
            "code_categorie": ["DEG-01", "OCC-01", "INC-01"],
            "lieu": ["hall", "cave", "parking"],
            "gravite": [2, 3, 4],
            "date_cloture": [date(2025, 1, 3), None, date(2025, 2, 10)],
            "plainte_deposee": ["oui", "non", "oui"],
            "cout_euros": [1250.5, None, 1234567.89],
            "id_locataire": [None, None, "L0000001"],
            "commentaire": ['Porte forcée ; "encore"\nRelance', None, "Feu, « gros »…"],
        }
    )
    folder = home.inbox_family("landlord")
    w.write_table(patrimoine, folder / f"HMP_patrimoine_2025{dialect.extension}", dialect)
    w.write_table(
        export_incidents(incidents, dialect, salt=1),
        folder / f"HMP_incidents_2025-01{dialect.extension}",
        dialect,
    )
    report = ingest(home, "landlord")
    assert report.rejected == [] and report.rows_quarantined == 0
    assert report.rows_read == 6
    assert query(
        home,
        "SELECT nom_residence, depcom, qpv, construct, nbpiece, surfhab, finan "
        "FROM raw.landlord_patrimoine ORDER BY ligne",
    ) == [
        (names[0], "06088", "QN00601M", 1972, 3, 65.5, "10"),
        (names[1], "13055", None, 1990, 4, 80.0, "50"),
        (names[2], "2A004", None, 2001, 2, 45.25, "51"),
    ]
    assert query(
        home,
        "SELECT date_signalement, date_cloture, gravite, cout_euros, plainte_deposee "
        "FROM raw.landlord_incidents ORDER BY ligne",
    ) == [
        (date(2025, 1, 3), date(2025, 1, 3), 2, 1250.5, True),
        (date(2025, 1, 15), None, 3, None, False),
        (date(2025, 1, 31), date(2025, 2, 10), 4, 1234567.89, True),
    ]


def test_generated_tiny_loads_with_exactly_the_injected_warts(home: Home) -> None:
    """Everything the generator writes for tiny in the reference, landlord and allocation
    families loads; only the four warts injected on purpose are quarantined (a gravity of 5,
    a closure before the report, an incident sent twice, one dated in the previous month)."""
    from pipelines.generate import generate

    counts = generate("tiny", 7, home.inbox)
    rules: list[str] = []
    for family in ("reference", "landlord", "allocations"):
        report = ingest(home, family)
        assert report.rejected == [] and report.blocked == [], family
        assert report.rows_read == counts[f"{family}_rows"], family
        assert report.rows_read == report.rows_loaded + report.rows_quarantined
    rules = [r[0] for r in query(home, "SELECT regle FROM raw.quarantaine ORDER BY regle")]
    assert rules == [
        "date_hors_periode",
        "dates_incoherentes",
        "doublon_dans_fichier",
        "hors_bornes",
    ]
    # commune codes typed as numbers by Excel are back to 5 characters everywhere
    assert query(
        home,
        "SELECT count(*) FROM (SELECT depcom FROM raw.landlord_patrimoine UNION ALL "
        "SELECT depcom FROM raw.allocations_attributions) WHERE length(depcom) <> 5",
    ) == [(0,)]
    # incomes with cents, labels in any case mapped to the contract's values
    assert query(
        home,
        "SELECT count(*) FILTER (WHERE revenu_annuel_euros <> floor(revenu_annuel_euros)) > 0, "
        "list(DISTINCT menage_prioritaire ORDER BY menage_prioritaire) "
        "FROM raw.allocations_attributions",
    ) == [(True, ["DALO", "non", "prioritaire"])]
    # separator-only rows were skipped and said so
    dialects = [r[0] for r in query(home, "SELECT dialecte FROM raw.livraisons")]
    assert any("lignes vides ignorées" in d for d in dialects)
