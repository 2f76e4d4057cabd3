"""The reports of a publication: every EPCI, its last year, rendered only when changed.

After each publication the reports of its last year are written for every EPCI into
`published/open/<publication_id>/rapports/`, with an index page. A report is rendered again
only when what it shows changed: each report's content digest (`model.content_digest`: its
figures, text and charts, not the publication id, plus the renderer's code) is compared with
the previous publication's `manifest.json`; an unchanged report's files are hard-linked from
there (they name the publication they were rendered from, whose figures are the same). The
rest is rendered in a pool of worker processes (vl-convert and WeasyPrint are CPU-bound).
The folder is written aside and renamed: it is complete or absent.

A render worker grows by about 0.5 MiB per report (WeasyPrint's and vl-convert's caches): two
workers rendering 1,255 national reports each reached 1 GiB apiece. So reports are rendered in
rounds of `ROUND` per worker, each round in a fresh pool, while the main process builds the
next round's reports: memory is bounded by a round, not by the country. `max_tasks_per_child`
would have done it in one line, but on Python 3.11 a pool with a backlog hangs when a worker
retires (CPython gh-115634), so the pools are replaced here, between rounds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
import polars as pl

from pipelines.processes import spawn_pool
from pipelines.reports import cil, clspd
from pipelines.reports.common import Territory, territory
from pipelines.reports.data import OpenFolder
from pipelines.reports.html import CSS
from pipelines.reports.model import Report, content_digest
from pipelines.reports.render import FORMATS, render

log = logging.getLogger(__name__)

RAPPORTS = "rapports"
MANIFEST = "manifest.json"
INDEX = "index.html"
POOLED = 12
# Reports per worker before its pool is replaced: about 130 MiB of a worker's growth, against a
# few seconds of imports (spawned while the main process builds the next round).
ROUND = 256
BUILDERS: tuple[Callable[[OpenFolder, Territory, int], Report], ...] = (cil.build, clspd.build)


@cache
def renderer_version() -> str:
    """A digest of the report code and fonts: a change re-renders every report."""
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".ttf"}:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _render_batch(reports: list[Report], out: str) -> int:
    """A worker's share, from plain arguments; its pid, so the result can say how many
    processes rendered (the files are found in `out`)."""
    for report in reports:
        render(report, Path(out))
    return os.getpid()


class Rounds:
    """Renders reports in rounds, each in a fresh pool of `count` workers, one round at a time.

    `add` queues a report; a full round goes to a new pool as soon as the previous round is
    done, and the caller goes on building while it renders. `close` renders the rest (in this
    process when there are too few to pay for spawning workers) and waits for everything.
    """

    def __init__(self, out: Path, count: int) -> None:
        self.out = str(out)
        self.count = count
        self.pending: list[Report] = []
        self.running: tuple[ProcessPoolExecutor, list[Future[int]]] | None = None
        self.pids: set[int] = set()
        self.rounds = 0

    def add(self, report: Report) -> None:
        self.pending.append(report)
        if self.count > 1 and len(self.pending) >= ROUND * self.count:
            self._start()

    def _wait(self) -> None:
        if self.running is None:
            return
        executor, futures = self.running
        self.running = None
        try:
            for future in futures:
                self.pids.add(future.result())
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    def _start(self) -> None:
        self._wait()
        todo, self.pending = self.pending, []
        size = max(1, min(16, len(todo) // (4 * self.count)))
        executor = spawn_pool(self.count)
        futures = [executor.submit(_render_batch, chunk, self.out) for chunk in _chunks(todo, size)]
        self.running = (executor, futures)
        self.rounds += 1

    def close(self) -> int:
        """Render what is left and wait; the number of processes that rendered."""
        try:
            # A spawned worker costs seconds of imports: a pool only pays for a few dozen.
            if self.count > 1 and (self.rounds or len(self.pending) >= POOLED):
                if self.pending:
                    self._start()
            elif self.pending:
                self.pids.add(_render_batch(self.pending, self.out))
                self.pending = []
        finally:
            self._wait()
        return len(self.pids)

    def abort(self) -> None:
        """On an error: no worker is left running (or orphaned) behind it."""
        self.pending = []
        if self.running is not None:
            executor, _ = self.running
            self.running = None
            executor.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class Entry:
    """One report in the index: what it is, its digest, the publication it was rendered from."""

    slug: str
    code_epci: str
    nom_epci: str
    titre: str
    digest: str
    rendu_depuis: str


@dataclass(frozen=True)
class ReportsResult:
    folder: Path
    annee: int
    rendered: int
    reused: int
    seconds: float
    processes: int = 0


def epcis_of_year(folder: OpenFolder, annee: int) -> list[str]:
    frame = folder.table("territoires")
    years = frame.get_column("annee").unique().to_list()
    year = min(years, key=lambda y: (abs(y - annee), -y))
    # A commune outside any EPCI (INSEE's `ZZZZZZZZZ`) has none.
    codes = frame.filter(pl.col("annee") == year).get_column("code_epci").drop_nulls()
    return sorted(codes.unique().to_list())


def previous_manifest(
    open_root: Path, publication_id: str
) -> tuple[Path, dict[str, dict[str, str]]]:
    """The reports folder of the latest earlier publication that has one, and its manifest."""
    for candidate in sorted(open_root.iterdir(), reverse=True):
        if candidate.name >= publication_id or candidate.name.startswith("."):
            continue
        manifest = candidate / RAPPORTS / MANIFEST
        if manifest.is_file():
            entries = json.loads(manifest.read_text(encoding="utf-8"))["rapports"]
            return candidate / RAPPORTS, {e["slug"]: e for e in entries}
    return open_root, {}


def _chunks(items: list[Report], size: int) -> Iterator[list[Report]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def workers() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0))))


def write_publication_reports(
    folder: OpenFolder, *, epcis: Sequence[str] | None = None, pool: int | None = None
) -> ReportsResult:
    """Render the reports of the publication's last year for every EPCI (or `epcis`)."""
    started = time.perf_counter()
    annee = folder.periode[1].year
    codes = list(epcis) if epcis is not None else epcis_of_year(folder, annee)
    target = folder.path / RAPPORTS
    partial = folder.path / f".{RAPPORTS}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    previous_dir, previous = previous_manifest(folder.path.parent, folder.publication_id)
    version = renderer_version()
    entries: list[Entry] = []
    rendered = reused = 0
    rounds = Rounds(partial, pool if pool is not None else workers())
    try:
        for code_epci in codes:
            place = territory(folder, code_epci, annee)
            for build in BUILDERS:
                report = build(folder, place, annee)
                digest = content_digest(report, version)
                old = previous.get(report.slug)
                files = [previous_dir / f"{report.slug}.{fmt}" for fmt in FORMATS]
                unchanged = (
                    old is not None and old["digest"] == digest and all(f.is_file() for f in files)
                )
                if unchanged:
                    for f in files:
                        os.link(f, partial / f.name)
                    reused += 1
                else:
                    rounds.add(report)
                    rendered += 1
                source = (
                    old["rendu_depuis"] if old is not None and unchanged else folder.publication_id
                )
                entries.append(
                    Entry(report.slug, code_epci, place.nom_epci, report.title, digest, source)
                )
        processes = rounds.close()
    except BaseException:
        rounds.abort()
        raise
    manifest = {
        "publication_id": folder.publication_id,
        "annee": annee,
        "version_rendu": version,
        "rapports": [e.__dict__ for e in entries],
    }
    (partial / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    (partial / INDEX).write_text(index_page(folder, annee, entries), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    seconds = time.perf_counter() - started
    return ReportsResult(target, annee, rendered, reused, seconds, processes)


INDEX_TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8">
<title>Bilans {{ annee }} – publication {{ publication_id }}</title>
<style>{{ css|safe }}</style></head>
<body>
<header><h1>Bilans annuels {{ annee }}</h1>
<p>Publication {{ publication_id }} : bilan annuel des attributions (conférence intercommunale du
logement) et bilan de la tranquillité résidentielle (CLSPD / CISPD) de chaque EPCI, en HTML, PDF
et XLSX, à partir des données ouvertes de la publication.</p></header>
<table><thead><tr><th>EPCI</th><th>Nom</th><th>Bilan</th><th>Fichiers</th><th>Produit depuis la publication</th></tr></thead>
<tbody>
{% for e in entries %}<tr><td>{{ e.code_epci }}</td><td>{{ e.nom_epci }}</td><td>{{ e.titre }}</td>
<td>{% for fmt in formats %}<a href="{{ e.slug }}.{{ fmt }}">{{ fmt|upper }}</a>{% if not loop.last %} · {% endif %}{% endfor %}</td>
<td>{{ e.rendu_depuis }}{% if e.rendu_depuis != publication_id %} (chiffres inchangés){% endif %}</td></tr>
{% endfor %}</tbody></table>
</body></html>
"""
)


def index_page(folder: OpenFolder, annee: int, entries: list[Entry]) -> str:
    return INDEX_TEMPLATE.render(
        annee=annee, publication_id=folder.publication_id, entries=entries, formats=FORMATS, css=CSS
    )
