"""Inbox -> raw: one asset per delivery family (docs/deliveries.md).

Each asset loads every file of its inbox folder not yet in the delivery ledger. Rows are
typed and validated *before* they are written (a blocking check after the write would be too
late: the asset would already hold the bad rows), bad rows go to `raw.quarantaine`, and
unreadable files are recorded as rejected with their reason. Each delivery as a whole is then
judged by its family's Great Expectations suite (pipelines.quality.deliveries), still before
the write; the verdict is this asset's blocking check `livraisons_conformes` on every raw table
of the family, and each expectation's outcome goes to `audit.controles` for the publish gate.
"""

from collections.abc import Iterable, Iterator
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.audit import record
from pipelines.ingest.loader import FamilyReport, ingest_family
from pipelines.ingest.specs import ALL_KINDS, SSMSI_KIND
from pipelines.resources import QualityResource, WarehouseResource
from pipelines.warehouse import raw_columns

CHECK_NAME = "livraisons_conformes"

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
                ["raw", table],
                kinds={"duckdb", "polars"},
                description=_DESCRIPTIONS[family],
                metadata={"dagster/column_schema": _column_schema(table)},
            )
            for table in tables
        ],
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_NAME,
                asset=["raw", table],
                blocking=True,
                description=f"Every {family} delivery passes the blocking expectations of "
                f"data_quality/suites/livraisons_{family}.yml (judged before loading), and no "
                "held delivery of the family waits for a replacement (a warning, unless "
                "TRANQUILLITY_GATE=strict).",
            )
            for table in tables
        ],
    )
    def _load(
        context: AssetExecutionContext, warehouse: WarehouseResource, quality: QualityResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        home = warehouse.get_home()
        with warehouse.get_connection() as con:
            report: FamilyReport = ingest_family(
                con,
                home,
                family,
                warehouse.pseudonymisation(),
                quality.for_run(context.run_id),
                strict=quality.strict,
            )
            record(con, context.run_id, report.outcomes)
        for fichier, reason in report.rejected:
            context.log.warning(f"rejected {fichier}: {reason}")
        for fichier, reason in report.waiting:
            context.log.warning(f"blocked {fichier}: {reason}")
        context.log.info(
            f"{family}: {report.new_deliveries} new deliveries, {report.rows_loaded} rows loaded, "
            f"{report.rows_quarantined} quarantined"
        )
        failed = [o for o in report.outcomes if o.statut not in ("pass",)]
        blocks = any(o.blocks for o in report.outcomes)
        # A held delivery the publication goes on without (the default gate mode) fails the
        # check as a warning: visible in the UI, not stopping anything downstream.
        passed = not blocks and not report.waiting
        check_metadata: dict[str, Any] = {
            "failed_expectations": _md_list(o.describe() for o in failed),
            "blocked_deliveries": _md_list(f"`{f}`: {r}" for f, r in report.waiting),
            "data_docs": dg.MetadataValue.path(str(quality.docs_index(context.run_id))),
        }
        metadata: dict[str, Any] = {
            **report.as_metadata(),
            "rejections": _md_list(f"`{f}`: {r}" for f, r in report.rejected),
            "inbox": dg.MetadataValue.path(str(home.inbox_family(family))),
        }
        for table in tables:
            yield dg.MaterializeResult(asset_key=["raw", table], metadata=metadata)
            yield dg.AssetCheckResult(
                asset_key=["raw", table],
                check_name=CHECK_NAME,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR if blocks else dg.AssetCheckSeverity.WARN,
                metadata=check_metadata,
            )

    return _load


def _md_list(lines: Iterable[str]) -> dg.MetadataValue:
    """A Markdown list for the UI's metadata panel ("none" when empty)."""
    items = [f"- {line}" for line in lines]
    return dg.MetadataValue.md("\n".join(items) if items else "none")


def _column_schema(table: str) -> dg.TableSchema:
    """The raw table's columns and types, shown on the asset before anything is loaded."""
    kind = next(k for k in (*ALL_KINDS, SSMSI_KIND) if k.table == table)
    return dg.TableSchema(
        columns=[dg.TableColumn(name, sql) for name, sql in raw_columns(kind).items()]
    )


raw_reference = _ingestion_asset("reference")
raw_landlord = _ingestion_asset("landlord")
raw_police = _ingestion_asset("police")
raw_allocations = _ingestion_asset("allocations")

INGESTION_ASSETS = [raw_reference, raw_landlord, raw_police, raw_allocations]
