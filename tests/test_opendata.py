"""The open-data tables (docs/open-data.md): statistical confidentiality, and the files in
the conventions of French open data (CSV, Parquet, Frictionless data package, README)."""

from __future__ import annotations

import json
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import duckdb
import frictionless
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from pipelines import disclosure, opendata, processes
from pipelines.disclosure import Hierarchy, LinkedTable, intervals, is_exposed
from pipelines.opendata import (
    MIXITE_COUNTS,
    NIVEAUX_INCIDENTS,
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
    for niveau in NIVEAUX_INCIDENTS:
        if niveau == "qpv" and not (folder / "territoires_qpv.parquet").exists():
            assert not (folder / "incidents_qpv_annee.parquet").exists()
            continue  # a publication without the QPVs' composition publishes no QPV
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
    for name, keys, counts in [
        (
            "gravite_halls_epci_trimestre",
            ["code_epci", "annee", "numero_trimestre"],
            {"niveau_gravite": "n_residences"},
        ),
        (
            "procedures_epci_annee",
            ["code_epci", "annee", "etape"],
            {"motif": "n_procedures"},
        ),
    ]:
        if not (folder / f"{name}.parquet").exists():
            continue
        frame = pl.read_parquet(folder / f"{name}.parquet")
        for category, count in counts.items():
            assert_no_small_counts(frame, count, SEUIL_INCIDENTS)
            assert recoverable_cells(frame, keys, category, count) == []
        if name == "procedures_epci_annee":
            assert_no_small_counts(frame, "n_procedures_injonction_prefet", SEUIL_INCIDENTS)
            assert recoverable_cells(frame, keys, "motif", "n_procedures_injonction_prefet") == []
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
        dtypes |= {"number": [pl.Float64], "boolean": [pl.Boolean], "date": [pl.Date]}
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
                ('departement', '2A', 2024, 'total', 7::BIGINT, 1.0),
                ('ensemble', 'FR', 2024, 'total', 39::BIGINT, 0.2)
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


# --- across tables: the linked-table attacker (docs/open-data.md, contract section 5) ------


def attack(
    folder: Path,
    truth: list[opendata.OpenTable],
    hierarchy: Hierarchy,
    qpvs: disclosure.QpvCommunes | None = None,
) -> list[tuple]:
    """Every masked cell of the open folder whose value the attacker pins down.

    The attacker knows the hierarchy, every published cell of every open table (read from the
    files) and every relation between them, and that a masked cell is at least 1 (the
    contract's attacker). `truth` gives the LP's bookkeeping; published cells must equal it."""
    published = {t.name: pl.read_parquet(folder / f"{t.name}.parquet") for t in truth}
    flagged = []
    for table in truth:
        keys, counts = opendata._LINKED[table.name]
        files = published[table.name]
        assert files.select(keys).equals(table.frame.select(keys)), table.name
        frame = table.frame
        for count in counts:
            hidden = files.get_column(count).is_null() & table.frame.get_column(count).is_not_null()
            shown = files.get_column(count).drop_nulls()
            assert shown.equals(table.frame.get_column(count).filter(~hidden)), table.name
            frame = frame.with_columns(hidden.alias(opendata._flag(table.name, count)))
        flagged.append(opendata.OpenTable(table.name, frame))
    return exposed_cells(opendata.linked_table(flagged, hierarchy, qpvs))


def exposed_cells(linked: LinkedTable, strong: bool = False) -> list[tuple]:
    """Masked cells pinned by the contract's attacker (every published cell and relation) or,
    with `strong`, by one that also knows which masked cells are primary."""
    return [
        (linked.cells[i].key, low, high)
        for i, (low, high) in intervals(linked, strong).items()
        if is_exposed(low, high)
    ]


def incidents_frame(rows: list[tuple[str, int, str, int]], secret: bool = False) -> pl.DataFrame:
    return pl.DataFrame(
        [(c, y, k, n, None if n == 0 else float(n), secret) for c, y, k, n in rows],
        schema=[
            "code_territoire",
            "annee",
            "categorie",
            "n_incidents",
            "taux_annualise_pour_1000_logements",
            "secret",
        ],
        orient="row",
    )


def test_the_attacker_finds_a_recoverable_cell() -> None:
    """A test of the test: commune A's 3 is masked, its EPCI's 23 and commune B's 20 are
    published; every table is safe on its own, the attacker still gets 3."""
    communes = incidents_frame([("A", 2024, "vol", 3), ("B", 2024, "vol", 20)])
    communes = communes.with_columns(pl.col("n_incidents").is_between(1, 4).alias("secret"))
    epci = incidents_frame([("E", 2024, "vol", 23)])
    tables = [
        opendata.OpenTable("incidents_commune_annee", communes),
        opendata.OpenTable("incidents_epci_annee", epci),
    ]
    hierarchy: Hierarchy = {2024: {"A": ("E", None), "B": ("E", None)}}
    found = exposed_cells(opendata.linked_table(tables, hierarchy))
    assert [(key, round(low), round(high)) for key, low, high in found] == [
        (("incidents_commune_annee", "A", 2024, "vol", "n_incidents"), 3, 3)
    ]
    # Two values left (3 or 4 when A + C = 7 with both masked and under 5): not exposed.
    assert not is_exposed(3.0, 4.0) and is_exposed(3.0, 3.9) and is_exposed(2.5, 3.5)
    protected, linked = opendata.protect_linked(tables, hierarchy)
    assert exposed_cells(linked) == []
    assert protected[0].frame.get_column("secret").all()  # B is masked too...
    assert not protected[1].frame.get_column("secret").any()  # ... rather than the EPCI


def france_case() -> tuple[list[opendata.OpenTable], Hierarchy]:
    """Two départements without communes, and France: in 2024 D2's `vol` is a masked 3, and
    France's `vol` would be D1's 40 plus it."""
    departements = incidents_frame(
        [
            ("D1", 2024, "vol", 40),
            ("D2", 2024, "vol", 3),
            ("D1", 2024, "bruit", 20),
            ("D2", 2024, "bruit", 7),
            ("D1", 2024, TOTAL, 60),
            ("D2", 2024, TOTAL, 10),
            ("D1", 2025, "vol", 8),
            ("D1", 2025, TOTAL, 8),
        ]
    ).with_columns(pl.col("n_incidents").is_between(1, 4).alias("secret"))
    france = incidents_frame(
        [
            ("FR", 2024, "vol", 43),
            ("FR", 2024, "bruit", 27),
            ("FR", 2024, TOTAL, 70),
            ("FR", 2025, "vol", 8),
            ("FR", 2025, TOTAL, 8),
        ]
    )
    return [
        opendata.OpenTable("incidents_departement_annee", departements),
        opendata.OpenTable(opendata.FRANCE, france),
    ], {2024: {}, 2025: {}}


def test_france_is_published_where_it_exposes_nothing() -> None:
    """France's `vol` would give D2's masked `vol` back (43 - 40), so it is masked; its
    `total`, the sum of published totals, is published (totals first); its `bruit` is then
    masked too, or the total minus it would give France's `vol`. In 2025 nothing is masked:
    France is published. The attacker here is written apart from the pipeline's model: the
    linked table without France, then France's equations added by hand."""
    tables, hierarchy = france_case()
    protected, linked = opendata.protect_linked(tables, hierarchy)
    shown = {
        (r["annee"], r["categorie"]): r["secret"]
        for r in {t.name: t for t in protected}[opendata.FRANCE].frame.iter_rows(named=True)
    }
    assert shown == {
        (2024, "vol"): True,
        (2024, "bruit"): True,
        (2024, TOTAL): False,
        (2025, "vol"): False,
        (2025, TOTAL): False,
    }
    flagged = [opendata.OpenTable(t.name, t.frame) for t in protected if t.name != opendata.FRANCE]
    attacker = opendata.linked_table(flagged, hierarchy)
    for (annee, categorie), secret in shown.items():
        value = {(r[1], r[2]): r[3] for r in tables[1].frame.iter_rows()}[(annee, categorie)]
        attacker.add(("FR", annee, categorie), value, SEUIL_INCIDENTS, secret)
        departements = [
            ("incidents_departement_annee", d, annee, categorie, "n_incidents")
            for d in ("D1", "D2")
        ]
        attacker.total(("FR", annee, categorie), departements)
    for annee in (2024, 2025):
        parts = [("FR", annee, c) for c in ("vol", "bruit")]
        attacker.total(("FR", annee, TOTAL), parts)
    assert attacker.dropped == 0
    assert exposed_cells(attacker) == []
    # The test of the test: France published whole, the attacker pins D2's `vol`.
    for key in [("FR", 2024, "vol"), ("FR", 2024, "bruit")]:
        attacker.cells[attacker.index[key]].masked = False
    pinned = {key for key, _, _ in exposed_cells(attacker)}
    assert ("incidents_departement_annee", "D2", 2024, "vol", "n_incidents") in pinned
    assert exposed_cells(linked) == []


def write_straddling_publication(path: Path) -> Hierarchy:
    """Three communes, one EPCI straddling départements 06 and 83: each table is safe on its
    own, but commune 06001's 2 is the EPCI's 14 minus the other communes' 6 and 6."""
    write_publication(path)
    rows = []
    counts = {"06001": (2, 30), "06002": (6, 0), "83001": (6, 7)}  # (vol, bruit)
    for code, (vol, bruit) in counts.items():
        rows += [(code, "vol", vol), (code, "bruit", bruit), (code, TOTAL, vol + bruit)]
    epci = [
        ("200000001", k, sum(v[i] for v in counts.values())) for i, k in enumerate(["vol", "bruit"])
    ]
    epci.append(("200000001", TOTAL, sum(n for _, _, n in epci)))
    deps = {"06": ["06001", "06002"], "83": ["83001"]}
    values = []
    for niveau, level in [("commune", rows), ("epci", epci)]:
        values += [(niveau, c, k, n) for c, k, n in level]
    for dep, members in deps.items():
        for i, k in enumerate(["vol", "bruit"]):
            values.append(("departement", dep, k, sum(counts[m][i] for m in members)))
        values.append(("departement", dep, TOTAL, sum(sum(counts[m]) for m in members)))
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM indicateurs_incidents_annee")
        con.executemany(
            "INSERT INTO indicateurs_incidents_annee VALUES (?, ?, 2024, ?, ?, 1.5)", values
        )
    return {2024: {c: ("200000001", c[:2]) for c in counts}}


def test_linked_protection_on_a_straddling_epci(tmp_path: Path) -> None:
    hierarchy = write_straddling_publication(tmp_path / "publication.duckdb")
    # Today's protection within each table leaks across tables...
    with duckdb.connect(str(tmp_path / "publication.duckdb"), read_only=True) as con:
        raw, qpvs = opendata.counted_tables(con)
    assert qpvs is None  # a publication without territoires_qpv: no QPV table
    assert "incidents_qpv_annee" not in {t.name for t in raw}
    old = opendata.linked_table(raw, hierarchy)
    assert any(key[1] == "06001" for key, _, _ in exposed_cells(old))
    # ... the protection across tables does not, read back from the files.
    write_open_data(tmp_path / "publication.duckdb", tmp_path / "open", hierarchy)
    assert attack(tmp_path / "open", raw, hierarchy) == []
    check_open_directory(tmp_path / "open")
    # The hierarchy the publication's counts imply is the one given here (unique here).
    with duckdb.connect(str(tmp_path / "publication.duckdb"), read_only=True) as con:
        assert opendata.publication_hierarchy(con) is None
        assert opendata.infer_hierarchy(con) == hierarchy


CATEGORIES = ["vol", "bruit", "degradation"]


@st.composite
def hierarchies(draw: st.DrawFn) -> tuple[list[opendata.OpenTable], Hierarchy]:
    """Random communes in random EPCIs (which may straddle départements), small counts, and
    France."""
    n = draw(st.integers(2, 10))
    epcis = draw(st.lists(st.sampled_from(["E1", "E2", "E3", None]), min_size=n, max_size=n))
    deps = draw(st.lists(st.sampled_from(["D1", "D2"]), min_size=n, max_size=n))
    values = draw(
        st.lists(
            st.lists(st.sampled_from([0, 0, 1, 2, 3, 4, 5, 6, 9, 20]), min_size=3, max_size=3),
            min_size=n,
            max_size=n,
        )
    )
    communes = [f"C{i}" for i in range(n)]
    hierarchy: Hierarchy = {
        2024: {c: (e, d) for c, e, d in zip(communes, epcis, deps, strict=True)}
    }

    def level(parent: dict[str, str | None]) -> list[tuple[str, int, str, int]]:
        rows = []
        for code in sorted({p for p in parent.values() if p is not None}):
            sums = [
                sum(v[k] for c, v in zip(communes, values, strict=True) if parent[c] == code)
                for k in range(3)
            ]
            rows += [(code, 2024, k, s) for k, s in zip(CATEGORIES, sums, strict=True)]
            rows.append((code, 2024, TOTAL, sum(sums)))
        return rows

    tables = []
    for name, parent in [
        ("commune", {c: c for c in communes}),
        ("epci", dict(zip(communes, epcis, strict=True))),
        ("departement", dict(zip(communes, deps, strict=True))),
        ("ensemble", dict.fromkeys(communes, "FR")),
    ]:
        frame = incidents_frame(level(parent))
        frame = suppress_long(
            frame.drop("secret"),
            ["code_territoire", "annee"],
            "categorie",
            "n_incidents",
            SEUIL_INCIDENTS,
        )
        tables.append(opendata.OpenTable(f"incidents_{name}_annee", frame))
    return tables, hierarchy


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies())
def test_random_hierarchies_leak_nothing(case: tuple[list[opendata.OpenTable], Hierarchy]) -> None:
    tables, hierarchy = case
    protected, linked = opendata.protect_linked(tables, hierarchy)
    assert linked.dropped == 0
    assert exposed_cells(linked) == []
    assert disclosure.protect(linked) == []  # a second pass finds nothing left to do
    for table in protected:  # no small count published, nothing unmasked
        published = opendata.masked(table).frame
        assert_no_small_counts(published, "n_incidents", SEUIL_INCIDENTS)
        before = {t.name: t for t in tables}[table.name].frame.get_column("secret")
        assert (before & ~table.frame.get_column("secret")).sum() == 0


