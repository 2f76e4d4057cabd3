"""Reading a delivery whatever dialect the partner used.

Partners send what their tools export: `;` or `,`, UTF-8 with or without BOM or
Windows-1252, XLSX, gzip. Everything is read as text first (typing is the validator's job,
so that a bad value becomes a quarantined row instead of a failed file), with column names
matched case-insensitively. A file that cannot be read at all raises `RejectedFile` with one
reason a partner understands.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
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

    def describe(self) -> str:
        if self.format == "xlsx":
            return "xlsx"
        parts = ["csv", self.encoding + ("+BOM" if self.bom else ""), f"sep={self.separator}"]
        if self.compressed:
            parts.append("gzip")
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
        return data.decode("utf-16"), "utf-16", True
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
        frame = pl.read_excel(path, sheet_id=1, infer_schema_length=0, raise_if_empty=False)
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
    # Line 1 is the header; the first data row is line 2 in the partner's editor.
    frame = frame.with_row_index(LINE_COLUMN, offset=2).with_columns(
        pl.col(LINE_COLUMN).cast(pl.Int64)
    )
    return RawFrame(frame, dialect, header)
