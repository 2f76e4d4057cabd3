"""One refresh at a time (pipelines/lock.py): the command line and a run started elsewhere
(the UI, the sensor, a schedule) both honour the refresh lock; a second one says so."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from click.testing import CliRunner

from pipelines import lock
from pipelines.cli import main
from pipelines.settings import Home


@contextmanager
def held_elsewhere(home: Home) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the lock (as a running refresh would) until the block ends."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pipelines import lock
        from pipelines.settings import Home
        lock.acquire(Home.at({str(home.root)!r}), by="test")
        print("held", flush=True)
        sys.stdin.read()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.communicate("")  # closing stdin ends it, and the kernel drops its lock


def test_a_second_refresh_says_one_is_running(home: Home) -> None:
    with held_elsewhere(home) as other:
        result = CliRunner().invoke(main, ["refresh"])
        assert result.exit_code == 1, result.output
        assert "another refresh is running" in result.output
        assert f"pid {other.pid}" in result.output and "by test" in result.output
        assert "Traceback" not in result.output
        assert not home.last_refresh.exists()  # the running one's outcome is not overwritten
    # Once it has ended (or died: the kernel drops a dead process's lock), it runs.
    path = lock.acquire(home, by="after")
    lock.release(path)


def test_the_lock_is_reentrant_within_a_process(home: Home) -> None:
    """The command line holds it, then the run it starts in the same process takes it too."""
    outer = lock.acquire(home, by="cli")
    inner = lock.acquire(home, by="run")
    lock.release(inner)
    with held_elsewhere_fails(home):
        pass
    lock.release(outer)
    with held_elsewhere(home):
        pass


@contextmanager
def held_elsewhere_fails(home: Home) -> Iterator[None]:
    """Another process cannot take the lock while this one holds it."""
    code = (
        "from pipelines import lock; from pipelines.settings import Home\n"
        f"lock.acquire(Home.at({str(home.root)!r}), by='intruder')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0 and "another refresh is running" in result.stderr
    yield


def test_a_run_started_elsewhere_waits_for_no_one(home: Home) -> None:
    """A Dagster run of the refresh job (as the UI or the sensor would start it) fails at
    once, before any step writes, while another refresh holds the lock; `status` reports
    that run, whoever started it."""
    from pipelines.definitions import build_definitions

    job = build_definitions().resolve_job_def("refresh")
    with held_elsewhere(home), dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    # The run's failure event carries the lock's message (its error chain).
    messages = " ".join(repr(event.event_specific_data) for event in result.all_events)
    assert "another refresh is running" in messages, messages
    assert not home.warehouse_db.exists()  # no step ran
    status = CliRunner().invoke(main, ["status"])
    assert status.exit_code == 0, status.output
    assert "last run: failure, started " in status.output
    assert f"from the UI or another process, run {result.run_id}" in status.output
