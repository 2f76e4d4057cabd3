"""Benchmark: wall time and peak memory of generating a scale and of the monthly cycle.

The cycle, as an operator lives it: a full refresh of every month but the last; the last
month's files arrive and a refresh publishes them; a refresh with nothing new. The three are
measured in the same run, so compare them with each other (this machine is shared).

Run with `make bench` (national) or `python -m tests.bench small`. Each step runs in its own
process so that its peak resident memory is its own (getrusage of the waited child). The
home folder is a scratch one under TMPDIR unless BENCH_HOME is set; results are printed and
appended to `$BENCH_HOME/bench.jsonl`. With BENCH_HOME set, the generated inbox is kept and
reused while the generator, scale and seed are the same (`source.stamp`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.run(sys.argv[1:]).returncode
elapsed = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"__BENCH__ {elapsed:.3f} {peak_kib} {code}", file=sys.stderr)
sys.exit(code)
"""


def measure(name: str, command: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run one command in a fresh process; wall seconds and peak RSS of that process tree's
    largest process."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *command], env=env, stderr=subprocess.PIPE, text=True
    )
    lines = proc.stderr.splitlines()
    marker = next(line for line in reversed(lines) if line.startswith("__BENCH__"))
    _, elapsed, peak_kib, code = marker.split()
    for line in lines:
        if not line.startswith("__BENCH__"):
            print(line, file=sys.stderr)
    result = {
        "step": name,
        "seconds": float(elapsed),
        "peak_rss_mib": round(int(peak_kib) / 1024, 1),
        "exit_code": int(code),
    }
    print(json.dumps(result), flush=True)
    return result


def disk_usage(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def check_seconds(home: Path) -> dict[str, float]:
    """Seconds spent checking in the last refresh: GX suites (their own timer, written next to
    the run's Data Docs) and dbt tests and unit tests (dbt's run_results.json)."""
    found: dict[str, float] = {}
    runs = sorted((home / "data_docs").glob("*/timings.json"), key=lambda p: p.stat().st_mtime)
    if runs:
        for suite, seconds in json.loads(runs[-1].read_text()).items():
            group = "gx_" + suite.split("_", 1)[0] if suite != "data_docs" else "gx_data_docs"
            found[group] = round(found.get(group, 0.0) + seconds, 1)
    run_results = home / "work" / "dbt_target" / "run_results.json"
    if run_results.exists():
        for result in json.loads(run_results.read_text())["results"]:
            kind = result["unique_id"].split(".", 1)[0]
            if kind in ("test", "unit_test"):
                key = f"dbt_{kind}s"
                found[key] = round(found.get(key, 0.0) + float(result["execution_time"]), 1)
    found["total"] = round(sum(found.values()), 1)
    return found


SEED = 42


def generator_stamp(scale: str, seed: int) -> str:
    """What the generated inbox depends on: the scale, the seed and the generator's code and
    reference data (national takes four minutes to write: kept between runs while these are
    the same)."""
    digest = hashlib.sha256(f"{scale}|{seed}".encode())
    package = Path(__file__).resolve().parent.parent / "pipelines"
    for folder in (package / "generate", package / "reference_data"):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(package)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


MONTH = re.compile(r"(\d{4}-\d{2})")


def _month(path: Path) -> str | None:
    found = MONTH.search(path.name)
    return found.group(1) if found else None


def deliver_all_but_last_month(source: Path, inbox: Path) -> str:
    """Copy every generated file but those of the last month (same bytes, same mtime)."""
    files = [p for p in source.rglob("*") if p.is_file()]
    last = max(m for m in map(_month, files) if m)
    for path in files:
        if _month(path) != last:
            _copy(path, source, inbox)
    return last


def deliver_month(source: Path, inbox: Path, month: str) -> int:
    files = [p for p in source.rglob("*") if p.is_file() and _month(p) == month]
    for path in files:
        _copy(path, source, inbox)
    return len(files)


def _copy(path: Path, source: Path, inbox: Path) -> None:
    target = inbox / path.relative_to(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, target)


def main(scale: str) -> int:
    root = Path(os.environ.get("BENCH_HOME") or tempfile.mkdtemp(prefix=f"bench-{scale}-"))
    home = root / "home"
    if home.exists():
        shutil.rmtree(home)
    env = dict(os.environ, TRANQUILLITY_HOME=str(home), DAGSTER_HOME=str(home / "dagster"))
    env.setdefault("DO_NOT_TRACK", "1")
    tranquillity = str(Path(sys.executable).with_name("tranquillity"))
    results = []
    started = time.perf_counter()
    source, stamp = root / "source", root / "source.stamp"
    wanted = generator_stamp(scale, SEED)
    if source.exists() and stamp.exists() and stamp.read_text() == wanted:
        print(f"generate: reusing {source} (same generator, scale and seed)", flush=True)
    else:
        for stale in (source, stamp):
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
        command = [tranquillity, "generate", "--scale", scale, "--seed", str(SEED)]
        results.append(measure(f"generate --scale {scale}", [*command, "--out", str(source)], env))
        if results[-1]["exit_code"] == 0:
            stamp.write_text(wanted)
    files, size = disk_usage(root / "source")
    print(f"inbox: {files} files, {size / 2**20:.0f} MiB", flush=True)
    last = deliver_all_but_last_month(root / "source", home / "inbox")
    results.append(measure("refresh (all months but the last)", [tranquillity, "refresh"], env))
    full = results[-1]
    arrived = deliver_month(root / "source", home / "inbox", last)
    print(f"{arrived} files of {last} arrive", flush=True)
    results.append(measure(f"refresh (new month {last})", [tranquillity, "refresh"], env))
    results.append(measure("refresh (nothing new)", [tranquillity, "refresh"], env))
    db = home / "work" / "warehouse.duckdb"
    checks = check_seconds(home)
    refresh_seconds = float(full["seconds"])  # type: ignore[arg-type]
    print(
        f"checks: {checks['total']:.0f} s of the {refresh_seconds:.0f} s refresh "
        f"({100 * checks['total'] / refresh_seconds:.0f} %): {json.dumps(checks)}",
        flush=True,
    )
    summary = {
        "checks_seconds": checks,
        "scale": scale,
        "inbox_files": files,
        "inbox_mib": round(size / 2**20, 1),
        "warehouse_mib": round(db.stat().st_size / 2**20, 1) if db.exists() else None,
        "total_seconds": round(time.perf_counter() - started, 1),
        "steps": results,
        "cores": os.cpu_count(),
    }
    with (root / "bench.jsonl").open("a") as handle:
        handle.write(json.dumps(summary) + "\n")
    print(json.dumps(summary, indent=2))
    return max(int(r["exit_code"]) for r in results)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "national"))
