"""Great Expectations suites: suite files, the delivery gate, and the publication suites.

The delivery gate is exercised through real ingestion passes (real files, real DuckDB); the
publication suites on small hand-made warehouses whose rows break one rule each, so that every
expectation is shown to fail on the data it is meant to catch.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pipelines.cli import main
from pipelines.ingest.loader import FamilyReport
from pipelines.publish import CONTRACT_TABLES
from pipelines.quality.deliveries import PROFILE_SCHEMA, DeliveryGate
from pipelines.quality.publication import suite_for, suspects, validate_table
from pipelines.quality.runner import EXAMPLES, QualityRun
from pipelines.quality.suites import SuiteError, all_suites, load_suite
from pipelines.settings import FAMILIES, Home
from tests.conftest import INCIDENTS_HEADER, PATRIMOINE_HEADER, ingest, query, write_delimited

# -- suite files ------------------------------------------------------------------------


def test_every_suite_loads_with_severities_and_reasons() -> None:
    suites = {s.name: s for s in all_suites()}
    families = {f"livraisons_{f}" for f in FAMILIES}
    tables = {f"publication_{t}" for t in CONTRACT_TABLES}
    assert families | tables <= set(suites)
    for suite in suites.values():
        for dataset in suite.datasets:
            severities = {e.severity for e in dataset.expectations}
            assert severities <= {"block", "warn"} and "block" in severities, suite.name
            assert all(e.why for e in dataset.expectations)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("severity", "maybe", "severity must be block or warn"),
        ("expectation", "expect_the_unexpected", "unknown expectation"),
        ("id", "Bad-Id", "must be snake_case"),
    ],
)
def test_bad_suite_file_names_file_and_entry(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    entry = {
        "id": "mon_controle",
        "expectation": "expect_column_values_to_not_be_null",
        "kwargs": {"column": "x"},
        "severity": "block",
        "why": "parce que",
    } | {field: value}
    path = tmp_path / "ma_suite.yml"
    document = {"suite": "ma_suite", "datasets": [{"name": "d", "expectations": [entry]}]}
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(SuiteError) as error:
        load_suite(path)
    assert "ma_suite.yml" in str(error.value) and message in str(error.value)


def test_partitioned_dataset_refuses_table_level_expectation(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text(
        "suite: s\ndatasets:\n  - name: d\n    partition_by: [a]\n    expectations:\n"
        "      - {id: n, expectation: expect_table_row_count_to_be_between, severity: block,"
        " why: w, kwargs: {min_value: 1}}\n"
    )
    with pytest.raises(SuiteError, match="row-wise"):
        load_suite(path)


# -- delivery gate ----------------------------------------------------------------------


def _stock(home: Home, year: str, n: int, mtime: float, suffix: str = "") -> Path:
    rows = [f"L{i};R{i // 20};Résidence {i // 20};13055;;1980;3;60;PLUS;occupe" for i in range(n)]
    return write_delimited(
        home.inbox_family("landlord") / f"HMP_patrimoine_{year}{suffix}.csv",
        PATRIMOINE_HEADER,
        rows,
        mtime=mtime,
    )


def _outcome(report: FamilyReport, controle: str) -> tuple[str, int | None]:
    found = [o for o in report.outcomes if o.controle == controle]
    assert found, [o.controle for o in report.outcomes]
    return found[0].statut, found[0].nb_echecs


def test_truncated_stock_is_blocked_until_replaced(home: Home) -> None:
    _stock(home, "2024", 1000, mtime=1_700_000_000)
    truncated = _stock(home, "2025", 400, mtime=1_710_000_000)
    report = ingest(home, "landlord")
    assert report.blocked and report.blocked[0][0] == f"landlord/{truncated.name}"
    assert "patrimoine_stable_sur_un_an" in report.blocked[0][1]
    assert "ratio_periode_precedente = 0.4" in report.blocked[0][1]
    # Held: the publication goes ahead without it, so its failures are warnings...
    assert _outcome(report, "livraisons_landlord.patrimoine_stable_sur_un_an") == ("warn", 1)
    assert _outcome(report, "livraisons_landlord.aucune_livraison_bloquee") == ("warn", 1)
    assert not any(o.blocks for o in report.outcomes)
    # Nothing of the blocked delivery is loaded; the ledger says why.
    assert query(
        home,
        "SELECT count(*) FROM raw.landlord_patrimoine p JOIN raw.livraisons l "
        "USING (livraison_id) WHERE l.periode = '2025'",
    ) == [(0,)]
    ledger = query(
        home,
        "SELECT livraison_id, statut, lignes_lues, lignes_chargees, motif "
        "FROM raw.livraisons WHERE periode = '2025'",
    )
    assert [row[1:4] for row in ledger] == [("bloquee", 400, 0)]
    assert "patrimoine_stable_sur_un_an" in ledger[0][4]

    # Unchanged inbox: examined again under the same ledger id, still held; in strict mode
    # (TRANQUILLITY_GATE=strict) it blocks the publication.
    again = ingest(home, "landlord", strict=True)
    assert again.new_deliveries == 0 and again.waiting
    assert _outcome(again, "livraisons_landlord.patrimoine_stable_sur_un_an") == ("fail", 1)
    assert _outcome(again, "livraisons_landlord.aucune_livraison_bloquee") == ("fail", 1)
    assert {o.controle for o in again.outcomes if o.blocks} == {
        "livraisons_landlord.patrimoine_stable_sur_un_an",
        "livraisons_landlord.aucune_livraison_bloquee",
    }
    assert query(
        home, "SELECT livraison_id, statut FROM raw.livraisons WHERE periode = '2025'"
    ) == [(ledger[0][0], "bloquee")]

    # The landlord sends the complete stock: loaded, and the blocked one is replaced.
    complete = _stock(home, "2025", 980, mtime=1_720_000_000, suffix="_corrige")
    fixed = ingest(home, "landlord")
    assert not fixed.waiting
    assert _outcome(fixed, "livraisons_landlord.aucune_livraison_bloquee") == ("pass", 0)
    rows = dict(query(home, "SELECT fichier, statut FROM raw.livraisons WHERE periode = '2025'"))
    assert rows == {f"landlord/{truncated.name}": "bloquee", f"landlord/{complete.name}": "chargee"}
    assert query(
        home,
        "SELECT remplacee_par IS NOT NULL FROM raw.livraisons WHERE fichier = ?",
        [f"landlord/{truncated.name}"],
    ) == [(True,)]


def test_operator_accepts_a_real_change_of_stock(home: Home) -> None:
    _stock(home, "2024", 1000, mtime=1_700_000_000)
    sold = _stock(home, "2025", 600, mtime=1_710_000_000)  # 400 dwellings sold: real
    assert ingest(home, "landlord").waiting
    runner = CliRunner()
    wrong = runner.invoke(main, ["accept", "HMP_patrimoine_2024.csv", "--motif", "x"])
    assert wrong.exit_code == 1 and "not a blocked delivery" in wrong.output
    ok = runner.invoke(
        main, ["accept", sold.name, "--motif", "cession de 400 logements à un autre bailleur"]
    )
    assert ok.exit_code == 0, ok.output
    report = ingest(home, "landlord")
    assert not report.waiting and not any(o.blocks for o in report.outcomes)
    assert _outcome(report, "livraisons_landlord.patrimoine_stable_sur_un_an") == ("warn", 1)
    statut, motif = query(
        home,
        "SELECT statut, motif FROM raw.livraisons WHERE fichier = ?",
        [f"landlord/{sold.name}"],
    )[0]
    assert statut == "chargee" and "dérogation (cession de 400 logements" in motif
    assert query(
        home,
        "SELECT count(*) FROM raw.landlord_patrimoine p JOIN raw.livraisons l "
        "USING (livraison_id) WHERE l.periode = '2025'",
    ) == [(600,)]


def test_bad_file_and_its_correction_in_one_pass_only_warn(home: Home) -> None:
    _stock(home, "2024", 1000, mtime=1_700_000_000)
    _stock(home, "2025", 400, mtime=1_710_000_000)
    _stock(home, "2025", 990, mtime=1_720_000_000, suffix="_corrige")
    report = ingest(home, "landlord")
    assert len(report.blocked) == 1 and not report.waiting
    assert _outcome(report, "livraisons_landlord.patrimoine_stable_sur_un_an") == ("warn", 1)
    assert not any(o.blocks for o in report.outcomes)


def _incidents(home: Home, n: int, mtime: float) -> Path:
    rows = [f"I{i};2025-03-{1 + i % 28:02d};R{i % 3};;VAND;hall;2;;non;;;" for i in range(n)]
    return write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-03.csv",
        INCIDENTS_HEADER,
        rows,
        mtime=mtime,
    )


def test_blocked_delivery_passes_once_what_it_lacked_arrives(home: Home) -> None:
    # Incidents of a year whose stock has not been delivered yet: every row cites an unknown
    # residence, so the delivery as a whole is blocked rather than loaded empty.
    incidents = _incidents(home, 30, mtime=1_710_000_000)
    first = ingest(home, "landlord")
    assert [f for f, _ in first.blocked] == [f"landlord/{incidents.name}"]
    assert "residences_connues_du_patrimoine" in first.blocked[0][1]
    # The stock arrives; the blocked delivery is examined again and now loads.
    _stock(home, "2025", 100, mtime=1_720_000_000)
    second = ingest(home, "landlord")
    assert not second.blocked and not second.waiting
    assert query(
        home,
        "SELECT statut, lignes_chargees, lignes_quarantaine FROM raw.livraisons WHERE fichier = ?",
        [f"landlord/{incidents.name}"],
    ) == [("chargee", 30, 0)]
    assert query(home, "SELECT count(*) FROM raw.quarantaine") == [(0,)]


def test_many_bad_rows_block_few_bad_rows_quarantine(home: Home) -> None:
    _stock(home, "2025", 100, mtime=1_700_000_000)
    good = [f"I{i};2025-03-05;R1;;VAND;hall;2;;non;;;" for i in range(30)]
    # Columns shifted by the export: gravite holds the lieu, lieu holds the code.
    shifted = [f"J{i};2025-04-05;R1;;hall;VAND;x;;non;;;" for i in range(30)]
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-03.csv",
        INCIDENTS_HEADER,
        [*good[:29], "I99;2025-03-05;R1;;VAND;hall;9;;non;;;"],
        mtime=1_710_000_000,
    )
    bad = write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-04.csv",
        INCIDENTS_HEADER,
        shifted,
        mtime=1_710_000_000,
    )
    report = ingest(home, "landlord")
    assert [f for f, _ in report.blocked] == [f"landlord/{bad.name}"]
    reason = report.blocked[0][1]
    assert "lignes_majoritairement_valides" in reason and "valeurs_admises" in reason
    statuses = dict(query(home, "SELECT periode, statut FROM raw.livraisons"))
    assert statuses == {"2025": "chargee", "2025-03": "chargee", "2025-04": "bloquee"}
    # The blocked file's row problems are still listed for the partner.
    assert query(
        home, "SELECT count(*) FROM raw.quarantaine WHERE fichier = ?", [f"landlord/{bad.name}"]
    ) == [(30,)]


# -- publication suites -----------------------------------------------------------------


def _warehouse(tmp_path: Path, statements: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA staging; CREATE SCHEMA intermediate;")
    con.execute(statements)
    return con


def _failed(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int | None]:
    return {
        o.controle.split(".", 1)[1]: o.nb_echecs
        for o in validate_table(con, QualityRun(None), table)
        if o.statut != "pass"
    }


INCIDENTS_TABLE = """
CREATE TABLE marts.indicateurs_incidents_mois AS
SELECT * FROM (VALUES
    ('ensemble', 'FR', DATE '2025-01-01', 'total', 5, 100, 50.0),
    ('ensemble', 'FR', DATE '2025-01-01', 'degradation', 5, 100, 50.0),
    ('departement', '13', DATE '2025-01-01', 'total', 3, 60, 50.0),
    ('departement', '13', DATE '2025-01-01', 'degradation', 3, 60, 50.0),
    ('departement', '69', DATE '2025-01-01', 'total', 2, 40, 50.0),
    ('departement', '69', DATE '2025-01-01', 'degradation', 2, 40, 50.0)
) AS t(niveau, code_territoire, mois, categorie, n_incidents, n_logements,
       taux_pour_1000_logements);
