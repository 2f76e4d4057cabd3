"""The annual allocation review for the intercommunal housing conference (CIL).

Article L441-1 of the CCH sets two social-mix targets per EPCI: at least 25 % of the
allocations outside QPV to households of the first income quartile (or rehoused by urban
renewal), at least 50 % of those inside QPV to the others, unless a local target replaces
them. The review shows the year against those targets, the allocations missing to reach
each, the priority households, and the trend over the years, every figure an open-data cell
of `mixite_epci_annee` (allocation counts from 1 to 10 are masked there).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipelines.opendata import SEUIL_ATTRIBUTIONS
from pipelines.reports import charts
from pipelines.reports.common import (
    Territory,
    code,
    coverage_section,
    reading_section,
    report,
    text,
)
from pipelines.reports.data import OpenFolder
from pipelines.reports.html import text as shown
from pipelines.reports.model import Cell, Chart, Kind, Report, Section, Table

TABLE = "mixite_epci_annee"
HORS_QPV = "Hors QPV (objectif : 1er quartile)"
QPV = "En QPV (objectif : hors 1er quartile)"

# (label, column outside QPV, column inside QPV, kind)
TARGET_ROWS: list[tuple[str, str, str, Kind]] = [
    ("Attributions (baux signés)", "n_attributions_hors_qpv", "n_attributions_qpv", "entier"),
    ("dont ménages visés par l'objectif", "n_q1_hors_qpv", "n_hors_q1_qpv", "entier"),
    ("Part des ménages visés", "taux_q1_hors_qpv", "taux_hors_q1_qpv", "ratio_pct"),
    ("Objectif", "objectif_q1_hors_qpv_pct", "objectif_hors_q1_qpv_pct", "pct"),
    ("Attributions manquantes pour l'atteindre", "manque_q1_hors_qpv", "manque_hors_q1_qpv", "entier"),
    ("Objectif atteint", "conforme_q1_hors_qpv", "conforme_hors_q1_qpv", "booleen"),
]  # fmt: skip

TREND_COLUMNS: list[tuple[str, str, Kind]] = [
    ("Attributions", "n_attributions", "entier"),
    ("Part 1er quartile hors QPV", "taux_q1_hors_qpv", "ratio_pct"),
    ("Objectif hors QPV", "objectif_q1_hors_qpv_pct", "pct"),
    ("Atteint hors QPV", "conforme_q1_hors_qpv", "booleen"),
    ("Part hors 1er quartile en QPV", "taux_hors_q1_qpv", "ratio_pct"),
    ("Objectif en QPV", "objectif_hors_q1_qpv_pct", "pct"),
    ("Atteint en QPV", "conforme_hors_q1_qpv", "booleen"),
    ("Part des ménages prioritaires", "taux_menages_prioritaires", "ratio_pct"),
]

DEFINITIONS = [
    (
        "Attribution",
        "Attribution d'un logement social dont le bail a été signé dans l'année, située par la "
        "commune et le QPV du logement.",
    ),
    (
        "1er quartile",
        "Ménages dont le revenu annuel par unité de consommation est sous le seuil du premier "
        "quartile des demandeurs de l'EPCI fixé pour l'année (ou relogés dans le cadre du "
        "renouvellement urbain, ANRU). Unités de consommation : 1 pour le premier adulte, 0,5 "
        "par autre personne de 14 ans ou plus, 0,3 par enfant de moins de 14 ans.",
    ),
    (
        "Objectifs (article L441-1 du CCH)",
        "Au moins 25 % des attributions hors QPV au 1er quartile ; au moins 50 % des "
        "attributions en QPV aux autres ménages ; sauf objectif local fixé par la conférence.",
    ),
    (
        "Attributions manquantes",
        "Nombre d'attributions supplémentaires aux ménages visés qu'il aurait fallu, à nombre "
        "d'attributions égal, pour atteindre l'objectif (arrondi au supérieur).",
    ),
    ("Ménages prioritaires", "Ménages reconnus DALO ou prioritaires au titre du CCH."),
]


def _rows(folder: OpenFolder, code_epci: str) -> dict[int, dict[str, Any]]:
    frame = folder.table(TABLE).filter(pl.col("code_epci") == code_epci)
    return {row["annee"]: row for row in frame.iter_rows(named=True)}


def _sentence(cells: list[Cell], target: str) -> str:
    """The year's outcome for one target, in words (nothing a masked cell would give away)."""
    taux, objectif, manque, conforme = cells
    if conforme.masked:
        return f"Objectif {target} : résultat masqué (secret statistique)."
    if conforme.value is None:
        return f"Objectif {target} : sans objet (aucune attribution)."
    measured = f"part des ménages visés {shown(taux)} pour un objectif de {shown(objectif)}"
    if conforme.value:
        return f"Objectif {target} atteint : {measured}."
    missing = f"{manque.value} attribution{'s' if manque.value > 1 else ''}"
    return f"Objectif {target} non atteint : {measured} ; il manquait {missing} aux ménages visés."


