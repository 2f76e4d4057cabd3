"""dbt models on the tiny sample: the build passes, and a few published figures recomputed by hand.

One fixture per module generates the tiny sample into a temporary home and runs
`tranquillity refresh` (Dagster: ingestion, `dbt build`, publication); some tests call dbt directly.
Expected values are recomputed from the raw tables only, in Python (exact fractions) or plain SQL,
never from the dbt models.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DBT_PROJECT = REPO / "dbt_project"


@dataclass(frozen=True)
class Built:
    home: Path
    db: Path
    env: dict[str, str]
    dbt_dir: Path


def _run(
    cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode in ok, (
        f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


def dbt(built: Built, *args: str, home: Path | None = None, ok: tuple[int, ...] = (0,)):
    """dbt by hand on the warehouse of `home` (profiles.yml derives it from TRANQUILLITY_HOME)."""
    env = dict(built.env, TRANQUILLITY_HOME=str(home or built.home))
    cmd = [
        str(BIN / "dbt"),
        *args,
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(DBT_PROJECT),
        "--target-path",
        str(built.dbt_dir / "target"),
        "--log-path",
        str(built.dbt_dir / "logs"),
    ]
    return _run(cmd, env, ok)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("dbt_models")
    home = root / "home"
    env = dict(
        os.environ,
        TRANQUILLITY_HOME=str(home),
        TRANQUILLITY_PSEUDO_KEY="test-key-not-secret",
        DAGSTER_HOME=str(home / "dagster"),
        DO_NOT_TRACK="1",
    )
    _run([str(BIN / "tranquillity"), "generate", "--scale", "tiny", "--seed", "1"], env)
    # The refresh runs `dbt build` through Dagster and publishes: the marts are in place.
    refresh = _run([str(BIN / "tranquillity"), "refresh"], env)
    db = home / "work" / "warehouse.duckdb"
    assert db.exists(), refresh.stdout[-4000:] + refresh.stderr[-4000:]
    with duckdb.connect(str(db), read_only=True) as c:
        loaded = c.execute(
            "select count(*) from raw.livraisons where statut = 'chargee'"
        ).fetchone()[0]
    assert loaded > 0, refresh.stdout[-4000:] + refresh.stderr[-4000:]
    return Built(home=home, db=db, env=env, dbt_dir=root / "dbt")


@pytest.fixture(scope="module")
def con(built: Built):
    connection = duckdb.connect(str(built.db), read_only=True)
    yield connection
    connection.close()


def rows(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# --- helpers recomputing from raw tables only -----------------------------------------------------

CURRENT = """
    select livraison_id, type_fichier, code_bailleur, periode, fichier, modifie_le
    from raw.livraisons where statut = 'chargee'
