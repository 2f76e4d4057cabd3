"""Jobs: `refresh` materializes everything from the inbox."""

from __future__ import annotations

import dagster as dg

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all(),
    description="Load every new delivery of the inbox and rebuild everything downstream.",
)
