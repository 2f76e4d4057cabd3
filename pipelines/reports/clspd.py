"""The annual residential tranquillity review for the local or intercommunal security council
(CLSPD / CISPD).

It puts side by side what the landlords record (incidents per 1,000 dwellings, by category,
in the EPCI, its communes and its départements), what the police and the prefect did (bans,
closures, dealing points dismantled) and the delinquency the SSMSI records, every figure an
open-data cell (incident and event counts from 1 to 4 are masked there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from pipelines.opendata import SEUIL_EVENEMENTS, SEUIL_INCIDENTS, TOTAL
from pipelines.reports import charts
from pipelines.reports.common import (
    EVENEMENTS,
    Territory,
    categories,
    code,
    coverage_section,
    month_label,
    reading_section,
    report,
    text,
)
from pipelines.reports.data import OpenFolder
from pipelines.reports.model import Cell, Chart, Kind, Report, Section, Table

RATE = "taux_annualise_pour_1000_logements"
FRANCE = "France entière"
COVERAGE_COLUMNS = {"n_bailleurs": "Bailleurs", "n_logements": "Logements couverts"}

DEFINITIONS = [
    (
        "Incident",
        "Fait signalé par un bailleur social dans son parc (dégradation, occupation de hall, "
        "trouble de voisinage, agression du personnel, trafic constaté, incendie, dépôt "
        "sauvage, autre), compté dans le mois de son signalement et dans les territoires de sa "
        "résidence.",
    ),
    (
        "Taux annualisé pour 1 000 logements",
        "1 000 × incidents des mois couverts / logements des bailleurs qui les couvrent, ramené "
        "à douze mois : comparable entre territoires et entre années incomplètes.",
    ),
    (
        "Mois couvert",
        "Un bailleur couvre un mois quand il a livré son fichier d'incidents de ce mois ; les "
        "logements comptés sont ceux des bailleurs qui couvrent le mois.",
    ),
    (
        "Évènements de police et de la préfecture",
        "Interdictions de paraître et fermetures administratives (arrêtés du préfet), points "
        "de deal démantelés, interventions de police, injonctions de résiliation de bail ; "
        "publiés par département.",
    ),
    (
        "Délinquance enregistrée (SSMSI)",
        "Crimes et délits enregistrés par la police et la gendarmerie, base communale du "
        "service statistique ministériel de la sécurité intérieure, sommée sur les communes "
        "de l'EPCI dont le SSMSI diffuse les chiffres.",
    ),
]


Row = dict[str, Any]


@dataclass
class Figures:
    """The open-data rows one report reads, indexed by their key."""

    folder: OpenFolder
    place: Territory
    annee: int
    years: list[int]
    epci: dict[tuple[Any, ...], Row]
    departements: dict[tuple[Any, ...], Row]
    communes: dict[tuple[Any, ...], Row]
    france: dict[tuple[Any, ...], Row]

    def references(self, annee: int, categorie: str) -> list[tuple[str, str, Row | None]]:
        """The départements of the EPCI, then France: (open table, name, row)."""
        rows = [
            ("incidents_departement_annee", name, self.departements.get((dep, annee, categorie)))
            for dep, name in self.place.departements.items()
        ]
        return [*rows, ("incidents_ensemble_annee", FRANCE, self.france.get((annee, categorie)))]

    def value(self, table: str, found: Row | None, column: str, kind: Kind) -> Cell:
        """The cell of `column` in a row found, or a not-applicable cell when there is none
        (a territory without dwellings of covering landlords has no row)."""
        if found is None:
            return Cell(None, kind)
        return self.folder.cell(table, found, column, kind)


def _index(frame: pl.DataFrame, *keys: str) -> dict[tuple[Any, ...], Row]:
    return {tuple(row[k] for k in keys): row for row in frame.iter_rows(named=True)}


def _incidents(folder: OpenFolder, niveau: str, codes: list[str]) -> pl.DataFrame:
    frame = folder.table(f"incidents_{niveau}_annee")
    return frame.filter(pl.col("code_territoire").is_in(codes))


def figures(folder: OpenFolder, place: Territory, annee: int) -> Figures:
    start, end = folder.periode
    key = ("code_territoire", "annee", "categorie")
    return Figures(
        folder=folder,
        place=place,
        annee=annee,
        years=list(range(start.year, min(end.year, annee) + 1)),
        epci=_index(_incidents(folder, "epci", [place.code_epci]), "annee", "categorie"),
        departements=_index(_incidents(folder, "departement", list(place.departements)), *key),
        communes=_index(_incidents(folder, "commune", list(place.communes)), *key),
        france=_index(_incidents(folder, "ensemble", ["FR"]), "annee", "categorie"),
    )


def coverage(f: Figures) -> Section:
    table = "couverture_epci_mois"
    months = (
        f.folder.table(table)
        .filter((pl.col("code_epci") == f.place.code_epci) & (pl.col("mois").dt.year() == f.annee))
        .sort("mois")
    )
    columns = [c for c in COVERAGE_COLUMNS if c in months.columns]
    rows = [
        [text(month_label(row["mois"])), *(f.folder.cell(table, row, c, "entier") for c in columns)]
        for row in months.iter_rows(named=True)
    ]
    months_table = Table(
        headers=["Mois", *(COVERAGE_COLUMNS[c] for c in columns)],
        rows=rows,
        caption=f"Mois couverts par les bailleurs dans l'EPCI en {f.annee}",
        note="Un mois absent n'est couvert par aucun bailleur de l'EPCI.",
    )
    return coverage_section(f.folder, f.annee, ["incidents", "evenements"], [months_table])


def by_category(f: Figures) -> Section:
    """The incidents of the year by category: the EPCI and its départements."""
    place, annee = f.place, f.annee
    section = Section(
        id="incidents", title=f"Incidents dans le parc social en {annee}", sheet="Incidents"
    )
    headers = ["Catégorie", "Incidents (EPCI)", "Taux (EPCI)"]
    headers += [f"Taux ({name})" for _, name, _ in f.references(annee, TOTAL)]
    rows = []
    points = []
    for categorie, label in categories().items():
        mine = f.epci.get((annee, categorie))
        row = [
            text(label),
            f.value("incidents_epci_annee", mine, "n_incidents", "entier"),
            f.value("incidents_epci_annee", mine, RATE, "taux"),
        ]
        shown = [(place.nom_epci, mine)]
        for table, name, theirs in f.references(annee, categorie):
            row.append(f.value(table, theirs, RATE, "taux"))
            shown.append((name, theirs))
        rows.append(row)
        if categorie != TOTAL:
            points += [
                {"categorie": label, "territoire": who, "taux": found[RATE] if found else None}
                for who, found in shown
            ]
    section.tables.append(
        Table(
            headers=headers,
            rows=rows,
            caption="Incidents et taux annualisé pour 1 000 logements, par catégorie",
            note="Références : le ou les départements de l'EPCI et la France entière.",
        )
    )
    section.charts.append(
        Chart(
            id="incidents-categories",
            title=f"Taux annualisé pour 1 000 logements par catégorie en {annee}",
            spec=charts.grouped_bars(
                points, "categorie", "taux", "territoire", y_title="pour 1 000 logements"
            ),
            note="une barre absente est un taux masqué (secret statistique) ou non publié",
        )
    )
    return section


def communes(f: Figures) -> Section:
    """The communes of the EPCI side by side, all categories."""
    table = "incidents_commune_annee"
    rows = []
    for commune, name in f.place.communes.items():
        total = f.communes.get((commune, f.annee, TOTAL))
        rows.append(
            [
                code(commune),
                text(name),
                f.value(table, total, "n_incidents", "entier"),
                f.value(table, total, RATE, "taux"),
            ]
        )
    section = Section(id="communes", title=f"Les communes de l'EPCI en {f.annee}", sheet="Communes")
    section.tables.append(
        Table(
            headers=["Code commune", "Commune", "Incidents", "Taux pour 1 000 logements"],
            rows=rows,
            caption="Incidents de toutes catégories par commune",
            note="« – » : aucun logement social des bailleurs couvrant l'année dans la commune.",
        )
    )
    return section


def trend(f: Figures) -> Section:
    """The years published, the EPCI against its départements, all categories."""
    place = f.place
    rows = []
    points = []
    for y in f.years:
        mine = f.epci.get((y, TOTAL))
        row = [code(y), f.value("incidents_epci_annee", mine, RATE, "taux")]
        shown = [(place.nom_epci, mine)]
        for table, name, theirs in f.references(y, TOTAL):
            row.append(f.value(table, theirs, RATE, "taux"))
            shown.append((name, theirs))
        rows.append(row)
        points += [
            {"annee": str(y), "territoire": who, "taux": found[RATE] if found else None}
            for who, found in shown
        ]
    section = Section(id="evolution", title="Évolution du taux d'incidents", sheet="Evolution")
    section.tables.append(
        Table(
            headers=[
                "Année",
                f"Taux ({place.nom_epci})",
                *(f"Taux ({n})" for _, n, _ in f.references(f.annee, TOTAL)),
            ],
            rows=rows,
            caption="Taux annualisé pour 1 000 logements, toutes catégories",
        )
    )
    section.charts.append(
        Chart(
            id="incidents-evolution",
            title="Taux annualisé d'incidents pour 1 000 logements, toutes catégories",
            spec=charts.lines(
                points,
                "annee",
                "taux",
                "territoire",
                x_title="Année",
                y_title="pour 1 000 logements",
            ),
            note="une valeur masquée interrompt la ligne",
        )
    )
    return section


def events(f: Figures) -> Section:
    """Police and prefecture events in the départements of the EPCI, per year."""
    table = "evenements_departement_annee"
    frame = f.folder.table(table).filter(
        pl.col("code_departement").is_in(list(f.place.departements))
        & pl.col("annee").is_in(f.years)
    )
    found = _index(frame, "code_departement", "annee", "type_evenement")
    section = Section(
        id="evenements",
        title="Police et préfecture : interdictions, fermetures, points de deal",
        sheet="Police et prefecture",
        paragraphs=[
            "Ces évènements sont publiés par département : ceux de l'EPCI ne s'en distinguent pas."
        ],
    )
    for dep, name in f.place.departements.items():
        rows = [
            [
                text(label),
                *(
                    f.value(table, found.get((dep, y, kind)), "n_evenements", "entier")
                    for y in f.years
                ),
            ]
            for kind, label in EVENEMENTS.items()
        ]
        section.tables.append(
            Table(
                headers=["Type d'évènement", *(str(y) for y in f.years)],
                rows=rows,
                caption=f"{name} ({dep})",
                note="« – » : aucun évènement de ce type publié pour l'année.",
            )
        )
    return section


def delinquency(f: Figures) -> Section:
    """SSMSI recorded delinquency on the communes of the EPCI, the year and the one before."""
    table = "delinquance_epci_annee"
    annee = f.annee
    years = (annee - 1, annee)
    frame = f.folder.table(table).filter(
        (pl.col("code_epci") == f.place.code_epci) & pl.col("annee").is_in(years)
    )
    found = _index(frame, "indicateur", "annee")
    rows = []
    for indicator in sorted(frame.get_column("indicateur").unique().to_list()):
        row = [text(indicator)]
        for y in years:
            row.append(f.value(table, found.get((indicator, y)), "nombre", "entier"))
            row.append(f.value(table, found.get((indicator, y)), "taux_pour_mille", "decimal"))
        row.append(
            f.value(table, found.get((indicator, annee)), "n_communes_non_diffusees", "entier")
        )
        rows.append(row)
    section = Section(
        id="delinquance", title="Délinquance enregistrée (SSMSI)", sheet="Delinquance SSMSI"
    )
    if not rows:
        section.paragraphs.append(
            f"Le SSMSI ne publie aucun chiffre pour les communes de l'EPCI en {annee - 1} et {annee}."
        )
    section.tables.append(
        Table(
            headers=[
                "Indicateur",
                *(h for y in years for h in (f"Nombre {y}", f"Taux pour mille {y}")),
                f"Communes non diffusées {annee}",
            ],
            rows=rows,
            caption="Crimes et délits enregistrés sur les communes de l'EPCI",
            note=(
                "Taux pour mille habitants (pour mille logements pour les cambriolages de "
                "logement), sur les communes dont le SSMSI diffuse les chiffres."
            ),
        )
    )
    return section


def build(folder: OpenFolder, place: Territory, annee: int) -> Report:
    f = figures(folder, place, annee)
    sections = [coverage(f), by_category(f), communes(f), trend(f), events(f)]
    if folder.has("delinquance_epci_annee"):
        sections.append(delinquency(f))
    masked_events = (
        "."
        if SEUIL_INCIDENTS == SEUIL_EVENEMENTS
        else f" (de 1 à {SEUIL_EVENEMENTS - 1} pour les évènements)."
    )
    sections.append(
        reading_section(
            folder,
            DEFINITIONS,
            f"Les effectifs d'incidents et d'évènements de 1 à {SEUIL_INCIDENTS - 1} sont "
            f"masqués{masked_events}",
        )
    )
    return report(
        folder,
        place,
        annee,
        "tranquillite",
        "Bilan de la tranquillité résidentielle",
        "Conseil local ou intercommunal de sécurité et de prévention de la délinquance",
        sections,
    )
