"""The inbox sensor: a refresh as soon as partners' files have landed, and not before.

Partners drop files at any time, often through slow copies or browser downloads; a refresh
that read a half-written file would reject it, or load it truncated. So a file starts a
refresh only once it is seen with the same size and modification time at two successive
ticks (the previous tick's observations are the sensor's cursor), under its final name, and
only when the delivery ledger `raw.livraisons` does not already know it with that size and
time. What counts as a delivery, and which names are temporary, is the loader's discovery
(`scan_inbox`), never a second definition here: a file a refresh would not read never starts
one.

The ledger is read read-only, and not at all while a refresh runs (that refresh reads the
inbox anyway): the tick is skipped, as it is when another process holds the warehouse. No
warehouse yet means every stable file is new.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb

from pipelines import alerts, lock
from pipelines.ingest.loader import Stamps, inbox_stamps, recorded_stamps
from pipelines.jobs import refresh_job
from pipelines.partitions import refresh_tags
from pipelines.refresh import STARTED_BY_TAG, classify_dagster_run
from pipelines.settings import Home, connection_config

# A file must keep its size and time over this long (two ticks) to count as delivered.
TICK_SECONDS = 60

# Runs of `refresh` not yet finished: they hold the warehouse (or will) and read whatever the
# inbox holds, so the sensor waits for them rather than race them for the warehouse's lock
# between two of their steps. One not updated for this long is taken for a run whose process
# died without saying so (a national refresh takes about 35 minutes): it no longer counts.
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
STALE_AFTER = timedelta(hours=12)

# Files named in the sensor's log line (a national inbox delivers thousands at once).
LOGGED_FILES = 10


class WarehouseBusy(Exception):
    """Another process (a refresh) holds the warehouse: the ledger cannot be read now."""


def ledger_stamps(home: Home) -> set[tuple[str, int, str]]:
    """(file, size, time) of every delivery the ledger knows, read without writing anything:
    none when there is no warehouse or no ledger yet."""
    if not home.warehouse_db.exists():
        return set()
    try:
        con = duckdb.connect(str(home.warehouse_db), read_only=True, config=connection_config())
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        raise WarehouseBusy(str(exc).splitlines()[0]) from exc
    try:
        return recorded_stamps(con)
    except duckdb.CatalogException:  # a warehouse created before its first ingestion
        return set()
    finally:
        con.close()


def refresh_running(instance: dg.DagsterInstance) -> str | None:
    """The id of an unfinished `refresh` run (the daemon's, or `tranquillity refresh`'s on
    the same instance), if any."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=refresh_job.name,
            statuses=UNFINISHED,
            updated_after=datetime.now(UTC) - STALE_AFTER,
        ),
        limit=1,
    )
    return records[0].dagster_run.run_id if records else None


def _read_cursor(cursor: str | None) -> tuple[Stamps, Stamps]:
    """The previous tick's observations, and the files already requested (same stamps)."""
    if not cursor:
        return {}, {}
    state = json.loads(cursor)

    def stamps(key: str) -> Stamps:
        return {name: (int(size), str(at)) for name, (size, at) in state.get(key, {}).items()}

    return stamps("observed"), stamps("requested")


def run_key(files: Stamps) -> str:
    """The same files (names, sizes, times) always give the same key: Dagster never starts
    two runs for one key of this sensor."""
    listing = json.dumps(sorted((name, *stamp) for name, stamp in files.items()))
    return hashlib.sha256(listing.encode()).hexdigest()


@dg.sensor(
    name="inbox_deliveries",
    job=refresh_job,
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Requests a refresh when a delivery file is new or replaced in the inbox and has "
        "kept its size and time for one tick."
    ),
)
def inbox_deliveries(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Compare the inbox with the previous tick and with the ledger; request one run for the
    stable files neither the ledger nor an earlier request of this sensor knows."""
    home = Home.from_env()
    running = refresh_running(context.instance)
    if running is not None:
        return dg.SkipReason(f"refresh {running} not finished: next tick")
    try:  # a refresh from the command line runs outside Dagster's queue: its lock says so
        lock.release(lock.acquire(home, by="inbox sensor (checking)"))
    except lock.RefreshRunning as exc:
        return dg.SkipReason(f"next tick: {exc}")
    try:
        known = ledger_stamps(home)
    except WarehouseBusy as exc:
        return dg.SkipReason(f"warehouse in use (a refresh is running?), next tick: {exc}")
    observed, requested = _read_cursor(context.cursor)
    now = inbox_stamps(home)
    pending = {name: stamp for name, stamp in now.items() if (name, *stamp) not in known}
    stable = {name: stamp for name, stamp in pending.items() if observed.get(name) == stamp}
    new = {name: stamp for name, stamp in stable.items() if requested.get(name) != stamp}
    # Only what may still trigger is remembered: files the ledger knows drop out.
    requested = {n: s for n, s in requested.items() if pending.get(n) == s} | new
    cursor = json.dumps({"observed": pending, "requested": requested}, sort_keys=True)
    if not new:
        settling = len(pending) - len(stable)
        reason = (
            f"{settling} file(s) still changing or seen once: waiting one more tick"
            if settling
            else "no new or replaced delivery in the inbox"
        )
        return dg.SensorResult(skip_reason=reason, cursor=cursor)
    names = sorted(new)
    more = f" and {len(names) - LOGGED_FILES} more" if len(names) > LOGGED_FILES else ""
    context.log.info(
        f"{len(names)} new or replaced delivery file(s): {', '.join(names[:LOGGED_FILES])}{more}"
    )
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key(new), tags=refresh_tags())], cursor=cursor
    )


@dg.run_failure_sensor(
    name="refresh_failure_alerts",
    monitored_jobs=[refresh_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts (pipelines/alerts.py) for a refresh run started from the UI, the inbox "
    "sensor or a schedule that failed or was blocked by a gate.",
)
def refresh_failure_alerts(context: dg.RunFailureSensorContext) -> None:
    """A run the daemon started has no command line to raise its alerts: this sensor does,
    classifying the run as the command line would (failed, or blocked by a gate, with the
    held deliveries) and sending the same alerts. Runs of `tranquillity refresh` (tagged)
    alert by themselves."""
    run = context.dagster_run
    if STARTED_BY_TAG in run.tags:
        return
    home = Home.from_env()
    outcome = classify_dagster_run(home, context.instance, run.run_id)
    alerts.emit(home, alerts.alerts_of(outcome, alerts.held_alerted(home)))


SENSORS = [inbox_deliveries, refresh_failure_alerts]