def _as_year(
    case: tuple[list[opendata.OpenTable], Hierarchy], year: int
) -> tuple[list[opendata.OpenTable], Hierarchy]:
    tables, hierarchy = case
    moved = [
        opendata.OpenTable(t.name, t.frame.with_columns(pl.col("annee") + (year - 2024)))
        for t in tables
    ]
    return moved, {year: hierarchy[2024]}


def _together(
    *cases: tuple[list[opendata.OpenTable], Hierarchy],
) -> tuple[list[opendata.OpenTable], Hierarchy]:
    names = [t.name for t in cases[0][0]]
    tables = [
        opendata.OpenTable(
            name,
            # relaxed: a drawn table whose rates are all empty has a Null-typed column
            pl.concat(
                [{t.name: t for t in c[0]}[name].frame for c in cases], how="vertical_relaxed"
            ),
        )
        for name in names
    ]
    return tables, {year: h for _, hierarchy in cases for year, h in hierarchy.items()}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies(), hierarchies(), hierarchies())
def test_a_repair_reused_from_the_cache_is_the_repair(
    first: tuple[list[opendata.OpenTable], Hierarchy],
    second: tuple[list[opendata.OpenTable], Hierarchy],
    changed: tuple[list[opendata.OpenTable], Hierarchy],
) -> None:
    """Two years protected, then the second year changes (a new month): the first year's
    components come from the cache, unaudited, and the result is what a repair from scratch
    gives."""
    before = _together(_as_year(first, 2024), _as_year(second, 2025))
    cache: disclosure.ProtectionCache = {}
    linked = opendata.linked_table(*before)
    disclosure.protect(linked, store=cache)
    after = _together(_as_year(first, 2024), _as_year(changed, 2025))
    scratch = opendata.linked_table(*after)
    disclosure.protect(scratch)
    reused = opendata.linked_table(*after)
    audited: list[tuple] = []
    component = disclosure._component

    def spy(table, cells, relations, inside, strong=False):  # type: ignore[no-untyped-def]
        audited.extend(table.cells[i].key for i in inside)  # the table: its year's part
        return component(table, cells, relations, inside, strong)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(disclosure, "_component", spy)
        disclosure.protect(reused, cache=cache)
    assert [c.masked for c in reused.cells] == [c.masked for c in scratch.cells]
    assert not any(key[2] == 2024 for key in audited)
    assert exposed_cells(reused) == []


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies(), hierarchies(), st.booleans())
def test_the_repair_in_worker_processes_is_the_repair(
    first: tuple[list[opendata.OpenTable], Hierarchy],
    second: tuple[list[opendata.OpenTable], Hierarchy],
    by_year: bool,
) -> None:
    """Each year protected whole in a spawned worker of its own (`by_year`: nationally, a
    full refresh), or one year's components audited in a pool of two (a new month): the
    same cells masked as in one process, and nothing left exposed."""
    case = _together(_as_year(first, 2024), _as_year(second, 2025))
    alone = opendata.linked_table(*case)
    disclosure.protect(alone)
    pooled = opendata.linked_table(*case)
    submitted: list[str] = []

    class Recording(processes.ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            submitted.append(fn.__name__)
            return super().submit(fn, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(disclosure, "_WORKERS", 2)
        mp.setattr(disclosure, "_POOLED_PART", 1 if by_year else 10**9)
        mp.setattr(disclosure, "_POOLED", 1)
        mp.setattr(processes, "ProcessPoolExecutor", Recording)
        disclosure.protect(pooled)
    assert [c.masked for c in pooled.cells] == [c.masked for c in alone.cells]
    assert exposed_cells(pooled) == []
    fresh = opendata.linked_table(*case)
    year_of = [c.key[2] for c in fresh.cells]  # type: ignore[index]
    if by_year:  # every year holds France, whose cells are settled: a part each
        assert submitted == ["_protect_part"] * len(set(year_of))
    else:
        assert "_protect_part" not in submitted
        per_year = Counter(year_of[cells[0]] for cells, _ in disclosure._components(fresh))
        # the pool did audit, when a year's first round had a choice
        assert "_exposed_in" in submitted or max(per_year.values(), default=0) < 2


def _suppress_group_by_group(
    frame: pl.DataFrame, keys: list[str], category: str, count: str, seuil: int
) -> pl.DataFrame:
    """The plain reading of `suppress_long`: one DataFrame per group, every group walked."""
    frame = frame.with_columns(pl.col(count).is_between(1, seuil - 1).alias("secret"))
    out = []
    for _, group in frame.group_by(keys, maintain_order=True):
        is_total = group.get_column(category) == TOTAL
        cells, totals = group.filter(~is_total), group.filter(is_total)
        masked, total_masked = protect_group(
            cells.get_column(count).to_list(),
            cells.get_column("secret").to_list(),
            totals.get_column(count)[0] if totals.height else None,
            bool(totals.get_column("secret")[0]) if totals.height else False,
        )
        out.append(cells.with_columns(pl.Series("secret", masked, dtype=pl.Boolean)))
        if totals.height:
            out.append(totals.with_columns(pl.lit(total_masked).alias("secret")))
    return pl.concat(out)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C", "D"]),
            st.sampled_from([2021, 2022]),
            st.sampled_from(["c1", "c2", "c3", TOTAL]),
            st.sampled_from([0, 1, 2, 4, 5, 9, 30]),
        ),
        min_size=1,
        max_size=40,
        unique_by=lambda row: row[:3],
    )
)
def test_suppress_long_equals_the_group_by_group_reading(rows) -> None:
    """The list-based walk gives the same rows, in the same order, with the same flags, as one
    DataFrame per group (shuffled input, groups with and without a total, zeros)."""
    frame = pl.DataFrame(rows, schema=["territoire", "annee", "categorie", "n"], orient="row")
    keys = ["territoire", "annee"]
    expected = _suppress_group_by_group(frame, keys, "categorie", "n", SEUIL_INCIDENTS)
    assert_frame_equal(suppress_long(frame, keys, "categorie", "n", SEUIL_INCIDENTS), expected)


