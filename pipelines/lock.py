"""One refresh at a time, whoever starts it: the command line, the UI, the sensor, a schedule.

DuckDB has one writer; two refreshes at once used to fail with stack traces and leave
`status` reporting the wrong outcome. Dagster's run queue (one run at a time, dagster.yaml)
orders the runs the daemon launches, but the command line runs its job in its own process,
outside the queue. So the run itself takes an exclusive lock on `state/refresh.lock` for its
whole duration (`WarehouseResource`, pipelines/resources.py), and the command line takes the
same lock before it even looks at the inbox, to say clearly that a refresh is running.

The lock is `flock` on an open file: the kernel releases it when its process dies, so a
killed refresh never leaves a stale lock behind. The file holds who took it (pid, time,
by whom), for the message; its presence alone means nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pipelines.settings import Home

# Locks this process holds, by path: the command line holds it, then the run it starts in
# the same process takes it again (a second flock in one process would conflict with itself).
_HELD: dict[Path, tuple[IO[str], int]] = {}


class RefreshRunning(RuntimeError):
    """Another refresh holds the lock: an expected outcome, said in one line."""

    def __init__(self, path: Path, holder: dict[str, Any]):
        who = ", ".join(f"{k} {v}" for k, v in holder.items()) or "holder unknown"
        super().__init__(
            f"another refresh is running ({who}); nothing was done: run it again when that "
            f"one has finished (lock: {path})"
        )
        self.holder = holder


def lock_path(home: Home) -> Path:
    return home.state / "refresh.lock"


def acquire(home: Home, by: str) -> Path:
    """Take the refresh lock (re-entrant within this process) or raise `RefreshRunning`."""
    path = lock_path(home)
    if path in _HELD:
        handle, count = _HELD[path]
        _HELD[path] = (handle, count + 1)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        try:
            holder = json.loads(handle.read() or "{}")
        except json.JSONDecodeError:
            holder = {}
        handle.close()
        raise RefreshRunning(path, holder) from None
    handle.seek(0)
    handle.truncate()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    handle.write(json.dumps({"pid": os.getpid(), "since": started, "by": by}))
    handle.flush()
    _HELD[path] = (handle, 1)
    return path


def release(path: Path) -> None:
    """Give back one hold; the last one unlocks (closing the file releases the flock)."""
    if path not in _HELD:
        return
    handle, count = _HELD[path]
    if count > 1:
        _HELD[path] = (handle, count - 1)
        return
    del _HELD[path]
    handle.close()
