"""The open-data tables (docs/open-data.md): statistical confidentiality, and the files in
the conventions of French open data (CSV, Parquet, Frictionless data package, README)."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import duckdb
import frictionless
import polars as pl
import pytest

from pipelines import opendata
from pipelines.opendata import (
    MIXITE_COUNTS,
    SEUIL_ATTRIBUTIONS,
    SEUIL_INCIDENTS,
    TOTAL,
    protect_group,
    suppress_long,
    write_open_data,
)

BOM = b"\xef\xbb\xbf"


def recoverable_cells(
    frame: pl.DataFrame, keys: list[str], category: str, count: str
) -> list[tuple]:
    """What an attacker gets from a long table: masked cells pinned down by the published total.

    Knows: every masked cell is >= 1; the `total` row is the sum of the category rows.
    """
    found = []
    for key, group in frame.group_by(keys, maintain_order=True):
        totals = group.filter(pl.col(category) == TOTAL)
        if not totals.height or totals.get_column(count)[0] is None:
            continue
        cells = group.filter(pl.col(category) != TOTAL)
        masked = cells.filter(pl.col(count).is_null())
        if not masked.height:
            continue
        remainder = totals.get_column(count)[0] - cells.get_column(count).drop_nulls().sum()
        if masked.height == 1 or remainder == masked.height:
            found.append((key, masked.get_column(category).to_list(), remainder))
    return found


def assert_no_small_counts(frame: pl.DataFrame, count: str, seuil: int) -> None:
    small = frame.filter(pl.col(count).is_between(1, seuil - 1))
    assert small.height == 0, small


@pytest.mark.parametrize(
    ("values", "masked", "total", "expected_masked", "expected_total_masked"),
    [
        ([3, 20, 40], [True, False, False], 63, [True, True, False], False),  # smallest other cell
        (
            [3, 0, 0],
            [True, False, False],
            3,
            [True, False, False],
            True,
        ),  # only zeros: mask the total
        ([1, 1, 30], [True, True, False], 32, [True, True, True], False),  # 1 + 1 = 2 masked cells
        ([2, 3, 30], [True, True, False], 35, [True, True, False], False),  # already safe
        ([12, 30], [False, False], 42, [False, False], False),  # nothing masked
    ],
)
def test_protect_group(values, masked, total, expected_masked, expected_total_masked) -> None:
    assert protect_group(values, masked, total, False) == (expected_masked, expected_total_masked)


def test_random_tables_leak_nothing() -> None:
    """Many random groups: after suppression no small count is published and no masked cell
    is recoverable from its group's total."""
    rng = random.Random(20261126)
    rows = []
    for territory in range(400):
        cells = [rng.choice([0, 0, 1, 2, 3, 4, 5, 8, 13, 40]) for _ in range(rng.randint(1, 8))]
        for i, value in enumerate(cells):
            rows.append((f"T{territory}", f"c{i}", value))
        rows.append((f"T{territory}", TOTAL, sum(cells)))
    frame = pl.DataFrame(rows, schema=["territoire", "categorie", "n"], orient="row")
    protected = suppress_long(frame, ["territoire"], "categorie", "n", SEUIL_INCIDENTS)
    published = protected.with_columns(
        pl.when(pl.col("secret")).then(None).otherwise(pl.col("n")).alias("n")
    )
    assert protected.height == frame.height
    assert_no_small_counts(published, "n", SEUIL_INCIDENTS)
    assert recoverable_cells(published, ["territoire"], "categorie", "n") == []
    # The attack does find cells when only primary suppression is applied.
    naive = frame.with_columns(
        pl.when(pl.col("n").is_between(1, 4)).then(None).otherwise(pl.col("n")).alias("n")
    )
    assert recoverable_cells(naive, ["territoire"], "categorie", "n")


