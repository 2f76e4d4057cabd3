"""What a running refresh shows the operator, while everything else goes to its log.

A national refresh takes long, and its log (pipelines/refresh.py) is for when something went
wrong: the operator at the terminal needs to know that it moves and how far it is, not to read
690 dbt lines. So a refresh opens a *display* on the terminal it was started from (kept aside
before the output is redirected to the log), and the steps report to it: each ingestion family
its files done of total and rows per second, the `dbt build` its nodes done per layer.

The display is module state, set for the duration of a command-line refresh only: the steps
run in the same process (the in-process executor), and outside such a refresh (a test calling
`ingest_family`, a run of the UI's daemon) there is no terminal to show anything on, so the
steps' trackers do nothing.

On a terminal, live bars (rich). Anywhere else (a pipe, a file, cron's mail, `TERM=dumb`):
no colour and no cursor movement, only plain lines: one per family and per dbt layer when it
is done, and one every `PLAIN_EVERY` seconds for a step that takes longer.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

# Without a terminal, a line at most this often for a step still running (seconds).
PLAIN_EVERY = 60.0

_display: Display | None = None


def is_live(stream: TextIO) -> bool:
    """Bars only on a terminal that understands cursor movement."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False
    return tty and os.environ.get("TERM", "") not in ("dumb", "unknown")


class Display:
    """The operator's terminal: live bars, or plain lines written now and then."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.bars: Progress | None = None
        if is_live(stream):
            self.bars = Progress(
                TextColumn("{task.description:<20}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                # Only the bars go to the terminal: the run's own output stays in the log.
                console=Console(file=stream, force_terminal=True),
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.bars.start()

    def add(self, description: str, total: int) -> TaskID | None:
        if self.bars is None:
            return None
        return self.bars.add_task(description, total=total, detail="")

    def update(self, task: TaskID | None, done: int, detail: str) -> None:
        if self.bars is not None and task is not None:
            self.bars.update(task, completed=done, detail=detail)

    def stop(self, task: TaskID | None) -> None:
        """Stop the clock of a step left incomplete (its bar stays as it was)."""
        if self.bars is not None and task is not None:
            self.bars.stop_task(task)

    def line(self, text: str) -> None:
        """A plain line: only without bars (the bars already say it)."""
        if self.bars is None:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.bars is not None:
            self.bars.stop()
        with contextlib.suppress(Exception):
            self.stream.flush()


@contextlib.contextmanager
def shown_on(stream: TextIO) -> Iterator[Display]:
    """Steps run meanwhile report their progress on `stream`."""
    global _display
    display = Display(stream)
    _display = display
    try:
        yield display
    finally:
        _display = None
        display.close()


class _Step:
    """What the trackers share: the display, if any, and a plain line now and then."""

    def __init__(self) -> None:
        self.display = _display
        self.started = time.monotonic()
        self.last_line = self.started

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def now_and_then(self, text: str) -> None:
        now = time.monotonic()
        if self.display is not None and now - self.last_line >= PLAIN_EVERY:
            self.last_line = now
            self.display.line(text)


class FamilyProgress(_Step):
    """One ingestion family: files examined (new or already recorded) of the folder's
    total, and rows read per second."""

    def __init__(self, family: str, files: int):
        super().__init__()
        self.family, self.total = family, files
        self.files = self.rows = 0
        self.task = self.display.add(f"ingesting {family}", files) if self.display else None

    def update(self, files: int, rows: int) -> None:
        if self.display is None:
            return
        self.files, self.rows = files, rows
        self.display.update(self.task, files, self._figures())
        self.now_and_then(f"ingesting {self.family}: {self._counts()}")

    def finish(self) -> None:
        if self.display is None:
            return
        self.display.update(self.task, self.files, self._figures())
        self.display.line(f"ingested {self.family}: {self._counts()}")

    def _rate(self) -> str:
        elapsed = self.elapsed()
        return f"{self.rows / elapsed if elapsed > 0 else 0:,.0f} rows/s"

    def _figures(self) -> str:
        return f"{rows(self.rows)} rows, {self._rate()}"

    def _counts(self) -> str:
        return f"{self.files}/{self.total} files, {self._figures()}"


@contextlib.contextmanager
def ingestion(family: str, files: int) -> Iterator[FamilyProgress]:
    shown = FamilyProgress(family, files)
    yield shown
    shown.finish()


class LayerProgress(_Step):
    """A `dbt build`: nodes done per layer, a layer's line when it is complete (the layers
    overlap: tests run right after their model), the incomplete ones at the end."""

    def __init__(self, totals: Mapping[str, int]):
        super().__init__()
        self.totals = dict(totals)
        self.done = dict.fromkeys(totals, 0)
        display = self.display
        self.tasks = {
            layer: display.add(f"dbt {layer}", total) if display else None
            for layer, total in totals.items()
        }
        self.said: set[str] = set()

    def advance(self, layer: str) -> None:
        if self.display is None:
            return
        if layer not in self.done:  # a node the manifest did not announce
            self.totals[layer] = 0
            self.done[layer] = 0
            self.tasks[layer] = self.display.add(f"dbt {layer}", 0)
        self.done[layer] += 1
        self.totals[layer] = max(self.totals[layer], self.done[layer])
        self.display.update(self.tasks[layer], self.done[layer], "")
        if self.done[layer] == self.totals[layer]:
            self._say(layer)
        self.now_and_then(
            "dbt build: "
            + ", ".join(f"{layer} {self.done[layer]}/{self.totals[layer]}" for layer in self.done)
        )

    def finish(self) -> None:
        if self.display is None:
            return
        for layer in self.done:
            self.display.stop(self.tasks[layer])
            self._say(layer)

    def _say(self, layer: str) -> None:
        if self.display is not None and layer not in self.said:
            self.said.add(layer)
            self.display.line(
                f"dbt {layer}: {self.done[layer]}/{self.totals[layer]} done, "
                f"{duration(self.elapsed())}"
            )


@contextlib.contextmanager
def dbt_build(totals: Mapping[str, int]) -> Iterator[LayerProgress]:
    shown = LayerProgress(totals)
    yield shown
    shown.finish()


def rows(n: int) -> str:
    """A row count at a glance: 950, 12.3k, 1.2M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000:
        return f"{n / 1_000:.1f}k"
    return str(n)


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
