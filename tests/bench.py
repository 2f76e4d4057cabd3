"""Benchmark: wall time and peak memory of generating a scale and of the monthly cycle.

The cycle, as an operator lives it: a full refresh of every month but the last; the last
month's files arrive and a refresh publishes them; a refresh with nothing new. The three are
measured in the same run, so compare them with each other (this machine is shared). Two
yardsticks are measured in the same run: a read floor (every delivery read once by polars,
tests/bench_floor.py) and a plain baseline (the four contract tables computed straight from
the full refresh's inbox by polars and DuckDB, no orchestration and no checks,
tests/bench_baseline.py), which must equal the publication row for row (the bench fails
otherwise); the summary gives the ratios refresh / baseline and refresh / floor.

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
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

_CHILD = """
import json, os, resource, subprocess, sys, threading, time

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root):
    # Resident bytes of `root` and every process descended from it (/proc, no dependency).
    parent, rss = {}, {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(name)], rss[int(name)] = int(fields[1]), int(fields[21]) * PAGE
    total = 0
    for pid, size in rss.items():
        up = pid
        while up != root and up in parent and up > 1:
            up = parent[up]
        total += size if up == root else 0
    return total


started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:])
samples, done = [], threading.Event()


def sample():
    while not done.wait(0.25):
        samples.append((time.time(), tree_rss(child.pid)))


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
code = child.wait()
elapsed = time.perf_counter() - started
done.set()
sampler.join()
if os.environ.get("BENCH_SAMPLES"):
    with open(os.environ["BENCH_SAMPLES"], "w") as out:
        json.dump(samples, out)
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
tree_kib = max((rss for _, rss in samples), default=0) // 1024
print(f"__BENCH__ {elapsed:.3f} {peak_kib} {tree_kib} {code}", file=sys.stderr)
sys.exit(code)
"""


def measure(
    name: str, command: list[str], env: dict[str, str], samples: Path | None = None
) -> dict[str, object]:
    """Run one command in a fresh process; wall seconds, peak RSS of that process tree's
    largest process and of the whole tree (sampled every 0.25 s; the samples, with their
    times, to `samples` for the stages' peaks)."""
    if samples is not None:
        env = dict(env, BENCH_SAMPLES=str(samples))
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *command], env=env, stderr=subprocess.PIPE, text=True
    )
    lines = proc.stderr.splitlines()
    marker = next(line for line in reversed(lines) if line.startswith("__BENCH__"))
    _, elapsed, peak_kib, tree_kib, code = marker.split()
    for line in lines:
        if not line.startswith("__BENCH__"):
            print(line, file=sys.stderr)
    result = {
        "step": name,
        "seconds": float(elapsed),
        "peak_rss_mib": round(int(peak_kib) / 1024, 1),
        "peak_tree_rss_mib": round(int(tree_kib) / 1024, 1),
        "exit_code": int(code),
    }
    print(json.dumps(result), flush=True)
    return result


