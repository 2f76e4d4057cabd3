"""One refresh run through Dagster, what came of it, and where its full log is.

The operator reading `tranquillity refresh` is not a Dagster developer: a gate that blocks a
publication is an expected outcome and must read as a summary, not as stack traces. So
everything the run prints (Dagster's event lines, dbt's output, Great Expectations' warnings,
child processes) goes to one log file per refresh under `$TRANQUILLITY_HOME/logs/`, the
terminal only showing how far the run is (pipelines.progress), and the run comes back
classified, as a value (`RefreshOutcome`: published, blocked or failed, with what the summary
shows): the command line only prints it. A real failure is then one line naming the step and
the error, with the log path for the full trace.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

import duckdb

from pipelines import alerts, progress
from pipelines.audit import CheckOutcome, outcomes_of_run
from pipelines.ingest.ledger import UNEXPECTED, Status, ledger_summary, waiting_blocked
from pipelines.ingest.loader import scan_inbox, unrecorded_files
from pipelines.lock import acquire, release
from pipelines.settings import Home, connection_config
from pipelines.window import Window, recorded_window

# Tag of the runs `tranquillity refresh` starts: their alerts come from this module, so the
# failure sensor (pipelines/sensors.py) passes over them.
STARTED_BY_TAG = "tranquillity/started_by"

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


@dataclass(frozen=True)
class StepTime:
    """How long one step of a run took: where a refresh spends its time, for the operator
    (`state/last_refresh.json`, the end of the log) and for `make bench`'s stages."""

    step: str
    started: datetime
    seconds: float
    # Of those, writing the open data (the `publication` step only).
    open_data_seconds: float | None = None


@dataclass
class RefreshRun:
    run_id: str
    log: Path
    started: datetime
    finished: datetime | None = None
    publication_id: str | None = None
    failures: list[StepFailure] = field(default_factory=list)
    steps: list[StepTime] = field(default_factory=list)


def new_log_path(home: Home, started: datetime, run_id: str) -> Path:
    return home.logs / f"refresh-{started:%Y%m%dT%H%M%SZ}-{run_id[:8]}.log"


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[TextIO]:
    """Send everything printed meanwhile to `log`, at both levels where output escapes: the
    Python streams (Dagster's console logger, dagster-dbt's copy of dbt's output, warnings)
    and the process's file descriptors 1 and 2 (child processes, native libraries).

    Yields the operator's terminal as it was before (standard error), for the progress
    display (pipelines.progress): a duplicate of its descriptor, which neither the redirect
    nor Dagster's capture of the steps' output touches; or, when standard error is no
    descriptor (click's test runner), the stream itself, which only the Python-level
    redirect would replace."""
    log.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with log.open("a", encoding="utf-8", buffering=1) as handle:
        terminal = _terminal()
        saved = (os.dup(1), os.dup(2))
        try:
            os.dup2(handle.fileno(), 1)
            os.dup2(handle.fileno(), 2)
            with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                yield terminal
        finally:
            for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
                with contextlib.suppress(Exception):
                    stream.flush()  # type: ignore[union-attr]
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if terminal is not sys.stderr:
                terminal.close()


def _terminal() -> TextIO:
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: no descriptor
        return sys.stderr
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    return open(os.dup(fd), "w", encoding=encoding, errors="replace", buffering=1)


