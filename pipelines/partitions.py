"""Monthly partitions of the marts that are incremental by month.

A partition is a month of `indicateurs_incidents_mois` and the tables built from it (dbt
incremental models: pipelines/window.py). A run over a range of partitions (a backfill from the
UI, or `tranquillity refresh --mois 2024-01:2024-06`) recomputes those months in one dbt
invocation (`BackfillPolicy.single_run`); a run without a partition (the inbox sensor, the
schedules, a plain `tranquillity refresh`) recomputes the months its deliveries changed. Either
way the run adds the months the deliveries changed since the publication, so a partition range
can widen what a refresh recomputes, never narrow it.

Dagster cannot run these assets outside a partition range (the data versions of one monthly
model read from another need the run's range): every run of the `refresh` job carries one. A
run of the command line, the sensor or a schedule covers every partition and says, by the tag
`tranquillity/fenetre`, that it recomputes the months the deliveries changed (`changements`)
or every month (`tous`, `refresh --force`); a run without that tag (a backfill from the UI,
`refresh --mois`) recomputes its partitions on top of the changed months. After any run, every
month of the tables is up to date: recomputed, or unchanged since it was.

The months start in 2015 (the SSMSI series and RPLS stock files partners can send back that
far) and end with the last complete month: the extracts of month M arrive in month M+1.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from pipelines.window import months_between

FIRST_MONTH = "2015-01-01"
# Partners and readers are in France: months and schedules are Paris months and times.
PARIS = "Europe/Paris"

monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=FIRST_MONTH, timezone=PARIS, end_offset=0
)


def partition_months(key_range: dg.PartitionKeyRange) -> tuple[date, ...]:
    """The months of a range of monthly partition keys ('YYYY-MM-DD', first days)."""
    return months_between(date.fromisoformat(key_range.start), date.fromisoformat(key_range.end))


# What a run recomputes (module doc); Dagster's tags of a run over a range of partitions.
WINDOW_TAG = "tranquillity/fenetre"
CHANGED = "changements"
EVERY = "tous"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def refresh_tags(
    mode: str | None = CHANGED, months: tuple[date, date] | None = None
) -> dict[str, str]:
    """The tags of a refresh run: the partitions of `months` (first, last) or every one, and
    the window `mode` (CHANGED, EVERY, or None: the partitions on top of the changed months)."""
    if months is None:
        keys = monthly_partitions.get_partition_keys()
        first, last = keys[0], keys[-1]
    else:
        first, last = (m.replace(day=1).isoformat() for m in months)
    tags = {RANGE_START: first, RANGE_END: last}
    if mode is not None:
        tags[WINDOW_TAG] = mode
    return tags
