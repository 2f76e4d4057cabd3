"""marts -> checks: the publication suites as blocking Dagster asset checks.

One check per contract table (`gx_publication`), validating the table as it will be published
with its Great Expectations suite (pipelines.quality.publication); for a table incremental by
month, the rows of the run's window (pipelines/window.py), the others being published as
they were checked before. Outcomes go to
`audit.controles` like every other check of the run, because the publish step decides from
that record (dagster #25112); the run's Data Docs show them when the run ends.
"""

import dagster as dg

from pipelines.assets.transform import dbt_models, dbt_monthly_models
from pipelines.audit import record
from pipelines.publish import CONTRACT_TABLES
from pipelines.quality.publication import validate_table
from pipelines.resources import QualityResource, WarehouseResource
from pipelines.window import window_of_run

CHECK_NAME = "gx_publication"

_KEYS = {key.path[-1]: key for key in (*dbt_models.keys, *dbt_monthly_models.keys)}


def _publication_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=_KEYS[table],
        name=CHECK_NAME,
        blocking=True,
        description=f"data_quality/suites/publication_{table}.yml (Great Expectations): keys, "
        "ranges and reconciliations of the table as it will be published.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        quality: QualityResource,
    ) -> dg.AssetCheckResult:
        run_id = context.run.run_id
        with warehouse.get_connection() as con:
            window = window_of_run(con, run_id)
            found = validate_table(con, quality.for_run(run_id), table, window)
            record(con, run_id, found)
        failed = [o for o in found if o.statut != "pass"]
        return dg.AssetCheckResult(
            passed=not any(o.blocks for o in found),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "expectations": len(found),
                "failed": dg.MetadataValue.md(
                    "\n".join(f"- {o.describe()}" for o in failed) or "none"
                ),
                "data_docs": dg.MetadataValue.path(str(quality.docs_index(run_id))),
            },
        )

    return _check


PUBLICATION_CHECKS = [_publication_check(table) for table in CONTRACT_TABLES]
