"""marts -> checks: the publication suites as blocking Dagster asset checks.

One check per contract table (`gx_publication`), validating the table as it will be published
with its Great Expectations suite (pipelines.quality.publication). Outcomes go to
`audit.controles` like every other check of the run, because the publish step decides from
that record (dagster #25112), and the Data Docs of the run are rebuilt.
"""

import dagster as dg

from pipelines.assets.transform import dbt_models
from pipelines.audit import record
from pipelines.publish import CONTRACT_TABLES
from pipelines.quality.publication import validate_table
from pipelines.quality.runner import quality_run
from pipelines.resources import WarehouseResource

CHECK_NAME = "gx_publication"

_KEYS = {key.path[-1]: key for key in dbt_models.keys}


def _publication_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=_KEYS[table],
        name=CHECK_NAME,
        blocking=True,
        description=f"data_quality/suites/publication_{table}.yml (Great Expectations): keys, "
        "ranges and reconciliations of the table as it will be published.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        home = warehouse.get_home()
        quality = quality_run(home.data_docs, context.run.run_id)
        with warehouse.connect() as con:
            found = validate_table(con, quality, table)
            record(con, context.run.run_id, found)
        docs = quality.build_docs()
        failed = [o for o in found if o.statut != "pass"]
        return dg.AssetCheckResult(
            passed=not any(o.blocks for o in found),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "expectations": len(found),
                "failed": "\n".join(o.describe() for o in failed) or "none",
                "data_docs": str(docs) if docs else "none",
            },
        )

    return _check


PUBLICATION_CHECKS = [_publication_check(table) for table in CONTRACT_TABLES]
