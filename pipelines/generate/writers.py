"""File dialects that partners really send, and byte-deterministic writers for them.

Why: the ingestion must detect separators, encodings, decimal commas, date formats, missing
markers and XLSX workbooks (contract §2). The generator therefore writes every delivery through
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
    quote_all_strings: bool = False
    xlsx_real_dates: bool = True

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
COMMA_BOM = Dialect("csv , utf-8 BOM ISO", separator=",", encoding="utf-8-sig")
SEMICOLON_BOM_NA = Dialect(
    "csv ; utf-8 BOM ISO NA", separator=";", encoding="utf-8-sig", null_value="NA"
)
COMMA_UTF8_NA_UPPER = Dialect(
    "csv , utf-8 ISO NA en-têtes majuscules",
    separator=",",
    encoding="utf-8",
    null_value="NA",
    header_upper=True,
)
SEMICOLON_UTF8_FR = Dialect(
    "csv ; utf-8 virgule décimale JJ/MM/AAAA",
    separator=";",
    encoding="utf-8",
    decimal_comma=True,
    date_format="%d/%m/%Y",
)
XLSX = Dialect("xlsx (dates réelles)", fmt="xlsx", xlsx_real_dates=True)
XLSX_TEXT_DATES = Dialect(
    "xlsx (dates texte JJ/MM/AAAA)", fmt="xlsx", xlsx_real_dates=False, date_format="%d/%m/%Y"
)

# Reference, police and allocation files: the dialect of the public bodies that publish them.
REFERENCE = Dialect("csv ; utf-8", separator=";", encoding="utf-8")
SSMSI_NEW = Dialect("ssmsi 2025+ ; utf-8", separator=";", encoding="utf-8")
SSMSI_OLD = Dialect(
    "ssmsi <=2024 ; utf-8 virgule décimale NA",
    separator=";",
    encoding="utf-8",
    decimal_comma=True,
    null_value="NA",
    quote_all_strings=True,
)
SNE = Dialect("sne ; utf-8 ISO", separator=";", encoding="utf-8")


def _csv_bytes(df: pl.DataFrame, dialect: Dialect, include_header: bool = True) -> bytes:
    if dialect.header_upper:
        df = df.rename({c: c.upper() for c in df.columns})
    buf = io.BytesIO()
    df.write_csv(
        buf,
        separator=dialect.separator,
        include_header=include_header,
        date_format=dialect.date_format,
        null_value=dialect.null_value,
        decimal_comma=dialect.decimal_comma,
        quote_style="non_numeric" if dialect.quote_all_strings else "necessary",
        line_terminator="\r\n" if dialect.encoding == "cp1252" else "\n",
    )
    data = buf.getvalue()
    if dialect.encoding == "cp1252":
        data = data.decode("utf-8").encode("cp1252", errors="replace")
    return data


def write_table(df: pl.DataFrame, path: pathlib.Path, dialect: Dialect) -> int:
    """Write ``df`` to ``path`` in ``dialect`` (gzip when the name ends in .gz); return rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if dialect.fmt == "xlsx":
        _write_xlsx(df, path, dialect)
        return df.height
    data = _csv_bytes(df, dialect)
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
    for j, name in enumerate(df.columns):
        ws.write_string(0, j, name.upper() if dialect.header_upper else name)
    kinds = []
    for dtype in df.dtypes:
        if dtype == pl.Date:
            kinds.append("date")
        elif dtype.is_numeric():
            kinds.append("num")
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
            elif kind == "num":
                ws.write_number(i, j, value)
            else:
                ws.write_string(i, j, value)
    wb.close()


def set_mtime(path: pathlib.Path, when: dt.datetime) -> None:
    """Pin the file's modification time: the ingestion orders deliveries by mtime, then name."""
    ts = when.replace(tzinfo=dt.UTC).timestamp()
    os.utime(path, (ts, ts))