def run_refresh(
    home: Home,
    announce: Callable[[RefreshRun], None] | None = None,
    *,
    every_month: bool = False,
    months: tuple[date, date] | None = None,
) -> RefreshRun:
    """Materialize the `refresh` job in process (one DuckDB writer), its output in the log.

    Never raises for a failure inside the run: failed steps come back in `failures`. An error
    outside any step (the dbt project cannot be parsed, the Dagster instance is unusable)
    comes back as a failure of the step `refresh`. `announce` is told the run id and log path
    before the run starts (a refresh may take long: the operator can follow the log).
    `every_month` recomputes every month; `months` (first, last) are the partitions of the
    run, months recomputed on top of those the deliveries changed (pipelines/window.py).
    """
    started = datetime.now(UTC)
    run_id = str(uuid.uuid4())
    run = RefreshRun(run_id=run_id, log=new_log_path(home, started, run_id), started=started)
    if announce is not None:
        announce(run)
    with output_to(run.log) as terminal, progress.shown_on(terminal):
        print(f"tranquillity refresh: run {run.run_id}, started {started.isoformat()}")
        try:
            _execute(run, run_tags(every_month, months))
        except Exception as exc:  # reported as a failure of the step `refresh`, with its trace
            name = type(exc).__name__
            run.failures.append(
                StepFailure("refresh", _one_line(name, str(exc)), _trace(exc), name)
            )
        run.finished = datetime.now(UTC)
        for failure in run.failures:
            print(f"\n=== step {failure.step} failed ===\n{failure.detail}")
        if run.steps:
            print("\nseconds per step:")
            for step in run.steps:
                print(f"  {step.seconds:9.1f}  {step.step}")
        print(f"tranquillity refresh: finished {run.finished.isoformat()}")
    _prune_logs(home)
    return run


def run_tags(every_month: bool, months: tuple[date, date] | None) -> dict[str, str]:
    """The run's tags: who started it, its partitions and what it recomputes
    (pipelines/partitions.py)."""
    from pipelines.partitions import CHANGED, EVERY, refresh_tags  # imports Dagster

    mode = EVERY if every_month else None if months is not None else CHANGED
    return {STARTED_BY_TAG: "command line", **refresh_tags(mode, months)}


def _execute(run: RefreshRun, tags: dict[str, str]) -> None:
    from pipelines.dbt_project import ensure_manifest

    ensure_manifest()
    from dagster import DagsterInstance

    from pipelines.definitions import build_definitions

    # The whole event log goes to the refresh log (it is also in the Dagster instance and UI).
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    with DagsterInstance.get() as instance:
        job = build_definitions().resolve_job_def("refresh")
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=config,
            run_id=run.run_id,
            tags=tags,
        )
        run.steps = step_times(instance.all_logs(run.run_id))
    _collect(run, result.all_events)


