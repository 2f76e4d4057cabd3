"""The delivery generator: determinism, completeness, dialect variety and consistency (tiny)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import pathlib

import polars as pl
import pytest

from pipelines.generate import FAMILIES, generate, parse_months
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
    """Read any CSV delivery with the stdlib (dialect sniffed like a partner-agnostic reader)."""
    text = _text(path)
    sep = ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
    rows = list(csv.DictReader(io.StringIO(text), delimiter=sep))
    return [{k.strip().lower(): v for k, v in r.items()} for r in rows]


def _read_any(path: pathlib.Path) -> list[dict[str, str]]:
    if path.suffix == ".xlsx":
        df = pl.read_excel(path)
        return [
            {k.strip().lower(): ("" if v is None else str(v)) for k, v in r.items()}
            for r in df.iter_rows(named=True)
        ]
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
        used |= {r["depcom"] for r in rows}
        by_res: dict[str, set[tuple[str, str]]] = {}
        for r in rows:
            by_res.setdefault(r["id_residence"], set()).add((r["depcom"], r["qpv"]))
        assert all(len(v) == 1 for v in by_res.values())
    for p in (out / "allocations").glob("*.csv"):
        used |= {r["depcom"] for r in _read(p)}
    for p in (out / "police").glob("evenements_*.csv"):
        used |= {r["depcom"] for r in _read(p)}
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
    headers = {p.name: _text(p).split("\n", 1)[0] for p in files}
    new = [p for p in files if "indicateur;unite_de_compte" in headers[p.name]]
    old = [p for p in files if "unité.de.compte" in headers[p.name]]
    assert new and new[0].name.endswith(".csv.gz")
    assert old and old[0].name.endswith(".csv")
    assert headers[old[0].name].startswith('"CODGEO_2024";"annee";"classe"')
    new_rows = _read(new[0])
    masked = [r for r in new_rows if r["est_diffuse"] == "ndiff"]
    assert masked and all(r["nombre"] == "" and r["taux_pour_mille"] == "" for r in masked)
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
    for r in rows:
        assert epci_of[r["depcom"]] in seuils
        if r["date_signature_bail"]:
            assert r["date_signature_bail"] >= r["date_attribution"]
    assert any(r["date_signature_bail"] == "" for r in rows)
    assert any(r["qpv"] for r in rows) and any(not r["qpv"] for r in rows)


def test_parse_months() -> None:
    import datetime as dt

    assert parse_months("2024-01:2025-12") == (dt.date(2024, 1, 1), dt.date(2025, 12, 1))
    with pytest.raises(ValueError):
        parse_months("2025-03:2025-01")


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
