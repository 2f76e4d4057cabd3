"""One home per closed list: every copy is derived from its home or proven equal to it here.

Homes:

- the delivery contract's vocabulary (kinds, families of kinds, enumerated columns, the
  incident categories): `pipelines/ingest/specs.py`;
- the delivery families: `pipelines/settings.py` FAMILIES;
- the ledger statuses: `pipelines/ingest/ledger.py` Status;
- the incident categories on the dbt side: the seed `nomenclature_incidents` (the dbt tests of
  a `categorie` column are `relationships` to it), itself equal to specs.py's CATEGORIES;
- every other list the dbt tests need: one `vars:` entry of `dbt_project/dbt_project.yml`,
  read by the tests as `"{{ var('name') }}"`; the entries copied from Python are compared
  with their home below, the others (territory levels, hall levels) are dbt's own;
- the contract tables: the marts whose dbt contract is enforced (pipelines/publish.py reads
  them from the manifest), each with a publication suite.

Each failure message names the file to fix. The checks a dbt test runs in DuckDB are not
repeated by the publication suites (checked here too).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from pipelines.ingest import specs
from pipelines.ingest.ledger import Status
from pipelines.settings import FAMILIES, REPO_ROOT

DBT = REPO_ROOT / "dbt_project"
DBT_PROJECT_YML = DBT / "dbt_project.yml"
MODELS = DBT / "models"
SEEDS = DBT / "seeds"
NOMENCLATURE = SEEDS / "nomenclature_incidents.csv"
SUITES = REPO_ROOT / "data_quality" / "suites"

KINDS = tuple(k.name for k in (*specs.ALL_KINDS, specs.SSMSI_KIND))
STATUSES = tuple(s.value for s in Status)


def rel(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def dbt_vars() -> dict[str, list[Any]]:
    return yaml.safe_load(DBT_PROJECT_YML.read_text(encoding="utf-8"))["vars"]


def seed_categories() -> list[str]:
    with NOMENCLATURE.open(encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: int(r["ordre"]))
    return [r["categorie"] for r in rows]


def _enum_constants() -> dict[str, tuple[str, ...]]:
    """specs.py's enumerations, by constant name (LIEUX, ...), as the columns use them."""
    allowed = {id(c.allowed) for k in specs.ALL_KINDS for c in k.columns if c.type == "enum"}
    return {
        name: value
        for name, value in vars(specs).items()
        if name.isupper() and isinstance(value, tuple) and id(value) in allowed
    }


def python_homes() -> dict[str, tuple[str, tuple[Any, ...]]]:
    """dbt var name -> (home, values) for every var copied from Python."""
    gravite = next(
        c
        for k in specs.ALL_KINDS
        for c in k.columns
        if k.name == "incidents" and c.name == "gravite"
    )
    assert gravite.minimum is not None and gravite.maximum is not None
    homes: dict[str, tuple[str, tuple[Any, ...]]] = {
        "familles": ("pipelines/settings.py FAMILIES", FAMILIES),
        "types_fichier": ("pipelines/ingest/specs.py (ALL_KINDS, SSMSI_KIND)", KINDS),
        "statuts_livraison": ("pipelines/ingest/ledger.py Status", STATUSES),
        "gravites": (
            "pipelines/ingest/specs.py (incidents.gravite minimum..maximum)",
            tuple(range(int(gravite.minimum), int(gravite.maximum) + 1)),
        ),
    }
    for name, values in _enum_constants().items():
        if name != "CATEGORIES":  # their dbt home is the seed
            homes[name.lower()] = (f"pipelines/ingest/specs.py {name}", values)
    return homes


# --- the dbt vars and the seed against their Python home ------------------------------------


def test_every_enumerated_column_of_the_contract_has_one_dbt_home() -> None:
    constants = _enum_constants()
    assert "CATEGORIES" in constants and "LIEUX" in constants
    missing = sorted(set(python_homes()) - set(dbt_vars()))
    assert not missing, f"{rel(DBT_PROJECT_YML)}: add vars {missing} (copies of their Python home)"


@pytest.mark.parametrize("name", sorted(python_homes()))
def test_dbt_var_equals_its_python_home(name: str) -> None:
    home, values = python_homes()[name]
    copy = dbt_vars().get(name)
    assert copy == list(values), (
        f"{rel(DBT_PROJECT_YML)}: vars.{name} is {copy}, its home {home} says {list(values)}: "
        f"fix {rel(DBT_PROJECT_YML)}"
    )


def test_nomenclature_seed_equals_specs_categories() -> None:
    assert seed_categories() == list(specs.CATEGORIES), (
        f"{rel(NOMENCLATURE)} (by ordre) is {seed_categories()}, pipelines/ingest/specs.py "
        f"CATEGORIES says {list(specs.CATEGORIES)}: fix {rel(NOMENCLATURE)}"
    )


