"""What both reports share: the territory, what the figures cover, how to read them.

Labels of the incident categories come from the dbt seed `nomenclature_incidents.csv` and
the event types from the dbt project's `types_evenement` (their one home); only their
French wording for a reader is written here, and a test ties it to those lists.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import polars as pl

from pipelines.dbt_project import DBT_PROJECT_DIR
from pipelines.opendata import TOTAL
from pipelines.reports.data import OpenDataError, OpenFolder
from pipelines.reports.model import MASKED_MARK, MISSING_MARK, Cell, Report, Section, Table

MOIS = [
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
]  # fmt: skip

MOIS_COURTS = [
    "janv.", "févr.", "mars", "avr.", "mai", "juin",
    "juil.", "août", "sept.", "oct.", "nov.", "déc.",
]  # fmt: skip

EVENEMENTS = {
    "interdiction_paraitre": "Interdictions de paraître (arrêté du préfet)",
    "fermeture_administrative": "Fermetures administratives (arrêté du préfet)",
    "point_deal_demantele": "Points de deal démantelés",
    "intervention_police": "Interventions de police",
    "injonction_resiliation_bail": "Injonctions du préfet de résilier le bail",
    TOTAL: "Total",
}

MOTIFS = {
    "trouble_jouissance": "Troubles de jouissance",
    "trafic_stupefiants": "Trafic de stupéfiants",
    "impayes": "Impayés",
    "autre": "Autre motif",
    TOTAL: "Total",
}

ETAPES = {
    "mise_en_demeure": "Mise en demeure",
    "assignation": "Assignation",
    "jugement_resiliation": "Jugement de résiliation",
    "expulsion_realisee": "Expulsion réalisée",
    "abandon": "Abandon",
}

NIVEAUX_GRAVITE = {
    "vert": "Vert",
    "jaune": "Jaune",
    "orange": "Orange",
    "rouge": "Rouge",
    TOTAL: "Toutes",
}

FICHIERS = {
    "incidents": "Incidents des bailleurs",
    "procedures": "Procédures d'expulsion des bailleurs",
    "evenements": "Évènements de police et de la préfecture",
    "attributions": "Attributions de logements",
}


@cache
def categories() -> dict[str, str]:
    """Incident category -> French label, in the nomenclature's order, then `total`."""
    seed = DBT_PROJECT_DIR / "seeds" / "nomenclature_incidents.csv"
    with seed.open(encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: int(r["ordre"]))
    return {**{r["categorie"]: r["libelle"] for r in rows}, TOTAL: "Total"}


@cache
def gravity_criteria() -> dict[str, list[str]]:
    """Hall severity level -> what reaches it, from the dbt seed `seuils_gravite_halls.csv`
    (the thresholds' one home)."""
    seed = DBT_PROJECT_DIR / "seeds" / "seuils_gravite_halls.csv"
    out: dict[str, list[str]] = {}
    with seed.open(encoding="utf-8") as handle:
        for row in sorted(csv.DictReader(handle), key=lambda r: int(r["rang"])):
            out.setdefault(row["niveau"], []).append(row["description"])
    return out


def french_date(day: date) -> str:
    return f"{day.day} {MOIS[day.month - 1]} {day.year}"


def month_label(day: date) -> str:
    return f"{MOIS[day.month - 1]} {day.year}"


def text(value: Any) -> Cell:
    return Cell(value, "texte")


def code(value: Any) -> Cell:
    return Cell(value, "code")


@dataclass(frozen=True)
class Territory:
    """The EPCI of a report in its year: name, communes and départements (from the open
    table `territoires`, the composition the figures were computed with)."""

    code_epci: str
    nom_epci: str
    annee: int
    communes: dict[str, str]
    departements: dict[str, str]


def territory(folder: OpenFolder, code_epci: str, annee: int) -> Territory:
    frame = folder.table("territoires").filter(pl.col("code_epci") == code_epci)
    if frame.is_empty():
        raise OpenDataError(f"EPCI {code_epci}: unknown to the publication {folder.publication_id}")
    years = frame.get_column("annee").unique().sort()
    # The composition of the year, else the closest year the publication has.
    year = min(years.to_list(), key=lambda y: (abs(y - annee), -y))
    frame = frame.filter(pl.col("annee") == year).sort("code_commune")
    return Territory(
        code_epci=code_epci,
        nom_epci=str(frame.get_column("nom_epci")[0]),
        annee=year,
        communes=dict(zip(frame["code_commune"], frame["nom_commune"], strict=True)),
        departements=dict(
            sorted(set(zip(frame["code_departement"], frame["nom_departement"], strict=True)))
        ),
    )


