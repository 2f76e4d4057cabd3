"""One refresh run through Dagster, what came of it, and where its full log is.

The operator reading `tranquillity refresh` is not a Dagster developer: a gate that blocks a
publication is an expected outcome and must read as a summary, not as stack traces. So
everything the run prints (Dagster's event lines, dbt's output, Great Expectations' warnings,
child processes) goes to one log file per refresh under `$TRANQUILLITY_HOME/logs/`, and the run
comes back as a value: the command line only classifies and prints it. A real failure is then
one line naming the step and the error, with the log path for the full trace.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.settings import Home

# Refresh logs kept in `logs/` (older ones are deleted): about a year of daily refreshes.
KEEP_LOGS = 400


# A blocking check that failed stops its step with this error: an expected outcome (the gate
# did its job), not a failure of the refresh.
_CHECK_FAILED = "DagsterAssetCheckFailedError"


@dataclass(frozen=True)
class StepFailure:
    """A step that failed: `error` is one line for the operator, `detail` the whole chain."""

    step: str
    error: str
    detail: str
    error_class: str = ""

    @property
    def is_gate(self) -> bool:
        return self.error_class == _CHECK_FAILED


@dataclass
class RefreshRun:
    run_id: str
    log: Path
    started: datetime
    finished: datetime | None = None
    publication_id: str | None = None
    failures: list[StepFailure] = field(default_factory=list)


def new_log_path(home: Home, started: datetime, run_id: str) -> Path:
    return home.logs / f"refresh-{started:%Y%m%dT%H%M%SZ}-{run_id[:8]}.log"


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send everything printed meanwhile to `log`, at both levels where output escapes: the
    Python streams (Dagster's console logger, dagster-dbt's copy of dbt's output, warnings)
    and the process's file descriptors 1 and 2 (child processes, native libraries)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with log.open("a", encoding="utf-8", buffering=1) as handle:
        saved = (os.dup(1), os.dup(2))
        try:
            os.dup2(handle.fileno(), 1)
            os.dup2(handle.fileno(), 2)
            with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                yield
        finally:
            for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
                with contextlib.suppress(Exception):
                    stream.flush()  # type: ignore[union-attr]
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def run_refresh(home: Home, announce: Callable[[RefreshRun], None] | None = None) -> RefreshRun:
    """Materialize the `refresh` job in process (one DuckDB writer), its output in the log.

    Never raises for a failure inside the run: failed steps come back in `failures`. An error
    outside any step (the dbt project cannot be parsed, the Dagster instance is unusable)
    comes back as a failure of the step `refresh`. `announce` is told the run id and log path
    before the run starts (a refresh may take long: the operator can follow the log).
    """
    started = datetime.now(UTC)
    run_id = str(uuid.uuid4())
    run = RefreshRun(run_id=run_id, log=new_log_path(home, started, run_id), started=started)
    if announce is not None:
        announce(run)
    with output_to(run.log):
        print(f"tranquillity refresh: run {run.run_id}, started {started.isoformat()}")
        try:
            _execute(run)
        except Exception as exc:  # reported as a failure of the step `refresh`, with its trace
            name = type(exc).__name__
            run.failures.append(
                StepFailure("refresh", _one_line(name, str(exc)), _trace(exc), name)
            )
        run.finished = datetime.now(UTC)
        for failure in run.failures:
            print(f"\n=== step {failure.step} failed ===\n{failure.detail}")
        print(f"tranquillity refresh: finished {run.finished.isoformat()}")
    _prune_logs(home)
    return run


def _execute(run: RefreshRun) -> None:
    from pipelines.dbt_project import ensure_manifest

    ensure_manifest()
    from dagster import DagsterInstance

    from pipelines.definitions import defs

    # The whole event log goes to the refresh log (it is also in the Dagster instance and UI).
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def("refresh").execute_in_process(
            instance=instance, raise_on_error=False, run_config=config, run_id=run.run_id
        )
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE" and event.step_key:
            error = event.step_failure_data.error if event.step_failure_data else None
            run.failures.append(_step_failure(event.step_key, error))
        elif (
            event.event_type_value == "ASSET_MATERIALIZATION"
            and event.asset_key is not None
            and event.asset_key.path == ["publication"]
        ):
            run.publication_id = str(event.materialization.metadata["publication_id"].value)


def _step_failure(step: str, error: Any) -> StepFailure:
    """The user code's own exception, not Dagster's wrapper around it."""
    if error is None:
        return StepFailure(step, "unknown error", "")
    innermost = error
    while innermost.cause is not None:
        innermost = innermost.cause
    name = innermost.cls_name or ""
    return StepFailure(step, _one_line(name, innermost.message), error.to_string(), name)


def _one_line(cls_name: str, message: str) -> str:
    """`<Class>: <first line of the message>`, whether or not the message already starts
    with the class name, qualified (`_duckdb.IOException: ...`) or not."""
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    head, _, rest = first.partition(": ")
    if rest and head.split(".")[-1] == cls_name:
        first = rest
    return f"{cls_name}: {first}" if cls_name and first else cls_name or first


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _prune_logs(home: Home) -> None:
    logs = sorted(home.logs.glob("refresh-*.log"))
    for old in logs[:-KEEP_LOGS]:
        with contextlib.suppress(OSError):
            old.unlink()
