"""raw -> staging -> intermediate -> marts: the dbt project, one Dagster asset per model.

dbt tests attached to a model surface as Dagster asset checks; in addition every test, unit
test and model outcome of the build is written to `audit.controles` for this run, because the
publish step must decide from a record it reads itself (see `pipelines.audit`).
"""

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.audit import CheckOutcome, record
from pipelines.dbt_project import dbt_project
from pipelines.resources import WarehouseResource

_LAYERS = ("staging", "intermediate", "marts")


class TranquillityTranslator(DagsterDbtTranslator):
    """Groups assets by dbt layer so the UI reads left to right like the data path."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        for layer in _LAYERS:
            if layer in fqn:
                return layer
        return "seeds" if dbt_resource_props.get("resource_type") == "seed" else "dbt"


def outcomes_from_run_results(
    run_results: Mapping[str, Any], manifest: Mapping[str, Any]
) -> list[CheckOutcome]:
    """One outcome per dbt test, unit test and model of the invocation."""
    nodes = {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}
    outcomes = []
    for result in run_results.get("results", []):
        unique_id: str = result["unique_id"]
        node = nodes.get(unique_id, {})
        status = str(result.get("status"))
        kind = unique_id.split(".", 1)[0]
        if kind == "test":
            severity = str(node.get("config", {}).get("severity", "error")).lower()
            attached = node.get("attached_node") or ""
            outcomes.append(
                CheckOutcome(
                    controle=node.get("name", unique_id),
                    origine="dbt_test",
                    cible=attached.split(".")[-1] if attached else _refs(node),
                    bloquant=severity == "error",
                    statut={"pass": "pass", "fail": "fail", "warn": "warn"}.get(status, status),
                    nb_echecs=result.get("failures"),
                    message=result.get("message"),
                    exemples=result.get("relation_name"),
                )
            )
        elif kind == "unit_test":
            outcomes.append(
                CheckOutcome(
                    controle=node.get("name", unique_id),
                    origine="dbt_unit_test",
                    cible=node.get("model"),
                    bloquant=True,
                    statut="pass" if status == "pass" else "fail" if status == "fail" else status,
                    message=result.get("message"),
                )
            )
        elif kind in ("model", "seed"):
            outcomes.append(
                CheckOutcome(
                    controle=f"build {node.get('name', unique_id)}",
                    origine=f"dbt_{kind}",
                    cible=node.get("name"),
                    bloquant=True,
                    statut="pass" if status == "success" else status,
                    message=None if status == "success" else result.get("message"),
                )
            )
    return outcomes


def _refs(node: Mapping[str, Any]) -> str | None:
    refs = [r.get("name") if isinstance(r, dict) else r[-1] for r in node.get("refs", [])]
    return ", ".join(r for r in refs if r) or None


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=TranquillityTranslator(),
)
def dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """`dbt build` (seeds, models, tests, unit tests) on the working warehouse."""
    home = warehouse.get_home()
    # profiles.yml reads the database path from the environment of the dbt process.
    os.environ["TRANQUILLITY_WAREHOUSE_DB"] = str(home.warehouse_db)
    # dbt's artifacts and logs belong to the home, not the repository; a fixed target folder
    # per home keeps dbt's partial-parse cache between refreshes.
    os.environ["DBT_LOG_PATH"] = str(home.work / "dbt_logs")
    invocation = dbt.cli(
        ["build"], context=context, raise_on_error=False, target_path=home.work / "dbt_target"
    )
    yield from invocation.stream()
    run_results = invocation.get_artifact("run_results.json")
    manifest = json.loads(dbt_project.manifest_path.read_text())
    outcomes = outcomes_from_run_results(run_results, manifest)
    with warehouse.connect() as con:
        outcomes = [_with_examples(con, o) for o in outcomes]
        record(con, context.run_id, outcomes)
    failed = [o for o in outcomes if o.blocks]
    if failed:
        context.log.warning(
            f"{len(failed)} blocking dbt checks failed: "
            + ", ".join(f"{o.controle} ({o.nb_echecs})" for o in failed[:10])
        )


def _with_examples(con: Any, outcome: CheckOutcome) -> CheckOutcome:
    """Replace a stored-failures relation name by a few of its rows, as JSON."""
    relation = outcome.exemples
    if not relation or outcome.statut not in ("fail", "warn"):
        return CheckOutcome(**{**outcome.__dict__, "exemples": None})
    try:
        cursor = con.execute(f"SELECT * FROM {relation} LIMIT 5")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        examples = json.dumps(rows, ensure_ascii=False, default=str)
    except Exception:  # the relation is only there when failures are stored
        examples = None
    return CheckOutcome(**{**outcome.__dict__, "exemples": examples})
