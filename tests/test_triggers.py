"""What starts a refresh: the inbox sensor, the schedules, and the one-run-at-a-time queue.

The sensor is driven tick by tick against a real inbox and a real ledger: a refresh must never
start on a file still being copied, nor twice for the same files, nor for a file the ledger
already holds; and it must not trip over a refresh holding the warehouse.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from pipelines.definitions import build_definitions
from pipelines.ingest.loader import TEMPORARY_PREFIXES, TEMPORARY_SUFFIXES
from pipelines.partitions import CHANGED, WINDOW_TAG, monthly_partitions, refresh_tags
from pipelines.schedules import monthly_refresh, yearly_social_mix_refresh
from pipelines.sensors import inbox_deliveries, run_key
from pipelines.settings import DAGSTER_YAML, Home, write_dagster_yaml
from pipelines.window import INCREMENTAL_MODELS
from tests.conftest import INCIDENTS_HEADER, ingest, stock, write_delimited

REPO = Path(__file__).resolve().parents[1]
PARIS = ZoneInfo("Europe/Paris")


class Sensor:
    """Ticks of the inbox sensor, each given the cursor the previous one left."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self.cursor: str | None = None
        self.skip: str | None = None

    def tick(self) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(cursor=self.cursor, instance=self.instance)
        result = inbox_deliveries(context)
        if isinstance(result, dg.SkipReason):  # the cursor is left as it was
            self.skip = result.skip_message
            return []
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor
        self.skip = result.skip_reason.skip_message if result.skip_reason else None
        return list(result.run_requests or [])


@pytest.fixture
def sensor(home: Home) -> Iterator[Sensor]:
    with dg.DagsterInstance.ephemeral() as instance:
        yield Sensor(instance)


def incidents(home: Home, month: str = "2025-01", mtime: float = 1_700_000_000) -> Path:
    return write_delimited(
        home.inbox_family("landlord") / f"HMP_incidents_{month}.csv",
        INCIDENTS_HEADER,
        [f"I1;{month}-10;R1;L1;VOL;hall;2;;non;;T1;"],
        mtime=mtime,
    )


def test_the_definitions_hold_the_job_the_sensor_both_schedules_and_the_partitions() -> None:
    defs = build_definitions()
    job = defs.resolve_job_def("refresh")
    assert job.name == "refresh"
    # The marts incremental by month are partitioned by month; the job runs over a range.
    assert job.partitions_def == monthly_partitions
    partitioned = {
        key.path[-1]
        for key in defs.resolve_all_asset_keys()
        if defs.resolve_assets_def(key).partitions_def == monthly_partitions
    }
    assert partitioned == set(INCREMENTAL_MODELS)
    assert monthly_partitions.get_first_partition_key() == "2015-01-01"
    sensor = defs.resolve_sensor_def("inbox_deliveries")
    assert sensor.job_name == "refresh"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    for name in ("monthly_refresh", "yearly_social_mix_refresh"):
        schedule = defs.resolve_schedule_def(name)
        assert schedule.job_name == "refresh"
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_a_new_file_triggers_one_run_once_it_is_unchanged_for_a_tick(
    home: Home, sensor: Sensor
) -> None:
    assert not home.warehouse_db.exists()  # no warehouse yet: every stable file is new
    path = incidents(home)
    assert sensor.tick() == []  # seen once: perhaps still being written
    assert sensor.skip and "waiting one more tick" in sensor.skip
    [request] = sensor.tick()
    # Over every monthly partition, recomputing the months the deliveries changed.
    assert request.tags == refresh_tags()
    assert request.tags[WINDOW_TAG] == CHANGED
    stat = path.stat()
    assert request.run_key == run_key(
        {"landlord/HMP_incidents_2025-01.csv": (stat.st_size, "2023-11-14T22:13:20")}
    )
    # The same files never trigger twice, however many ticks see them.
    assert sensor.tick() == []
    assert sensor.tick() == []
    # A second file triggers a run of its own, under another key.
    incidents(home, "2025-02")
    assert sensor.tick() == []
    [second] = sensor.tick()
    assert second.run_key != request.run_key


