"""Hypothesis strategies for inbox files, from the grammar of the deliveries (docs/deliveries.md)
with the mutations careless partners and their tools make.

A drawn `InboxFile` is where a file lands (family folder, subfolder, inbox root), its name
(kind, landlord, period, suffix, extension; each part valid or mutated) and its bytes (a
header from the kind's columns, rows of valid or mutated cells, a dialect, then perhaps an
encoding, compression or truncation accident). The grammar comes from `pipelines.ingest.specs`
and `pipelines.ingest.ssmsi`, so a new column or kind is exercised without touching this file.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import xlsxwriter
from hypothesis import strategies as st

from pipelines.ingest import ssmsi
from pipelines.ingest.specs import ALL_KINDS, SSMSI_KIND, Column, DeliveryKind
from pipelines.settings import FAMILIES

LANDLORDS = ("HMP", "OPH13", "LOGI-SUD", "AZUR_HAB")
COMMUNES = ("13055", "06088", "2A004", "97101", "6088", "1305", "99999", "ABCDE")
QPVS = ("QN01301M", "QP013001", "QN00601M", "Q123", "ZZZZZZZZ")


@dataclass(frozen=True)
class InboxFile:
    where: str  # path relative to the inbox
    data: bytes

    def write(self, inbox: Path) -> Path:
        path = inbox / self.where
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.data)
        return path


# -- names ------------------------------------------------------------------------------------


def _periods(kind: DeliveryKind) -> st.SearchStrategy[str]:
    if kind.period == "none":
        return st.just("")
    years = st.sampled_from(["2024", "2025"]) | st.sampled_from(["0000", "1899", "9999", "25"])
    if kind.period == "year":
        return years.map(lambda y: f"_{y}")
    months = st.sampled_from([f"{m:02d}" for m in range(1, 13)]) | st.sampled_from(
        ["00", "13", "99", "1", "ab"]
    )
    return st.builds(lambda y, m, dash: f"_{y}{dash}{m}", years, months, st.sampled_from("--_"))


def _name(kind: DeliveryKind) -> st.SearchStrategy[str]:
    landlord = st.sampled_from(LANDLORDS) | st.sampled_from(["", "HLM é", "a.b"])
    suffix = st.sampled_from(["", "", "_corrige", "_v2 final", "-copie"])
    extension = st.sampled_from([".csv", ".csv", ".csv.gz", ".xlsx", ".CSV", ".txt", ""])
    if kind is SSMSI_KIND:
        stem = st.sampled_from(["donnee-comm-data.gouv-2025", "base ssmsi", "evenements_2025-01"])
        return st.builds(lambda s, e: s + e, stem, extension)
    if kind.name == "correspondance_categories":
        return st.builds(
            lambda code, sfx, ext: f"correspondance_categories_{code}{sfx}{ext}",
            landlord,
            suffix,
            extension,
        )
    prefix = landlord.map(lambda code: f"{code}_") if kind.landlord_in_name else st.just("")
    return st.builds(
        lambda p, per, sfx, ext: f"{p}{kind.name}{per}{sfx}{ext}",
        prefix,
        _periods(kind),
        suffix,
        extension,
    )


# -- cells ------------------------------------------------------------------------------------

_JUNK = st.sampled_from(
    ["", "NA", "n/a", "-", "?", "0", "-1", "1e309", "NaN", "inf", "é€œ", "a;b", 'dit "oui"', "x\ny"]
)


def _valid_cell(column: Column) -> st.SearchStrategy[str]:
    if column.allowed:
        return st.sampled_from(column.allowed).map(lambda v: v.upper() if len(v) < 3 else v)
    if column.pattern and "commune" in column.pattern_label:
        return st.sampled_from(COMMUNES)
    if column.pattern and "QPV" in column.pattern_label:
        return st.sampled_from(QPVS)
    if column.pattern:
        return st.sampled_from(["200054807", "ZZZZZZZZZ", "12345678"])
    if column.type == "int":
        low = int(column.minimum) if column.minimum is not None else 0
        high = int(column.maximum) if column.maximum is not None else low + 1000
        return st.integers(low, high).map(str)
    if column.type == "decimal":
        return st.sampled_from(
            ["12,5", "1 250,50", "1\u00a0250,5", "3.75", "0", "1e-05", "1,250.5"]
        )
    if column.type == "date":
        return st.sampled_from(
            [
                "2025-01-03",
                "03/01/2025",
                "2025-01-31 14:32",
                "2025-02-30",
                "31/31/2025",
                "2025-13-01",
            ]
        )
    if column.type == "oui_non":
        return st.sampled_from(["oui", "non", "Oui", "NON", "o"])
    return st.sampled_from(["R1", "L1", "I1", "DEG", "Les Écureuils", "1", "ÉTÉ 2025"])


def _cell(column: Column) -> st.SearchStrategy[str]:
    return st.one_of(_valid_cell(column), _valid_cell(column), _JUNK)


# -- files ------------------------------------------------------------------------------------


def _columns(kind: DeliveryKind) -> st.SearchStrategy[tuple[list[str], list[Column]]]:
    """Header names and the specs of the cells under them, mutated: a column dropped, one
    added, one repeated, names in upper case or padded, the order shuffled."""
    if kind is SSMSI_KIND:
        schemas = st.sampled_from([ssmsi.NEW_SCHEMA, ssmsi.OLD_SCHEMA])
        edition = st.sampled_from(["2025", "2024", "0000", "20255"])
        base = st.builds(
            lambda schema, ed: (
                [f"CODGEO_{ed}" if c.name == "CODGEO" else c.name for c in schema],
                list(schema),
            ),
            schemas,
            edition,
        )
    else:
        base = st.just(([c.name for c in kind.columns], list(kind.columns)))

    @st.composite
    def mutate(draw: st.DrawFn) -> tuple[list[str], list[Column]]:
        names, columns = draw(base)
        names, columns = list(names), list(columns)
        mutation = draw(
            st.sampled_from(["none", "none", "drop", "extra", "repeat", "case", "shuffle"])
        )
        if mutation == "drop" and names:
            i = draw(st.integers(0, len(names) - 1))
            del names[i], columns[i]
        elif mutation == "extra":
            names.append("colonne_en_trop")
            columns.append(Column("colonne_en_trop", required=False))
        elif mutation == "repeat" and names:
            names.append(names[0])
            columns.append(columns[0])
        elif mutation == "case":
            names = [f" {n.upper()} " for n in names]
        elif mutation == "shuffle":
            order = draw(st.permutations(range(len(names))))
            names, columns = [names[i] for i in order], [columns[i] for i in order]
        return names, columns

    return mutate()


def _csv(header: list[str], rows: list[list[str]], sep: str, quote_all: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=sep,
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
        lineterminator="\r\n",
    )
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _xlsx(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = workbook.add_worksheet()
    sheet.write_row(0, 0, header)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if value.lstrip("-").isdigit() and len(value) < 10:
                sheet.write_number(r, c, int(value))  # a code typed as a number, too
            else:
                sheet.write_string(r, c, value)
    workbook.close()
    return buffer.getvalue()


@st.composite
def contents(draw: st.DrawFn, kind: DeliveryKind, extension: str) -> bytes:
    names, columns = draw(_columns(kind))
    n_rows = draw(st.integers(0, 6))
    rows = [[draw(_cell(c)) for c in columns] for _ in range(n_rows)]
    if extension == ".xlsx" and draw(st.booleans()):
        data = _xlsx(names, rows)
    else:
        text = _csv(names, rows, draw(st.sampled_from(";,")), draw(st.booleans()))
        encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16", "latin-1"]))
        data = text.encode(encoding, errors="replace")
    accident = draw(st.sampled_from(["none", "none", "none", "truncate", "gzip", "junk", "empty"]))
    if accident == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif accident == "gzip" or extension == ".csv.gz":
        data = gzip.compress(data, mtime=0)
        if draw(st.booleans()):
            data = data[: max(1, len(data) // 2)]  # an interrupted download
    elif accident == "junk":
        data = draw(st.binary(min_size=1, max_size=64))
    elif accident == "empty":
        data = b""
    return data


@st.composite
def inbox_files(draw: st.DrawFn) -> InboxFile:
    family = draw(st.sampled_from(FAMILIES))
    kinds = [k for k in (*ALL_KINDS, SSMSI_KIND) if k.family == family]
    kind = draw(st.sampled_from(kinds))
    name = draw(_name(kind))
    extension = next((e for e in (".csv.gz", ".xlsx") if name.lower().endswith(e)), "")
    data = draw(contents(kind, extension))
    place = draw(st.sampled_from(["family"] * 8 + ["subfolder", "root", "unknown_folder"]))
    where = {
        "family": f"{family}/{name}",
        "subfolder": f"{family}/archives/{name}",
        "root": name,
        "unknown_folder": f"{family}s/{name}",
    }[place]
    return InboxFile(where or "sans_nom", data)
