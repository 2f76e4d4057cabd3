"""The calendar of refreshes: one a month, and one for the social-mix year.

The inbox sensor (pipelines.sensors) refreshes whenever files land; the schedules make sure
a refresh happens on the dates the figures are expected, even in a month when nothing new
arrived (the blocked deliveries are examined again, the publication is dated) and after a
sensor-started run that failed. Times are Paris times: partners and readers are in France,
and the cron must not drift by an hour twice a year.
"""

from __future__ import annotations

import dagster as dg

from pipelines.jobs import refresh_job
from pipelines.partitions import PARIS, refresh_tags


def _refresh_every_partition(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """A refresh of what changed, over every monthly partition as of this tick."""
    return dg.RunRequest(tags=refresh_tags())


# The 5th at 06:00: monthly extracts (incidents, events, allocations of month M-1) are due in
# the first days of month M; the figures are published before the working day starts.
monthly_refresh = dg.schedule(
    name="monthly_refresh",
    job=refresh_job,
    cron_schedule="0 6 5 * *",
    execution_timezone=PARIS,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh on the 5th of each month, after the month's extracts are due.",
)(_refresh_every_partition)

# 15 February at 06:00: the social-mix indicators of year N need the December allocations
# (delivered in early January, often re-delivered during January once leases signed late are
# known) and the year's Q1 thresholds; mid-February leaves those re-deliveries time to land,
# so that this run publishes year N complete for the intercommunal conferences' yearly report.
yearly_social_mix_refresh = dg.schedule(
    name="yearly_social_mix_refresh",
    job=refresh_job,
    cron_schedule="0 6 15 2 *",
    execution_timezone=PARIS,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh on 15 February: the social-mix year N-1 with its December allocations.",
)(_refresh_every_partition)

SCHEDULES = [monthly_refresh, yearly_social_mix_refresh]