def test_a_file_still_growing_waits_until_it_stops(home: Home, sensor: Sensor) -> None:
    path = incidents(home)
    assert sensor.tick() == []
    with path.open("a") as handle:  # the copy goes on: size and time change
        handle.write("I2;2025-01-11;R1;L1;VOL;hall;2;;non;;T1;\n")
    os.utime(path, (1_700_000_100, 1_700_000_100))
    assert sensor.tick() == []
    os.utime(path, (1_700_000_200, 1_700_000_200))  # same size, touched again
    assert sensor.tick() == []
    assert len(sensor.tick()) == 1


def test_temporary_names_and_misplaced_files_never_trigger(home: Home, sensor: Sensor) -> None:
    folder = home.inbox_family("landlord")
    names = [
        ".HMP_incidents_2025-01.csv",
        ".~lock.HMP_incidents_2025-01.csv#",
        "~$HMP_patrimoine_2025.xlsx",
        "HMP_incidents_2025-01.csv.part",
        "HMP_incidents_2025-01.CSV.TMP",
        "HMP_incidents_2025-01.csv.crdownload",
    ]
    # Every prefix and suffix of the loader's list is exercised here.
    assert all(any(n.startswith(p) for n in names) for p in TEMPORARY_PREFIXES)
    assert all(any(n.lower().endswith(s) for n in names) for s in TEMPORARY_SUFFIXES)
    for name in names:
        (folder / name).write_text("half-written\n")
    (folder / "archives").mkdir()
    (folder / "archives" / "HMP_incidents_2024-12.csv").write_text("archived\n")
    (home.inbox / "HMP_incidents_2025-02.csv").write_text("at the root\n")
    for _ in range(3):
        assert sensor.tick() == []
    assert sensor.skip == "no new or replaced delivery in the inbox"


def test_a_file_the_ledger_holds_never_triggers_and_its_replacement_does(
    home: Home, sensor: Sensor
) -> None:
    stock(home)
    ingest(home, "landlord")  # the ledger now holds it, with its size and time
    assert sensor.tick() == []
    assert sensor.tick() == []
    assert sensor.skip == "no new or replaced delivery in the inbox"
    # The partner sends the file again under the same name, corrected: a replacement.
    path = stock(home, mtime=1_700_100_000)
    with path.open("a") as handle:
        handle.write("L4;R2;Cœur de ville;13055;;1990;2;45;PLUS;occupe\n")
    os.utime(path, (1_700_100_000, 1_700_100_000))
    assert sensor.tick() == []
    assert len(sensor.tick()) == 1


def test_a_warehouse_without_a_ledger_counts_every_stable_file_as_new(
    home: Home, sensor: Sensor
) -> None:
    duckdb.connect(str(home.warehouse_db)).close()
    incidents(home)
    assert sensor.tick() == []
    assert len(sensor.tick()) == 1


def test_a_warehouse_held_by_a_refresh_skips_the_tick(home: Home, sensor: Sensor) -> None:
    stock(home)
    ingest(home, "landlord")
    incidents(home)
    assert sensor.tick() == []
    cursor = sensor.cursor
    # Another process holds the write lock, as a refresh run launched by the daemon does.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(home.warehouse_db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert sensor.tick() == []
        assert sensor.skip and sensor.skip.startswith("warehouse in use")
        assert sensor.cursor == cursor
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    # Released: the incident file the ledger does not know triggers, the stock does not.
    [request] = sensor.tick()
    size = (home.inbox_family("landlord") / "HMP_incidents_2025-01.csv").stat().st_size
    assert request.run_key == run_key(
        {"landlord/HMP_incidents_2025-01.csv": (size, "2023-11-14T22:13:20")}
    )


