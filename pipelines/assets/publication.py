"""checks -> publish -> reports: the publication is written only when every blocking check
passed; the official reports follow it, from its open data.

This step does not trust that Dagster skipped it after a failure (dagster #25112): it reads
the audit record of the run and refuses to publish unless every blocking check of this run
passed, the dbt build recorded its checks, and every Great Expectations suite (one per
delivery family, one per contract table) recorded its outcomes for this run.
"""

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.assets.transform import dbt_models, dbt_monthly_models
from pipelines.audit import CheckOutcome, outcomes_of_run
from pipelines.publish import CONTRACT_TABLES, make_current, stage_publication
from pipelines.reports.batch import INDEX, write_publication_reports
from pipelines.reports.data import open_folder
from pipelines.resources import ReportsResource, WarehouseResource
from pipelines.settings import FAMILIES
from pipelines.window import window_of_run

GATE_BLOCKED = "gate_blocked"

_MARTS = [
    key
    for models in (dbt_models, dbt_monthly_models)
    for key, group in models.group_names_by_key.items()
    if group == "marts"
]

REQUIRED_SUITES = {f"livraisons_{f}" for f in FAMILIES} | {
    f"publication_{t}" for t in CONTRACT_TABLES
}


def suites_recorded(outcomes: list[CheckOutcome]) -> set[str]:
    """Great Expectations suites with at least one outcome (`<suite>.<expectation>`)."""
    return {o.controle.split(".", 1)[0] for o in outcomes if o.origine == "gx"}


@dg.asset(
    name="publication",
    group_name="publish",
    deps=_MARTS,
    kinds={"duckdb"},
    description="published/current.duckdb: contract tables and other marts, swapped atomically.",
)
def publication(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    home = warehouse.get_home()
    with warehouse.get_connection() as con:
        outcomes = outcomes_of_run(con, context.run_id)
        blocking = [o for o in outcomes if o.blocks]
        if not any(o.origine.startswith("dbt") for o in outcomes):
            raise dg.Failure(
                description="no dbt check was recorded for this run: nothing is published",
                metadata={GATE_BLOCKED: True},
            )
        missing = sorted(REQUIRED_SUITES - suites_recorded(outcomes))
        if missing:
            raise dg.Failure(
                description="quality suites without outcomes for this run: "
                f"{', '.join(missing)}: nothing is published",
                metadata={GATE_BLOCKED: True},
            )
        if blocking:
            raise dg.Failure(
                description=f"{len(blocking)} blocking checks failed: nothing is published",
                metadata={
                    GATE_BLOCKED: True,
                    "failed_checks": "\n".join(
                        f"{o.controle} on {o.cible}: {o.nb_echecs} failing rows" for o in blocking
                    ),
                },
            )
        staged = stage_publication(
            con,
            home,
            run_id=context.run_id,
            n_controles=len(outcomes),
            window=window_of_run(con, context.run.run_id),
        )
    # The open data is written with the warehouse closed: its buffers would sit through the
    # repair's minutes (pipelines/publish.py, make_current).
    result = make_current(home, staged, keep=warehouse.keep_publications)
    context.log.info(f"published {result.publication_id} ({len(result.tables)} tables)")
    return dg.MaterializeResult(
        metadata={
            "publication_id": result.publication_id,
            "path": dg.MetadataValue.path(str(result.path)),
            "current": dg.MetadataValue.path(str(home.current_publication)),
            "tables": dg.MetadataValue.md("\n".join(f"- `{t}`" for t in result.tables)),
            "n_controles": result.n_controles,
            "open_data_seconds": result.open_data_seconds,
        }
    )


@dg.asset(
    name="rapports",
    group_name="publish",
    deps=[publication],
    kinds={"html", "pdf", "xlsx"},
    description=(
        "published/open/<publication_id>/rapports/: the allocation review (CIL) and the "
        "tranquillity review (CLSPD) of the publication's last year for every EPCI, from its "
        "open data; rendered again only when their content changed (docs/reports.md)."
    ),
)
def rapports(
    context: AssetExecutionContext, warehouse: WarehouseResource, reports: ReportsResource
) -> dg.MaterializeResult:
    if not reports.enabled():
        context.log.info("reports are off (TRANQUILLITY_RAPPORTS=off)")
        return dg.MaterializeResult(metadata={"rendered": 0, "reused": 0, "off": True})
    # The run holds the refresh lock: the current publication is the one it just made.
    folder = open_folder(warehouse.get_home().published)
    result = write_publication_reports(folder)
    index = result.folder / INDEX
    context.log.info(
        f"reports {result.annee}: {result.rendered} rendered in {result.processes} "
        f"process(es), {result.reused} unchanged ({result.seconds:.1f} s): {index}"
    )
    return dg.MaterializeResult(
        metadata={
            "publication_id": folder.publication_id,
            "annee": result.annee,
            "rendered": result.rendered,
            "reused": result.reused,
            "processes": result.processes,
            "seconds": round(result.seconds, 1),
            "index": dg.MetadataValue.path(str(index)),
        }
    )
