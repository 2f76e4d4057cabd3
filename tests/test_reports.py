"""The official reports (docs/reports.md), on a real `tiny` publication.

One module fixture generates `tiny` and refreshes with the reports on, through the command
line, as an operator would. The reports must say only what the open data says: every number
of a workbook is read back and compared with its open-data cell, read here straight from the
Parquet files; a masked cell must stay masked in every format. What a person looks at is
opened in headless Chromium with the network disabled, and the PDF pages are rasterised.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from pipelines.cli import main
from pipelines.dbt_project import DBT_PROJECT_DIR
from pipelines.opendata import TOTAL
from pipelines.reports import build_reports, write_reports
from pipelines.reports.batch import INDEX, MANIFEST, RAPPORTS, write_publication_reports
from pipelines.reports.common import (
    ETAPES,
    EVENEMENTS,
    MOTIFS,
    NIVEAUX_GRAVITE,
    categories,
    gravity_criteria,
)
from pipelines.reports.data import OpenFolder
from pipelines.reports.model import MASKED_MARK, NUMERIC_KINDS, Cell, Report
from pipelines.settings import Home
from tests.browser import CHROMIUM, blank_fraction, visit
from tests.conftest import home_environment
from tests.proc import left_after, spawned_workers

PSEUDO_KEY = "test-key-reports"
PDFTOPPM = shutil.which("pdftoppm")


@dataclass
class Refreshed:
    home: Home
    output: str
    folder: OpenFolder


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> Refreshed:
    root = tmp_path_factory.mktemp("reports") / "home"
    with home_environment(root, TRANQUILLITY_PSEUDO_KEY=PSEUDO_KEY, TRANQUILLITY_RAPPORTS="on"):
        home = Home(root).ensure()
        generated = CliRunner().invoke(main, ["generate", "--scale", "tiny", "--seed", "3"])
        assert generated.exit_code == 0, generated.output
        result = CliRunner().invoke(main, ["refresh"])
        assert result.exit_code == 0, result.output
        (open_dir,) = [p for p in (home.published / "open").iterdir() if not p.name.startswith(".")]
    return Refreshed(home, result.output, OpenFolder(open_dir))


def _epcis(folder: OpenFolder) -> list[str]:
    manifest = json.loads((folder.path / RAPPORTS / MANIFEST).read_text(encoding="utf-8"))
    return sorted({e["code_epci"] for e in manifest["rapports"]})


def _open_value(folder: Path, cell: Cell) -> Any:
    """The open-data value a report cell claims to be, read independently of the reports."""
    assert cell.source is not None
    frame = pl.read_parquet(folder / f"{cell.source.table}.parquet")
    for column, value in cell.source.key:
        frame = frame.filter(pl.col(column) == value)
    assert frame.height == 1, cell.source
    return frame.get_column(cell.source.column)[0]


def _same_number(written: Any, expected: Any) -> bool:
    """XLSX stores a number with 16 significant digits (xlsxwriter writes `%.16G`)."""
    if expected is None:  # a number where the open data has none (a masked cell as 0)
        return False
    return isinstance(written, int | float) and f"{written:.16G}" == f"{expected:.16G}"


def test_the_refresh_writes_both_reports_of_every_epci(refreshed: Refreshed) -> None:
    folder = refreshed.folder
    reports = folder.path / RAPPORTS
    assert f"reports (CIL and CLSPD reviews of every EPCI): {reports / INDEX}" in refreshed.output
    annee = folder.periode[1].year
    territoires = folder.table("territoires").filter(pl.col("annee") == annee)
    expected = sorted(territoires.get_column("code_epci").unique().to_list())
    assert _epcis(folder) == expected and len(expected) >= 2
    index = (reports / INDEX).read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+)"', index))
    files = {p.name for p in reports.glob("bilan-*")}
    assert files == links - {INDEX}
    assert len(files) == 2 * 3 * len(expected)
    for code in expected:
        for kind in ("attributions", "tranquillite"):
            for fmt in ("html", "pdf", "xlsx"):
                assert (reports / f"bilan-{kind}_{code}_{annee}.{fmt}").stat().st_size > 1000


def _tables_in_sheet(sheet: Any, report_tables: list[Any]) -> dict[tuple[int, int], Cell]:
    """Where each model cell of a section landed in its sheet: a table starts under the row
    holding its headers."""
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    placed: dict[tuple[int, int], Cell] = {}
    start = 0
    for table in report_tables:
        for i in range(start, len(rows)):
            if rows[i][: len(table.headers)] == table.headers:
                for r, row in enumerate(table.rows, start=i + 1):
                    for c, cell in enumerate(row):
                        placed[(r, c)] = cell
                start = i + 1 + len(table.rows)
                break
        else:
            raise AssertionError(f"{sheet.title}: no table headed {table.headers}")
    return placed


def _check_workbook(path: Path, report: Report, open_dir: Path) -> tuple[int, int]:
    """Every number of the workbook is a sourced cell equal to its open-data value; every
    masked cell is `s` with its comment. Returns (numbers, masked) checked."""
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [s.sheet for s in report.sections]
    numbers = masked = 0
    for section in report.sections:
        sheet = book[section.sheet]
        placed = _tables_in_sheet(sheet, section.tables)
        for row in sheet.iter_rows():
            for xl in row:
                position = (xl.row - 1, xl.column - 1)
                if isinstance(xl.value, bool):
                    cell = placed[position]
                    assert cell.kind == "booleen" and cell.source is not None
                    assert xl.value == _open_value(open_dir, cell)
                elif isinstance(xl.value, int | float):
                    # Every number in the workbook is an open-data cell.
                    assert position in placed, f"{section.sheet}!{xl.coordinate}: {xl.value}"
                    cell = placed[position]
                    assert cell.source is not None and cell.kind in NUMERIC_KINDS
                    assert _same_number(xl.value, _open_value(open_dir, cell)), (
                        section.sheet,
                        xl.coordinate,
                        cell.source,
                    )
                    numbers += 1
        for (r, c), cell in placed.items():
            xl = sheet.cell(r + 1, c + 1)
            if cell.source is not None and cell.masked:
                assert xl.value == MASKED_MARK and xl.comment is not None
                assert _open_value(open_dir, cell) is None
                masked += 1
            elif (
                cell.source is not None
                and cell.value is not None
                and cell.kind in ("code", "texte")
            ):
                assert xl.value == str(_open_value(open_dir, cell))
    return numbers, masked


def test_every_number_of_the_workbooks_is_its_open_data_cell(refreshed: Refreshed) -> None:
    folder = refreshed.folder
    annee = folder.periode[1].year
    totals = [0, 0]
    for code in _epcis(folder):
        for report in build_reports(folder, code, annee):
            path = folder.path / RAPPORTS / f"{report.slug}.xlsx"
            numbers, masked = _check_workbook(path, report, folder.path)
            totals[0] += numbers
            totals[1] += masked
    # Not a vacuous pass: tiny has published figures and masked ones.
    assert totals[0] > 50 and totals[1] > 5, totals


def test_a_cell_masked_in_open_data_is_masked_in_every_format(refreshed: Refreshed) -> None:
    folder = refreshed.folder
    annee = folder.periode[1].year
    for code in _epcis(folder):
        for report in build_reports(folder, code, annee):
            for cell in report.cells():
                if cell.source is None:
                    continue
                value = _open_value(folder.path, cell)
                if value is None and cell.kind in NUMERIC_KINDS and not cell.masked:
                    # Not applicable (no denominator): then no flag of the row is set for it.
                    flags = folder.flags(cell.source.table).get(cell.source.column, [])
                    row = dict(cell.source.key)
                    frame = pl.read_parquet(folder.path / f"{cell.source.table}.parquet")
                    for k, v in row.items():
                        frame = frame.filter(pl.col(k) == v)
                    assert not any(frame.get_column(f)[0] for f in flags), cell.source
                if cell.masked:
                    assert value is None
            page = (folder.path / RAPPORTS / f"{report.slug}.html").read_text(encoding="utf-8")
            shown = re.findall(r'<td class="num masque" title="secret statistique">s</td>', page)
            assert len(shown) == sum(c.masked for c in report.cells())


def _plotted(spec: Any) -> list[Any]:
    """The y values (`taux`) of every data row inlined anywhere in a Vega-Lite spec."""
    if isinstance(spec, dict):
        rows = spec.get("values") if isinstance(spec.get("values"), list) else []
        found = [r.get("taux") for r in rows if isinstance(r, dict)]
        return found + [v for key, sub in spec.items() if key != "values" for v in _plotted(sub)]
    if isinstance(spec, list):
        return [v for sub in spec for v in _plotted(sub)]
    return []


def test_the_html_is_self_contained(refreshed: Refreshed) -> None:
    for page in (refreshed.folder.path / RAPPORTS).glob("bilan-*.html"):
        text = page.read_text(encoding="utf-8")
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
        assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
        assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#|data:)""", text), page.name
        assert "@font-face" in text and "<svg" in text and 'lang="fr"' in text


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install chromium (.ci/run does)")
def test_the_reports_in_a_browser_without_network(refreshed: Refreshed, tmp_path: Path) -> None:
    # The harness sees a request when a page makes one (else the check below proves nothing).
    control = tmp_path / "control.html"
    control.write_text('<img src="http://example.org/x.png"><p>x</p>', encoding="utf-8")
    assert visit(control).outside_requests() == ["http://example.org/x.png"]
    folder = refreshed.folder
    annee = folder.periode[1].year
    drawn = 0
    for code in _epcis(folder):
        for report in build_reports(folder, code, annee):
            seen = visit(folder.path / RAPPORTS / f"{report.slug}.html")
            assert seen.outside_requests() == [], report.slug
            shot = Image.open(io.BytesIO(seen.screenshot))
            assert shot.height > 1500 and blank_fraction(shot) < 0.97
            for chart in report.charts():
                if any(v is not None for v in _plotted(chart.spec)):
                    assert seen.charts[f"fig-{chart.id}"] > 0, (report.slug, chart.id)
                    drawn += 1
    assert drawn >= 3


