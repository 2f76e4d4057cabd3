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

import polars as pl
import xlsxwriter

# Fixed creation time written inside XLSX files so that they are reproducible.
_XLSX_CREATED = dt.datetime(2020, 1, 1, 0, 0, 0)


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
    # polars quote styles: "necessary" (what most tools write), "non_numeric" (R's
    # write.csv2: strings quoted, numbers bare), "always" (SSMSI since 2025: every field,
    # "NA" included, in double quotes).
    quote_style: str = "necessary"
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


# The dialects used by landlords (index = landlord dialect id). Names are for reports.
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


def _numeric_codes(df: pl.DataFrame, dialect: Dialect) -> pl.DataFrame:
    """All-digit codes of ``dialect.numeric_code_columns`` as a spreadsheet shows numbers."""
    wanted = {c.lower() for c in dialect.numeric_code_columns}
    cols = [c for c in df.columns if c.lower() in wanted and df.schema[c] == pl.String]
    if not cols:
        return df
    return df.with_columns(
        pl.when(pl.col(c).str.contains(r"^\d+$"))
        .then(pl.col(c).cast(pl.Int64, strict=False).cast(pl.String))
        .otherwise(pl.col(c))
        .alias(c)
        for c in cols
    )


def spreadsheet_amounts(df: pl.DataFrame, dialect: Dialect, columns: list[str]) -> pl.DataFrame:
    """Amount columns as a French spreadsheet writes them to CSV (``1 250,50``), vectorised.

    Only for CSV dialects with a thousands separator; other dialects get ``df`` unchanged
    (XLSX keeps numeric cells).
    """
    if dialect.fmt != "csv" or not dialect.thousands_separator or df.height == 0:
        return df
    sep = dialect.thousands_separator
    decimal = "," if dialect.decimal_comma else "."
    out = []
    for c in columns:
        cents = (pl.col(c).abs() * 100).round(0).cast(pl.Int64)
        # groups of three digits from the right: reverse, insert, reverse back
        grouped = (
            (cents // 100)
            .cast(pl.String)
            .str.reverse()
            .str.replace_all(r"(\d{3})", "${1}" + sep)
            .str.strip_chars_end(sep)
            .str.reverse()
        )
        sign = pl.when(pl.col(c) < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        frac = (cents % 100).cast(pl.String).str.zfill(2)
        out.append(pl.concat_str([sign, grouped, pl.lit(decimal), frac]).alias(c))
    return df.with_columns(out)


def _terminator(dialect: Dialect) -> str:
    return dialect.line_terminator or ("\r\n" if dialect.encoding == "cp1252" else "\n")


def _csv_bytes(df: pl.DataFrame, dialect: Dialect, include_header: bool = True) -> bytes:
    df = _numeric_codes(df, dialect)
    if dialect.header_upper:
        df = df.rename({c: c.upper() for c in df.columns})
    buf = io.BytesIO()
    df.write_csv(
        buf,
        separator=dialect.separator,
        include_header=include_header,
        date_format=dialect.date_format,
        datetime_format=dialect.timestamp_format,
        null_value=dialect.null_value,
        decimal_comma=dialect.decimal_comma,
        float_precision=dialect.float_precision,
        quote_style=dialect.quote_style,  # type: ignore[arg-type]
        line_terminator=_terminator(dialect),
    )
    data = buf.getvalue()
    if dialect.encoding == "cp1252":
        data = data.decode("utf-8").encode("cp1252", errors="replace")
    return data


def _trailer(df: pl.DataFrame, dialect: Dialect) -> bytes:
    """What some tools write after the last record: separator-only rows, a blank line."""
    end = _terminator(dialect)
    text = (dialect.separator * (df.width - 1) + end) * dialect.empty_rows
    if dialect.final_blank_line:
        text += end
    return text.encode("ascii")


def write_table(df: pl.DataFrame, path: pathlib.Path, dialect: Dialect) -> int:
    """Write ``df`` to ``path`` in ``dialect`` (gzip when the name ends in .gz); return rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if dialect.fmt == "xlsx":
        _write_xlsx(df, path, dialect)
        return df.height
    data = _csv_bytes(df, dialect) + _trailer(df, dialect)
    if dialect.encoding == "utf-8-sig":
        data = b"\xef\xbb\xbf" + data
    if path.name.endswith(".gz"):
        with (
            open(path, "wb") as fh,
            gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz,
        ):
            gz.write(data)
    else:
        path.write_bytes(data)
    return df.height


class CsvStream:
    """Append frames to one CSV (gzipped if named .gz) without holding the whole table."""

    def __init__(self, path: pathlib.Path, dialect: Dialect) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.dialect = dialect
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._gz = (
            gzip.GzipFile(fileobj=self._fh, mode="wb", mtime=0, filename="", compresslevel=6)
            if path.name.endswith(".gz")
            else None
        )
        self._header_done = False
        self.rows = 0

    def write(self, df: pl.DataFrame) -> None:
        data = _csv_bytes(df, self.dialect, include_header=not self._header_done)
        if not self._header_done and self.dialect.encoding == "utf-8-sig":
            data = b"\xef\xbb\xbf" + data
        self._header_done = True
        (self._gz or self._fh).write(data)
        self.rows += df.height

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
        self._fh.close()


def _write_xlsx(df: pl.DataFrame, path: pathlib.Path, dialect: Dialect) -> None:
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    wb.set_properties({"created": _XLSX_CREATED, "author": "export", "title": path.stem})
    ws = wb.add_worksheet("export")
    date_fmt = wb.add_format({"num_format": "dd/mm/yyyy"})
    datetime_fmt = wb.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    for j, name in enumerate(df.columns):
        ws.write_string(0, j, name.upper() if dialect.header_upper else name)
    numeric_codes = {c.lower() for c in dialect.numeric_code_columns}
    kinds = []
    for name, dtype in df.schema.items():
        if dtype == pl.Date:
            kinds.append("date")
        elif dtype == pl.Datetime:
            kinds.append("datetime")
        elif dtype.is_numeric():
            kinds.append("num")
        elif name.lower() in numeric_codes:
            kinds.append("code")
        else:
            kinds.append("str")
    for i, row in enumerate(df.iter_rows(), start=1):
        for j, value in enumerate(row):
            if value is None:
                continue  # missing = empty cell
            kind = kinds[j]
            if kind == "date":
                if dialect.xlsx_real_dates:
                    ws.write_datetime(
                        i, j, dt.datetime(value.year, value.month, value.day), date_fmt
                    )
                else:
                    ws.write_string(i, j, value.strftime(dialect.date_format))
            elif kind == "datetime":
                if dialect.xlsx_real_dates:
                    ws.write_datetime(i, j, value, datetime_fmt)
                else:
                    ws.write_string(i, j, value.strftime(dialect.timestamp_format or "%d/%m/%Y"))
            elif kind == "num":
                ws.write_number(i, j, value)
            elif kind == "code" and value.isdigit():
                ws.write_number(i, j, int(value))  # typed as a number: leading zero lost
            else:
                ws.write_string(i, j, value)
    blank = wb.add_format({"bg_color": "#FFFFFF"})
    for k in range(dialect.empty_rows):
        # rows that look empty: a space in the first cell, formatted blanks next to it
        ws.write_string(df.height + 1 + k, 0, " ")
        for j in range(1, df.width):
            ws.write_blank(df.height + 1 + k, j, None, blank)
    wb.close()


def set_mtime(path: pathlib.Path, when: dt.datetime) -> None:
    """Pin the file's modification time: the ingestion orders deliveries by mtime, then name."""
    ts = when.replace(tzinfo=dt.UTC).timestamp()
    os.utime(path, (ts, ts))
