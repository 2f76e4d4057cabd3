"""A report as an XLSX workbook: one sheet per section, for those who recompute.

Numbers are written as numbers (their display format only rounds them: the cell keeps the
open-data value), codes as text (leading zeros kept), masked cells as the text `s` with a
comment, never as 0 or empty, and every sheet ends with the legend. The file is written by
xlsxwriter, whose number formats are locale-independent: French Excel shows `1 234,5`.
"""

from __future__ import annotations

from pathlib import Path

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from pipelines.reports.model import MASKED_LABEL, MASKED_MARK, MISSING_MARK, Cell, Report

NUMBER_FORMATS = {
    "entier": "#,##0",
    "decimal": "#,##0.00",
    "taux": "#,##0.0",
    "pct": '0" %"',
    "ratio_pct": "0.0%",
}


def _formats(book: Workbook) -> dict[str, Format]:
    formats = {kind: book.add_format({"num_format": f}) for kind, f in NUMBER_FORMATS.items()}
    formats["code"] = book.add_format({"num_format": "@"})
    formats["texte"] = book.add_format({"text_wrap": False})
    formats["masque"] = book.add_format({"italic": True, "font_color": "#666666", "align": "right"})
    formats["manquant"] = book.add_format({"font_color": "#666666", "align": "right"})
    formats["entete"] = book.add_format({"bold": True, "bg_color": "#EEEEFF", "border": 1})
    formats["titre"] = book.add_format({"bold": True, "font_size": 13})
    formats["note"] = book.add_format({"italic": True, "font_color": "#444444"})
    return formats


def _write_cell(
    sheet: Worksheet, row: int, col: int, cell: Cell, formats: dict[str, Format]
) -> None:
    write = sheet
    if cell.masked:
        write.write_string(row, col, MASKED_MARK, formats["masque"])
        write.write_comment(row, col, f"Secret statistique ({MASKED_LABEL})")
    elif cell.value is None:
        write.write_string(row, col, MISSING_MARK, formats["manquant"])
    elif cell.kind == "booleen":
        write.write_boolean(row, col, bool(cell.value))
    elif cell.kind in NUMBER_FORMATS:
        write.write_number(row, col, cell.value, formats[cell.kind])
    else:
        write.write_string(row, col, str(cell.value), formats[cell.kind])


def write_xlsx(report: Report, target: Path) -> None:
    book = xlsxwriter.Workbook(str(target), {"strings_to_numbers": False})
    book.set_properties(
        {
            "title": f"{report.title} – {report.nom_epci} – {report.annee}",
            "subject": report.subtitle,
            "author": "tranquillity",
            "comments": f"Publication {report.publication_id}",
        }
    )
    formats = _formats(book)
    for section in report.sections:
        sheet = book.add_worksheet(section.sheet)
        sheet.write_string(0, 0, section.title, formats["titre"])
        sheet.write_string(
            1,
            0,
            f"{report.title} – {report.nom_epci} (EPCI {report.code_epci}) – {report.annee} – "
            f"publication {report.publication_id} ({report.publiee_le})",
            formats["note"],
        )
        line = 3
        widths: dict[int, int] = {}
        for paragraph in section.paragraphs:
            sheet.write_string(line, 0, paragraph)
            line += 1
        for table in section.tables:
            line += 1
            if table.caption:
                sheet.write_string(line, 0, table.caption, formats["titre"])
                line += 1
            for col, header in enumerate(table.headers):
                sheet.write_string(line, col, header, formats["entete"])
                widths[col] = max(widths.get(col, 8), min(len(header) + 2, 40))
            line += 1
            for row in table.rows:
                for col, cell in enumerate(row):
                    _write_cell(sheet, line, col, cell, formats)
                    if cell.kind in ("texte", "code") and cell.value is not None:
                        widths[col] = max(widths.get(col, 8), min(len(str(cell.value)) + 2, 60))
                line += 1
            if table.note:
                sheet.write_string(line, 0, table.note, formats["note"])
                line += 1
        for term, definition in section.definitions:
            line += 1
            sheet.write_string(line, 0, term, formats["entete"])
            sheet.write_string(line, 1, definition)
        line += 2
        sheet.write_string(
            line,
            0,
            f"{MASKED_MARK} : {MASKED_LABEL} ; {MISSING_MARK} : sans objet",
            formats["note"],
        )
        for col, width in widths.items():
            sheet.set_column(col, col, width)
    book.close()
