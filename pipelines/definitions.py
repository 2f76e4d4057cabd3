"""The Dagster code location (`make ui`, `tranquillity refresh`).

A tiny module over one module per concern (dagster-university's `dagster_and_dbt` layout):
assets per source (pipelines.assets; the marts incremental by month are partitioned by month,
pipelines.partitions), the publication checks, the job, what starts it (the inbox sensor, the
schedules: running as soon as `make ui`'s daemon runs) and the resources that carry every
setting (pipelines.resources).
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from pipelines.assets.checks import PUBLICATION_CHECKS
from pipelines.assets.ingestion import INGESTION_ASSETS
from pipelines.assets.publication import publication, rapports
from pipelines.assets.transform import dbt_models, dbt_monthly_models
from pipelines.dbt_project import dbt_project
from pipelines.jobs import refresh_job
from pipelines.resources import run_resources
from pipelines.schedules import SCHEDULES
from pipelines.sensors import SENSORS

DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))


def build_definitions() -> dg.Definitions:
    """The definitions with resources configured from the environment as it is now: the
    refresh command builds them for each run (a test process runs many, each its home)."""
    return dg.Definitions(
        assets=[*INGESTION_ASSETS, dbt_models, dbt_monthly_models, publication, rapports],
        asset_checks=PUBLICATION_CHECKS,
        jobs=[refresh_job],
        sensors=SENSORS,
        schedules=SCHEDULES,
        resources={
            **run_resources(),
            # The venv's dbt, whether or not the venv is activated.
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
        },
        # DuckDB is single-writer: steps run one after the other in one process, which also
        # lets the run's resources (one GX context) live from the first step to the last.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