def check_open_directory(folder: Path) -> None:
    """Every open table of a publication: no small count, nothing recoverable."""
    for niveau in ("commune", "epci", "departement"):
        frame = pl.read_parquet(folder / f"incidents_{niveau}_annee.parquet")
        assert_no_small_counts(frame, "n_incidents", SEUIL_INCIDENTS)
        assert (
            frame.filter(
                pl.col("secret") & pl.col("taux_annualise_pour_1000_logements").is_not_null()
            ).height
            == 0
        )
        assert (
            recoverable_cells(frame, ["code_territoire", "annee"], "categorie", "n_incidents") == []
        )
    events = pl.read_parquet(folder / "evenements_departement_annee.parquet")
    assert_no_small_counts(events, "n_evenements", SEUIL_INCIDENTS)
    mix = pl.read_parquet(folder / "mixite_epci_annee.parquet")
    for column in MIXITE_COUNTS:
        assert_no_small_counts(mix, column, SEUIL_ATTRIBUTIONS)
    # n_attributions = hors QPV + QPV: exactly one masked part under a published total leaks.
    one_part_masked = mix.filter(
        pl.col("n_attributions").is_not_null()
        & (pl.col("n_attributions_hors_qpv").is_null() ^ pl.col("n_attributions_qpv").is_null())
    )
    assert one_part_masked.height == 0
    # A rate, shortfall or compliance flag next to a masked count would give it away.
    for derived, sources in {
        "taux_q1_hors_qpv": ["n_q1_hors_qpv", "n_attributions_hors_qpv"],
        "manque_q1_hors_qpv": ["n_q1_hors_qpv", "n_attributions_hors_qpv"],
        "conforme_hors_q1_qpv": ["n_hors_q1_qpv", "n_attributions_qpv"],
    }.items():
        leaks = mix.filter(
            pl.col(derived).is_not_null() & pl.any_horizontal(pl.col(s).is_null() for s in sources)
        )
        assert leaks.height == 0, derived
    csv = (folder / "mixite_epci_annee.csv").read_text(encoding="utf-8-sig").splitlines()
    assert csv[0].startswith("code_epci;annee;n_attributions")
    check_open_formats(folder)


def check_open_formats(folder: Path) -> None:
    """The package validates, every CSV is in the French conventions and holds the values of
    its Parquet twin, every column is described (called on the real publication too)."""
    report = frictionless.validate(str(folder / "datapackage.json"))
    assert report.valid, report.flatten(["title", "message"])
    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    assert package["licenses"][0]["name"] == "etalab-2.0"
    parquets = sorted(p.stem for p in folder.glob("*.parquet"))
    assert sorted(r["path"].removesuffix(".csv") for r in package["resources"]) == parquets
    for resource in package["resources"]:
        name = resource["path"].removesuffix(".csv")
        parquet = pl.read_parquet(folder / resource["parquet"]["path"])
        fields = resource["schema"]["fields"]
        assert [f["name"] for f in fields] == parquet.columns
        for f in fields:
            assert f.get("title") and f.get("description"), f"{name}.{f['name']} undescribed"
        raw = (folder / resource["path"]).read_bytes()
        assert raw.startswith(BOM), name
        assert raw[len(BOM) :].decode("utf-8").splitlines()[0] == ";".join(parquet.columns)
        # Read back through the declared schema: the values of the Parquet file.
        rows = frictionless.Resource(resource, basepath=str(folder)).read_rows()
        assert len(rows) == parquet.height == resource["lignes"], name
        for row, expected in zip(rows, parquet.iter_rows(named=True), strict=True):
            actual = {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}
            assert actual == expected, name
        # Parquet types: codes text, counts integers, rates doubles, flags booleans.
        dtypes = {"string": [pl.String], "integer": [pl.Int32, pl.Int64]}
        dtypes |= {"number": [pl.Float64], "boolean": [pl.Boolean]}
        text = pl.read_csv(folder / resource["path"], separator=";", infer_schema=False)
        for f in fields:
            assert parquet.schema[f["name"]] in dtypes[f["type"]], (name, f["name"])
            if f["type"] == "number":  # decimal comma, never a point
                values = text.get_column(f["name"]).drop_nulls()
                assert not values.str.contains(".", literal=True).any(), (name, f["name"])
                fractional = parquet.get_column(f["name"]).drop_nulls()
                if (fractional != fractional.round(0)).any():
                    assert values.str.contains(",", literal=True).any(), (name, f["name"])


# --- the files, on a publication written here ------------------------------------------