@pytest.mark.skipif(
    PDFTOPPM is None, reason="no pdftoppm: apt-get install poppler-utils (.ci/run does)"
)
def test_every_pdf_page_has_something_on_it(refreshed: Refreshed, tmp_path: Path) -> None:
    pdfs = sorted((refreshed.folder.path / RAPPORTS).glob("bilan-*.pdf"))
    assert pdfs
    for pdf in pdfs:
        prefix = tmp_path / pdf.stem
        subprocess.run([str(PDFTOPPM), "-r", "40", "-png", str(pdf), str(prefix)], check=True)
        pages = sorted(tmp_path.glob(f"{pdf.stem}-*.png"))
        assert len(pages) >= 2, pdf.name
        for page in pages:
            image = Image.open(page)
            assert image.width < image.height  # A4 portrait
            assert blank_fraction(image) < 0.995, page.name


def test_the_report_command(refreshed: Refreshed, tmp_path: Path) -> None:
    folder = refreshed.folder
    code = _epcis(folder)[0]
    annee = folder.periode[1].year
    with home_environment(refreshed.home.root, TRANQUILLITY_PSEUDO_KEY=PSEUDO_KEY):
        ok = CliRunner().invoke(
            main,
            [
                "report",
                "--epci",
                code,
                "--annee",
                str(annee),
                "--format",
                "xlsx,html",
                "--out",
                str(tmp_path),
            ],
        )
        assert ok.exit_code == 0, ok.output
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            f"bilan-{k}_{code}_{annee}.{f}"
            for k in ("attributions", "tranquillite")
            for f in ("html", "xlsx")
        )
        unknown = CliRunner().invoke(main, ["report", "--epci", "999999999", "--annee", str(annee)])
        assert unknown.exit_code == 1
        assert "EPCI 999999999: unknown to the publication" in unknown.output
        bad = CliRunner().invoke(
            main, ["report", "--epci", code, "--annee", str(annee), "--format", "docx"]
        )
        assert bad.exit_code == 1 and "docx" in bad.output
        for result in (unknown, bad):
            assert "Traceback" not in result.output