# --- QPVs: their figures beside their communes' (contract section 5) -----------------------


def qpv_attacker(
    tables: list[opendata.OpenTable],
    hierarchy: Hierarchy,
    composition: dict[str, list[str]],
    parts: dict[tuple[str, str, str], int],
) -> list[tuple]:
    """The masked cells an attacker who knows the QPVs' composition pins down, written here
    apart from the pipeline's model: each QPV over several communes is the sum of its parts
    in them (unknown, at least 0, here at their true values), and a commune holds at least
    the QPVs inside it plus the parts of those over it."""
    linked = opendata.linked_table(tables, hierarchy)
    by_category: dict[str, set[str]] = {}
    for table in tables:
        for categorie in table.frame.get_column("categorie").unique():
            by_category.setdefault(table.name, set()).add(categorie)
    for categorie in sorted(by_category["incidents_qpv_annee"]):

        def cell(level: str, code: str, categorie: str = categorie) -> tuple:
            return (f"incidents_{level}_annee", code, 2024, categorie, "n_incidents")

        within: dict[str, list[tuple]] = {}
        for qpv, communes in composition.items():
            if len(communes) == 1:
                within.setdefault(communes[0], []).append(cell("qpv", qpv))
                continue
            keys = [("part", qpv, c, categorie) for c in communes]
            for key, commune in zip(keys, communes, strict=True):
                linked.hide(key, parts[(qpv, commune, categorie)])
                within.setdefault(commune, []).append(key)
            linked.total(cell("qpv", qpv), keys)
        for commune, inside in within.items():
            linked.at_most_sum(inside, [cell("commune", commune)])
    assert linked.dropped == 0
    return exposed_cells(linked)


