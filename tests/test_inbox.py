"""No file of the inbox can stop an ingestion step: every misnamed, misplaced or broken file
ends in a recorded rejection (or quarantine) with its reason, and the others load."""

from __future__ import annotations

import pytest

from pipelines.ingest import loader
from pipelines.ingest.ledger import UNEXPECTED
from pipelines.ingest.loader import scan_inbox
from pipelines.settings import Home
from tests.conftest import INCIDENTS_HEADER, ingest, query, stock, write_delimited

INCIDENT = "I1;2025-01-03;R1;;DEG;hall;2;;oui;;;"


def _ledger(home: Home) -> dict[str, tuple[str, str | None]]:
    return {
        f: (s, m) for f, s, m in query(home, "SELECT fichier, statut, motif FROM raw.livraisons")
    }


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("HMP_incidents_2025-13.csv", "mois impossible dans le nom du fichier: 2025-13"),
        ("HMP_incidents_2025-00_corrige.csv", "mois impossible dans le nom du fichier: 2025-00"),
        ("HMP_procedures_0000-01.csv", "année impossible dans le nom du fichier: 0"),
        ("HMP_patrimoine_2999.csv", "année impossible dans le nom du fichier: 2999"),
        ("HMP_incidents_202501.csv", "nom de fichier incidents illisible"),
        ("HMP_incidents_2025-1.csv", "nom de fichier incidents illisible"),
        ("HMP_incidents_2025-01.txt", "nom de fichier incidents illisible"),
        ("HMP_incidents.csv", "nom de fichier incidents illisible"),
        ("rapport final.pdf", "nom de fichier non reconnu dans landlord/"),
    ],
)
def test_a_name_that_cannot_be_right_is_rejected_and_the_rest_loads(
    home: Home, name: str, reason: str
) -> None:
    stock(home)
    write_delimited(home.inbox_family("landlord") / name, INCIDENTS_HEADER, [INCIDENT])
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.csv", INCIDENTS_HEADER, [INCIDENT]
    )
    report = ingest(home, "landlord")
    ledger = _ledger(home)
    status, motif = ledger[f"landlord/{name}"]
    assert status == "rejetee" and motif is not None and reason in motif, motif
    assert ledger["landlord/HMP_incidents_2025-01.csv"][0] == "chargee"
    assert ledger["landlord/HMP_patrimoine_2025.csv"][0] == "chargee"
    assert (f"landlord/{name}", motif) in report.rejected


def test_reference_and_ssmsi_years_are_checked(home: Home) -> None:
    write_delimited(
        home.inbox_family("reference") / "epci_1899.csv",
        "CODGEO;LIBGEO;EPCI;LIBEPCI;DEP;REG",
        ["13055;Marseille;200054807;Aix-Marseille-Provence;13;93"],
    )
    write_delimited(
        home.inbox_family("police") / "base.csv",
        "CODGEO_0000;annee;indicateur;unite_de_compte;nombre;taux_pour_mille;est_diffuse;"
        "insee_pop;insee_pop_millesime;insee_log;insee_log_millesime;complement_info_nombre;"
        "complement_info_taux",
        ["13055;2024;Vols;Infraction;1;1;diff;1;2021;1;2021;NA;NA"],
    )
    ingest(home, "reference")
    ingest(home, "police")
    ledger = _ledger(home)
    assert "année impossible dans le nom du fichier: 1899" in str(ledger["reference/epci_1899.csv"])
    assert "année impossible dans la colonne CODGEO_<AAAA>" in str(ledger["police/base.csv"])


def test_subfolders_and_stray_files_are_not_deliveries_and_are_said(home: Home) -> None:
    stock(home)
    archive = home.inbox_family("landlord") / "archives" / "2024"
    archive.mkdir(parents=True)
    write_delimited(archive / "HMP_incidents_2024-12.csv", INCIDENTS_HEADER, [INCIDENT])
    (home.inbox / "HMP_incidents_2025-01.csv").write_text("stray at the root\n")
    (home.inbox / "bailleurs").mkdir()
    (home.inbox / "bailleurs" / "liste.csv").write_text("a;b\n1;2\n")
    (home.inbox_family("landlord") / "~$HMP_patrimoine_2025.xlsx").write_bytes(b"lock")
    (home.inbox_family("landlord") / ".DS_Store").write_bytes(b"\0")
    report = ingest(home, "landlord")
    assert set(_ledger(home)) == {"landlord/HMP_patrimoine_2025.csv"}
    ignored = dict(scan_inbox(home).ignored)
    assert set(ignored) == {
        "HMP_incidents_2025-01.csv",
        "bailleurs/liste.csv",
        "landlord/archives/2024/HMP_incidents_2024-12.csv",
    }
    assert "à la racine de inbox/" in ignored["HMP_incidents_2025-01.csv"]
    assert "dossier bailleurs/ inconnu" in ignored["bailleurs/liste.csv"]
    assert (
        "sous-dossier de landlord/" in ignored["landlord/archives/2024/HMP_incidents_2024-12.csv"]
    )
    # The family's own misplaced files are in its report (Dagster metadata, summary).
    assert [f for f, _ in report.ignored] == ["landlord/archives/2024/HMP_incidents_2024-12.csv"]


def test_an_unexpected_error_on_one_file_rejects_it_and_it_is_read_again(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    stock(home)
    for month in ("01", "02"):
        write_delimited(
            home.inbox_family("landlord") / f"HMP_incidents_2025-{month}.csv",
            INCIDENTS_HEADER,
            [INCIDENT.replace("2025-01", f"2025-{month}")],
        )
    validate_many = loader.validate_many

    # The two months are validated together: the error fails that plan, then each file is
    # validated alone, and only January's is rejected.
    def broken(deliveries, kind, **options):  # type: ignore[no-untyped-def]
        if any(period == "2025-01" for _, period in deliveries):
            raise ZeroDivisionError("a bug nobody foresaw\nsecond line")
        return validate_many(deliveries, kind, **options)

    monkeypatch.setattr(loader, "validate_many", broken)
    report = ingest(home, "landlord")
    ledger = _ledger(home)
    status, motif = ledger["landlord/HMP_incidents_2025-01.csv"]
    assert status == "rejetee" and motif is not None and motif.startswith(UNEXPECTED)
    assert "ZeroDivisionError: a bug nobody foresaw" in motif and "second line" not in motif
    assert ledger["landlord/HMP_incidents_2025-02.csv"][0] == "chargee"
    assert [f for f, _ in report.errors] == ["landlord/HMP_incidents_2025-01.csv"]
    assert any(
        o.controle == "livraisons_landlord.aucune_erreur_inattendue" and o.statut == "warn"
        for o in report.outcomes
    )
    (first_id,) = query(
        home,
        "SELECT livraison_id FROM raw.livraisons WHERE fichier = ?",
        ["landlord/HMP_incidents_2025-01.csv"],
    )[0]

    # The bug fixed, the next ingestion reads the file again, under the same delivery id.
    monkeypatch.setattr(loader, "validate_many", validate_many)
    report = ingest(home, "landlord")
    assert report.errors == []
    assert query(
        home,
        "SELECT livraison_id, statut, lignes_chargees FROM raw.livraisons WHERE fichier = ?",
        ["landlord/HMP_incidents_2025-01.csv"],
    ) == [(first_id, "chargee", 1)]