def _copy_as_next_publication(folder: OpenFolder, publication_id: str) -> OpenFolder:
    """The same open data under a later publication id: a refresh that changed nothing."""
    target = folder.path.parent / publication_id
    shutil.copytree(folder.path, target, ignore=shutil.ignore_patterns(RAPPORTS))
    package = json.loads((target / "datapackage.json").read_text(encoding="utf-8"))
    package["publication_id"] = package["version"] = publication_id
    (target / "datapackage.json").write_text(json.dumps(package), encoding="utf-8")
    return OpenFolder(target)


def test_only_the_reports_that_changed_are_rendered_again(
    refreshed: Refreshed, tmp_path: Path
) -> None:
    source = tmp_path / "open" / refreshed.folder.path.name
    shutil.copytree(refreshed.folder.path, source)
    first = OpenFolder(source)
    codes = _epcis(first)
    # Same figures in a later publication: nothing rendered, every file linked.
    same = write_publication_reports(
        _copy_as_next_publication(first, "99990101T000000000Z"), pool=1
    )
    assert (same.rendered, same.reused) == (0, 2 * len(codes))
    html = next(same.folder.glob("bilan-attributions_*.html"))
    assert html.stat().st_ino == (first.path / RAPPORTS / html.name).stat().st_ino
    entries = json.loads((same.folder / MANIFEST).read_text(encoding="utf-8"))["rapports"]
    assert {e["rendu_depuis"] for e in entries} == {first.publication_id}
    assert "chiffres inchangés" in (same.folder / INDEX).read_text(encoding="utf-8")
    # One social-mix figure of one EPCI changes: its allocation review only.
    later = _copy_as_next_publication(OpenFolder(same.folder.parent), "99990201T000000000Z")
    mixite = pl.read_parquet(later.path / "mixite_epci_annee.parquet")
    changed = mixite.filter(pl.col("secret").not_()).row(0, named=True)
    mixite = mixite.with_columns(
        pl.when(pl.col("code_epci") == changed["code_epci"])
        .then(pl.col("objectif_q1_hors_qpv_pct") + 5)
        .otherwise(pl.col("objectif_q1_hors_qpv_pct"))
        .alias("objectif_q1_hors_qpv_pct")
    )
    mixite.write_parquet(later.path / "mixite_epci_annee.parquet")
    result = write_publication_reports(OpenFolder(later.path), pool=1)
    assert (result.rendered, result.reused) == (1, 2 * len(codes) - 1)
    entries = json.loads((result.folder / MANIFEST).read_text(encoding="utf-8"))["rapports"]
    renewed = [e["slug"] for e in entries if e["rendu_depuis"] == later.publication_id]
    assert renewed == [f"bilan-attributions_{changed['code_epci']}_{later.periode[1].year}"]