def flagged(protected: list[opendata.OpenTable]) -> list[opendata.OpenTable]:
    return [opendata.OpenTable(t.name, t.frame) for t in protected]


def test_a_qpv_inside_its_commune_is_protected_with_it() -> None:
    """Commune C (6 vols) holds Q1 (5 vols, published) and Q2 (1 vol, masked, its `bruit`
    masked with it): alone, each table is safe, but Q2's vol is at most 6 - 5 = 1."""
    communes = incidents_frame(
        [("C", 2024, "vol", 6), ("C", 2024, "bruit", 30), ("C", 2024, TOTAL, 36)]
    )
    qpvs = incidents_frame(
        [
            ("Q1", 2024, "vol", 5),
            ("Q1", 2024, "bruit", 9),
            ("Q1", 2024, TOTAL, 14),
            ("Q2", 2024, "vol", 1),
            ("Q2", 2024, "bruit", 7),
            ("Q2", 2024, TOTAL, 8),
        ]
    )
    tables = [
        opendata.OpenTable(
            name,
            suppress_long(
                frame.drop("secret"),
                ["code_territoire", "annee"],
                "categorie",
                "n_incidents",
                SEUIL_INCIDENTS,
            ),
        )
        for name, frame in [("incidents_commune_annee", communes), ("incidents_qpv_annee", qpvs)]
    ]
    hierarchy: Hierarchy = {2024: {"C": (None, None)}}
    composition = {"Q1": ["C"], "Q2": ["C"]}
    blind, _ = opendata.protect_linked(tables, hierarchy)  # knows no composition
    found = qpv_attacker(flagged(blind), hierarchy, composition, {})
    assert ("incidents_qpv_annee", "Q2", 2024, "vol", "n_incidents") in [k for k, _, _ in found]
    protected, linked = opendata.protect_linked(tables, hierarchy, qpvs={2024: composition})
    assert exposed_cells(linked) == []
    assert qpv_attacker(flagged(protected), hierarchy, composition, {}) == []