def test_a_command_line_refresh_holding_the_lock_skips_the_tick(home: Home, sensor: Sensor) -> None:
    """`tranquillity refresh` runs outside Dagster's queue: the sensor sees its lock."""
    from tests.test_lock import held_elsewhere

    incidents(home)
    assert sensor.tick() == []
    cursor = sensor.cursor
    with held_elsewhere(home):
        assert sensor.tick() == []
        assert sensor.skip and "another refresh is running" in sensor.skip
        assert sensor.cursor == cursor
    assert len(sensor.tick()) == 1


def test_the_sensor_waits_while_a_refresh_runs(home: Home, sensor: Sensor) -> None:
    incidents(home)
    assert sensor.tick() == []
    run = sensor.instance.add_run(
        dg.DagsterRun(
            job_name="refresh", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED
        )
    )
    assert sensor.tick() == []
    assert sensor.skip == f"refresh {run.run_id} not finished: next tick"
    sensor.instance.report_run_failed(run)
    assert len(sensor.tick()) == 1


@pytest.mark.parametrize(
    ("schedule", "cron", "when"),
    [
        (monthly_refresh, "0 6 5 * *", datetime(2026, 3, 5, 6, tzinfo=PARIS)),
        (yearly_social_mix_refresh, "0 6 15 2 *", datetime(2027, 2, 15, 6, tzinfo=PARIS)),
    ],
)
def test_the_schedules_refresh_on_their_paris_dates(
    schedule: dg.ScheduleDefinition, cron: str, when: datetime
) -> None:
    assert schedule.cron_schedule == cron
    assert schedule.execution_timezone == "Europe/Paris"
    assert schedule.job_name == "refresh"
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
        data = schedule.evaluate_tick(context)
    assert data.run_requests is not None and len(data.run_requests) == 1
    assert isinstance(data.run_requests[0], dg.RunRequest)
    assert refresh_tags().items() <= data.run_requests[0].tags.items()


def test_dagster_runs_one_refresh_at_a_time(tmp_path: Path) -> None:
    # A home made by an earlier version has a dagster.yaml without the queue's limit.
    home = Home(tmp_path / "h")
    home.dagster_home.mkdir(parents=True)
    (home.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    home.ensure()
    assert (home.dagster_home / "dagster.yaml").read_text() == DAGSTER_YAML
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 1
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
    # `make ui`'s DAGSTER_HOME, wherever it is, gets the same file from the same function.
    elsewhere = write_dagster_yaml(tmp_path / "ui")
    assert elsewhere.read_text() == DAGSTER_YAML
    ui_recipe = (REPO / "Makefile").read_text().split("\nui:", 1)[1].split("\n\n", 1)[0]
    assert "write_dagster_yaml" in ui_recipe


def test_a_failed_run_started_by_dagster_raises_the_same_alerts(home: Home) -> None:
    """The command line raises the alerts of its own runs; for a run the daemon started (UI,
    inbox sensor, schedule), the failure sensor classifies it the same way and alerts."""
    import json

    from pipelines.refresh import STARTED_BY_TAG
    from pipelines.sensors import refresh_failure_alerts
    from tests.test_lock import held_elsewhere

    job = build_definitions().resolve_job_def("refresh")

    def failed_run(tags: dict[str, str]) -> None:
        with dg.DagsterInstance.get() as instance:
            with held_elsewhere(home):  # fails at once: another refresh holds the lock
                result = job.execute_in_process(instance=instance, raise_on_error=False, tags=tags)
            assert not result.success
            failure = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            context = dg.build_run_status_sensor_context(
                sensor_name="refresh_failure_alerts",
                dagster_instance=instance,
                dagster_run=result.dagster_run,
                dagster_event=failure[-1].dagster_event,
            ).for_run_failure()
            refresh_failure_alerts(context)

    failed_run({STARTED_BY_TAG: "command line"})  # alerted by the command line itself
    assert not home.alerts.exists()
    failed_run({})
    [line] = home.alerts.read_text().splitlines()
    alert = json.loads(line)
    assert alert["kind"] == "refresh_failed"
    assert "another refresh is running" in alert["message"], alert