def coverage_section(
    folder: OpenFolder, annee: int, fichiers: list[str], extra: list[Table]
) -> Section:
    """Section 1 of both reports: the publication, the periods and whether each year is
    complete, the deliveries behind the figures."""
    start, end = folder.periode
    # The publication's id and time are in the report's header, not here: a report whose
    # content is unchanged from one publication to the next is not rendered again.
    paragraphs = [
        f"La publication couvre les mois du {french_date(start)} au {french_date(end)}.",
        "Toutes les valeurs de ce bilan sont celles des tables de données ouvertes de la "
        "publication, où les petits effectifs sont masqués (secret statistique) : le bilan "
        "peut être diffusé tel quel.",
    ]
    if annee > end.year or annee < start.year:
        paragraphs.append(f"L'année {annee} n'est pas couverte par cette publication.")
    periods = folder.table("periodes_couvertes").filter(
        pl.col("type_fichier").is_in(fichiers) & (pl.col("annee") <= annee)
    )
    rows = []
    for row in periods.sort("type_fichier", "annee").iter_rows(named=True):
        rows.append(
            [
                text(FICHIERS.get(row["type_fichier"], row["type_fichier"])),
                folder.cell("periodes_couvertes", row, "annee", "code"),
                folder.cell("periodes_couvertes", row, "n_sources", "entier"),
                folder.cell("periodes_couvertes", row, "n_mois_couverts_min", "entier"),
                folder.cell("periodes_couvertes", row, "annee_complete", "booleen"),
            ]
        )
    tables = [
        Table(
            headers=["Fichiers", "Année", "Sources", "Mois couverts (au moins)", "Année complète"],
            rows=rows,
            caption="Années couvertes par les livraisons",
            note=(
                "Une année est complète quand chaque source qui en a livré au moins un mois en a "
                "livré les 12. Les chiffres d'une année incomplète portent sur ses mois couverts."
            ),
        ),
        *extra,
    ]
    return Section(
        id="couverture",
        title="Ce que couvre ce bilan",
        sheet="Couverture",
        paragraphs=paragraphs,
        tables=tables,
    )


def report(
    folder: OpenFolder,
    place: Territory,
    annee: int,
    kind: str,
    title: str,
    subtitle: str,
    sections: list[Section],
) -> Report:
    """A report of one EPCI and year; `kind` names its files (`bilan-<kind>_<epci>_<annee>`)."""
    return Report(
        slug=f"bilan-{kind}_{place.code_epci}_{annee}",
        title=title,
        subtitle=subtitle,
        code_epci=place.code_epci,
        nom_epci=place.nom_epci,
        annee=annee,
        publication_id=folder.publication_id,
        publiee_le=folder.created,
        sections=sections,
    )


def reading_section(folder: OpenFolder, definitions: list[tuple[str, str]], seuils: str) -> Section:
    return Section(
        id="lecture",
        title="Comment lire ce bilan",
        sheet="Lecture",
        paragraphs=[
            f"« {MASKED_MARK} » : valeur masquée par le secret statistique. {seuils} Un effectif "
            "peut aussi être masqué parce qu'il permettrait de retrouver un autre effectif masqué "
            "(par différence avec un total ou avec un autre territoire). Un taux, une part ou un "
            "écart calculé sur un effectif masqué est masqué avec lui. Dans les graphiques, une "
            "valeur masquée est une absence (ligne interrompue, barre manquante), jamais un zéro.",
            f"« {MISSING_MARK} » : sans objet (par exemple une part dont le dénominateur est nul).",
            "Les nombres sont écrits à la française (1 234,5). Dans le classeur XLSX, chaque "
            "feuille reprend une partie du bilan ; les nombres y sont des nombres (non arrondis) "
            "et les codes du texte.",
        ],
        definitions=definitions,
    )
