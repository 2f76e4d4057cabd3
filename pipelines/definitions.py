"""The Dagster code location (`make ui`, `tranquillity refresh`)."""

from __future__ import annotations

import dagster as dg

from pipelines.assets.ingestion import INGESTION_ASSETS
from pipelines.jobs import refresh_job
from pipelines.resources import WarehouseResource

# DuckDB is single-writer: steps run one after the other in one process.
defs = dg.Definitions(
    assets=[*INGESTION_ASSETS],
    jobs=[refresh_job],
    resources={"warehouse": WarehouseResource()},
    executor=dg.in_process_executor,
)