def test_departements_seed_names_every_departement_of_the_communes_reference() -> None:
    """The seed `departements` (the names of nom_territoire at level `departement`) covers every
    code_departement of the commune base shipped with the project, and holds the 101 départements."""
    from pipelines.reference_data import load_communes

    with (SEEDS / "departements.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    seed = {r["code_departement"] for r in rows}
    shipped = set(load_communes()["code_departement"].to_list())
    assert shipped <= seed, f"{rel(SEEDS / 'departements.csv')} lacks {sorted(shipped - seed)}"
    assert len(seed) == len(rows)
    assert sum(r["nature"] == "departement" for r in rows) == 101


def test_hall_levels_of_the_seed_are_the_dbt_var_but_vert() -> None:
    levels = dbt_vars()["niveaux_gravite"]
    assert levels[0] == "vert", f"{rel(DBT_PROJECT_YML)}: niveaux_gravite starts with vert"
    with (SEEDS / "seuils_gravite_halls.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        assert row["niveau"] in levels[1:], f"seeds/seuils_gravite_halls.csv: {row['niveau']!r}"
        assert int(row["rang"]) == levels.index(row["niveau"]), (
            f"{rel(SEEDS / 'seuils_gravite_halls.csv')}: rang of {row['niveau']} is not its "
            f"place in vars.niveaux_gravite of {rel(DBT_PROJECT_YML)}"
        )


# --- the dbt YAML: tests read the homes, never a copy ---------------------------------------


def _yaml_files() -> Iterator[Path]:
    yield from sorted(MODELS.rglob("*.yml"))
    yield from sorted(SEEDS.rglob("*.yml"))


def _column_tests(path: Path) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(model, column, test name, arguments) of every column test of a YAML file."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for key in ("models", "seeds"):
        for node in document.get(key) or []:
            for column in node.get("columns") or []:
                for test in column.get("data_tests") or column.get("tests") or []:
                    if isinstance(test, str):
                        yield node["name"], column["name"], test, {}
                        continue
                    (name, body), *_ = test.items()
                    body = body or {}
                    yield node["name"], column["name"], name, body.get("arguments", body)


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined)


def render(values: Any) -> Any:
    """A test's `values` as dbt renders them (`var()` from dbt_project.yml)."""
    if not isinstance(values, str):
        return values
    variables = dbt_vars()
    return _ENV.compile_expression(values.strip().removeprefix("{{").removesuffix("}}"))(
        var=variables.__getitem__
    )


def _lists() -> dict[str, list[Any]]:
    return {**{f"vars.{k}": v for k, v in dbt_vars().items()}, "categories": seed_categories()}


def test_accepted_values_read_the_dbt_vars_never_a_copy() -> None:
    """A literal list in a test is a copy: one that is (part of) a known list must be a var."""
    problems = []
    for path in _yaml_files():
        for model, column, test, args in _column_tests(path):
            if test != "accepted_values":
                continue
            values = args["values"]
            where = f"{rel(path)}: {model}.{column}"
            if isinstance(values, str):
                assert "var(" in values, f"{where}: values {values!r}"
                render(values)  # an unknown var fails here
                continue
            strings = {v for v in values if isinstance(v, str)} - {"total"}
            for name, known in _lists().items():
                if (strings and strings <= set(known)) or values == known:
                    problems.append(f"{where}: literal {values} copies {name}: use the var")
    assert not problems, "\n".join(problems)


def test_category_columns_are_checked_against_the_seed() -> None:
    problems = []
    for path in sorted(MODELS.rglob("*.yml")):
        for model, column, test, args in _column_tests(path):
            if column == "categorie" and test == "accepted_values":
                problems.append(f"{rel(path)}: {model}.categorie: use relationships to the seed")
            if (
                column == "categorie"
                and test == "relationships"
                and args.get("to") != "ref('nomenclature_incidents')"
            ):
                problems.append(f"{rel(path)}: {model}.categorie: relationships to {args}")
    assert not problems, "\n".join(problems)


def test_seed_hall_indicators_are_columns_of_the_model() -> None:
    (values,) = [
        render(a["values"])
        for m, c, t, a in _column_tests(SEEDS / "seeds.yml")
        if m == "seuils_gravite_halls" and c == "indicateur" and t == "accepted_values"
    ]
    path = MODELS / "marts" / "tranquillite" / "niveau_gravite_halls_trimestre.yml"
    (model,) = yaml.safe_load(path.read_text(encoding="utf-8"))["models"]
    columns = {c["name"] for c in model["columns"]}
    missing = [v for v in values if v not in columns]
    assert not missing, (
        f"{rel(SEEDS / 'seeds.yml')}: indicators {missing} are no column of {rel(path)}"
    )


def test_raw_sources_are_the_tables_of_specs() -> None:
    path = MODELS / "staging" / "sources.yml"
    (raw,) = yaml.safe_load(path.read_text(encoding="utf-8"))["sources"]
    declared = {t["name"] for t in raw["tables"]} - {"livraisons", "quarantaine"}
    expected = {k.table for k in (*specs.ALL_KINDS, specs.SSMSI_KIND)}
    assert declared == expected, (
        f"{rel(path)}: raw tables {sorted(declared ^ expected)} differ from "
        "pipelines/ingest/specs.py (DeliveryKind.table)"
    )


# --- literals of a closed list written in SQL, test conditions and suites -------------------

# column -> the closed list its literals belong to (dbt models, tests, macros and GX suites;
# in all of them `statut` is the ledger's and `niveau` the territory level).
_LITERAL = re.compile(
    r"\b(?P<column>[a-z_]+)\s*(?:=|==|<>|!=)\s*['\"](?P<value>[A-Za-z0-9_]+)['\"]"
    r"|\b(?P<column_in>[a-z_]+)\s+(?:not\s+)?in\s*\((?P<values>[^)]*)\)",
    re.IGNORECASE,
)


def _closed_lists() -> dict[str, tuple[str, set[Any]]]:
    v = dbt_vars()
    return {
        "statut": ("pipelines/ingest/ledger.py Status", set(STATUSES)),
        "type_fichier": ("pipelines/ingest/specs.py kinds", set(KINDS)),
        "famille": ("pipelines/settings.py FAMILIES", set(FAMILIES)),
        "categorie": (
            "pipelines/ingest/specs.py CATEGORIES (+ total)",
            {*specs.CATEGORIES, "total"},
        ),
        "lieu": ("pipelines/ingest/specs.py LIEUX", set(specs.LIEUX)),
        "statut_occupation": ("pipelines/ingest/specs.py", set(specs.STATUTS_LOGEMENT)),
        "motif": ("pipelines/ingest/specs.py", set(specs.MOTIFS_PROCEDURE)),
        "etape": ("pipelines/ingest/specs.py", set(specs.ETAPES_PROCEDURE)),
        "origine": ("pipelines/ingest/specs.py", set(specs.ORIGINES_PROCEDURE)),
        "type_evenement": (
            "pipelines/ingest/specs.py (+ total)",
            {*specs.TYPES_EVENEMENT, "total"},
        ),
        "menage_prioritaire": ("pipelines/ingest/specs.py", set(specs.MENAGES_PRIORITAIRES)),
        "reservataire": ("pipelines/ingest/specs.py", set(specs.RESERVATAIRES)),
        "niveau": ("dbt_project.yml vars.niveaux_territoire", set(v["niveaux_territoire"])),
        "niveau_gravite": ("dbt_project.yml vars.niveaux_gravite", set(v["niveaux_gravite"])),
    }


def _texts() -> Iterator[Path]:
    for folder in ("models", "tests", "macros"):
        for suffix in ("*.sql", "*.yml"):
            yield from sorted((DBT / folder).rglob(suffix))
    yield from sorted(SUITES.glob("*.yml"))


def literal_uses() -> Iterator[tuple[Path, str, str]]:
    """(file, column, value) of every `column = 'value'` / `column in ('a', 'b')` written."""
    for path in _texts():
        text = path.read_text(encoding="utf-8")
        for match in _LITERAL.finditer(text):
            if match["column"]:
                yield path, match["column"].lower(), match["value"]
            else:
                for value in re.findall(r"['\"]([A-Za-z0-9_]+)['\"]", match["values"]):
                    yield path, match["column_in"].lower(), value


def test_literals_in_sql_and_conditions_belong_to_their_list() -> None:
    lists = _closed_lists()
    problems = []
    seen = set()
    for path, column, value in literal_uses():
        if column not in lists:
            continue
        seen.add(column)
        home, allowed = lists[column]
        if value not in allowed:
            problems.append(f"{rel(path)}: {column} = {value!r} is not in {home}")
    assert {"statut", "type_fichier", "categorie", "lieu", "niveau"} <= seen  # the scan works
    assert not problems, "\n".join(problems)


# --- the Great Expectations suites ------------------------------------------------------------


def _suite(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_one_delivery_suite_per_family_knowing_the_family_kinds() -> None:
    suites = {p.stem.removeprefix("livraisons_") for p in SUITES.glob("livraisons_*.yml")}
    assert suites == set(FAMILIES), (
        f"data_quality/suites/livraisons_*.yml: {sorted(suites)}, pipelines/settings.py "
        f"FAMILIES says {list(FAMILIES)}"
    )
    for family in FAMILIES:
        path = SUITES / f"livraisons_{family}.yml"
        (known,) = [
            e["kwargs"]["value_set"]
            for d in _suite(path)["datasets"]
            for e in d.get("expectations") or []
            if e["id"] == "type_de_fichier_connu"
        ]
        kinds = [k for k in (*specs.ALL_KINDS, specs.SSMSI_KIND) if k.family == family]
        expected = {k.name for k in kinds}
        assert set(known) == expected, (
            f"{rel(path)}: type_de_fichier_connu lists {sorted(known)}, "
            f"pipelines/ingest/specs.py has {sorted(expected)} for {family}: fix {rel(path)}"
        )


def test_one_publication_suite_per_contract_table() -> None:
    from pipelines.publish import CONTRACT_TABLES

    suites = {p.stem.removeprefix("publication_") for p in SUITES.glob("publication_*.yml")}
    assert suites == set(CONTRACT_TABLES), (
        f"data_quality/suites/publication_*.yml: {sorted(suites)}; the contract tables (models "
        f"with an enforced contract in dbt_project/models/marts) are {list(CONTRACT_TABLES)}"
    )


def _mart_tests() -> dict[str, dict[str, Any]]:
    """model -> its dbt tests: keys (column tuples), not-null columns, closed-list columns."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((MODELS / "marts").rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or []:
            tests: dict[str, Any] = {"path": path, "keys": set(), "not_null": set(), "lists": set()}
            for test in model.get("data_tests") or []:
                if isinstance(test, dict) and "unique_combination_of_columns" in test:
                    args = test["unique_combination_of_columns"]["arguments"]
                    tests["keys"].add(frozenset(args["combination_of_columns"]))
            for m, column, name, _ in _column_tests(path):
                if m != model["name"]:
                    continue
                if name == "not_null":
                    tests["not_null"].add(column)
                if name in ("accepted_values", "relationships"):
                    tests["lists"].add(column)
                if name == "unique":
                    tests["keys"].add(frozenset([column]))
            found[model["name"]] = tests
    return found


def _repeats(expectation: dict[str, Any], dbt: dict[str, Any]) -> bool:
    """The expectation checks what a dbt test of the model already checks."""
    kind, kwargs = expectation["expectation"], expectation["kwargs"]
    if kind == "expect_compound_columns_to_be_unique":
        return frozenset(kwargs["column_list"]) in dbt["keys"]
    if kind == "expect_column_values_to_be_unique":
        return frozenset([kwargs["column"]]) in dbt["keys"]
    if kind == "expect_column_values_to_not_be_null":
        return not expectation.get("when") and kwargs["column"] in dbt["not_null"]
    if kind == "expect_column_values_to_be_in_set":
        return kwargs["column"] in dbt["lists"]
    return False


def test_publication_suites_do_not_repeat_dbt_tests() -> None:
    """A key, a missing value or a closed list of a contract table is checked once, by dbt in
    DuckDB: the publication suite that repeats it is the copy to remove."""
    from pipelines.publish import CONTRACT_TABLES

    marts = _mart_tests()
    problems = []
    for table in CONTRACT_TABLES:
        path = SUITES / f"publication_{table}.yml"
        dbt = marts[table]
        for dataset in _suite(path)["datasets"]:
            if not re.fullmatch(rf"\s*SELECT\s.*\sFROM\s+marts\.{table}\s*", dataset["sql"], re.S):
                continue  # a reconciliation, not the table itself
            for e in dataset.get("expectations") or []:
                repeated = _repeats(e, dbt)
                if repeated:
                    problems.append(
                        f"{rel(path)}: {e['id']} repeats a dbt test of {rel(dbt['path'])}"
                    )
    assert not problems, "\n".join(problems)


# --- the contract tables ----------------------------------------------------------------------


def test_contract_tables_are_the_enforced_contracts_of_the_marts_yaml() -> None:
    """pipelines/publish.py reads them from the manifest; the YAML is their home."""
    from pipelines.publish import CONTRACT_TABLES

    ranked = []
    for path in sorted((MODELS / "marts").rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or []:
            config = model.get("config") or {}
            if (config.get("contract") or {}).get("enforced"):
                ranked.append((config["meta"]["ordre_contrat"], model["name"]))
    assert tuple(name for _, name in sorted(ranked)) == CONTRACT_TABLES, (
        "dbt_project/target/manifest.json is stale: make manifest"
    )
    assert len({rank for rank, _ in ranked}) == len(ranked), "two contract tables share a rank"