@st.composite
def qpv_cases(
    draw: st.DrawFn,
) -> tuple[list[opendata.OpenTable], Hierarchy, dict[str, list[str]], dict]:
    """Random communes in one EPCI, random QPVs inside one commune or over two or three, the
    QPVs' incidents drawn within their communes'."""
    n = draw(st.integers(1, 5))
    communes = [f"C{i}" for i in range(n)]
    values = {
        (c, k): draw(st.sampled_from([0, 1, 2, 3, 5, 6, 9, 20]))
        for c in communes
        for k in CATEGORIES
    }
    composition: dict[str, list[str]] = {}
    for q in range(draw(st.integers(1, 5))):
        size = draw(st.integers(1, min(3, n)))
        composition[f"Q{q}"] = sorted(draw(st.permutations(communes))[:size])
    room = dict(values)
    parts: dict[tuple[str, str, str], int] = {}
    qpv_values: dict[tuple[str, str], int] = {}
    for qpv, its in composition.items():
        for k in CATEGORIES:
            for c in its:
                parts[(qpv, c, k)] = draw(st.integers(0, room[(c, k)]))
                room[(c, k)] -= parts[(qpv, c, k)]
            qpv_values[(qpv, k)] = sum(parts[(qpv, c, k)] for c in its)
        for c in its:
            parts[(qpv, c, TOTAL)] = sum(parts[(qpv, c, k)] for k in CATEGORIES)

    def rows(codes: list[str], value: dict) -> list[tuple[str, int, str, int]]:
        out = []
        for code in codes:
            cells = [(code, 2024, k, value[(code, k)]) for k in CATEGORIES]
            out += [*cells, (code, 2024, TOTAL, sum(v for *_, v in cells))]
        return out

    epci = {("E", k): sum(values[(c, k)] for c in communes) for k in CATEGORIES}
    tables = [
        opendata.OpenTable(
            name,
            suppress_long(
                incidents_frame(frame).drop("secret"),
                ["code_territoire", "annee"],
                "categorie",
                "n_incidents",
                SEUIL_INCIDENTS,
            ),
        )
        for name, frame in [
            ("incidents_commune_annee", rows(communes, values)),
            ("incidents_qpv_annee", rows(sorted(composition), qpv_values)),
            ("incidents_epci_annee", rows(["E"], epci)),
        ]
    ]
    hierarchy: Hierarchy = {2024: {c: ("E", None) for c in communes}}
    return tables, hierarchy, composition, parts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qpv_cases())
def test_random_qpvs_leak_nothing(
    case: tuple[list[opendata.OpenTable], Hierarchy, dict[str, list[str]], dict],
) -> None:
    tables, hierarchy, composition, parts = case
    protected, linked = opendata.protect_linked(tables, hierarchy, qpvs={2024: composition})
    assert linked.dropped == 0
    assert exposed_cells(linked) == []
    # The attacker written apart, with the QPVs' true parts, pins nothing either.
    assert qpv_attacker(flagged(protected), hierarchy, composition, parts) == []