def _isolated_copy(refreshed: Refreshed, tmp_path: Path) -> OpenFolder:
    """The publication's open folder without its reports: every report is rendered again."""
    source = tmp_path / "open" / refreshed.folder.path.name
    shutil.copytree(refreshed.folder.path, source, ignore=shutil.ignore_patterns(RAPPORTS))
    return OpenFolder(source)


def test_reports_are_rendered_in_rounds_of_fresh_workers(
    refreshed: Refreshed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render worker grows with every report it renders (1 GiB each for a national run), so
    each round of `ROUND` reports per worker gets a fresh pool: here a round of one report per
    worker, on a pool of two, so that several pools follow each other with a backlog queued."""
    from pipelines.reports import batch

    monkeypatch.setattr(batch, "POOLED", 1)
    monkeypatch.setattr(batch, "ROUND", 1)
    result = write_publication_reports(_isolated_copy(refreshed, tmp_path), pool=2)
    codes = _epcis(refreshed.folder)
    assert (result.rendered, result.reused) == (2 * len(codes), 0)
    # At least one process per round of two reports, none of them reused from a round before.
    assert result.processes >= len(codes) > 1
    for page in (refreshed.folder.path / RAPPORTS).glob("*.html"):
        assert (result.folder / page.name).read_bytes() == page.read_bytes()
    assert len(list(result.folder.glob("*.pdf"))) == 2 * len(codes)
    assert not multiprocessing.active_children()


def test_a_failed_render_leaves_no_worker_and_the_published_reports(
    refreshed: Refreshed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report that fails in a worker of a late round stops the stage with its error: the
    publication's reports stay as they were, and no worker is left running behind it."""
    from pipelines.reports import batch

    folder = _isolated_copy(refreshed, tmp_path)
    shutil.copytree(refreshed.folder.path / RAPPORTS, folder.path / RAPPORTS)
    before = sorted(p.name for p in (folder.path / RAPPORTS).iterdir())
    last = _epcis(refreshed.folder)[-1]
    builders = batch.BUILDERS

    def broken(build: Any) -> Any:
        def wrapped(folder: OpenFolder, place: Any, annee: int) -> Report:
            report = build(folder, place, annee)
            if report.code_epci == last:
                chart = next(c for s in report.sections for c in s.charts)
                chart.spec["mark"] = "not-a-mark"
            return report

        return wrapped

    monkeypatch.setattr(batch, "BUILDERS", tuple(broken(b) for b in builders))
    monkeypatch.setattr(batch, "POOLED", 1)
    monkeypatch.setattr(batch, "ROUND", 1)
    with pytest.raises(ValueError, match="Vega-Lite"):
        write_publication_reports(folder, pool=2)
    assert sorted(p.name for p in (folder.path / RAPPORTS).iterdir()) == before
    assert not multiprocessing.active_children()


KILLED_PUBLISHER = """
import sys
from pathlib import Path

if __name__ == "__main__":
    from pipelines.reports import batch
    from pipelines.reports.data import OpenFolder

    batch.POOLED = 1
    batch.write_publication_reports(OpenFolder(Path(sys.argv[1])), pool=2)
"""


def test_render_workers_exit_when_the_refresh_is_killed(
    refreshed: Refreshed, tmp_path: Path
) -> None:
    """Spawned workers outlive a killed parent (they wait on their queues, or render on, with
    a gigabyte each): a refresh killed during its reports must not leave them behind."""
    folder = _isolated_copy(refreshed, tmp_path)
    script = tmp_path / "publisher.py"
    script.write_text(KILLED_PUBLISHER, encoding="utf-8")
    publisher = subprocess.Popen(
        [sys.executable, str(script), str(folder.path)], cwd=Path(__file__).parents[1]
    )
    workers = spawned_workers(publisher, 2, timeout=120)
    assert len(workers) == 2, "the pool of two never started"
    publisher.kill()
    publisher.wait()
    left = left_after(workers, timeout=15)
    assert not left, "render workers kept running after their parent was killed"


def test_write_reports_refuses_an_unknown_format(refreshed: Refreshed, tmp_path: Path) -> None:
    from pipelines.reports.data import OpenDataError

    with pytest.raises(OpenDataError, match="pdfx"):
        write_reports(refreshed.folder, _epcis(refreshed.folder)[0], 2025, tmp_path, ["pdfx"])


def test_the_tables_without_secret_are_their_publication_tables(refreshed: Refreshed) -> None:
    """The open tables the reports need beside the protected ones: as the publication has
    them, never a delivery's row count (it would give a landlord's monthly incidents away)."""
    import duckdb

    from pipelines.ingest.ledger import CURRENT
    from pipelines.opendata import REFERENCE_TABLES

    folder = refreshed.folder
    with duckdb.connect(str(refreshed.home.current_publication), read_only=True) as con:
        for name, (_, query) in REFERENCE_TABLES.items():
            expected = con.sql(query.format(CURRENT=CURRENT)).pl()
            actual = pl.read_parquet(folder.path / f"{name}.parquet")
            assert actual.height > 0, name
            assert actual.equals(expected.cast(actual.schema)), name  # type: ignore[arg-type]
        # The coverage is the rates' denominator, month by month, and rests on landlords.
        differ = con.execute(
            """
            SELECT count(*), count(c.code_epci), min(c.n_bailleurs)
            FROM couverture_epci_mois AS c
            FULL JOIN (
                SELECT code_territoire, mois, n_logements FROM indicateurs_incidents_mois
                WHERE niveau = 'epci' AND categorie = 'total'
            ) AS i ON i.code_territoire = c.code_epci AND i.mois = c.mois
            WHERE c.n_logements IS DISTINCT FROM i.n_logements
            """
        ).fetchall()
        assert differ == [(0, 0, None)]
        assert (
            con.execute("SELECT min(n_bailleurs) FROM couverture_epci_mois").fetchall()[0][0] >= 1
        )
        counts = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'publication_livraisons' AND column_name LIKE 'lignes%'"
            ).fetchall()
        }
    assert counts
    for parquet in folder.path.glob("*.parquet"):
        assert not counts & set(pl.read_parquet_schema(parquet)), parquet.name
    # A landlord covers the months whose incidents file it delivered.
    bailleurs = folder.table("couverture_bailleurs_mois")
    assert bailleurs.get_column("code_bailleur").n_unique() >= 2