def write_publication(path: Path) -> None:
    """A publication file with the tables open data reads: codes with leading zeros and
    Corsica's letters, small counts to mask, fractional rates, NULLs."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            """
            CREATE TABLE indicateurs_incidents_annee AS
            SELECT * FROM (VALUES
                ('commune', '06088', 2024, 'degradation', 2::BIGINT, 0.4567),
                ('commune', '06088', 2024, 'vol', 3::BIGINT, 0.5),
                ('commune', '06088', 2024, 'bruit', 30::BIGINT, 6.25),
                ('commune', '06088', 2024, 'total', 35::BIGINT, 7.2067),
                ('commune', '2A004', 2024, 'total', 0::BIGINT, NULL::DOUBLE),
                ('epci', '200039915', 2024, 'total', 32::BIGINT, 1234.5),
                ('departement', '06', 2024, 'total', 32::BIGINT, 0.1),
                ('departement', '2A', 2024, 'total', 7::BIGINT, 1.0)
            ) AS t(niveau, code_territoire, annee, categorie, n_incidents,
                   taux_annualise_pour_1000_logements)
            """
        )
        con.execute(
            """
            CREATE TABLE evenements_police_mois AS
            SELECT * FROM (VALUES
                ('departement', '06', DATE '2024-01-01', 'intervention_police', 3::BIGINT),
                ('departement', '06', DATE '2024-02-01', 'intervention_police', 4::BIGINT),
                ('departement', '06', DATE '2024-01-01', 'total', 3::BIGINT),
                ('departement', '06', DATE '2024-02-01', 'total', 4::BIGINT),
                ('commune', '06088', DATE '2024-01-01', 'total', 3::BIGINT)
            ) AS t(niveau, code_territoire, mois, type_evenement, n_evenements)
            """
        )
        con.execute(
            """
            CREATE TABLE indicateurs_mixite_epci_annee AS
            SELECT * FROM (VALUES
                ('200039915', 2024, 40::BIGINT, 30::BIGINT, 7::BIGINT, 7 / 30, 25.0, 1::BIGINT,
                 false, 10::BIGINT, 6::BIGINT, 0.6, 50.0, 0::BIGINT, true, 12::BIGINT, 0.3),
                ('200039916', 2024, 0::BIGINT, 0::BIGINT, 0::BIGINT, NULL, 22.5, 0::BIGINT,
                 NULL, 0::BIGINT, 0::BIGINT, NULL, 50.0, 0::BIGINT, NULL, 0::BIGINT, NULL)
            ) AS t(code_epci, annee, n_attributions, n_attributions_hors_qpv, n_q1_hors_qpv,
                   taux_q1_hors_qpv, objectif_q1_hors_qpv_pct, manque_q1_hors_qpv,
                   conforme_q1_hors_qpv, n_attributions_qpv, n_hors_q1_qpv, taux_hors_q1_qpv,
                   objectif_hors_q1_qpv_pct, manque_hors_q1_qpv, conforme_hors_q1_qpv,
                   n_menages_prioritaires, taux_menages_prioritaires)
            """
        )
        con.execute(
            """
            CREATE TABLE publication AS
            SELECT '20260101T000000000Z' AS publication_id,
                   TIMESTAMP '2026-01-01 00:00:00' AS publiee_le,
                   DATE '2024-01-01' AS periode_debut, DATE '2024-12-31' AS periode_fin
            """
        )


@pytest.fixture(scope="module")
def open_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("open")
    write_publication(root / "publication.duckdb")
    write_open_data(root / "publication.duckdb", root / "open")
    return root / "open"


def test_open_files_validate_and_match_parquet(open_folder: Path) -> None:
    check_open_formats(open_folder)
    check_open_directory(open_folder)
    assert (open_folder / "README.md").exists()


def test_csv_in_french_conventions(open_folder: Path) -> None:
    raw = (open_folder / "incidents_commune_annee.csv").read_bytes()
    assert raw.startswith(BOM)
    lines = raw[len(BOM) :].decode("utf-8").splitlines()
    assert (
        lines[0]
        == "code_territoire;annee;categorie;n_incidents;taux_annualise_pour_1000_logements;secret"
    )
    assert "06088;2024;bruit;30;6,25;false" in lines
    assert "06088;2024;degradation;;;true" in lines  # masked: empty fields
    assert "2A004;2024;total;0;;false" in lines  # NULL rate: empty field
    epci = (open_folder / "incidents_epci_annee.csv").read_text(encoding="utf-8-sig")
    assert "200039915;2024;total;32;1234,5;false" in epci  # no thousands separator
    mix = (open_folder / "mixite_epci_annee.csv").read_text(encoding="utf-8-sig").splitlines()
    assert mix[2].startswith("200039916;2024;0;0;0;;22,5;0;;")


def test_codes_keep_their_leading_zeros(open_folder: Path) -> None:
    """Read back as the package declares: codes are text."""
    package = frictionless.Package(str(open_folder / "datapackage.json"))
    codes = {
        name: [row[column] for row in package.get_resource(name).read_rows()]
        for name, column in [
            ("incidents-commune-annee", "code_territoire"),
            ("incidents-departement-annee", "code_territoire"),
            ("evenements-departement-annee", "code_departement"),
        ]
    }
    assert codes["incidents-commune-annee"][:1] == ["06088"]
    assert "2A004" in codes["incidents-commune-annee"]
    assert codes["incidents-departement-annee"] == ["06", "2A"]
    assert set(codes["evenements-departement-annee"]) == {"06"}
    parquet = pl.read_parquet(open_folder / "incidents_departement_annee.parquet")
    assert parquet.get_column("code_territoire").to_list() == ["06", "2A"]


def test_package_metadata(open_folder: Path) -> None:
    package = json.loads((open_folder / "datapackage.json").read_text(encoding="utf-8"))
    assert package["licenses"] == [opendata.LICENCE]
    assert package["version"] == package["publication_id"] == "20260101T000000000Z"
    assert package["created"] == "2026-01-01T00:00:00Z"
    resource = {r["name"]: r for r in package["resources"]}["incidents-commune-annee"]
    assert resource["encoding"] == "utf-8"
    assert resource["dialect"] == {"delimiter": ";"}
    assert resource["secret"]["seuil"] == SEUIL_INCIDENTS
    schema = resource["schema"]
    assert schema["primaryKey"] == ["code_territoire", "annee", "categorie"]
    assert schema["missingValues"] == [""]
    fields = {f["name"]: f for f in schema["fields"]}
    assert fields["code_territoire"]["type"] == "string"
    assert fields["taux_annualise_pour_1000_logements"]["decimalChar"] == ","
    assert "pour 1 000 logements" in fields["taux_annualise_pour_1000_logements"]["description"]
    assert fields["n_incidents"]["secret"] == "secret"
    readme = (open_folder / "README.md").read_text(encoding="utf-8")
    assert "Licence Ouverte" in readme and f"seuil {SEUIL_ATTRIBUTIONS}" in readme


def test_published_columns_take_the_dbt_descriptions() -> None:
    """One home: a published column's description is the dbt one, not a copy."""
    descriptions = opendata.published_descriptions()
    spec = opendata.table_specs()["mixite_epci_annee"]
    column = next(c for c in spec.columns if c.name == "n_q1_hors_qpv")
    published = descriptions["indicateurs_mixite_epci_annee.n_q1_hors_qpv"]
    assert published and opendata.describe(column, 11, descriptions).startswith(published)


def test_a_column_without_description_fails() -> None:
    descriptions = opendata.published_descriptions()
    for name, spec in opendata.table_specs().items():
        for column in spec.columns:
            assert column.title, f"{name}.{column.name} has no title"
            assert opendata.describe(column, spec.seuil, descriptions)
    column = opendata.table_specs()["incidents_commune_annee"].columns[3]
    missing = {k: v for k, v in descriptions.items() if k != column.source}
    with pytest.raises(ValueError, match="no description"):
        opendata.describe(column, SEUIL_INCIDENTS, missing)
    with pytest.raises(ValueError, match="no description"):
        opendata.describe(opendata.Column("x", "X", "texte"), SEUIL_INCIDENTS, descriptions)
