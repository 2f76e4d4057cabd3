"""File dialects that partners really send, and byte-deterministic writers for them.

Why: the ingestion must detect separators, encodings, decimal commas, date formats, missing
markers and XLSX workbooks (docs/deliveries.md). The generator therefore writes every delivery through
one ``Dialect`` so that the same frame can be emitted the way a given partner's tool exports it,
and always byte-identically for the same input (gzip and XLSX timestamps are pinned).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import pathlib
from dataclasses import dataclass
from typing import Literal

import polars as pl
import xlsxwriter

# Fixed creation time written inside XLSX files so that they are reproducible.
_XLSX_CREATED = dt.datetime(2020, 1, 1, 0, 0, 0)

# polars quote styles: "necessary" (what most tools write), "non_numeric" (R's write.csv2:
# strings quoted, numbers bare), "always" (SSMSI since 2025: every field, "NA" included, in
# double quotes).
QuoteStyle = Literal["necessary", "non_numeric", "always"]


@dataclass(frozen=True)
class Dialect:
    """How one partner exports a table."""

    name: str
    fmt: str = "csv"  # "csv" or "xlsx"
    separator: str = ";"
    encoding: str = "utf-8"  # "utf-8", "utf-8-sig" (BOM) or "cp1252"
    decimal_comma: bool = False
    date_format: str = "%Y-%m-%d"
    null_value: str = ""
    header_upper: bool = False
    quote_style: QuoteStyle = "necessary"
    xlsx_real_dates: bool = True
    # -- shapes of real exports (all off by default; see the landlord dialects below) --
    # Timestamp columns (an information system's date + time of day) are written with this
    # format; None writes them as dates. XLSX: any value writes datetime cells with a time.
    timestamp_format: str | None = None
    # Amount columns as a French spreadsheet displays them: two decimals, decimal comma and
    # this thousands separator (U+00A0 no-break space; U+202F narrow no-break space since
    # Windows 10's fr-FR locale; U+202F does not exist in Windows-1252).
    thousands_separator: str = ""
    # Columns whose all-digit codes a spreadsheet turned into numbers: leading zeros lost
    # (`06088` -> `6088`), written as numeric cells in XLSX.
    numeric_code_columns: tuple[str, ...] = ()
    # Rows of separators only (`;;;;`) that Excel writes below the data it once formatted;
    # XLSX: rows whose only content is a space.
    empty_rows: int = 0
    final_blank_line: bool = False
    line_terminator: str = ""  # "" = CRLF for Windows-1252, LF otherwise
    float_precision: int | None = None

    @property
    def extension(self) -> str:
        return ".xlsx" if self.fmt == "xlsx" else ".csv"


# The dialects landlords export in (landlords.py spreads them over the landlords). Names are
# for reports.
SEMICOLON_CP1252 = Dialect(
    "csv ; cp1252 virgule décimale JJ/MM/AAAA",
    separator=";",
    encoding="cp1252",
    decimal_comma=True,
    date_format="%d/%m/%Y",
)
# The same, as French Excel saves a sheet that was opened and edited: timestamps as displayed,
# amounts with a no-break space between thousands, commune codes turned into numbers (leading
# zero lost) and rows of separators below the data it once formatted.
EXCEL_CP1252 = Dialect(
    "csv ; cp1252 virgule décimale JJ/MM/AAAA (Excel)",
    separator=";",
    encoding="cp1252",
    decimal_comma=True,
    date_format="%d/%m/%Y",
    timestamp_format="%d/%m/%Y %H:%M",
    thousands_separator="\u00a0",
    numeric_code_columns=("DEPCOM",),
    empty_rows=2,
)
# Excel's "CSV UTF-8": BOM and CRLF.
COMMA_BOM = Dialect(
    "csv , utf-8 BOM ISO", separator=",", encoding="utf-8-sig", line_terminator="\r\n"
)
# An information system's export: ISO timestamps with a `T`.
SEMICOLON_BOM_NA = Dialect(
    "csv ; utf-8 BOM ISO NA",
    separator=";",
    encoding="utf-8-sig",
    null_value="NA",
    timestamp_format="%Y-%m-%dT%H:%M:%S",
)
COMMA_UTF8_NA_UPPER = Dialect(
    "csv , utf-8 ISO NA en-têtes majuscules",
    separator=",",
    encoding="utf-8",
    null_value="NA",
    header_upper=True,
)
# A recent French spreadsheet's UTF-8 CSV: narrow no-break space between thousands, and a
# final blank line.
SEMICOLON_UTF8_FR = Dialect(
    "csv ; utf-8 virgule décimale JJ/MM/AAAA",
    separator=";",
    encoding="utf-8",
    decimal_comma=True,
    date_format="%d/%m/%Y",
    thousands_separator="\u202f",
    final_blank_line=True,
)
# An information system's XLSX export: real date and datetime cells.
XLSX = Dialect(
    "xlsx (dates réelles)", fmt="xlsx", xlsx_real_dates=True, timestamp_format="%d/%m/%Y %H:%M"
)
# A workbook kept by hand: dates typed as text, commune codes typed as numbers, a few
# "empty" rows (a space) below the data.
XLSX_TEXT_DATES = Dialect(
    "xlsx (dates texte JJ/MM/AAAA)",
    fmt="xlsx",
    xlsx_real_dates=False,
    date_format="%d/%m/%Y",
    numeric_code_columns=("DEPCOM",),
    empty_rows=2,
)

# Reference, police and allocation files: the dialect of the public bodies that publish them.
REFERENCE = Dialect("csv ; utf-8", separator=";", encoding="utf-8")
# SSMSI as published on data.gouv.fr: since 2025 every field is quoted ("NA" too) with a
# decimal comma; up to 2024 strings are quoted, numbers bare, decimal comma, bare NA.
SSMSI_NEW = Dialect(
    "ssmsi 2025+ ; utf-8 tout entre guillemets virgule décimale NA",
    separator=";",
    encoding="utf-8",
    decimal_comma=True,
    null_value="NA",
    quote_style="always",
)
SSMSI_OLD = Dialect(
    "ssmsi <=2024 ; utf-8 virgule décimale NA",
    separator=";",
    encoding="utf-8",
    decimal_comma=True,
    null_value="NA",
    quote_style="non_numeric",
)
SNE = Dialect("sne ; utf-8 ISO", separator=";", encoding="utf-8", float_precision=2)
# The same SNE extract re-saved by hand: with French Excel (Windows-1252, decimal comma,
# JJ/MM/AAAA, amounts with thousands separators, commune codes as numbers, rows of
# separators below the data) or with R's write.csv2 (strings quoted, decimal comma, NA).
SNE_EXCEL = Dialect(
    "sne ressaisi Excel ; cp1252 virgule décimale JJ/MM/AAAA",
    separator=";",
    encoding="cp1252",
    decimal_comma=True,
    date_format="%d/%m/%Y",
    thousands_separator="\u00a0",
    numeric_code_columns=("DEPCOM",),
    empty_rows=1,
)
SNE_R = Dialect(
    "sne via R write.csv2 ; utf-8 virgule décimale NA",
    separator=";",
    encoding="utf-8",
    decimal_comma=True,
    null_value="NA",
    quote_style="non_numeric",
)


def _numeric_codes(frame: pl.DataFrame, dialect: Dialect) -> pl.DataFrame:
    """All-digit codes of ``dialect.numeric_code_columns`` as a spreadsheet shows numbers."""
    wanted = {name.lower() for name in dialect.numeric_code_columns}
    columns = [
        name for name in frame.columns if name.lower() in wanted and frame.schema[name] == pl.String
    ]
    if not columns:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(r"^\d+$"))
        .then(pl.col(name).cast(pl.Int64, strict=False).cast(pl.String))
        .otherwise(pl.col(name))
        .alias(name)
        for name in columns
    )


def spreadsheet_amounts(frame: pl.DataFrame, dialect: Dialect, columns: list[str]) -> pl.DataFrame:
    """Amount columns as a French spreadsheet writes them to CSV (``1 250,50``), vectorised.

    Only for CSV dialects with a thousands separator; other dialects get ``frame`` unchanged
    (XLSX keeps numeric cells).
    """
    if dialect.fmt != "csv" or not dialect.thousands_separator or frame.height == 0:
        return frame
    separator = dialect.thousands_separator
    decimal = "," if dialect.decimal_comma else "."
    formatted = []
    for name in columns:
        cents = (pl.col(name).abs() * 100).round(0).cast(pl.Int64)
        # groups of three digits from the right: reverse, insert, reverse back
        grouped = (
            (cents // 100)
            .cast(pl.String)
            .str.reverse()
            .str.replace_all(r"(\d{3})", "${1}" + separator)
            .str.strip_chars_end(separator)
            .str.reverse()
        )
        sign = pl.when(pl.col(name) < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        fraction = (cents % 100).cast(pl.String).str.zfill(2)
        formatted.append(pl.concat_str([sign, grouped, pl.lit(decimal), fraction]).alias(name))
    return frame.with_columns(formatted)


def _terminator(dialect: Dialect) -> str:
    """Windows tools end lines with CRLF; the rest with LF, unless the dialect says."""
    return dialect.line_terminator or ("\r\n" if dialect.encoding == "cp1252" else "\n")


def _csv_bytes(frame: pl.DataFrame, dialect: Dialect, include_header: bool = True) -> bytes:
    """The CSV text of ``frame`` as ``dialect`` writes it, encoded (no BOM: the caller adds it)."""
    frame = _numeric_codes(frame, dialect)
    if dialect.header_upper:
        frame = frame.rename({name: name.upper() for name in frame.columns})
    buffer = io.BytesIO()
    frame.write_csv(
        buffer,
        separator=dialect.separator,
        include_header=include_header,
        date_format=dialect.date_format,
        datetime_format=dialect.timestamp_format,
        null_value=dialect.null_value,
        decimal_comma=dialect.decimal_comma,
        float_precision=dialect.float_precision,
        quote_style=dialect.quote_style,
        line_terminator=_terminator(dialect),
    )
    data = buffer.getvalue()
    if dialect.encoding == "cp1252":
        data = data.decode("utf-8").encode("cp1252", errors="replace")
    return data


def _trailer(frame: pl.DataFrame, dialect: Dialect) -> bytes:
    """What some tools write after the last record: separator-only rows, a blank line."""
    end = _terminator(dialect)
    text = (dialect.separator * (frame.width - 1) + end) * dialect.empty_rows
    if dialect.final_blank_line:
        text += end
    return text.encode("ascii")


def write_table(frame: pl.DataFrame, path: pathlib.Path, dialect: Dialect) -> int:
    """Write ``frame`` to ``path`` in ``dialect`` (gzip when the name ends in .gz); return rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if dialect.fmt == "xlsx":
        _write_xlsx(frame, path, dialect)
        return frame.height
    data = _csv_bytes(frame, dialect) + _trailer(frame, dialect)
    if dialect.encoding == "utf-8-sig":
        data = b"\xef\xbb\xbf" + data
    if path.name.endswith(".gz"):
        # mtime=0 and no file name in the gzip header: same input, same bytes
        with (
            open(path, "wb") as file,
            gzip.GzipFile(fileobj=file, mode="wb", mtime=0, filename="") as gzipped,
        ):
            gzipped.write(data)
    else:
        path.write_bytes(data)
    return frame.height