def test_labels_cover_the_enumerations() -> None:
    """The reports' French labels are tied to the one home of each list."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    assert set(EVENEMENTS) == {*project["vars"]["types_evenement"], TOTAL}
    seed = pl.read_csv(DBT_PROJECT_DIR / "seeds" / "nomenclature_incidents.csv")
    assert list(categories()) == [*seed.sort("ordre").get_column("categorie"), TOTAL]
    assert list(MOTIFS) == [*project["vars"]["motifs_procedure"], TOTAL]
    assert list(ETAPES) == project["vars"]["etapes_procedure"]
    assert list(NIVEAUX_GRAVITE) == [*project["vars"]["niveaux_gravite"], TOTAL]
    levels = pl.read_csv(DBT_PROJECT_DIR / "seeds" / "seuils_gravite_halls.csv")
    assert (
        set(gravity_criteria())
        == set(levels.get_column("niveau"))
        == {*project["vars"]["niveaux_gravite"]} - {"vert"}
    )


def test_the_tranquillity_review_has_every_part(refreshed: Refreshed) -> None:
    """The CLSPD review of each EPCI has the months, the QPVs side by side, the hall severity
    levels and the evictions by motive with those the prefect ordered, each with figures read
    from the open data (masked or not): not empty shells."""
    folder = refreshed.folder
    annee = folder.periode[1].year
    seen: dict[str, int] = {}
    for code_epci in _epcis(folder):
        (_, report) = build_reports(folder, code_epci, annee)
        for section in report.sections:
            sourced = [c for t in section.tables for row in t.rows for c in row if c.source]
            seen[section.id] = seen.get(section.id, 0) + len(sourced)
    assert {
        "incidents",
        "mois",
        "communes",
        "qpv",
        "evolution",
        "halls",
        "evenements",
        "expulsions",
    } <= set(seen)
    for part in ("mois", "qpv", "halls", "expulsions"):
        assert seen[part] > 0, part
    tables = {c.source.table for c in _all_cells(folder, annee) if c.source}
    assert {
        "incidents_departement_mois",
        "incidents_qpv_annee",
        "gravite_halls_epci_trimestre",
        "procedures_epci_annee",
    } <= tables


def _all_cells(folder: OpenFolder, annee: int) -> list[Cell]:
    return [
        cell
        for code_epci in _epcis(folder)
        for cell in build_reports(folder, code_epci, annee)[1].cells()
    ]


def test_a_publication_made_before_the_newer_tables_still_has_its_reports(
    refreshed: Refreshed, tmp_path: Path
) -> None:
    """`tranquillity report` on a current publication written by an earlier version: the
    tables it lacks leave their sections out (or their coverage table), nothing fails."""
    newer = {
        "couverture_epci_mois",
        "incidents_qpv_annee",
        "territoires_qpv",
        "incidents_departement_mois",
        "incidents_epci_mois",
        "gravite_halls_epci_trimestre",
        "procedures_epci_annee",
    }
    old = tmp_path / "open"
    shutil.copytree(refreshed.folder.path, old, ignore=shutil.ignore_patterns(RAPPORTS))
    package = json.loads((old / "datapackage.json").read_text(encoding="utf-8"))
    package["resources"] = [
        r for r in package["resources"] if r["name"].replace("-", "_") not in newer
    ]
    (old / "datapackage.json").write_text(json.dumps(package), encoding="utf-8")
    folder = OpenFolder(old)
    annee = folder.periode[1].year
    (_, report) = build_reports(folder, _epcis(refreshed.folder)[0], annee)
    ids = [s.id for s in report.sections]
    assert not {"mois", "qpv", "halls", "expulsions"} & set(ids)
    assert {"couverture", "incidents", "communes", "evolution", "evenements"} <= set(ids)
    assert {c.source.table for c in report.cells() if c.source}.isdisjoint(newer)
