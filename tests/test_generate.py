"""The delivery generator: determinism, completeness, dialect variety and consistency (tiny).

Generated files are read here with the standard library, independently of the ingestion code,
the way a partner-agnostic reader would: rows of separators only (that Excel writes below the
data) are not data, and commune codes that a spreadsheet turned into numbers (`6088`) are
compared once their leading zero is back. The shapes partners really send (quoted free text,
timestamps, thousands separators, numeric codes, INSEE's EPCI file) are asserted present.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import os
import pathlib
import re

import polars as pl
import pytest

from pipelines.generate import FAMILIES, generate
from pipelines.ingest.specs import CATEGORIES


def _digest(root: pathlib.Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            int(p.stat().st_mtime),
        )
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _text(path: pathlib.Path) -> str:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def _read(path: pathlib.Path) -> list[dict[str, str]]:
    """Read any CSV delivery with the stdlib (dialect sniffed like a partner-agnostic reader).

    Rows whose every field is empty (separator-only rows, a final blank line) are not data.
    """
    text = _text(path)
    header = text.split("\n", 1)[0]
    sep = ";" if header.count(";") > header.count(",") else ","
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=sep))
    rows = [r for r in rows if any((v or "").strip() for v in r.values())]
    return [{k.strip().lower(): v for k, v in r.items()} for r in rows]


def _commune(code: str) -> str:
    """A commune code as INSEE writes it (a spreadsheet may have dropped its leading zero)."""
    return code.zfill(5) if re.fullmatch(r"\d{4}", code) else code


def _day(text: str) -> dt.date:
    """A delivered date, ISO or French, with or without a time of day."""
    day = text.strip()[:10]
    if "/" in day:
        return dt.datetime.strptime(day, "%d/%m/%Y").date()
    return dt.date.fromisoformat(day)


def _read_any(path: pathlib.Path) -> list[dict[str, str]]:
    if path.suffix == ".xlsx":
        df = pl.read_excel(path, infer_schema_length=0)
        rows = [
            {k.strip().lower(): ("" if v is None else str(v)) for k, v in r.items()}
            for r in df.iter_rows(named=True)
        ]
        return [r for r in rows if any(v.strip() for v in r.values())]
    return _read(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("tiny_a")
    counts = generate("tiny", 7, out)
    return out, counts


def test_deterministic_bytes_and_mtimes(tiny, tmp_path: pathlib.Path) -> None:
    out, _ = tiny
    again = tmp_path / "again"
    generate("tiny", 7, again)
    assert _digest(out) == _digest(again)
    other = tmp_path / "other"
    generate("tiny", 8, other)
    a, b = _digest(out), _digest(other)
    assert any(a[k][0] != b.get(k, ("",))[0] for k in a)


def test_every_family_present_and_counted(tiny) -> None:
    out, counts = tiny
    for fam in FAMILIES:
        files = [p for p in (out / fam).iterdir() if p.is_file()]
        assert files, fam
        assert counts[f"{fam}_files"] == len(files)
        assert counts[f"{fam}_rows"] > 0
    names = {p.name for p in (out / "reference").iterdir()}
    assert {"bailleurs.csv", "qpv_2024.csv", "epci_2025.csv", "seuils_q1_2025.csv"} <= names
    landlord = {p.name for p in (out / "landlord").iterdir()}
    assert any("_patrimoine_2025" in n for n in landlord)
    assert any("_incidents_2025-01" in n for n in landlord)
    assert any("_procedures_" in n for n in landlord)
    assert any(n.endswith("_corrige.csv") or n.endswith("_corrige.xlsx") for n in landlord)
    assert len(list((out / "allocations").glob("attributions_2025-0*.csv"))) == 3


def test_corrected_delivery_is_newer(tiny) -> None:
    out, _ = tiny
    for corr in (out / "landlord").glob("*_corrige.*"):
        orig = corr.with_name(corr.name.replace("_corrige", ""))
        assert orig.exists()
        assert os.stat(corr).st_mtime > os.stat(orig).st_mtime


def test_dialect_variety(tiny) -> None:
    out, _ = tiny
    files = list((out / "landlord").iterdir())
    cp1252 = 0
    for p in files:
        if p.suffix != ".csv":
            continue
        raw = p.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            cp1252 += 1
            assert ";" in raw.decode("cp1252").split("\n", 1)[0]
    assert cp1252 >= 1, "expected a Windows-1252 file"
    assert any(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in files if p.suffix == ".csv")
    xlsx = [p for p in files if p.suffix == ".xlsx"]
    assert xlsx
    df = pl.read_excel(xlsx[0])
    assert "id_incident" in [c.lower() for c in df.columns]
    assert df.height > 0
    # decimal comma and DD/MM/YYYY in the French-Excel dialect
    text = next(_text(p) for p in files if p.suffix == ".csv" and "HAB06_incidents" in p.name)
    assert "/2025" in text


def test_incident_codes_mapped_and_residences_in_stock(tiny) -> None:
    out, _ = tiny
    bailleurs = [r["code_bailleur"] for r in _read(out / "reference" / "bailleurs.csv")]
    assert len(bailleurs) == 2
    categories = set(CATEGORIES)
    for code in bailleurs:
        mapping = _read(out / "reference" / f"correspondance_categories_{code}.csv")
        mapped = {r["code_source"] for r in mapping}
        assert {r["categorie"] for r in mapping} <= categories
        stock = {
            r["id_residence"]
            for r in _read_any(next((out / "landlord").glob(f"{code}_patrimoine_2025.*")))
        }
        used, residences = set(), set()
        for p in (out / "landlord").glob(f"{code}_incidents_*"):
            rows = _read_any(p)
            used |= {r["code_categorie"] for r in rows}
            residences |= {r["id_residence"] for r in rows}
        assert used and used <= mapped, used - mapped
        assert residences <= stock


def test_communes_in_epci_file_and_residence_consistency(tiny) -> None:
    out, _ = tiny
    epci = {r["codgeo"] for r in _read(out / "reference" / "epci_2025.csv")}
    used: set[str] = set()
    for p in (out / "landlord").glob("*_patrimoine_*"):
        rows = _read_any(p)
        used |= {_commune(r["depcom"]) for r in rows}
        by_res: dict[str, set[tuple[str, str]]] = {}
        for r in rows:
            by_res.setdefault(r["id_residence"], set()).add((r["depcom"], r["qpv"]))
        assert all(len(v) == 1 for v in by_res.values())
    for p in (out / "allocations").glob("*.csv"):
        used |= {_commune(r["depcom"]) for r in _read(p)}
    for p in (out / "police").glob("evenements_*.csv"):
        used |= {_commune(r["depcom"]) for r in _read(p)}
    used |= {r["code_commune"] for r in _read(out / "reference" / "qpv_2024.csv")}
    assert used and used <= epci, used - epci
    qpv = _read(out / "reference" / "qpv_2024.csv")
    per_qpv: dict[str, set[str]] = {}
    for r in qpv:
        per_qpv.setdefault(r["code_qpv"], set()).add(r["code_commune"])
    assert any(len(v) > 1 for v in per_qpv.values()), "one QPV should straddle two communes"


def test_ssmsi_both_schemas_with_masked_rows(tiny) -> None:
    out, _ = tiny
    files = [p for p in (out / "police").iterdir() if not p.name.startswith("evenements_")]
    # header names without their quotes (SSMSI quotes every field since 2025)
    headers = {p.name: _text(p).split("\n", 1)[0].replace('"', "") for p in files}
    new = [p for p in files if "indicateur;unite_de_compte" in headers[p.name]]
    old = [p for p in files if "unité.de.compte" in headers[p.name]]
    assert new and new[0].name.endswith(".csv.gz")
    assert old and old[0].name.endswith(".csv")
    assert _text(old[0]).startswith('"CODGEO_2024";"annee";"classe"')
    new_rows = _read(new[0])
    masked = [r for r in new_rows if r["est_diffuse"] == "ndiff"]
    assert masked and all(r["nombre"] in ("", "NA") for r in masked)
    assert all(r["taux_pour_mille"] in ("", "NA") for r in masked)
    assert all(r["complement_info_nombre"] != "" for r in masked)
    old_rows = _read(old[0])
    masked_old = [r for r in old_rows if r["valeur.publiée"] == "ndiff"]
    assert masked_old and all(r["faits"] == "NA" for r in masked_old)
    assert all(len(r["annee"]) == 2 for r in old_rows)
    # the editions overlap on at least one year
    years_new = {r["annee"] for r in new_rows}
    years_old = {"20" + r["annee"] for r in old_rows}
    assert years_new & years_old


def test_allocations_consistent(tiny) -> None:
    out, _ = tiny
    seuils = {r["code_epci"] for p in (out / "reference").glob("seuils_q1_*.csv") for r in _read(p)}
    epci_of = {r["codgeo"]: r["epci"] for r in _read(out / "reference" / "epci_2025.csv")}
    rows = [r for p in (out / "allocations").glob("*.csv") for r in _read(p)]
    assert rows
    missing = {"", "NA"}
    for r in rows:
        assert epci_of[_commune(r["depcom"])] in seuils
        if r["date_signature_bail"] not in missing:
            assert _day(r["date_signature_bail"]) >= _day(r["date_attribution"])
    assert any(r["date_signature_bail"] in missing for r in rows)
    assert any(r["qpv"] not in missing for r in rows) and any(r["qpv"] in missing for r in rows)


# -- the shapes partners really send (tiny) ------------------------------------------------


def _raw_records(path: pathlib.Path) -> tuple[str, list[list[str]]]:
    """Separator and every record of a CSV delivery, parsed with the stdlib."""
    text = _text(path)
    header = text.split("\n", 1)[0]
    sep = ";" if header.count(";") > header.count(",") else ","
    return sep, list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))


def test_free_text_needs_quoting_in_every_csv_dialect(tiny) -> None:
    """Comments, residence, landlord and label names carry separators, double quotes and line
    breaks (so they must be quoted), in every CSV dialect of tiny that has free text."""
    out, _ = tiny
    needing_quotes: dict[tuple[str, bool, str], int] = {}
    multiline = []
    for p in sorted((out / "landlord").glob("*.csv")) + sorted((out / "reference").glob("*.csv")):
        raw = p.read_bytes()
        sep, records = _raw_records(p)
        dialect = (sep, raw.startswith(b"\xef\xbb\xbf"), "crlf" if b"\r\n" in raw else "lf")
        needing_quotes.setdefault(dialect, 0)
        for record in records[1:]:
            for value in record:
                if sep in value or '"' in value or "\n" in value:
                    needing_quotes[dialect] += 1
                if "\n" in value:
                    multiline.append((p.name, value))
    # tiny: French Excel (; CRLF), Excel UTF-8 with BOM (, CRLF), reference files (; LF)
    assert set(needing_quotes) == {(";", False, "crlf"), (",", True, "crlf"), (";", False, "lf")}
    assert all(needing_quotes.values()), needing_quotes
    # a comment typed on two lines, in the first month of the CSV landlord
    assert any(name == "HAB06_incidents_2025-01.csv" for name, _ in multiline), multiline
    # ... and in the XLSX landlord's (a line break in a cell)
    xlsx = pl.read_excel(out / "landlord" / "AZURLOG_incidents_2025-01.xlsx")
    assert xlsx.filter(pl.col("commentaire").str.contains("\n")).height == 1
    # typographic characters that exist in Windows-1252 survive its encoding
    text = "".join(p.read_bytes().decode("cp1252") for p in (out / "landlord").glob("HAB06_*.csv"))
    assert all(ch in text for ch in "’«»…–") and ("œ" in text or "Œ" in text)
    assert "?" not in text  # nothing replaced: every character exists in Windows-1252
    names = {
        r["code_bailleur"]: r["nom_bailleur"] for r in _read(out / "reference" / "bailleurs.csv")
    }
    assert names["AZURLOG"] == 'SA d’HLM "Azurlog Résidences"'


def test_information_system_and_spreadsheet_shapes(tiny) -> None:
    """Timestamps, thousands separators, commune codes as numbers, separator-only rows."""
    out, _ = tiny
    landlord = out / "landlord"
    raw = (landlord / "HAB06_incidents_2025-01.csv").read_bytes()
    rows = _read(landlord / "HAB06_incidents_2025-01.csv")
    assert all(re.fullmatch(r"\d{2}/\d{2}/2025 \d{2}:\d{2}", r["date_signalement"]) for r in rows)
    amounts = [r["cout_euros"] for r in rows if r["cout_euros"]]
    assert all(re.fullmatch(r"\d{1,3}(\xa0\d{3})*,\d{2}", a) for a in amounts), amounts
    assert any("\xa0" in a for a in amounts), "a cost of 1,000 euros or more, grouped"
    assert raw.endswith(b";;;;;;;;;;;\r\n;;;;;;;;;;;\r\n")  # Excel's rows below the data
    stock = _read(landlord / "HAB06_patrimoine_2025.csv")
    assert {len(r["depcom"]) for r in stock} == {4}  # 06xxx typed as numbers by Excel
    # XLSX from an information system: datetime cells with a time of day
    xlsx = pl.read_excel(landlord / "AZURLOG_incidents_2025-01.xlsx")
    assert xlsx.schema["date_signalement"] == pl.Datetime("ms")
    assert xlsx.filter(pl.col("date_signalement").dt.hour() > 0).height == xlsx.height
    # a closure on the day of the report is later that day
    same_day = xlsx.filter(pl.col("date_cloture").dt.date() == pl.col("date_signalement").dt.date())
    assert (same_day["date_cloture"] > same_day["date_signalement"]).all()


def test_allocations_as_sne_exports_and_resaved_months(tiny) -> None:
    out, _ = tiny
    folder = out / "allocations"
    jan, feb, mar = (folder / f"attributions_2025-0{m}.csv" for m in (1, 2, 3))
    # the SNE itself: ISO dates, decimal point, incomes with cents for some households
    sne = _read(jan)
    assert all(re.fullmatch(r"\d+\.\d{2}", r["revenu_annuel_euros"]) for r in sne)
    assert any(not r["revenu_annuel_euros"].endswith(".00") for r in sne)
    assert any(r["id_logement"] == "" for r in sne) and any(
        r["date_signature_bail"] == "" for r in sne
    )
    # February re-saved with French Excel: cp1252, CRLF, decimal comma, thousands, 6088, labels
    raw = feb.read_bytes()
    assert b"\r\n" in raw and raw.endswith(b";" * 12 + b"\r\n")
    excel = _read(feb)
    assert all(re.fullmatch(r"\d{2}/\d{2}/2025", r["date_attribution"]) for r in excel)
    assert any("\xa0" in r["revenu_annuel_euros"] for r in excel)
    assert {len(r["depcom"]) for r in excel} == {4}
    assert {r["relogement_anru"] for r in excel} <= {"Oui", "Non"}
    assert {r["menage_prioritaire"] for r in excel} <= {"DALO", "Prioritaire", "Non"}
    # March through R's write.csv2: quoted strings, NA for missing, decimal comma
    text = _text(mar)
    assert text.startswith('"num_unique_demande";"date_attribution"')
    assert ";NA;" in text
    assert all("," in r["revenu_annuel_euros"] for r in _read(mar))


def test_months_without_rows_are_written_in_every_dialect(tmp_path: pathlib.Path) -> None:
    """A landlord-month without incident (untyped empty frame) is a header-only file."""
    from pipelines.generate import writers as w
    from pipelines.generate.incidents import export_incidents

    empty = pl.DataFrame({"id_incident": [], "date_signalement": [], "cout_euros": []})
    empty = empty.with_columns(
        pl.lit(None).alias("date_cloture"), pl.lit(None).alias("commentaire")
    )
    for i, dialect in enumerate(
        [w.EXCEL_CP1252, w.SEMICOLON_BOM_NA, w.SEMICOLON_UTF8_FR, w.XLSX, w.XLSX_TEXT_DATES]
    ):
        path = tmp_path / f"{i}{dialect.extension}"
        assert w.write_table(export_incidents(empty, dialect, 1), path, dialect) == 0
        assert path.stat().st_size > 0


def test_epci_file_as_insee_publishes_it() -> None:
    """Communes outside any EPCI are in INSEE's file as ZZZZZZZZZ / Sans objet (national);
    overseas départements on three characters, Corsica 2A/2B; no overseas collectivity."""
    from pipelines.generate.common import SCALES
    from pipelines.generate.territory import epci_composition, select_communes

    national = SCALES["national"]
    epci = epci_composition(national, select_communes(national))
    islands = epci.filter(pl.col("EPCI") == "ZZZZZZZZZ")
    assert sorted(islands["CODGEO"].to_list()) == ["22016", "29083", "29155", "85113"]
    assert set(islands["LIBEPCI"].to_list()) == {"Sans objet"}
    assert epci.filter(pl.col("EPCI") != "ZZZZZZZZZ")["EPCI"].str.contains(r"^\d{9}$").all()
    deps = set(epci["DEP"].to_list())
    assert {"2A", "2B", "971", "972", "973", "974", "976"} <= deps
    assert not deps & {"975", "977", "978", "986", "987", "988", "989"}
    assert epci["CODGEO"].n_unique() == epci.height
    # the other scales have no commune outside an EPCI
    for name in ("tiny", "small"):
        scale = SCALES[name]
        assert "ZZZZZZZZZ" not in epci_composition(scale, select_communes(scale))["EPCI"]


def test_month_range_option() -> None:
    """The months are parsed by the project command, the one home of its options."""
    from click.testing import CliRunner

    from pipelines.cli import main

    result = CliRunner().invoke(main, ["generate", "--months", "2025-03:2025-01", "--out", "x"])
    assert result.exit_code == 2
    assert "the last month is before the first" in result.output


def test_module_entry_point_is_the_project_command() -> None:
    """`python -m pipelines.generate` runs `tranquillity generate`, not a second CLI."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "pipelines.generate", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("Usage: tranquillity generate [OPTIONS]")


