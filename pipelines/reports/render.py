"""One report into its files: the HTML page (also printed to PDF) and the workbook."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipelines.reports.html import render_html, write_pdf
from pipelines.reports.model import Report
from pipelines.reports.xlsx import write_xlsx

FORMATS = ("html", "pdf", "xlsx")


def render(report: Report, out: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write one report's files into `out` (each under a temporary name, then renamed)."""
    page = render_html(report) if {"html", "pdf"} & set(formats) else ""
    written = []
    for fmt in FORMATS:
        if fmt not in formats:
            continue
        target = out / f"{report.slug}.{fmt}"
        partial = out / f".{report.slug}.{fmt}.partial"
        if fmt == "html":
            partial.write_text(page, encoding="utf-8")
        elif fmt == "pdf":
            write_pdf(page, partial)
        else:
            write_xlsx(report, partial)
        partial.replace(target)
        written.append(target)
    return written