def disk_usage(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def check_seconds(home: Path) -> dict[str, float]:
    """Seconds spent checking in the last refresh (called right after the one timed): GX
    suites (their own timer, written next to the run's Data Docs) and dbt tests and unit tests
    (the run_results of each dbt invocation)."""
    found: dict[str, float] = {}
    runs = sorted((home / "data_docs").glob("*/timings.json"), key=lambda p: p.stat().st_mtime)
    if runs:
        for suite, seconds in json.loads(runs[-1].read_text()).items():
            group = "gx_" + suite.split("_", 1)[0] if suite != "data_docs" else "gx_data_docs"
            found[group] = round(found.get(group, 0.0) + seconds, 1)
    # One file per dbt invocation of the refresh (pipelines/assets/transform.py).
    for run_results in sorted((home / "work" / "dbt_target").glob("run_results.*.json")):
        for result in json.loads(run_results.read_text())["results"]:
            kind = result["unique_id"].split(".", 1)[0]
            if kind in ("test", "unit_test"):
                key = f"dbt_{kind}s"
                found[key] = round(found.get(key, 0.0) + float(result["execution_time"]), 1)
    found["total"] = round(sum(found.values()), 1)
    return found


# The bench's stages, from the refresh's steps (`state/last_refresh.json`): (stage, whether
# a step belongs to it). The open data is timed inside the `publication` step.
STAGES: list[tuple[str, Callable[[str], bool]]] = [
    ("ingest", lambda step: step.startswith("raw_")),
    ("dbt build", lambda step: step.startswith("dbt_")),
    ("checks", lambda step: step.endswith("_gx_publication")),
    ("publish", lambda step: step == "publication"),
    ("reports", lambda step: step == "rapports"),
]


def stages(home: Path, samples: Path) -> list[dict[str, object]]:
    """Wall seconds and peak RSS of the whole process tree per stage of the last refresh:
    its steps' times (`state/last_refresh.json`) laid over the memory samples. The open
    data is the end of the `publication` step; the rest of the run (Dagster starting, the
    outcome's classification) is `other`."""
    last = json.loads((home / "state" / "last_refresh.json").read_text())
    points = json.loads(samples.read_text()) if samples.exists() else []
    spans: dict[str, list[tuple[float, float]]] = {}
    for step in last.get("steps", []):
        begin = datetime.fromisoformat(step["started"]).timestamp()
        end = begin + float(step["seconds"])
        stage = next((name for name, owns in STAGES if owns(step["step"])), "other")
        opened = step.get("open_data_seconds")
        if opened is not None:
            spans.setdefault(stage, []).append((begin, end - float(opened)))
            spans.setdefault("open data", []).append((end - float(opened), end))
        else:
            spans.setdefault(stage, []).append((begin, end))
    out: list[dict[str, object]] = []
    order = [name for name, _ in STAGES]
    order.insert(order.index("publish") + 1, "open data")
    for name in [*order, "other"]:
        if name not in spans:
            continue
        inside = [rss for t, rss in points if any(a <= t <= b for a, b in spans[name])]
        out.append(
            {
                "stage": name,
                "seconds": round(sum(b - a for a, b in spans[name]), 1),
                "peak_tree_rss_mib": round(max(inside, default=0) / 2**20, 1),
            }
        )
    if "started" in last and "finished" in last:
        total = (
            datetime.fromisoformat(last["finished"]) - datetime.fromisoformat(last["started"])
        ).total_seconds()
        steps = sum(float(str(row["seconds"])) for row in out)
        if total > steps:
            out.append({"stage": "other", "seconds": round(total - steps, 1)})
    return out


def table(rows: list[dict[str, object]], columns: list[str]) -> str:
    """Rows as a plain text table, numbers right-aligned."""
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for r in cells:
        lines.append(
            "  ".join(
                v.rjust(w) if v.replace(".", "").isdigit() else v.ljust(w)
                for v, w in zip(r, widths, strict=True)
            )
        )
    return "\n".join(lines)


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
    floor = measure(
        "read floor (every file once)",
        [sys.executable, "-m", "tests.bench_floor", str(root / "source")],
        env,
    )
    results.append(floor)
    last = deliver_all_but_last_month(root / "source", home / "inbox")
    breakdown: dict[str, list[dict[str, object]]] = {}

    def refresh(name: str) -> dict[str, object]:
        samples = root / "samples.json"
        samples.unlink(missing_ok=True)
        result = measure(name, [tranquillity, "refresh"], env, samples)
        if (home / "state" / "last_refresh.json").exists():
            breakdown[name] = stages(home, samples)
        if breakdown.get(name):  # none when nothing ran
            print(table(breakdown[name], ["stage", "seconds", "peak_tree_rss_mib"]), flush=True)
        return result

    results.append(refresh("refresh (all months but the last)"))
    full = results[-1]
    checks = check_seconds(home)  # of the full refresh: the state holds the last refresh's
    # The yardstick, on the same inbox: the four contract tables by a plain script
    # (tests/bench_baseline.py), which must equal the publication row for row.
    (root / "baseline.json").unlink(missing_ok=True)
    baseline = measure(
        "baseline (plain polars + DuckDB, four tables)",
        [
            sys.executable,
            "-m",
            "tests.bench_baseline",
            str(home / "inbox"),
            str(root / "baseline.duckdb"),
            "--compare",
            str(home / "published" / "current.duckdb"),
            "--report",
            str(root / "baseline.json"),
        ],
        env,
    )
    results.append(baseline)
    # The yardstick is its computation: the row-for-row comparison that follows it in the
    # same process is the bench's, not the baseline's (nationally, 75 of 243 s).
    report = root / "baseline.json"
    baseline_seconds = float(
        json.loads(report.read_text(encoding="utf-8"))["seconds"]
        if report.exists()  # none when it failed before its end
        else str(baseline["seconds"])
    )
    print(f"baseline computation: {baseline_seconds:.1f} s", flush=True)
    arrived = deliver_month(root / "source", home / "inbox", last)
    print(f"{arrived} files of {last} arrive", flush=True)
    results.append(refresh(f"refresh (new month {last})"))
    results.append(refresh("refresh (nothing new)"))
    db = home / "work" / "warehouse.duckdb"
    refresh_seconds = float(full["seconds"])  # type: ignore[arg-type]
    print(
        f"checks: {checks['total']:.0f} s of the {refresh_seconds:.0f} s refresh "
        f"({100 * checks['total'] / refresh_seconds:.0f} %): {json.dumps(checks)}",
        flush=True,
    )
    floor_seconds = float(str(floor["seconds"]))
    ingest = next(
        (row for row in breakdown.get(str(full["step"]), []) if row["stage"] == "ingest"), None
    )
    ratios = {
        "full refresh / baseline": round(refresh_seconds / baseline_seconds, 1),
        "full refresh / read floor": round(refresh_seconds / floor_seconds, 1),
    }
    if ingest is not None:
        ratios["ingest / read floor"] = round(float(str(ingest["seconds"])) / floor_seconds, 1)
    print(
        "ratios (the baseline reads what the full refresh read; the floor every month): "
        + json.dumps(ratios)
    )
    summary = {
        "ratios": ratios,
        "baseline_computation_seconds": baseline_seconds,
        "checks_seconds": checks,
        "scale": scale,
        "inbox_files": files,
        "inbox_mib": round(size / 2**20, 1),
        "warehouse_mib": round(db.stat().st_size / 2**20, 1) if db.exists() else None,
        "total_seconds": round(time.perf_counter() - started, 1),
        "steps": results,
        "stages": breakdown,
        "cores": os.cpu_count(),
    }
    with (root / "bench.jsonl").open("a") as handle:
        handle.write(json.dumps(summary) + "\n")
    print(json.dumps(summary, indent=2))
    print(table(results, ["step", "seconds", "peak_rss_mib", "peak_tree_rss_mib", "exit_code"]))
    return max(int(str(r["exit_code"])) for r in results)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "national"))