@pytest.mark.slow
def test_small_scale(tmp_path: pathlib.Path) -> None:
    """The demo scale: about ten landlords in two départements, 24 months, with warts."""
    counts = generate("small", 42, tmp_path)
    assert counts["landlord_files"] > 400
    landlord = [p.name for p in (tmp_path / "landlord").iterdir()]
    assert len({n.split("_")[0] for n in landlord}) >= 8
    codes = [r["code_bailleur"] for r in _read(tmp_path / "reference" / "bailleurs.csv")]
    assert len(codes) == len(set(codes))
    assert any("_corrige" in n for n in landlord)
    epci = {r["codgeo"] for r in _read(next((tmp_path / "reference").glob("epci_*.csv")))}
    assert {r["code_commune"] for r in _read(tmp_path / "reference" / "qpv_2024.csv")} <= epci
    # every landlord CSV dialect has quoted free text; the awkward parts of each are there
    shapes: dict[tuple[str, bool, bool], set[str]] = {}
    for p in sorted((tmp_path / "landlord").glob("*_incidents_*.csv")):
        raw = p.read_bytes()
        sep, records = _raw_records(p)
        kind = (sep, raw.startswith(b"\xef\xbb\xbf"), b"\r\n" in raw)
        found = shapes.setdefault(kind, set())
        values = [v for record in records[1:] for v in record]
        if any(sep in v or '"' in v for v in values):
            found.add("quoted")
        if any("\n" in v for v in values):
            found.add("line break")
        if any(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", v) for v in values):
            found.add("iso timestamp")
        if any(re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", v) for v in values):
            found.add("french timestamp")
        if any("\u202f" in v for v in values):
            found.add("narrow no-break space")
        if any("\xa0" in v for v in values):
            found.add("no-break space")
        if raw.endswith(b"\n\n"):
            found.add("final blank line")
    assert len(shapes) == 5, shapes  # ; cp1252, , BOM, ; BOM, , utf-8, ; utf-8
    assert all("quoted" in found for found in shapes.values()), shapes
    found_all = set().union(*shapes.values())
    assert {
        "line break",
        "iso timestamp",
        "french timestamp",
        "narrow no-break space",
        "no-break space",
        "final blank line",
    } <= found_all, found_all
    # a hand-kept workbook: commune codes typed as numbers, rows of spaces below the data
    workbooks = [
        p
        for p in (tmp_path / "landlord").glob("*_patrimoine_*.xlsx")
        if pl.read_excel(p, infer_schema_length=None).schema["DEPCOM"].is_numeric()
    ]
    assert workbooks
