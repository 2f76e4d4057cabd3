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

from pipelines.opendata import (
    MIN_LOGEMENTS_EPCI_MOIS,
    SEUIL_EVENEMENTS,
    SEUIL_HALLS,
    SEUIL_INCIDENTS,
    SEUIL_PROCEDURES,
    TOTAL,
)
from pipelines.reports import charts
from pipelines.reports.common import (
    ETAPES,
    EVENEMENTS,
    MOIS_COURTS,
    MOTIFS,
    NIVEAUX_GRAVITE,
    Territory,
    categories,
    code,
    coverage_section,
    gravity_criteria,
    month_label,
    reading_section,
    report,
    text,
)
from pipelines.reports.data import OpenFolder
from pipelines.reports.html import french_number
from pipelines.reports.model import Cell, Chart, Kind, Report, Section, Table

RATE = "taux_annualise_pour_1000_logements"
MONTHLY_RATE = "taux_pour_1000_logements"
QPV_PER_TABLE = 6
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
        "Quartier prioritaire (QPV)",
        "Quartier prioritaire de la politique de la ville ; ses incidents sont ceux des "
        "résidences que les bailleurs y situent, son taux rapporté à leurs logements.",
    ),
    (
        "Niveau de gravité des halls",
        "Chaque trimestre, chaque résidence d'un bailleur couvrant le trimestre reçoit le "
        "niveau le plus élevé dont un critère est atteint, vert si aucun : "
        + " ; ".join(
            f"{NIVEAUX_GRAVITE[niveau].lower()} : "
            + ", ou ".join(c[0].lower() + c[1:] for c in criteria)
            for niveau, criteria in gravity_criteria().items()
        )
        + ".",
    ),
    (
        "Procédure d'expulsion",
        "Procédure de résiliation de bail et d'expulsion engagée par un bailleur, comptée "
        "une fois à chaque étape atteinte dans l'année, dans l'EPCI du logement ; celles "
        "engagées sur injonction du préfet sont comptées à part.",
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
    if not f.folder.has(table):  # a publication made before the table (no such mart)
        return coverage_section(f.folder, f.annee, ["incidents", "evenements"], [])
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


def months(f: Figures) -> Section:
    """The months of the year: the EPCI's incidents against its départements' (all
    categories), then each département by category (the EPCI's categories by month are not
    published: docs/open-data.md)."""
    place, annee = f.place, f.annee
    epci_table, dep_table = "incidents_epci_mois", "incidents_departement_mois"

    def monthly(table: str, codes: list[str]) -> dict[tuple[Any, ...], Row]:
        frame = f.folder.table(table).filter(
            pl.col("code_territoire").is_in(codes) & (pl.col("mois").dt.year() == annee)
        )
        return _index(frame, "code_territoire", "mois", "categorie")

    mine = monthly(epci_table, [place.code_epci])
    theirs = monthly(dep_table, list(place.departements))
    days = sorted({key[1] for key in (*mine, *theirs)})
    section = Section(
        id="mois",
        title=f"Incidents mois par mois en {annee}",
        sheet="Mois",
        paragraphs=[
            "Taux du mois pour 1 000 logements (non annualisé : environ le douzième du taux "
            "annuel). L'EPCI est publié toutes catégories confondues, et seulement quand les "
            f"bailleurs y couvrent au moins {french_number(MIN_LOGEMENTS_EPCI_MOIS, 0)} "
            "logements chaque mois de l'année (en deçà, un mois compte peu d'incidents, le plus "
            "souvent masqués) ; ses départements sont publiés par catégorie."
        ],
    )
    rows, points = [], []
    for day in days:
        found = mine.get((place.code_epci, day, TOTAL))
        row = [
            text(month_label(day)),
            f.value(epci_table, found, "n_incidents", "entier"),
            f.value(epci_table, found, MONTHLY_RATE, "taux"),
        ]
        shown = [(place.nom_epci, found)]
        for dep, name in place.departements.items():
            other = theirs.get((dep, day, TOTAL))
            row.append(f.value(dep_table, other, MONTHLY_RATE, "taux"))
            shown.append((name, other))
        rows.append(row)
        points += [
            {
                "mois": MOIS_COURTS[day.month - 1],
                "territoire": who,
                "taux": found_row[MONTHLY_RATE] if found_row else None,
            }
            for who, found_row in shown
        ]
    section.tables.append(
        Table(
            headers=[
                "Mois",
                "Incidents (EPCI)",
                "Taux (EPCI)",
                *(f"Taux ({name})" for name in place.departements.values()),
            ],
            rows=rows,
            caption="Incidents de toutes catégories et taux du mois pour 1 000 logements",
            note="Un mois absent n'est couvert par aucun bailleur du territoire.",
        )
    )
    if days:
        section.charts.append(
            Chart(
                id="incidents-mois",
                title=f"Taux du mois pour 1 000 logements en {annee}, toutes catégories",
                spec=charts.lines(
                    points,
                    "mois",
                    "taux",
                    "territoire",
                    x_title="Mois",
                    y_title="pour 1 000 logements",
                ),
                note="une valeur masquée interrompt la ligne",
            )
        )
    for dep, name in place.departements.items():
        section.tables.append(
            Table(
                headers=["Catégorie", *(MOIS_COURTS[day.month - 1] for day in days)],
                rows=[
                    [
                        text(label),
                        *(
                            f.value(
                                dep_table, theirs.get((dep, day, categorie)), MONTHLY_RATE, "taux"
                            )
                            for day in days
                        ),
                    ]
                    for categorie, label in categories().items()
                ],
                caption=f"{name} ({dep}) : taux du mois pour 1 000 logements par catégorie",
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


def qpvs(f: Figures) -> Section:
    """The QPVs of the EPCI side by side, all categories, against the EPCI."""
    table = "incidents_qpv_annee"
    composition = f.folder.table("territoires_qpv").filter(pl.col("code_epci") == f.place.code_epci)
    years = composition.get_column("annee").unique().to_list()
    if years:
        year = min(years, key=lambda y: (abs(y - f.annee), -y))
        composition = composition.filter(pl.col("annee") == year)
    names: dict[str, str] = {}
    communes: dict[str, list[str]] = {}
    for row in composition.sort("code_qpv", "code_commune").iter_rows(named=True):
        names[row["code_qpv"]] = row["nom_qpv"] or row["code_qpv"]
        communes.setdefault(row["code_qpv"], []).append(
            f.place.communes.get(row["code_commune"], row["code_commune"])
        )
    found = _index(
        _incidents(f.folder, "qpv", list(names)), "code_territoire", "annee", "categorie"
    )
    section = Section(
        id="qpv",
        title=f"Les quartiers prioritaires de l'EPCI en {f.annee}",
        sheet="QPV",
    )
    if not names:
        section.paragraphs.append("Aucun quartier prioritaire (QPV) dans les communes de l'EPCI.")
        return section
    mine = f.epci.get((f.annee, TOTAL))
    rows = [
        [
            code(f.place.code_epci),
            text(f"Ensemble de l'EPCI ({f.place.nom_epci})"),
            text(""),
            f.value("incidents_epci_annee", mine, "n_incidents", "entier"),
            f.value("incidents_epci_annee", mine, RATE, "taux"),
        ]
    ]
    points = [{"territoire": "Ensemble de l'EPCI", "taux": mine[RATE] if mine else None}]
    for qpv, name in names.items():
        total = found.get((qpv, f.annee, TOTAL))
        rows.append(
            [
                code(qpv),
                text(name),
                text(", ".join(communes[qpv])),
                f.value(table, total, "n_incidents", "entier"),
                f.value(table, total, RATE, "taux"),
            ]
        )
        points.append({"territoire": name, "taux": total[RATE] if total else None})
    section.tables.append(
        Table(
            headers=["Code", "Quartier", "Communes", "Incidents", "Taux pour 1 000 logements"],
            rows=rows,
            caption="Incidents de toutes catégories par quartier prioritaire",
            note="« – » : aucun logement social des bailleurs couvrant l'année dans le quartier.",
        )
    )
    codes = list(names)
    # A page holds a few quarters side by side: the others follow in tables of their own.
    for start in range(0, len(codes), QPV_PER_TABLE):
        shown = codes[start : start + QPV_PER_TABLE]
        section.tables.append(
            Table(
                headers=["Catégorie", *(names[q] for q in shown)],
                rows=[
                    [
                        text(label),
                        *(
                            f.value(table, found.get((qpv, f.annee, categorie)), RATE, "taux")
                            for qpv in shown
                        ),
                    ]
                    for categorie, label in categories().items()
                ],
                caption="Taux annualisé pour 1 000 logements par catégorie et quartier"
                + (
                    f" ({start + 1} à {start + len(shown)} sur {len(codes)})"
                    if len(codes) > QPV_PER_TABLE
                    else ""
                ),
            )
        )
    section.charts.append(
        Chart(
            id="qpv-taux",
            title=f"Taux annualisé d'incidents pour 1 000 logements en {f.annee}",
            spec=charts.bars(points, "territoire", "taux", x_title="pour 1 000 logements"),
            note="une barre absente est un taux masqué (secret statistique) ou non publié",
        )
    )
    return section


def halls(f: Figures) -> Section:
    """Residences per hall severity level and quarter, in the EPCI."""
    table = "gravite_halls_epci_trimestre"
    frame = f.folder.table(table).filter(
        (pl.col("code_epci") == f.place.code_epci) & (pl.col("annee") == f.annee)
    )
    found = _index(frame, "numero_trimestre", "niveau_gravite")
    quarters = sorted(frame.get_column("numero_trimestre").unique().to_list())
    rows = [
        [
            text(label),
            *(f.value(table, found.get((q, niveau)), "n_residences", "entier") for q in quarters),
        ]
        for niveau, label in NIVEAUX_GRAVITE.items()
    ]
    section = Section(
        id="halls",
        title=f"Niveaux de gravité dans les halls en {f.annee}",
        sheet="Gravite halls",
        paragraphs=[
            "Résidences des bailleurs couvrant le trimestre, selon le niveau le plus élevé dont "
            "un critère est atteint dans le trimestre (définitions en fin de bilan)."
        ],
    )
    if not quarters:
        section.paragraphs.append(f"Aucune résidence couverte dans l'EPCI en {f.annee}.")
    section.tables.append(
        Table(
            headers=["Niveau", *(f"T{q} {f.annee}" for q in quarters)],
            rows=rows,
            caption="Nombre de résidences par niveau de gravité et trimestre",
        )
    )
    return section


def evictions(f: Figures) -> Section:
    """Eviction procedures in the EPCI: by motive and step, and those the prefect ordered."""
    table = "procedures_epci_annee"
    frame = f.folder.table(table).filter(
        (pl.col("code_epci") == f.place.code_epci) & (pl.col("annee") == f.annee)
    )
    found = _index(frame, "motif", "etape")
    section = Section(
        id="expulsions",
        title=f"Procédures d'expulsion en {f.annee}",
        sheet="Expulsions",
        paragraphs=[
            "Procédures engagées par les bailleurs, comptées à chaque étape atteinte dans "
            "l'année, dans l'EPCI du logement."
        ],
    )
    section.tables.append(
        Table(
            headers=["Motif", *ETAPES.values()],
            rows=[
                [
                    text(label),
                    *(
                        f.value(table, found.get((motif, etape)), "n_procedures", "entier")
                        for etape in ETAPES
                    ),
                ]
                for motif, label in MOTIFS.items()
            ],
            caption="Procédures par motif et étape",
            note="« – » : aucune procédure publiée à cette étape.",
        )
    )
    section.tables.append(
        Table(
            headers=["Motif", *ETAPES.values()],
            rows=[
                [
                    text(label),
                    *(
                        f.value(
                            table,
                            found.get((motif, etape)),
                            "n_procedures_injonction_prefet",
                            "entier",
                        )
                        for etape in ETAPES
                    ),
                ]
                for motif, label in MOTIFS.items()
            ],
            caption="Dont procédures engagées sur injonction du préfet",
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
        if "edition" in frame.columns:
            row.append(f.value(table, found.get((indicator, annee)), "edition", "code"))
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
                *(["Édition SSMSI"] if "edition" in frame.columns else []),
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


def _thresholds() -> str:
    """The masking thresholds, said once per value (one home: pipelines/opendata.py)."""
    by_seuil: dict[int, list[str]] = {}
    for what, seuil in [
        ("d'incidents", SEUIL_INCIDENTS),
        ("de résidences", SEUIL_HALLS),
        ("d'évènements", SEUIL_EVENEMENTS),
        ("de procédures", SEUIL_PROCEDURES),
    ]:
        by_seuil.setdefault(seuil, []).append(what)
    parts = [
        f"{', '.join(whats[:-1]) + ' et ' if len(whats) > 1 else ''}{whats[-1]} de 1 à {seuil - 1}"
        for seuil, whats in by_seuil.items()
    ]
    return f"Les effectifs {' ; '.join(parts)} sont masqués."


def build(folder: OpenFolder, place: Territory, annee: int) -> Report:
    f = figures(folder, place, annee)
    sections = [coverage(f), by_category(f)]
    if folder.has("incidents_epci_mois") and folder.has("incidents_departement_mois"):
        sections.append(months(f))
    sections.append(communes(f))
    if folder.has("incidents_qpv_annee") and folder.has("territoires_qpv"):
        sections.append(qpvs(f))
    sections.append(trend(f))
    if folder.has("gravite_halls_epci_trimestre"):
        sections.append(halls(f))
    sections.append(events(f))
    if folder.has("procedures_epci_annee"):
        sections.append(evictions(f))
    if folder.has("delinquance_epci_annee"):
        sections.append(delinquency(f))
    sections.append(reading_section(folder, DEFINITIONS, _thresholds()))
    return report(
        folder,
        place,
        annee,
        "tranquillite",
        "Bilan de la tranquillité résidentielle",
        "Conseil local ou intercommunal de sécurité et de prévention de la délinquance",
        sections,
    )
