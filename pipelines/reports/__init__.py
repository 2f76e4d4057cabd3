"""Official reports, from the open data of a publication.

Two documents are made every year per EPCI from these figures: the allocation review of the
intercommunal housing conference (`cil`) and the residential tranquillity review of the
local security council (`clspd`). Each is built once as plain data (`model`) from the
open-data folder only (`data`), then written as self-contained HTML, PDF and XLSX.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipelines.reports import cil, clspd
from pipelines.reports.common import territory
from pipelines.reports.data import OpenDataError, OpenFolder
from pipelines.reports.model import Report
from pipelines.reports.render import FORMATS, render

__all__ = ["FORMATS", "OpenDataError", "OpenFolder", "build_reports", "write_reports"]


def build_reports(folder: OpenFolder, code_epci: str, annee: int) -> list[Report]:
    """Both reports of one EPCI and year, as data."""
    place = territory(folder, code_epci, annee)
    return [cil.build(folder, place, annee), clspd.build(folder, place, annee)]


def write_reports(
    folder: OpenFolder,
    code_epci: str,
    annee: int,
    out: Path,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Write both reports of one EPCI and year into `out`; the files written."""
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise OpenDataError(
            f"formats {sorted(unknown) or 'none'}: choose among {', '.join(FORMATS)}"
        )
    out.mkdir(parents=True, exist_ok=True)
    return [
        path
        for report in build_reports(folder, code_epci, annee)
        for path in render(report, out, formats)
    ]
