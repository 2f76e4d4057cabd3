"""Great Expectations' Data Docs readable without a network.

GX renders its pages with jQuery, Bootstrap, bootstrap-table, Font Awesome and Vega loaded
from public CDNs. The warehouse runs where the network may be closed (and an operator opening
`data_docs/<run_id>/index.html` should not leak to five CDNs that a refresh happened): offline,
the pages come up unstyled and their tables, built by scripts, never appear. So once GX has
rendered a run's site, every CDN `<script src>` and `<link href>` is pointed at a copy of the
same file shipped in `pipelines/quality/static/` (see its README: exact versions, from npm)
and copied into the site, which then works from any folder, offline, or served as is.

A CDN reference nobody vendored (a new GX release adding a library) is dropped rather than
left to hang, and returned so that the caller logs it and the test fails until it is vendored.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
# Where the vendored files go inside a Data Docs site (GX owns `static/` beside it).
SITE_FOLDER = Path("static") / "vendor"

# Each CDN address GX's templates use, and its copy under STATIC: the same bytes (the SRI
# hashes GX pins for popper and bootstrap match, tests/test_quality.py), but for the dark
# theme, shipped minified (the same stylesheet, a fifth of the size).
ASSETS: dict[str, str] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js-1.12.9/umd/popper.min.js"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap-4.3.1/js/bootstrap.min.js"
    ),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap-4.3.1/css/bootstrap.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker-1.9.0/js/bootstrap-datepicker.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker-1.9.0/css/bootstrap-datepicker.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "bootstrap-dark-1.1.0/css/bootstrap-prefers-dark.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free-6.6.0/css/all.min.css"
    ),
    # jsdelivr serves the newest release of the major version; these are the ones vendored.
    "https://cdn.jsdelivr.net/npm/vega@5": "vega-5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite-5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed-6.29.0/vega-embed.min.js",
}

# A `<script …>` or `<link …>` start tag whose src/href is remote. A dropped script loses
# its (empty) body and end tag with it.
_TAG = re.compile(
    r"<(?P<tag>script|link)\b(?P<attrs>[^>]*?)\b(?P<attr>src|href)\s*=\s*"
    r"(?P<q>[\"'])(?P<url>https?://[^\"']+)(?P=q)(?P<rest>[^>]*)>(?P<end>\s*</script>)?",
    re.IGNORECASE,
)
# Pinned hashes and CORS mode are meant for a CDN; a browser refuses both on a file:// page.
_CDN_ONLY = re.compile(r"\s(?:integrity|crossorigin)(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|\S+))?", re.I)


# GX's logo, drawn from its web assets: the site carries its own copy (GX's `static/images`).
_LOGO = re.compile(
    r"(?P<head><img\b[^>]*?\bsrc\s*=\s*[\"'])"
    r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/logo-long\.png[^\"']*",
    re.IGNORECASE,
)


def make_offline(site: Path) -> list[str]:
    """Vendor the libraries into `site` and point every page at them; the CDN addresses that
    had no local copy (dropped from the pages), sorted."""
    target = site / SITE_FOLDER
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(STATIC, target)
    dropped: set[str] = set()
    for page in site.rglob("*.html"):
        _rewrite(page, site, dropped)
    return sorted(dropped)


def _rewrite(page: Path, site: Path, dropped: set[str]) -> None:
    def relative(path: Path) -> str:
        return Path(os.path.relpath(path, page.parent)).as_posix()

    vendor = relative(site / SITE_FOLDER)
    logo = relative(site / "static" / "images" / "logo-long.png")
    text = page.read_text(encoding="utf-8")
    offline = _TAG.sub(lambda m: _local(m, vendor, dropped), text)
    offline = _LOGO.sub(lambda m: m["head"] + logo, offline)
    if offline != text:
        page.write_text(offline, encoding="utf-8")


def _local(match: re.Match[str], prefix: str, dropped: set[str]) -> str:
    tag, attrs, attr, q, url, rest = (
        match[k] for k in ("tag", "attrs", "attr", "q", "url", "rest")
    )
    # A script's end tag goes with it; anything else after a link stays.
    end = match["end"] or ""
    kept = "" if tag.lower() == "script" else end
    local = ASSETS.get(url)
    if local is None:
        dropped.add(url)
        return kept
    attrs, rest = _CDN_ONLY.sub("", attrs), _CDN_ONLY.sub("", rest)
    return f"<{tag}{attrs}{attr}={q}{prefix}/{local}{q}{rest}>{end}"
