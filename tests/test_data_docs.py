"""The Great Expectations Data Docs of a run work without a network.

One small GX run is rendered for the module (a publication suite over a hand-made table, as in
tests/test_quality.py); its pages must load every script and stylesheet from the site itself,
and, in a real browser where one is installed, the tables the scripts build must be there.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipelines.quality import offline_docs
from pipelines.quality.offline_docs import ASSETS, STATIC, make_offline
from pipelines.quality.publication import validate_table
from pipelines.quality.runner import QualityRun
from tests.test_quality import INCIDENTS_TABLE, _warehouse

GX_TEMPLATES = (
    Path(__import__("great_expectations").__file__).parent / "render" / "view" / "templates"
)
# The scripts and stylesheets of a page (GX's favicon link, one folder off on the validation
# pages, is GX's own and costs nothing offline).
_REFERENCE = re.compile(
    r"<script\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"']"
    r"|<link\b(?=[^>]*\bstylesheet\b)[^>]*?\bhref\s*=\s*[\"']([^\"']+)[\"']",
    re.IGNORECASE,
)


def _references(page: Path) -> list[str]:
    return [a or b for a, b in _REFERENCE.findall(page.read_text(encoding="utf-8"))]


# One row breaking a rule, so that the docs show a failed validation too.
NEGATIVE_RATE = """
INSERT INTO marts.indicateurs_incidents_mois VALUES
    ('departement', '69', DATE '2025-01-01', 'autre', 0, 40, -1.0);
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("docs")
    con = _warehouse(tmp, INCIDENTS_TABLE + NEGATIVE_RATE)
    run = QualityRun(tmp / "site")
    validate_table(con, run, "indicateurs_incidents_mois")
    index = run.build_docs()
    assert index is not None and index.exists()
    return index.parent


def test_pages_load_scripts_and_stylesheets_from_the_site_only(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 3  # the index, the suites, the validations
    for page in pages:
        references = _references(page)
        assert len(references) >= 15, page
        remote = [r for r in references if urlsplit(r).scheme]
        assert not remote, f"{page.relative_to(site)}: {remote}"
        for reference in references:
            local = (page.parent / urlsplit(reference).path).resolve()
            assert local.is_file(), f"{page.relative_to(site)}: {reference} missing"
            assert local.is_relative_to(site.resolve())
        # GX's logo too comes from the site (an image only, but a broken one offline).
        for image in re.findall(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"", page.read_text("utf-8")):
            assert (page.parent / image).resolve().is_file(), f"{page.relative_to(site)}: {image}"
    # The validation results pages run their scripts from the vendored copies.
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'src="static/vendor/jquery-3.7.1/jquery.min.js"' in index


def _template_references() -> list[tuple[str, str | None]]:
    """(CDN address, pinned integrity) of every script and stylesheet GX's templates load."""
    found = []
    for template in GX_TEMPLATES.glob("*.j2"):
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", template.read_text(encoding="utf-8")):
            url = re.search(r"\b(?:src|href)=\"(https?://[^\"]+)\"", tag)
            if url:
                integrity = re.search(r"\bintegrity=\"([^\"]+)\"", tag)
                found.append((url[1], integrity[1] if integrity else None))
    return found


def test_every_cdn_file_of_the_installed_gx_is_vendored_as_the_same_bytes() -> None:
    references = _template_references()
    assert references, GX_TEMPLATES
    missing = sorted({url for url, _ in references} - ASSETS.keys())
    assert not missing, f"vendor these in {STATIC} (see its README): {missing}"
    pinned = [(url, integrity) for url, integrity in references if integrity]
    assert pinned  # GX pins popper and bootstrap: the copies must be what the CDN serves
    for url, integrity in pinned:
        algorithm, _, expected = integrity.partition("-")
        digest = hashlib.new(algorithm, (STATIC / ASSETS[url]).read_bytes()).digest()
        assert base64.b64encode(digest).decode() == expected, url


def test_every_vendored_library_has_its_licence_and_its_readme_entry() -> None:
    readme = (STATIC / "README.md").read_text(encoding="utf-8")
    for local in ASSETS.values():
        assert (STATIC / local).is_file(), local
        library = local.split("/")[0]
        licensed = list((STATIC / library).glob("LICENSE*"))
        assert licensed or library.startswith("popper.js"), library  # popper: see README
        assert f"`{library}/`" in readme, f"{library} not described in static/README.md"
    # Font Awesome's stylesheet finds its fonts beside it.
    stylesheet = (STATIC / ASSETS[next(u for u in ASSETS if "font-awesome" in u)]).read_text()
    for font in set(re.findall(r"url\((\.\./webfonts/[^)]+\.woff2)\)", stylesheet)):
        assert (STATIC / "fontawesome-free-6.6.0" / "css" / font).resolve().is_file(), font


def test_a_cdn_file_nobody_vendored_is_dropped_and_named(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    page = tmp_path / "sub" / "page.html"
    jquery = next(u for u in ASSETS if "jquery" in u)
    page.write_text(
        "<html><head>"
        '<script src="https://cdn.example.org/new.js"></script>\n'
        f'<script src="{jquery}" integrity="sha384-x" crossorigin="anonymous"></script>\n'
        '<link rel="stylesheet" href="https://cdn.example.org/new.css"/>'
        '<a href="https://greatexpectations.io">GX</a>'
        "</head></html>",
        encoding="utf-8",
    )
    assert make_offline(tmp_path) == [
        "https://cdn.example.org/new.css",
        "https://cdn.example.org/new.js",
    ]
    assert page.read_text(encoding="utf-8") == (
        "<html><head>\n"
        '<script src="../static/vendor/jquery-3.7.1/jquery.min.js"></script>\n'
        '<a href="https://greatexpectations.io">GX</a>'
        "</head></html>"
    )
    assert (tmp_path / offline_docs.SITE_FOLDER / "jquery-3.7.1" / "jquery.min.js").is_file()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")
def test_a_browser_offline_shows_the_validation_results_table(site: Path) -> None:
    """bootstrap-table builds the index's rows from data in the page: without its script
    (a CDN out of reach) the table stays empty."""
    dom = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=3000",
            "--dump-dom",
            (site / "index.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    rows = re.findall(r'<tr class="clickable-row" data-href="(validations/[^"]+)"', dom)
    validations = sorted(p.relative_to(site).as_posix() for p in site.glob("validations/**/*.html"))
    assert sorted(rows) == validations and len(validations) == 3
