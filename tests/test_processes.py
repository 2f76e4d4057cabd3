"""Worker pools die with their parent (`pipelines.processes.spawn_pool`).

The open data's repair, the reports and the generator render or solve in spawned workers, which
outlive a killed parent unless they watch it. Here a parent is killed while its two workers
are busy with long tasks and with a backlog queued: both must be gone within seconds. The
same pool's plain use (results, exceptions) is checked too, since every stage relies on it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.processes import WATCH_SECONDS, spawn_pool
from tests.proc import left_after, spawned_workers

ROOT = Path(__file__).parents[1]

PARENT = """
import time

if __name__ == "__main__":
    from pipelines.processes import spawn_pool

    pool = spawn_pool(2)
    futures = [pool.submit(time.sleep, 600) for _ in range(6)]
    time.sleep(600)
"""


def _square(n: int) -> int:
    if n < 0:
        raise ValueError(f"negative: {n}")
    return n * n


@pytest.mark.parametrize("pool", [True, False], ids=["spawn_pool", "without-the-watch"])
def test_workers_exit_when_their_parent_is_killed(pool: bool, tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    code = (
        PARENT
        if pool
        else PARENT.replace(
            "from pipelines.processes import spawn_pool",
            "import multiprocessing\n    from concurrent.futures import ProcessPoolExecutor",
        ).replace(
            "spawn_pool(2)",
            'ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))',
        )
    )
    script.write_text(code, encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT)
    workers = spawned_workers(parent, 2, timeout=60)
    assert len(workers) == 2, "the pool of two never started"
    parent.kill()
    parent.wait()
    left = left_after(workers, timeout=5 * WATCH_SECONDS + 5)
    if pool:
        assert not left, "workers kept running after their parent was killed"
    else:
        # The harness sees an orphan: a plain pool's workers outlive their killed parent.
        assert sorted(left) == sorted(workers)


def test_a_pool_returns_results_and_raises_its_workers_errors() -> None:
    with spawn_pool(2) as pool:
        assert list(pool.map(_square, range(5))) == [0, 1, 4, 9, 16]
        with pytest.raises(ValueError, match="negative: -1"):
            pool.submit(_square, -1).result()
