"""Processes seen from /proc (Linux, no dependency): a test's view of a killed parent's workers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def _stat(pid: int) -> list[str]:
    # The command name is in parentheses and may hold spaces: the fields follow its last ")".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if int(_stat(int(name))[1]) == pid:
                found.append(int(name))
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    """Running (a zombie has exited: only its exit status is left to collect)."""
    try:
        return _stat(pid)[0] != "Z"
    except OSError:
        return False


def spawned_workers(parent: subprocess.Popen[bytes], count: int, timeout: float) -> list[int]:
    """The multiprocessing workers `parent` spawned, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    workers: list[int] = []
    while len(workers) < count and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.1)
        workers = []
        for pid in children(parent.pid):
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    workers.append(pid)
            except OSError:
                continue
    return workers


def left_after(workers: list[int], timeout: float) -> list[int]:
    """The workers still running after `timeout` seconds; killed, so that no test leaves them."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left