"""


def epci_of(con) -> callable:
    """(commune, year) -> (code_epci, dep) using the EPCI file of the latest year <= Y, else the earliest."""
    files = defaultdict(dict)
    for r in rows(
        con,
        f"""select cast(l.periode as integer) as annee, e.codgeo, e.epci, e.dep
            from raw.reference_epci e join ({CURRENT}) l using (livraison_id)""",
    ):
        files[r["annee"]][r["codgeo"]] = (r["epci"], r["dep"])
    years = sorted(files)

    def lookup(commune: str, year: int):
        applicable = [y for y in years if y <= year]
        chosen = applicable[-1] if applicable else years[0]
        return files[chosen].get(commune)

    return lookup


def test_contract_tables_exist_with_types(con) -> None:
    types = {
        (r["table_name"], r["column_name"]): r["data_type"]
        for r in rows(
            con,
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'marts'",
        )
    }
    assert types[("indicateurs_incidents_mois", "mois")] == "DATE"
    assert types[("indicateurs_incidents_mois", "n_incidents")] == "BIGINT"
    assert types[("indicateurs_incidents_mois", "n_logements")] == "BIGINT"
    assert types[("indicateurs_incidents_mois", "taux_pour_1000_logements")] == "DOUBLE"
    assert types[("indicateurs_delinquance_commune_annee", "diffuse")] == "BOOLEAN"
    assert types[("indicateurs_delinquance_commune_annee", "population")] == "BIGINT"
    assert types[("indicateurs_delinquance_commune_annee", "logements")] == "DOUBLE"
    assert types[("indicateurs_delinquance_epci_annee", "population")] == "BIGINT"
    assert types[("indicateurs_delinquance_epci_annee", "logements")] == "DOUBLE"
    assert types[("indicateurs_delinquance_epci_annee", "n_communes_non_diffusees")] == "BIGINT"
    assert types[("indicateurs_mixite_epci_annee", "conforme_q1_hors_qpv")] == "BOOLEAN"
    assert types[("indicateurs_mixite_epci_annee", "manque_hors_q1_qpv")] == "BIGINT"
    niveaux = {
        r["niveau"]
        for r in rows(con, "select distinct niveau from marts.indicateurs_incidents_mois")
    }
    assert niveaux == {"residence", "qpv", "commune", "epci", "departement", "bailleur", "ensemble"}


def test_residence_month_rate_recomputed(con) -> None:
    # Incidents of current deliveries, one per (landlord, id_incident): newest delivery
    # (modifie_le, then file name), then last line. Plain SQL on raw tables.
    incidents = f"""
        with cur as ({CURRENT}),
        inc as (
            select i.*, row_number() over (
                partition by i.code_bailleur, i.id_incident
                order by c.modifie_le desc, c.fichier desc, i.ligne desc) as rn
            from raw.landlord_incidents i join cur c using (livraison_id)
            where c.type_fichier = 'incidents'
        )
        select code_bailleur, id_residence, date_trunc('month', date_signalement)::date as mois,
               count(*) as n
        from inc where rn = 1
        group by all
    """
    # Take the residence-month with the most incidents of the re-delivered month, if any.
    redelivered = rows(
        con,
        "select code_bailleur, periode from raw.livraisons "
        "where type_fichier = 'incidents' and statut = 'remplacee' limit 1",
    )
    where = ""
    if redelivered:
        b, p = redelivered[0]["code_bailleur"], redelivered[0]["periode"]
        where = f"where code_bailleur = '{b}' and strftime(mois, '%Y-%m') = '{p}'"
    pick = rows(con, f"select * from ({incidents}) {where} order by n desc, id_residence limit 1")[
        0
    ]
    year = pick["mois"].year
    n_logements = con.execute(
        f"""select count(*) from raw.landlord_patrimoine p join ({CURRENT}) c using (livraison_id)
            where c.type_fichier = 'patrimoine' and p.code_bailleur = ? and c.periode = ?
              and p.id_residence = ?""",
        [pick["code_bailleur"], str(year), pick["id_residence"]],
    ).fetchone()[0]
    assert n_logements > 0

    got = rows(
        con,
        """select * from marts.indicateurs_incidents_mois
           where niveau = 'residence' and code_territoire = ? and mois = ? and categorie = 'total'""",
        [f"{pick['code_bailleur']}:{pick['id_residence']}", pick["mois"]],
    )
    assert len(got) == 1
    assert got[0]["n_incidents"] == pick["n"]
    assert got[0]["n_logements"] == n_logements
    assert got[0]["taux_pour_1000_logements"] == 1000 * pick["n"] / n_logements

    # Every category row exists for that residence-month (zeros included).
    cats = rows(
        con,
        """select categorie, n_incidents from marts.indicateurs_incidents_mois
           where niveau = 'residence' and code_territoire = ? and mois = ?""",
        [f"{pick['code_bailleur']}:{pick['id_residence']}", pick["mois"]],
    )
    assert len(cats) == 9
    assert sum(r["n_incidents"] for r in cats if r["categorie"] != "total") == pick["n"]


def test_epci_mixite_row_recomputed(con) -> None:
    lookup = epci_of(con)
    seuils: dict[tuple[str, int], Fraction] = {}
    for r in rows(
        con,
        f"""select s.code_epci, s.annee, s.seuil_q1_euros_uc from raw.reference_seuils_q1 s
            join ({CURRENT}) c using (livraison_id) order by c.modifie_le, c.fichier, s.ligne""",
    ):
        seuils[(r["code_epci"], int(r["annee"]))] = Fraction(Decimal(repr(r["seuil_q1_euros_uc"])))
    objectifs = {
        (r["code_epci"], int(r["annee"])): Fraction(Decimal(repr(r["objectif_q1_hors_qpv_pct"])))
        for r in rows(
            con,
            f"select o.* from raw.reference_objectifs_epci o join ({CURRENT}) c using (livraison_id)",
        )
    }
    groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for a in rows(
        con,
        f"""select a.* from raw.allocations_attributions a join ({CURRENT}) c using (livraison_id)
            where c.type_fichier = 'attributions' and a.date_signature_bail is not null""",
    ):
        year = a["date_signature_bail"].year
        epci = lookup(a["depcom"], year)
        assert epci is not None
        groups[(epci[0], year)].append(a)

    # The EPCI-year with a local target if any (non-default objective), else the biggest.
    key = max(groups, key=lambda k: (k in objectifs, len(groups[k])))
    seuil = seuils[key]
    objectif = objectifs.get(key, Fraction(25))

    def is_q1(a: dict) -> bool:
        uc = (
            1
            + Fraction(1, 2) * (a["nb_personnes_14_ans_et_plus"] - 1)
            + Fraction(3, 10) * a["nb_enfants_moins_14_ans"]
        )
        return Fraction(Decimal(repr(a["revenu_annuel_euros"]))) / uc < seuil

    hors = [a for a in groups[key] if a["qpv"] is None]
    qpv = [a for a in groups[key] if a["qpv"] is not None]
    k1 = sum(1 for a in hors if is_q1(a) or a["relogement_anru"])
    k2 = sum(1 for a in qpv if not is_q1(a))
    prio = sum(1 for a in groups[key] if a["menage_prioritaire"] in ("DALO", "prioritaire"))

    def manque(obj: Fraction, n: int, k: int) -> int:
        return 0 if n == 0 else max(0, math.ceil(obj * n / 100) - k)

    def conforme(obj: Fraction, n: int, k: int) -> bool | None:
        return None if n == 0 else 100 * k >= obj * n

    got = rows(
        con,
        "select * from marts.indicateurs_mixite_epci_annee where code_epci = ? and annee = ?",
        list(key),
    )
    assert len(got) == 1
    g = got[0]
    assert g["n_attributions_hors_qpv"] == len(hors)
    assert g["n_q1_hors_qpv"] == k1
    assert g["taux_q1_hors_qpv"] == (k1 / len(hors) if hors else None)
    assert Fraction(Decimal(repr(g["objectif_q1_hors_qpv_pct"]))) == objectif
    assert g["manque_q1_hors_qpv"] == manque(objectif, len(hors), k1)
    assert g["conforme_q1_hors_qpv"] == conforme(objectif, len(hors), k1)
    assert g["n_attributions_qpv"] == len(qpv)
    assert g["n_hors_q1_qpv"] == k2
    assert g["taux_hors_q1_qpv"] == (k2 / len(qpv) if qpv else None)
    assert g["manque_hors_q1_qpv"] == manque(Fraction(50), len(qpv), k2)
    assert g["conforme_hors_q1_qpv"] == conforme(Fraction(50), len(qpv), k2)
    assert g["n_menages_prioritaires"] == prio
    assert g["taux_menages_prioritaires"] == prio / len(groups[key])
    # One row per EPCI-year with at least one signed allocation, no more.
    n_rows = con.execute("select count(*) from marts.indicateurs_mixite_epci_annee").fetchone()[0]
    assert n_rows == len(groups)


def test_commune_burglary_rates_stand_on_decimal_dwellings(con) -> None:
    """SSMSI divides burglaries by its decimal dwelling estimates: the published commune rate
    and the published dwellings agree only if the decimals were kept, not rounded."""
    found = con.execute(
        "select nombre, taux_pour_mille, logements from marts.indicateurs_delinquance_commune_annee"
        " where diffuse and indicateur = 'Cambriolages de logement' and logements > 0"
    ).fetchall()
    assert found and any(logements != int(logements) for *_, logements in found)
    for nombre, taux, logements in found:
        assert math.isclose(taux, 1000 * nombre / logements, rel_tol=1e-7, abs_tol=1e-6)


def test_epci_delinquency_row_recomputed(con) -> None:
    lookup = epci_of(con)
    latest: dict[tuple[str, int, str], dict] = {}
    for r in rows(
        con,
        f"""select s.* from raw.police_ssmsi s join ({CURRENT}) c using (livraison_id)
            where c.type_fichier = 'ssmsi' order by s.edition, c.modifie_le, c.fichier, s.ligne""",
    ):
        latest[(r["code_commune"], r["annee"], r["indicateur"])] = r  # later edition overwrites

    # Commune table: one row per triplet, from the latest edition; masked rows stay NULL.
    n_commune = con.execute(
        "select count(*) from marts.indicateurs_delinquance_commune_annee"
    ).fetchone()[0]
    assert n_commune == len(latest)

    groups: dict[tuple[str, int, str], list[dict]] = defaultdict(list)
    for (commune, year, indic), r in latest.items():
        epci = lookup(commune, year)
        if epci is not None:
            groups[(epci[0], year, indic)].append(r)
    got = {
        (g["code_epci"], g["annee"], g["indicateur"]): g
        for g in rows(con, "select * from marts.indicateurs_delinquance_epci_annee")
    }
    # One row per (EPCI, year, indicator) with at least one commune row, and every row recomputed.
    assert set(got) == set(groups)
    # The sample exercises masked communes and burglaries (rate over dwellings).
    assert any(not r["diffuse"] for communes in groups.values() for r in communes)
    assert any(k[2] == "Cambriolages de logement" for k in groups)
    for key, communes in sorted(groups.items()):
        diff = [r for r in communes if r["diffuse"]]
        # Sums over diffused communes: nombre NULL when none is diffused, population and logements
        # 0 (the population covered by diffused figures is then nil). Dwellings are census estimates
        # with decimals (floats) whose sum depends on the order of addition: compared with isclose.
        nombre = sum(r["nombre"] for r in diff) if diff else None
        population = sum(r["population"] or 0 for r in diff)
        logements = math.fsum(r["logements"] or 0.0 for r in diff)
        denom = logements if key[2] == "Cambriolages de logement" else population
        taux = 1000 * nombre / denom if nombre is not None and denom else None

        g = got[key]
        assert g["nombre"] == nombre, key
        assert g["population"] == population, key
        assert isinstance(g["logements"], float), key
        assert math.isclose(g["logements"], logements, rel_tol=1e-9, abs_tol=0.0), key
        assert g["n_communes_non_diffusees"] == sum(1 for r in communes if not r["diffuse"]), key
        if taux is None:
            assert g["taux_pour_mille"] is None, key
        else:
            assert math.isclose(g["taux_pour_mille"], taux, rel_tol=1e-9, abs_tol=0.0), key


def _applicable(years: list[int], year: int) -> int:
    """The file year that applies to `year`: the latest <= it, else the earliest."""
    earlier = [y for y in years if y <= year]
    return earlier[-1] if earlier else years[0]


def _monthly_years(con) -> set[int]:
    """Years of the current monthly deliveries: those the territorial marts are written for."""
    return {
        int(r["periode"][:4])
        for r in rows(con, f"select periode from ({CURRENT}) where periode like '____-__'")
    }


def test_territoires_qpv_recomputed(con) -> None:
    """QPV -> communes for each year of the monthly deliveries, from the QPV file of the latest
    year <= it (else the earliest), each commune with its EPCI and département from the EPCI file
    of the year; the population of each part as delivered."""
    lookup = epci_of(con)
    files: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
    for r in rows(
        con,
        f"""select cast(c.periode as integer) as annee, q.code_qpv, q.code_commune, q.population
            from raw.reference_qpv q join ({CURRENT}) c using (livraison_id)
            where c.type_fichier = 'qpv' order by q.ligne""",
    ):
        files[r["annee"]][(r["code_qpv"], r["code_commune"])] = r["population"]
    expected = set()
    for year in _monthly_years(con):
        for (qpv, commune), population in files[_applicable(sorted(files), year)].items():
            epci, dep = lookup(commune, year) or (None, None)
            expected.add((year, qpv, commune, epci, dep, population))
    got = set(
        con.execute(
            "select annee, code_qpv, code_commune, code_epci, code_departement, population "
            "from marts.territoires_qpv"
        ).fetchall()
    )
    assert got == expected
    # The sample has a QPV over two communes.
    per_qpv = defaultdict(set)
    for year, qpv, commune, *_ in got:
        per_qpv[(year, qpv)].add(commune)
    assert any(len(communes) > 1 for communes in per_qpv.values())


def test_epci_procedures_recomputed(con) -> None:
    """Procedures per EPCI from the raw tables: each step located by its dwelling in its
    landlord's stock of the latest year <= the step's year (else the earliest), then by the
    dwelling's commune in the EPCI file of the year; distinct (landlord, procedure) per cell.
    Over EPCIs, the landlord table's total less the procedures not located."""
    lookup = epci_of(con)
    stocks: dict[str, dict[int, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows(
        con,
        f"""select p.code_bailleur, cast(c.periode as integer) as annee, p.id_logement, p.depcom
            from raw.landlord_patrimoine p join ({CURRENT}) c using (livraison_id)
            where c.type_fichier = 'patrimoine'""",
    ):
        stocks[r["code_bailleur"]][r["annee"]][r["id_logement"]] = r["depcom"]
    steps: dict[tuple, dict] = {}
    for r in rows(
        con,
        f"""select p.* from raw.landlord_procedures p join ({CURRENT}) c using (livraison_id)
            where c.type_fichier = 'procedures' order by c.modifie_le, c.fichier, p.ligne""",
    ):
        steps[(r["code_bailleur"], r["id_procedure"], r["etape"], r["date_etape"])] = r

    cells: dict[tuple, set[tuple[str, str, str]]] = defaultdict(set)
    located: set[tuple] = set()
    everywhere: set[tuple] = set()
    for (landlord, procedure, etape, date_etape), r in steps.items():
        year = date_etape.year
        cell = (year, r["motif"], etape)
        everywhere.add((landlord, procedure, *cell))
        landlord_stocks = stocks.get(landlord)
        if not landlord_stocks or r["id_logement"] is None:
            continue
        commune = landlord_stocks[_applicable(sorted(landlord_stocks), year)].get(r["id_logement"])
        epci = lookup(commune, year) if commune else None
        if epci is None or epci[0] is None:
            continue
        cells[(epci[0], *cell)].add((landlord, procedure, r["origine"]))
        located.add((landlord, procedure, *cell))

    got = {
        (g["code_epci"], g["annee"], g["motif"], g["etape"]): g
        for g in rows(con, "select * from marts.procedures_expulsion_epci_annee")
    }
    assert got and set(got) == set(cells)
    for key, procedures in cells.items():
        g = got[key]
        assert g["n_procedures"] == len({(b, p) for b, p, _ in procedures}), key
        assert g["n_procedures_bailleur"] == len(
            {(b, p) for b, p, o in procedures if o == "bailleur"}
        ), key
        assert g["n_procedures_injonction_prefet"] == len(
            {(b, p) for b, p, o in procedures if o == "injonction_prefet"}
        ), key
        assert g["n_bailleurs"] == len({b for b, _, _ in procedures}), key
    by_landlord = con.execute(
        "select sum(n_procedures) from marts.procedures_expulsion_annee"
    ).fetchone()[0]
    assert sum(g["n_procedures"] for g in got.values()) == by_landlord - len(everywhere - located)


def test_blocking_checks_catch_bad_deliveries(built: Built, tmp_path: Path) -> None:
    """Each blocking check fails on a warehouse with one offending row of its kind."""
    bad_home = tmp_path / "home"
    bad = bad_home / "work" / "warehouse.duckdb"
    bad.parent.mkdir(parents=True)
    shutil.copy(built.db, bad)
    c = duckdb.connect(str(bad))
    inc = c.execute(
        """select i.livraison_id, i.code_bailleur, i.id_residence, i.date_signalement
           from raw.landlord_incidents i join raw.livraisons l using (livraison_id)
           where l.statut = 'chargee' limit 1"""
    ).fetchone()
    c.execute(
        """insert into raw.landlord_incidents (livraison_id, ligne, code_bailleur, id_incident,
           date_signalement, id_residence, code_categorie, lieu, gravite)
           values (?, 999999, ?, 'TEST-UNMAPPED', ?, ?, 'CODE-INCONNU', 'hall', 1)""",
        [inc[0], inc[1], inc[3], inc[2]],
    )
    log = c.execute(
        """select p.livraison_id, p.id_logement, p.depcom from raw.landlord_patrimoine p
           join raw.livraisons l using (livraison_id) where l.statut = 'chargee'
           and p.id_residence in (select id_residence from raw.landlord_patrimoine
                                  group by id_residence having count(*) > 1)
           limit 1"""
    ).fetchone()
    other = c.execute(
        "select codgeo from raw.reference_epci where codgeo <> ? limit 1", [log[2]]
    ).fetchone()[0]
    c.execute(
        "update raw.landlord_patrimoine set depcom = ? where livraison_id = ? and id_logement = ?",
        [other, log[0], log[1]],
    )
    att = c.execute(
        """select a.livraison_id, a.depcom from raw.allocations_attributions a
           join raw.livraisons l using (livraison_id) where l.statut = 'chargee' limit 1"""
    ).fetchone()
    c.execute(
        """insert into raw.allocations_attributions (livraison_id, ligne, pseudo_demande,
           date_attribution, date_signature_bail, depcom, revenu_annuel_euros,
           nb_personnes_14_ans_et_plus, nb_enfants_moins_14_ans, menage_prioritaire, relogement_anru)
           values (?, 999999, 'x', DATE '2030-01-02', DATE '2030-02-01', ?, 1000, 1, 0, 'non', false)""",
        [att[0], att[1]],
    )
    evt = c.execute(
        """select e.livraison_id, e.date from raw.police_evenements e
           join raw.livraisons l using (livraison_id) where l.statut = 'chargee' limit 1"""
    ).fetchone()
    c.execute(
        """insert into raw.police_evenements (livraison_id, ligne, id_evenement, date, depcom, type)
           values (?, 999999, 'TEST-EVT', ?, '00000', 'intervention_police')""",
        [evt[0], evt[1]],
    )
    c.close()

    dbt(built, "run", home=bad_home)
    proc = dbt(built, "test", "--select", "tag:bloquant", home=bad_home, ok=(1,))
    for name in (
        "assert_incident_codes_all_mapped",
        "assert_residence_single_commune_and_qpv",
        "assert_allocations_have_threshold",
        "assert_communes_in_epci_file",
    ):
        assert any(name in line and "FAIL" in line for line in proc.stdout.splitlines()), name
    c = duckdb.connect(str(bad), read_only=True)
    try:
        found = c.execute(
            "select code_categorie from controles.assert_incident_codes_all_mapped"
        ).fetchall()
        assert found == [("CODE-INCONNU",)]
        communes = c.execute(
            "select code_commune from controles.assert_communes_in_epci_file"
        ).fetchall()
        assert ("00000",) in communes
    finally:
        c.close()