class CsvStream:
    """Append frames to one CSV (gzipped if named .gz) without holding the whole table."""

    def __init__(self, path: pathlib.Path, dialect: Dialect) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.dialect = dialect
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._gzipped = (
            gzip.GzipFile(fileobj=self._file, mode="wb", mtime=0, filename="", compresslevel=6)
            if path.name.endswith(".gz")
            else None
        )
        self._header_done = False
        self.rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        data = _csv_bytes(frame, self.dialect, include_header=not self._header_done)
        if not self._header_done and self.dialect.encoding == "utf-8-sig":
            data = b"\xef\xbb\xbf" + data
        self._header_done = True
        (self._gzipped or self._file).write(data)
        self.rows += frame.height

    def close(self) -> None:
        if self._gzipped is not None:
            self._gzipped.close()
        self._file.close()


def _write_xlsx(frame: pl.DataFrame, path: pathlib.Path, dialect: Dialect) -> None:
    """One sheet, cell by cell, typed the way the partner's tool types them."""
    workbook = xlsxwriter.Workbook(
        str(path), {"constant_memory": True, "strings_to_numbers": False}
    )
    workbook.set_properties({"created": _XLSX_CREATED, "author": "export", "title": path.stem})
    sheet = workbook.add_worksheet("export")
    date_format = workbook.add_format({"num_format": "dd/mm/yyyy"})
    datetime_format = workbook.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    for column, name in enumerate(frame.columns):
        sheet.write_string(0, column, name.upper() if dialect.header_upper else name)
    numeric_codes = {name.lower() for name in dialect.numeric_code_columns}
    cell_kinds = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Date:
            cell_kinds.append("date")
        elif dtype == pl.Datetime:
            cell_kinds.append("datetime")
        elif dtype.is_numeric():
            cell_kinds.append("num")
        elif name.lower() in numeric_codes:
            cell_kinds.append("code")
        else:
            cell_kinds.append("str")
    for line, row in enumerate(frame.iter_rows(), start=1):
        for column, value in enumerate(row):
            if value is None:
                continue  # missing = empty cell
            cell_kind = cell_kinds[column]
            if cell_kind == "date":
                if dialect.xlsx_real_dates:
                    as_datetime = dt.datetime(value.year, value.month, value.day)
                    sheet.write_datetime(line, column, as_datetime, date_format)
                else:
                    sheet.write_string(line, column, value.strftime(dialect.date_format))
            elif cell_kind == "datetime":
                if dialect.xlsx_real_dates:
                    sheet.write_datetime(line, column, value, datetime_format)
                else:
                    text = value.strftime(dialect.timestamp_format or "%d/%m/%Y")
                    sheet.write_string(line, column, text)
            elif cell_kind == "num":
                sheet.write_number(line, column, value)
            elif cell_kind == "code" and value.isdigit():
                sheet.write_number(line, column, int(value))  # typed as a number: leading zero lost
            else:
                sheet.write_string(line, column, value)
    blank = workbook.add_format({"bg_color": "#FFFFFF"})
    for extra in range(dialect.empty_rows):
        # rows that look empty: a space in the first cell, formatted blanks next to it
        sheet.write_string(frame.height + 1 + extra, 0, " ")
        for column in range(1, frame.width):
            sheet.write_blank(frame.height + 1 + extra, column, None, blank)
    workbook.close()


def set_mtime(path: pathlib.Path, when: dt.datetime) -> None:
    """Pin the file's modification time: the ingestion orders deliveries by mtime, then name."""
    timestamp = when.replace(tzinfo=dt.UTC).timestamp()
    os.utime(path, (timestamp, timestamp))