def build(folder: OpenFolder, place: Territory, annee: int) -> Report:
    rows = _rows(folder, place.code_epci)
    years = sorted(y for y in rows if y <= annee)
    coverage = coverage_section(folder, annee, ["attributions"], [])
    sections = [coverage]

    year = rows.get(annee)
    targets = Section(
        id="objectifs", title=f"Objectifs de mixité sociale en {annee}", sheet="Objectifs"
    )
    if year is None:
        targets.paragraphs.append(
            f"Aucune attribution avec bail signé en {annee} n'a été transmise pour cet EPCI : "
            "les objectifs ne peuvent pas être mesurés."
        )
    else:
        total = folder.cell(TABLE, year, "n_attributions", "entier")
        targets.tables.append(
            Table(
                headers=["Attributions de l'année", "Nombre"],
                rows=[[text("Toutes attributions"), total]],
            )
        )
        table_rows = []
        for label, outside, inside, kind in TARGET_ROWS:
            table_rows.append(
                [
                    text(label),
                    folder.cell(TABLE, year, outside, kind),
                    folder.cell(TABLE, year, inside, kind),
                ]
            )
        targets.tables.append(
            Table(
                headers=["Indicateur", HORS_QPV, QPV],
                rows=table_rows,
                caption="Objectifs de l'article L441-1 du CCH",
            )
        )
        outside_cells = [r[1] for r in table_rows[2:]]
        inside_cells = [r[2] for r in table_rows[2:]]
        targets.paragraphs += [
            _sentence(outside_cells, "hors QPV"),
            _sentence(inside_cells, "en QPV"),
        ]
        priority = Section(
            id="prioritaires", title=f"Ménages prioritaires en {annee}", sheet="Prioritaires"
        )
        priority.tables.append(
            Table(
                headers=["Indicateur", "Valeur"],
                rows=[
                    [text("Attributions"), folder.cell(TABLE, year, "n_attributions", "entier")],
                    [
                        text("dont ménages prioritaires (DALO ou prioritaires)"),
                        folder.cell(TABLE, year, "n_menages_prioritaires", "entier"),
                    ],
                    [
                        text("Part des ménages prioritaires"),
                        folder.cell(TABLE, year, "taux_menages_prioritaires", "ratio_pct"),
                    ],
                ],
            )
        )
    sections.append(targets)
    if year is not None:
        sections.append(priority)

    trend = Section(id="evolution", title="Évolution sur les années publiées", sheet="Evolution")
    trend_rows = [
        [code(y), *(folder.cell(TABLE, rows[y], c, kind) for _, c, kind in TREND_COLUMNS)]
        for y in years
    ]
    trend.tables.append(
        Table(headers=["Année", *(label for label, _, _ in TREND_COLUMNS)], rows=trend_rows)
    )
    points = []
    for y in years:
        for serie, taux, objectif in (
            ("Part du 1er quartile hors QPV", "taux_q1_hors_qpv", "objectif_q1_hors_qpv_pct"),
            ("Part hors 1er quartile en QPV", "taux_hors_q1_qpv", "objectif_hors_q1_qpv_pct"),
        ):
            value = rows[y][taux]
            points.append(
                {
                    "annee": str(y),
                    "serie": serie,
                    "taux": None if value is None else 100 * value,
                    "objectif": rows[y][objectif],
                }
            )
    trend.charts.append(
        Chart(
            id="mixite-evolution",
            title="Parts observées (traits pleins) et objectifs (tirets), en %",
            spec=charts.rate_against_target(points, x_title="Année", y_title="%"),
            note="une part masquée ou sans objet interrompt la ligne",
        )
    )
    sections.append(trend)
    sections.append(
        reading_section(
            folder,
            DEFINITIONS,
            f"Les effectifs d'attributions de 1 à {SEUIL_ATTRIBUTIONS - 1} sont masqués (les "
            "revenus viennent de données fiscales).",
        )
    )
    return report(
        folder,
        place,
        annee,
        "attributions",
        "Bilan annuel des attributions",
        "Conférence intercommunale du logement – objectifs de mixité sociale",
        sections,
    )
