"""Inbox -> raw: one asset per delivery family (contract section 2).

Each asset loads every file of its inbox folder not yet in the delivery ledger. Rows are
typed and validated *before* they are written (a blocking check after the write would be too
late: the asset would already hold the bad rows), bad rows go to `raw.quarantaine`, and
unreadable files are recorded as rejected with their reason.
"""

from collections.abc import Iterator

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.ingest.loader import FamilyReport, ingest_family
from pipelines.ingest.specs import ALL_KINDS, SSMSI_KIND
from pipelines.resources import WarehouseResource

_DESCRIPTIONS = {
    "reference": "EPCI composition, QPV, Q1 thresholds, local targets, landlords and their "
    "incident-code mappings (inbox/reference).",
    "landlord": "Landlords' stock (patrimoine), incidents and eviction procedures (inbox/landlord).",
    "police": "SSMSI commune crime base (both schemas) and prefecture/police events (inbox/police).",
    "allocations": "Housing allocations, SNE-like (inbox/allocations).",
}


def _ingestion_asset(family: str) -> dg.AssetsDefinition:
    """One multi-asset per family: one Dagster asset per raw table it writes, keyed like the
    dbt sources (`raw/<table>`) so that staging models hang off the right table."""
    tables = sorted({kind.table for kind in (*ALL_KINDS, SSMSI_KIND) if kind.family == family})

    @dg.multi_asset(
        name=f"raw_{family}",
        group_name="raw",
        specs=[
            dg.AssetSpec(
                ["raw", table], kinds={"duckdb", "polars"}, description=_DESCRIPTIONS[family]
            )
            for table in tables
        ],
    )
    def _load(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult]:
        home = warehouse.get_home()
        with warehouse.connect() as con:
            report: FamilyReport = ingest_family(
                con, home, family, warehouse.pseudonymisation_key()
            )
        for fichier, reason in report.rejected:
            context.log.warning(f"rejected {fichier}: {reason}")
        context.log.info(
            f"{family}: {report.new_deliveries} new deliveries, {report.rows_loaded} rows loaded, "
            f"{report.rows_quarantined} quarantined"
        )
        for table in tables:
            yield dg.MaterializeResult(asset_key=["raw", table], metadata=report.as_metadata())

    return _load


raw_reference = _ingestion_asset("reference")
raw_landlord = _ingestion_asset("landlord")
raw_police = _ingestion_asset("police")
raw_allocations = _ingestion_asset("allocations")

INGESTION_ASSETS = [raw_reference, raw_landlord, raw_police, raw_allocations]