"""


_INCIDENT_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["ensemble", "departement"]),
        st.sampled_from(["FR", "13", "69"]),
        st.sampled_from(["2025-01-01", "2025-02-01"]),
        st.sampled_from(["total", "vol", "degradation"]),
        st.sampled_from([-1, 0, 1, 5, None]),
        st.sampled_from([0, 1, 50, 99, 100, 150, None]),
        st.sampled_from([-1.0, 0.0, 5.0, 999.0, 1000.0, 1000.5, float("nan"), None]),
    ),
    max_size=25,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking GX runs takes minutes
)
@given(rows=_INCIDENT_ROWS)
def test_checks_where_the_data_is_give_the_verdicts_of_the_whole_table(
    rows: list[tuple[object, ...]],
) -> None:
    """DuckDB selects the rows an expectation could flag and GX judges only those: the
    verdicts, failure counts and examples must be those of GX over every row (bounds, `when`
    conditions, NaN, NULL, reconciliations with a side missing)."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.indicateurs_incidents_mois (niveau VARCHAR, code_territoire "
        "VARCHAR, mois DATE, categorie VARCHAR, n_incidents BIGINT, n_logements BIGINT, "
        "taux_pour_1000_logements DOUBLE)"
    )
    if rows:
        con.executemany(
            "INSERT INTO marts.indicateurs_incidents_mois VALUES (?, ?, ?, ?, ?, ?, ?)", rows
        )
    run = QualityRun(None)

    def verdicts(where_the_data_is: bool) -> dict[str, tuple[object, ...]]:
        found = validate_table(
            con, run, "indicateurs_incidents_mois", where_the_data_is=where_the_data_is
        )
        # A column with a NULL is float in pandas: the same -1 is then shown -1.0. Beyond
        # EXAMPLES failures, which ones are shown depends on the order of a GROUP BY's rows.
        return {
            o.controle: (
                o.statut,
                o.nb_echecs,
                sorted(
                    json.dumps(
                        {k: float(v) if isinstance(v, int | float) else v for k, v in e.items()},
                        sort_keys=True,
                    )
                    for e in json.loads(o.exemples or "[]")
                )
                if (o.nb_echecs or 0) <= EXAMPLES
                else len(json.loads(o.exemples or "[]")),
            )
            for o in found
        }

    assert verdicts(True) == verdicts(False)


