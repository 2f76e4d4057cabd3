"""The Dagster code location (`make ui`, `tranquillity refresh`)."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from pipelines.assets.checks import PUBLICATION_CHECKS
from pipelines.assets.ingestion import INGESTION_ASSETS
from pipelines.assets.publication import publication
from pipelines.assets.transform import dbt_models
from pipelines.dbt_project import dbt_project
from pipelines.jobs import refresh_job
from pipelines.resources import WarehouseResource

DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))

# DuckDB is single-writer: steps run one after the other in one process.
defs = dg.Definitions(
    assets=[*INGESTION_ASSETS, dbt_models, publication],
    asset_checks=PUBLICATION_CHECKS,
    jobs=[refresh_job],
    resources={
        "warehouse": WarehouseResource(),
        # The venv's dbt, whether or not the venv is activated.
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
    },
    executor=dg.in_process_executor,
)
