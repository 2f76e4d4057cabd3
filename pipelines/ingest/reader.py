"""Reading a delivery whatever dialect the partner used.

Partners send what their tools export: `;` or `,`, UTF-8 with or without BOM or
Windows-1252, XLSX, gzip. Everything is read as text first (typing is the validator's job,
so that a bad value becomes a quarantined row instead of a failed file), with column names
matched case-insensitively. A file that cannot be read at all raises `RejectedFile` with one
reason a partner understands.

Shapes real exports have, and what the reader does with them:
- Quoted fields may hold the separator, doubled double quotes and line breaks (LF or CRLF:
  Alt+Enter in a spreadsheet, Enter in an information system's comment box).
- Line numbers (`__ligne`, the `ligne` of the quarantine) are the row numbers a spreadsheet
  shows when it opens the file: the header is row 1, the first record row 2, and a record
  with a line break inside a quoted field is one row (so from such a record on, a text
  editor's line numbers are larger). XLSX: the sheet's row numbers, counted from the header
  row (a sheet whose header is not on its first used row is not supported).
- A row with nothing in it (a blank line, a row of separators only `;;;;` that Excel writes
  below the data it once formatted, XLSX rows of spaces, a final blank line) is not data: it
  is skipped at read, is not counted as read (rows read = loaded + quarantined stays true),
  keeps its row number (the rows after it keep theirs) and the number skipped is recorded
  with the dialect ("lignes vides ignorées").
- CRLF or LF line ends, a final line end or none.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

LINE_COLUMN = "__ligne"
_MISSING = ("", "NA")


class RejectedFile(Exception):
    """The whole file is unusable; the message is shown to the partner as is."""


@dataclass(frozen=True)
class Dialect:
    """What was detected; recorded in the ledger so a surprising load can be explained."""

    format: str  # csv | xlsx
    encoding: str = ""
    bom: bool = False
    separator: str = ""
    compressed: bool = False
    empty_rows: int = 0  # rows with nothing in them, skipped

    def describe(self) -> str:
        if self.format == "xlsx":
            parts = ["xlsx"]
        else:
            parts = ["csv", self.encoding + ("+BOM" if self.bom else ""), f"sep={self.separator}"]
            if self.compressed:
                parts.append("gzip")
        if self.empty_rows:
            parts.append(f"lignes vides ignorées={self.empty_rows}")
        return " ".join(parts)


@dataclass
class RawFrame:
    """A delivery read as text: normalised column names, a `__ligne` line number column."""

    frame: pl.DataFrame
    dialect: Dialect
    header: list[str]  # original header, normalised (stripped, lower case)


def _normalise(name: str) -> str:
    return name.strip().strip('"').strip().lower()


def _decode(data: bytes) -> tuple[str, str, bool]:
    """Text, encoding name, BOM flag. Strict UTF-8 first: Windows-1252 bytes are not UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8", True
        except UnicodeDecodeError as exc:
            raise RejectedFile(
                f"encodage illisible: marque BOM UTF-8 mais octet invalide à la position {exc.start}"
            ) from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16", True
        except UnicodeDecodeError as exc:  # an odd number of bytes: a cut file
            raise RejectedFile(
                f"encodage illisible: marque BOM UTF-16 mais octets invalides à la position "
                f"{exc.start} (fichier tronqué ?)"
            ) from exc
    try:
        return data.decode("utf-8"), "utf-8", False
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252", False
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1", False


def _separator(header_line: str) -> str:
    counts = {sep: header_line.count(sep) for sep in (";", ",", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    if counts[best] == 0:
        raise RejectedFile(
            "fichier illisible: aucune colonne séparée par ';' ou ',' sur la ligne d'en-tête"
        )
    return best


def read_delivery(path: Path) -> RawFrame:
    """Read a CSV (any contract dialect, possibly gzipped) or XLSX file as text columns."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RejectedFile(f"fichier illisible: {exc.strerror}") from exc
    if not data.strip():
        raise RejectedFile("fichier vide")
    if data.startswith(b"PK\x03\x04"):
        return _read_xlsx(path)
    compressed = data.startswith(b"\x1f\x8b")
    if compressed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise RejectedFile(f"archive gzip corrompue: {exc}") from exc
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RejectedFile("pas un fichier CSV (contenu binaire)")
    text, encoding, bom = _decode(data)
    # polars reads UTF-8 only: hand it the original bytes when they already are.
    utf8 = data if encoding == "utf-8" and not bom else text.encode("utf-8")
    del data
    first_line = text.split("\n", 1)[0].rstrip("\r")
    del text
    if not first_line.strip():
        raise RejectedFile("ligne d'en-tête vide")
    separator = _separator(first_line)
    try:
        frame = pl.read_csv(
            utf8,
            separator=separator,
            infer_schema=False,
            has_header=True,
            null_values=list(_MISSING),
            truncate_ragged_lines=True,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise RejectedFile(f"CSV illisible: {str(exc).splitlines()[0]}") from exc
    dialect = Dialect("csv", encoding, bom, separator, compressed)
    return _finish(frame, dialect)


def _read_xlsx(path: Path) -> RawFrame:
    try:
        # Empty rows are kept here so that the rows after them keep the sheet's row numbers.
        frame = pl.read_excel(
            path,
            sheet_id=1,
            infer_schema_length=0,
            raise_if_empty=False,
            drop_empty_rows=False,
        )
    except Exception as exc:  # fastexcel raises its own types for corrupt workbooks
        raise RejectedFile(f"classeur XLSX illisible: {str(exc).splitlines()[0]}") from exc
    frame = frame.with_columns(
        pl.when(pl.col(c).str.strip_chars().is_in(list(_MISSING)))
        .then(None)
        .otherwise(pl.col(c))
        .alias(c)
        for c in frame.columns
    )
    return _finish(frame, Dialect("xlsx"))


def _finish(frame: pl.DataFrame, dialect: Dialect) -> RawFrame:
    header = [_normalise(c) for c in frame.columns]
    seen: set[str] = set()
    duplicated = sorted({h for h in header if h in seen or seen.add(h)})  # type: ignore[func-returns-value]
    if duplicated:
        raise RejectedFile(f"colonnes en double dans l'en-tête: {', '.join(duplicated)}")
    frame = frame.rename(dict(zip(frame.columns, header, strict=True)))
    # Row 1 is the header; the first record is row 2 in the partner's spreadsheet.
    frame = frame.with_row_index(LINE_COLUMN, offset=2).with_columns(
        pl.col(LINE_COLUMN).cast(pl.Int64)
    )
    frame, skipped = _drop_empty_rows(frame, header)
    if skipped:
        dialect = replace(dialect, empty_rows=skipped)
    return RawFrame(frame, dialect, header)


def _blank(name: str) -> pl.Expr:
    return pl.col(name).is_null() | pl.col(name).str.strip_chars().is_in(list(_MISSING))


def _drop_empty_rows(frame: pl.DataFrame, columns: list[str]) -> tuple[pl.DataFrame, int]:
    """Drop rows whose every cell is empty, blank or `NA`; return the frame and how many."""
    if not columns or frame.height == 0:
        return frame, 0
    # Cheap pre-check on the first column: most files have no empty row at all.
    if not frame.select(_blank(columns[0]).any()).item():
        return frame, 0
    empty = pl.all_horizontal(_blank(c) for c in columns)
    skipped = int(frame.select(empty.sum()).item())
    if not skipped:
        return frame, 0
    return frame.filter(~empty), skipped
