"""What a report is, independent of its format.

A report is built once as plain data (sections of tables, charts and text) and then written
as HTML, PDF and XLSX by three renderers: the three formats can never disagree, and the
tests check the figures on this structure. Every figure cell carries its provenance (open
table, key, column), so a test can prove that each number of a report is the open-data cell
it claims to be, and that a masked cell stays masked (contract section 5: reports read only
the open-data tables, never the publication's exact counts).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Literal

# How a value is shown: `texte` and `code` are written as text everywhere (a code keeps its
# leading zeros); the others are numbers, except `booleen` (Oui / Non).
Kind = Literal["texte", "code", "entier", "decimal", "taux", "pct", "ratio_pct", "booleen"]
NUMERIC_KINDS = frozenset({"entier", "decimal", "taux", "pct", "ratio_pct"})

MASKED_MARK = "s"
MASKED_LABEL = "secret statistique"
MISSING_MARK = "–"


@dataclass(frozen=True)
class Source:
    """Where a figure comes from: the open table, the key of its row, the column."""

    table: str
    key: tuple[tuple[str, Any], ...]
    column: str


@dataclass(frozen=True)
class Cell:
    """One value of a report table. `masked`: hidden by the statistical secret (shown as
    `s`, never as 0); a value that is None and not masked is not applicable (shown as –)."""

    value: Any
    kind: Kind = "texte"
    masked: bool = False
    source: Source | None = None


@dataclass
class Table:
    """A table as printed: column headers (French) and rows of cells, the same in every
    format (the XLSX writes the headers on one row, the rows below it)."""

    headers: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    note: str = ""


@dataclass
class Chart:
    """A chart, as a Vega-Lite specification (Altair's `to_dict()`), rendered to inline
    SVG. `id` names it in the HTML (the browser test finds every chart by it)."""

    id: str
    title: str
    spec: dict[str, Any]
    note: str = ""


@dataclass
class Section:
    """A chapter of the report: HTML section, PDF pages, one XLSX sheet (`sheet`, at most
    31 characters, unique in its workbook)."""

    id: str
    title: str
    sheet: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    definitions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Report:
    """A report for one EPCI and year. `slug` names its files. The publication's id and
    time are shown in the header only (see `content_digest`)."""

    slug: str
    title: str
    subtitle: str
    code_epci: str
    nom_epci: str
    annee: int
    publication_id: str
    publiee_le: str
    sections: list[Section]

    def cells(self) -> list[Cell]:
        """Every cell of every table, in order (for the tests and the renderers' checks)."""
        return [
            cell
            for section in self.sections
            for table in section.tables
            for row in table.rows
            for cell in row
        ]

    def charts(self) -> list[Chart]:
        return [chart for section in self.sections for chart in section.charts]


def content_digest(report: Report, renderer: str) -> str:
    """What the report shows, apart from the publication it was rendered from, and the
    version of the renderer: two publications whose report has the same digest would print
    the same figures, text and charts, so the second does not render it again."""
    shown = replace(report, publication_id="", publiee_le="")
    return hashlib.sha256(f"{renderer}\n{shown!r}".encode()).hexdigest()