def step_times(entries: Iterable[Any]) -> list[StepTime]:
    """Each step's start and duration, from a run's event log entries, in order of start."""
    started: dict[str, float] = {}
    out = []
    for entry in entries:
        kind = entry.dagster_event.event_type_value if entry.dagster_event else None
        if entry.step_key is None:
            continue
        if kind == "STEP_START":
            started[entry.step_key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and entry.step_key in started:
            begin = started.pop(entry.step_key)
            out.append(
                StepTime(
                    entry.step_key,
                    datetime.fromtimestamp(begin, UTC),
                    round(entry.timestamp - begin, 3),
                )
            )
    return sorted(out, key=lambda s: s.started)


def _collect(run: RefreshRun, events: Iterable[Any]) -> None:
    """The failed steps and the publication id of a run, from its Dagster events."""
    for event in events:
        if event.event_type_value == "STEP_FAILURE" and event.step_key:
            error = event.step_failure_data.error if event.step_failure_data else None
            run.failures.append(_step_failure(event.step_key, error))
        elif (
            event.event_type_value == "ASSET_MATERIALIZATION"
            and event.asset_key is not None
            and event.asset_key.path == ["publication"]
        ):
            metadata = event.materialization.metadata
            run.publication_id = str(metadata["publication_id"].value)
            if "open_data_seconds" in metadata:
                seconds = float(metadata["open_data_seconds"].value)
                run.steps = [
                    replace(s, open_data_seconds=seconds) if s.step == "publication" else s
                    for s in run.steps
                ]


def classify_dagster_run(home: Home, instance: Any, run_id: str) -> RefreshOutcome:
    """The outcome of a run the daemon started (UI, sensor, schedule), classified as the
    command line classifies its own: the failure sensor raises the same alerts from it."""
    entries = instance.all_logs(run_id)
    events = [r.dagster_event for r in entries if r.dagster_event is not None]
    now = datetime.now(UTC)
    run = RefreshRun(run_id=run_id, log=Path("dagster"), started=now, finished=now)
    run.steps = step_times(entries)
    _collect(run, events)
    if not run.failures:  # failed outside any step (e.g. its resources: the refresh lock)
        for event in events:
            if event.is_run_failure:
                error = getattr(event.event_specific_data, "error", None)
                if error is not None:
                    run.failures.append(_step_failure("run", error))
                else:
                    run.failures.append(StepFailure("run", event.message or "run failed", ""))
    return _classify(home, run)


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


class Verdict(StrEnum):
    """What a refresh came to, and the command's exit code for it (docs/command-line.md)."""

    PUBLISHED = "published"
    # No new, replaced or accepted delivery since the current publication: no run at all.
    NOTHING_NEW = "nothing_new"
    BLOCKED = "blocked"
    FAILED = "failed"

    @property
    def exit_code(self) -> int:
        return {"published": 0, "nothing_new": 0, "blocked": 3, "failed": 1}[self.value]


@dataclass(frozen=True)
class Quarantined:
    """Rows of one file quarantined by one rule in this refresh, with the first message."""

    fichier: str
    regle: str
    rows: int
    first_line: int
    first_message: str


@dataclass(frozen=True)
class DeliveryNews:
    """What this refresh's deliveries came to, for the operator: each list is (file, reason)."""

    rejected: list[tuple[str, str]]
    # Every blocked delivery still waiting for a replacement, this refresh's or older.
    blocked: list[tuple[str, str]]
    remarks: list[tuple[str, str]]
    # The first QUARANTINE_PAIRS (file, rule) pairs, most rows first, and how many in all.
    quarantined: list[Quarantined]
    quarantined_pairs: int
    # Files of the inbox that are not deliveries (subfolders, outside the family folders).
    ignored: list[tuple[str, str]]


# (file, rule) pairs of quarantined rows in the summary; the rest is in raw.quarantaine.
QUARANTINE_PAIRS = 20


@dataclass
class RefreshOutcome:
    """A refresh run classified: the verdict, and what the summary shows of it."""

    run: RefreshRun
    verdict: Verdict
    # For a failure: the first failed step, its one-line error, how many other steps failed.
    failed_step: str | None = None
    error: str | None = None
    other_failures: int = 0
    families: list[dict[str, Any]] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    news: DeliveryNews | None = None
    data_docs: Path | None = None
    # Why the summary could not be read (e.g. a dbt process still closing the file).
    summary_error: str | None = None
    # The months the run recomputed (pipelines/window.py), when its dbt step got that far.
    window: Window | None = None

    @property
    def blocking(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.blocks]

    @property
    def warnings(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.statut == "warn"]

    def as_record(self) -> dict[str, Any]:
        """`state/last_refresh.json`, read by `tranquillity status` and by monitoring."""
        run = self.run
        if self.verdict is Verdict.NOTHING_NEW:
            return {
                "started": run.started.isoformat(timespec="seconds"),
                "finished": (run.finished or run.started).isoformat(timespec="seconds"),
                "outcome": self.verdict.value,
                "exit_code": self.verdict.exit_code,
                "publication_id": run.publication_id,
            }
        record: dict[str, Any] = {
            "started": run.started.isoformat(timespec="seconds"),
            "finished": (run.finished or run.started).isoformat(timespec="seconds"),
            "run_id": run.run_id,
            "log": str(run.log),
            "steps": [
                {
                    "step": s.step,
                    "started": s.started.isoformat(timespec="milliseconds"),
                    "seconds": s.seconds,
                }
                | (
                    {}
                    if s.open_data_seconds is None
                    else {"open_data_seconds": s.open_data_seconds}
                )
                for s in run.steps
            ],
        }
        if self.failed_step is not None:
            return record | {
                "outcome": self.verdict.value,
                "exit_code": self.verdict.exit_code,
                "error": self.error,
            }
        record["families"] = self.families
        record["checks"] = {
            "total": len(self.checks),
            "blocking_failed": len(self.blocking),
            "warnings": len(self.warnings),
        }
        if self.data_docs is not None:
            record["data_docs"] = str(self.data_docs)
        if self.window is not None:
            record["months_recomputed"] = self.window.describe()
        record |= {"outcome": self.verdict.value, "exit_code": self.verdict.exit_code}
        if self.verdict is Verdict.PUBLISHED:
            record["publication_id"] = run.publication_id
        elif self.error:
            record["error"] = self.error
        return record


def pending_work(home: Home) -> list[str]:
    """Why a refresh has something to do, in the operator's words; empty: nothing new.

    Something to do: no publication yet; code other than the publication's; a delivery file
    the ledger has not seen as it is now (new, or replaced: `unrecorded_files`); a delivery
    recorded or accepted (`tranquillity accept`) after the publication (the refresh that
    recorded it did not publish); a delivery an unexpected error stopped (examined again). A
    held delivery alone is not: examined again, it would be held again, unless something
    above changed (its stock delivered, an acceptance). Reads the inbox's file listing and
    the ledger, never the files: seconds, even nationally.
    """
    from pipelines.publish import version_code

    current = home.current_publication
    if not current.exists() or not home.warehouse_db.exists():
        return ["no publication yet"]
    try:
        with duckdb.connect(str(current), read_only=True, config=connection_config()) as pub:
            published_at, version = pub.execute(
                "SELECT publiee_le, version_code FROM publication"
            ).fetchall()[0]
        with duckdb.connect(
            str(home.warehouse_db), read_only=True, config=connection_config()
        ) as con:
            reasons = [f"new or replaced delivery: {f}" for f in unrecorded_files(con, home)]
            recorded = con.execute(
                "SELECT fichier FROM raw.livraisons WHERE recue_le > ? "
                f"OR (statut = '{Status.REJECTED}' AND starts_with(motif, '{UNEXPECTED}')) "
                "ORDER BY fichier",
                [published_at],
            ).fetchall()
            accepted = con.execute(
                "SELECT fichier FROM raw.derogations WHERE accordee_le > ? ORDER BY fichier",
                [published_at],
            ).fetchall()
    except duckdb.Error as exc:  # another refresh writing, an older layout: let the run decide
        return [f"cannot compare with the current publication ({str(exc).splitlines()[0]})"]
    if version != version_code():
        reasons.insert(0, f"code changed since the publication ({version} -> {version_code()})")
    reasons += [f"delivery not yet published: {f}" for (f,) in recorded]
    reasons += [f"delivery accepted: {f}" for (f,) in accepted]
    return reasons


def refresh(
    home: Home,
    announce: Callable[[RefreshRun], None] | None = None,
    *,
    force: bool = False,
    months: tuple[date, date] | None = None,
) -> RefreshOutcome:
    """Run a refresh, classify it, and record the outcome in `state/last_refresh.json`.

    One refresh at a time: another one running raises `RefreshRunning` (pipelines/lock.py)
    before anything is read. Nothing new since the current publication (`pending_work`), and
    not `force`: no run, no publication (ten identical ones would push real history out of
    `published/`). A step that failed for a reason other than a gate makes the refresh fail;
    otherwise it
    published, or a blocking check stopped it (the expected outcome of a gate doing its job);
    neither published nor blocked with no failed step is a failure only the log explains.
    A failure, a block and a newly held delivery raise alerts (pipelines.alerts).

    `force` recomputes every month; `months` (a backfill: first and last month) recomputes
    those months, even with nothing new.
    """
    lock = acquire(home, by="tranquillity refresh")  # raises RefreshRunning
    try:
        if not force and months is None and not pending_work(home):
            now = datetime.now(UTC)
            run = RefreshRun(run_id="", log=Path(), started=now, finished=now)
            run.publication_id = _current_publication_id(home)
            outcome = RefreshOutcome(run, Verdict.NOTHING_NEW)
        else:
            run = run_refresh(home, announce, every_month=force, months=months)
            outcome = _classify(home, run)
        tmp = home.last_refresh.with_suffix(".tmp")
        tmp.write_text(json.dumps(outcome.as_record(), indent=2, default=str))
        tmp.replace(home.last_refresh)
        if outcome.verdict is not Verdict.NOTHING_NEW:  # nothing ran: nothing to alert
            with output_to(run.log):  # the alerts' log lines go with the run's
                alerts.emit(home, alerts.alerts_of(outcome, alerts.held_alerted(home)))
    finally:
        release(lock)
    return outcome


def _current_publication_id(home: Home) -> str | None:
    with duckdb.connect(
        str(home.current_publication), read_only=True, config=connection_config()
    ) as con:
        rows = con.execute("SELECT publication_id FROM publication").fetchall()
    return str(rows[0][0]) if rows else None


def _classify(home: Home, run: RefreshRun) -> RefreshOutcome:
    real = [f for f in run.failures if not f.is_gate]
    if real:
        return RefreshOutcome(
            run,
            Verdict.FAILED,
            failed_step=real[0].step,
            error=real[0].error,
            other_failures=len(real) - 1,
        )
    outcome = RefreshOutcome(run, Verdict.FAILED)
    if home.warehouse_db.exists():
        try:
            with duckdb.connect(
                str(home.warehouse_db), read_only=True, config=connection_config()
            ) as con:
                outcome.families = ledger_summary(con)
                outcome.news = _news(con, home, since=run.started)
                outcome.checks = outcomes_of_run(con, run.run_id)
                outcome.window = recorded_window(con, run.run_id)
        except duckdb.Error as exc:  # e.g. a dbt process still closing the file after a failure
            outcome.summary_error = str(exc).splitlines()[0]
            outcome.families, outcome.news, outcome.checks = [], None, []
    docs = home.data_docs / run.run_id / "index.html"
    outcome.data_docs = docs if docs.exists() else None
    if run.publication_id is not None:
        outcome.verdict = Verdict.PUBLISHED
    elif outcome.blocking:
        outcome.verdict = Verdict.BLOCKED
    else:
        outcome.error = "nothing published"
    return outcome


def _news(con: duckdb.DuckDBPyConnection, home: Home, since: datetime) -> DeliveryNews:
    since_naive = since.astimezone(UTC).replace(tzinfo=None)
    rejected = con.execute(
        f"SELECT fichier, motif FROM raw.livraisons WHERE statut = '{Status.REJECTED}' "
        "AND recue_le >= ? ORDER BY fichier",
        [since_naive],
    ).fetchall()
    remarks = con.execute(
        "SELECT fichier, remarques FROM raw.livraisons "
        "WHERE remarques IS NOT NULL AND recue_le >= ? ORDER BY fichier",
        [since_naive],
    ).fetchall()
    quarantined = con.execute(
        """
        SELECT l.fichier, q.regle, count(*) AS n, min(q.ligne) AS premiere_ligne,
               arg_min(q.motif, q.ligne) AS premier_motif,
               count(*) OVER () AS paires
        FROM raw.quarantaine q JOIN raw.livraisons l USING (livraison_id)
        WHERE l.recue_le >= ? GROUP BY ALL ORDER BY n DESC, l.fichier, q.regle
        LIMIT ?
        """,
        [since_naive, QUARANTINE_PAIRS],
    ).fetchall()
    return DeliveryNews(
        rejected=[(str(f), str(m)) for f, m in rejected],
        blocked=[(f, m) for _, f, m in waiting_blocked(con)],
        remarks=[(str(f), str(r)) for f, r in remarks],
        quarantined=[Quarantined(*row[:5]) for row in quarantined],
        quarantined_pairs=int(quarantined[0][5]) if quarantined else 0,
        ignored=scan_inbox(home).ignored,
    )
