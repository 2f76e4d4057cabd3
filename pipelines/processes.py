"""Worker pools that die with their parent.

The pipeline's CPU-bound stages (the open data's repair, the reports' rendering, the
generator's landlords) run in pools of spawned processes: spawned, not forked, because the
parent holds DuckDB's and polars' threads. A spawned worker outlives its parent: when a
refresh is killed (SIGKILL, the OOM killer, a lost container), its workers would go on
waiting on their queues or working through the chunk they hold, with their memory, unseen,
for as long as the machine runs. Each worker here watches the process that started it and
exits as soon as that one is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

# How often a worker looks at its parent: a second of a dead refresh's worker at most.
WATCH_SECONDS = 1.0


def _exit_with_parent(parent: int) -> None:
    """A worker's initializer: a thread that ends the worker once its parent is gone (the
    orphan is re-parented, so its parent pid changes)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` spawned processes that exit when this process dies."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