_SHARES = st.sampled_from([0.0, 0.04, 0.05, 0.06, 0.2, 0.21, 0.5, 0.6, 1.0])
_PROFILES = st.lists(
    st.fixed_dictionaries(
        {
            "type_fichier": st.sampled_from(["patrimoine", "incidents", "procedures", "autre"]),
            "lignes_lues": st.sampled_from([0, 5, 10, 20, 100, 600]),
            "part_quarantaine": _SHARES,
            "part_date_hors_periode": _SHARES,
            "part_residence_hors_patrimoine": _SHARES,
            "part_doublon_dans_fichier": _SHARES,
            "n_colonnes_ignorees": st.sampled_from([0, 1]),
            "ratio_periode_precedente": st.sampled_from(
                [None, 0.1, 0.2, 0.5, 0.67, 0.9, 1.0, 1.1, 1.5, 2.0, 5.0, 6.0]
            ),
            "lignes_periode_precedente": st.sampled_from([None, 20, 30, 100, 500, 1000]),
            "ratio_livraison_remplacee": st.sampled_from([None, 0.4, 0.5, 1.0, 2.0, 2.5]),
            "lignes_livraison_remplacee": st.sampled_from([None, 10, 20, 50]),
        }
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(profiles=_PROFILES)
def test_the_delivery_gate_judges_only_suspects_with_the_verdicts_of_gx(
    profiles: list[dict[str, object]],
) -> None:
    """A batch where no profile could fail skips GX, and GX sees only the suspects of the
    others: the deliveries blocked, with their reasons, and each expectation's result must be
    those of GX shown every profile."""
    rows = [
        {
            **{name: None for name in PROFILE_SCHEMA},
            **profile,
            "livraison_id": index,
            "fichier": f"landlord/X_{index}.csv",
            "famille": "landlord",
        }
        for index, profile in enumerate(profiles)
    ]
    run = QualityRun(None)

    def verdicts(where_the_data_is: bool) -> tuple[object, ...]:
        gate = DeliveryGate("landlord", run, where_the_data_is=where_the_data_is)
        blocked = gate.judge(rows)
        results = {
            key: (
                r.success,
                r.unexpected,
                sorted(json.dumps(e, sort_keys=True) for e in r.examples),
            )
            for key, r in gate.results.items()
        }
        return blocked, results

    assert verdicts(True) == verdicts(False)


def test_every_publication_check_runs_where_the_data_is() -> None:
    """Each dataset of the publication suites has a predicate for its suspect rows: one
    expectation without (a new kind) would copy the whole table into pandas again."""
    for table in CONTRACT_TABLES:
        for dataset in suite_for(table).datasets:
            assert suspects(dataset) is not None, (table, dataset.name)


def test_publication_suite_passes_on_consistent_table(tmp_path: Path) -> None:
    con = _warehouse(tmp_path, INCIDENTS_TABLE)
    assert _failed(con, "indicateurs_incidents_mois") == {}


def test_publication_suite_catches_each_broken_rule(tmp_path: Path) -> None:
    con = _warehouse(
        tmp_path,
        INCIDENTS_TABLE
        + """
        -- an incident counted in 'ensemble' but in no département, and under no category
        UPDATE marts.indicateurs_incidents_mois SET n_incidents = 6
        WHERE niveau = 'ensemble' AND categorie = 'total';
        -- a negative rate (a repeated key or an unknown category is a dbt test of the model)
        INSERT INTO marts.indicateurs_incidents_mois VALUES
            ('departement', '69', DATE '2025-01-01', 'autre', 0, 40, -1.0);
        """,
    )
    failed = _failed(con, "indicateurs_incidents_mois")
    assert failed.keys() >= {
        "taux_positif",
        "ensemble_egal_somme_departements",
        "total_egal_somme_categories",
    }


def test_large_table_validated_in_partitions_counts_every_failing_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.quality.publication as publication

    monkeypatch.setattr(publication, "PARTITION_ROWS", 2)  # 6+ rows -> several partitions
    con = _warehouse(
        tmp_path,
        INCIDENTS_TABLE + "UPDATE marts.indicateurs_incidents_mois "
        "SET taux_pour_1000_logements = -1 WHERE niveau = 'departement';",
    )
    failed = _failed(con, "indicateurs_incidents_mois")
    assert failed.get("taux_positif") == 4  # one outcome over the partitions, every row counted


def test_mixite_suite_reconciles_with_signed_allocations(tmp_path: Path) -> None:
    con = _warehouse(
        tmp_path,
        """
        CREATE TABLE marts.indicateurs_mixite_epci_annee AS SELECT * FROM (VALUES
            ('200054807', 2025, 10, 4, 0.4, 25, 0, true, 5, 2, 0.4, 50, 1, false, 3, 0.2, 15000.0),
            ('200054807', 2024, 4, 1, 1.5, 25, 0, true, 0, 0, NULL, 50, 0, NULL, 0, 0.0, NULL)
        ) AS t(code_epci, annee, n_attributions_hors_qpv, n_q1_hors_qpv, taux_q1_hors_qpv,
               objectif_q1_hors_qpv_pct, manque_q1_hors_qpv, conforme_q1_hors_qpv,
               n_attributions_qpv, n_hors_q1_qpv, taux_hors_q1_qpv, objectif_hors_q1_qpv_pct,
               manque_hors_q1_qpv, conforme_hors_q1_qpv, n_menages_prioritaires,
               taux_menages_prioritaires, seuil_q1_euros_uc);
        CREATE TABLE intermediate.int_ledger__livraisons_courantes AS
            SELECT 1 AS livraison_id, 'attributions' AS type_fichier;
        CREATE TABLE staging.stg_allocations__attributions AS
            SELECT 1 AS livraison_id, DATE '2025-06-01' AS date_signature_bail
            FROM range(15)
            UNION ALL SELECT 1, DATE '2024-06-01' FROM range(4);
        """,
    )
    failed = _failed(con, "indicateurs_mixite_epci_annee")
    # 2024: a share above 1 (its missing threshold is the dbt test not_null of the model);
    # 2025 reconciles (15 signed, 15 counted).
    assert failed == {"taux_q1_hors_qpv_entre_0_et_1": 1}
    con.execute("DELETE FROM staging.stg_allocations__attributions WHERE rowid = 0")
    failed = _failed(con, "indicateurs_mixite_epci_annee")
    assert failed.get("attributions_comptees_egal_signees") == 1


def test_masked_ssmsi_value_must_stay_masked(tmp_path: Path) -> None:
    con = _warehouse(
        tmp_path,
        """
        CREATE TABLE marts.indicateurs_delinquance_commune_annee AS SELECT * FROM (VALUES
            ('13055', 2024, 'Vols', 12, 1.2, 1000, 480.5, true),
            ('13001', 2024, 'Vols', 0, NULL, 800, 390.25, false),
            ('13002', 24, 'Vols', NULL, NULL, 800, -1.5, false)
        ) AS t(code_commune, annee, indicateur, nombre, taux_pour_mille, population, logements,
               diffuse);
        """,
    )
    assert _failed(con, "indicateurs_delinquance_commune_annee") == {
        "non_diffuse_sans_nombre": 1,
        "annee_sur_quatre_chiffres": 1,
        "logements_positifs": 1,
    }
