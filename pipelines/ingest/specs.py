"""The delivery kinds of docs/deliveries.md, as data.

One `DeliveryKind` per file kind says how to recognise the file by its name, which columns
it must carry, how each column is typed and checked, and which raw table receives it. The
reader, the validator and the loader are generic; adding a column or a rule is a change
here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["text", "int", "decimal", "date", "enum", "oui_non"]

LIEUX = ("hall", "cage_escalier", "parking", "cave", "logement", "abords", "local_commun")
STATUTS_LOGEMENT = ("occupe", "vacant", "vacant_insecurite", "vacant_technique")
MOTIFS_PROCEDURE = ("trouble_jouissance", "trafic_stupefiants", "impayes", "autre")
ETAPES_PROCEDURE = (
    "mise_en_demeure",
    "assignation",
    "jugement_resiliation",
    "expulsion_realisee",
    "abandon",
)
ORIGINES_PROCEDURE = ("bailleur", "injonction_prefet")
TYPES_EVENEMENT = (
    "interdiction_paraitre",
    "fermeture_administrative",
    "point_deal_demantele",
    "intervention_police",
    "injonction_resiliation_bail",
)
MENAGES_PRIORITAIRES = ("DALO", "prioritaire", "non")
RESERVATAIRES = ("etat", "action_logement", "collectivite", "bailleur")
CATEGORIES = (
    "degradation",
    "occupation_hall",
    "trouble_voisinage",
    "agression_personnel",
    "trafic_stupefiants",
    "incendie",
    "depot_sauvage",
    "autre",
)

# Code formats. A commune is 5 characters (Corsica 2A/2B); a QPV code is the 2024
# (QN...) or 2015 (QP...) form; an EPCI is identified by its 9-digit SIREN.
COMMUNE_PATTERN = r"^(?:\d{5}|2[AB]\d{3})$"
QPV_PATTERN = r"^Q[NP][0-9A-Z]{6}$"
SIREN_PATTERN = r"^\d{9}$"
# INSEE's EPCI composition file gives the communes outside any EPCI (island communes such as
# L'Île-d'Yeu 85113) this EPCI code, labelled "Sans objet": loaded as no EPCI (NULL).
NO_EPCI_CODE = "ZZZZZZZZZ"
# A commune code is always 5 characters. An all-digit code of 4 is one a spreadsheet turned
# into a number (`06088` -> `6088`, départements 01 to 09): every commune-pattern column gets
# its leading zero back (validate.py), and the delivery says how many (`Validated.notes`).
COMMUNE_WIDTH = 5


@dataclass(frozen=True)
class Column:
    """One contract column: its name in the file, its type and its rules.

    `target` is the raw-table column name (lower case). A `pseudonymise` column is replaced
    by its keyed hash under `target`; a `drop` column (free text) never leaves the reader.
    """

    name: str
    type: ColumnType = "text"
    required: bool = True
    allowed: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    pattern_label: str = ""
    pseudonymise: bool = False
    drop: bool = False
    target: str = ""
    # Values that mean "none" for this column (text columns): loaded as NULL, not checked
    # against the pattern, and not a missing required value (they are given on purpose).
    none_values: tuple[str, ...] = ()

    @property
    def column(self) -> str:
        return self.target or self.name.lower()

    @property
    def zero_pad_width(self) -> int:
        """Width to which an all-digit value one character short gets a leading zero (0: none)."""
        return COMMUNE_WIDTH if self.pattern == COMMUNE_PATTERN else 0


@dataclass(frozen=True)
class DeliveryKind:
    """A kind of delivery file: where it lands and how it is keyed.

    The key (kind, landlord, period) decides which delivery supersedes which: the newer
    delivery for the same key replaces the older one in the indicators.
    """

    name: str
    family: str
    table: str
    filename: re.Pattern[str]
    columns: tuple[Column, ...]
    period: Literal["month", "year", "none"] = "none"
    landlord_in_name: bool = False
    # Date column that must fall inside the file's period (month files).
    period_date: str | None = None
    # Within one delivery, a repeated value keeps its last line and quarantines the others.
    unique_within_delivery: tuple[str, ...] = ()
    # (later, earlier): the later date may be empty but never before the earlier one.
    ordered_dates: tuple[tuple[str, str], ...] = ()
    # Reference files with a year in their name carry it as `annee_fichier`.
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def kept_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.drop)


def _name(stem: str, period: str, landlord: bool = False) -> re.Pattern[str]:
    """File-name pattern: optional landlord prefix, the stem, the period, any suffix."""
    prefix = r"(?P<landlord>[A-Za-z0-9][A-Za-z0-9_-]*?)_" if landlord else ""
    periods = {"month": r"_(?P<period>\d{4}-\d{2})", "year": r"_(?P<period>\d{4})", "none": ""}
    return re.compile(
        rf"^{prefix}{stem}{periods[period]}(?:_[^.]*)?\.(?:csv|csv\.gz|xlsx)$", re.IGNORECASE
    )


def _commune(name: str, required: bool = True) -> Column:
    return Column(
        name, required=required, pattern=COMMUNE_PATTERN, pattern_label="code commune INSEE"
    )


def _qpv(name: str = "QPV", required: bool = False) -> Column:
    return Column(name, required=required, pattern=QPV_PATTERN, pattern_label="code QPV")


REFERENCE_KINDS: tuple[DeliveryKind, ...] = (
    DeliveryKind(
        name="epci",
        family="reference",
        table="reference_epci",
        filename=_name("epci", "year"),
        period="year",
        columns=(
            _commune("CODGEO"),
            Column("LIBGEO"),
            Column(
                "EPCI",
                pattern=SIREN_PATTERN,
                pattern_label="SIREN d'EPCI (9 chiffres)",
                none_values=(NO_EPCI_CODE,),
            ),
            Column("LIBEPCI"),
            Column("DEP"),
            Column("REG"),
        ),
        unique_within_delivery=("CODGEO",),
    ),
    DeliveryKind(
        name="qpv",
        family="reference",
        table="reference_qpv",
        filename=_name("qpv", "year"),
        period="year",
        columns=(
            _qpv("code_qpv", required=True),
            Column("nom_qpv"),
            _commune("code_commune"),
            Column("population", "int", minimum=0),
        ),
        unique_within_delivery=("code_qpv", "code_commune"),
    ),
    DeliveryKind(
        name="seuils_q1",
        family="reference",
        table="reference_seuils_q1",
        filename=_name("seuils_q1", "year"),
        period="year",
        columns=(
            Column("code_epci", pattern=SIREN_PATTERN, pattern_label="SIREN d'EPCI (9 chiffres)"),
            Column("annee", "int", minimum=2000, maximum=2100),
            Column("seuil_q1_euros_uc", "decimal", minimum=0),
        ),
        unique_within_delivery=("code_epci", "annee"),
    ),
    DeliveryKind(
        name="objectifs_epci",
        family="reference",
        table="reference_objectifs_epci",
        filename=_name("objectifs_epci", "none"),
        columns=(
            Column("code_epci", pattern=SIREN_PATTERN, pattern_label="SIREN d'EPCI (9 chiffres)"),
            Column("annee", "int", minimum=2000, maximum=2100),
            Column("objectif_q1_hors_qpv_pct", "decimal", minimum=0, maximum=100),
        ),
        unique_within_delivery=("code_epci", "annee"),
    ),
    DeliveryKind(
        name="bailleurs",
        family="reference",
        table="reference_bailleurs",
        filename=_name("bailleurs", "none"),
        columns=(
            Column("code_bailleur"),
            Column("nom_bailleur"),
            Column(
                "siren", required=False, pattern=SIREN_PATTERN, pattern_label="SIREN (9 chiffres)"
            ),
        ),
        unique_within_delivery=("code_bailleur",),
    ),
    DeliveryKind(
        name="correspondance_categories",
        family="reference",
        table="reference_correspondance_categories",
        filename=re.compile(
            r"^correspondance_categories_(?P<landlord>[A-Za-z0-9][A-Za-z0-9_-]*?)"
            r"(?:_[^.]*)?\.(?:csv|csv\.gz|xlsx)$",
            re.IGNORECASE,
        ),
        landlord_in_name=True,
        columns=(
            Column("code_source"),
            Column("libelle_source", required=False),
            Column("categorie", "enum", allowed=CATEGORIES),
        ),
        unique_within_delivery=("code_source",),
    ),
    DeliveryKind(
        name="communes",
        family="reference",
        table="reference_communes",
        filename=_name("communes", "year"),
        period="year",
        columns=(
            _commune("code_commune"),
            Column("nom_commune"),
            Column("population", "int", minimum=0),
            Column("logements", "int", minimum=0),
        ),
        unique_within_delivery=("code_commune",),
    ),
)

LANDLORD_KINDS: tuple[DeliveryKind, ...] = (
    DeliveryKind(
        name="patrimoine",
        family="landlord",
        table="landlord_patrimoine",
        filename=_name("patrimoine", "year", landlord=True),
        period="year",
        landlord_in_name=True,
        columns=(
            Column("id_logement"),
            Column("id_residence"),
            Column("nom_residence", required=False),
            _commune("DEPCOM"),
            _qpv("QPV"),
            Column("CONSTRUCT", "int", required=False, minimum=1800, maximum=2100),
            Column("NBPIECE", "int", required=False, minimum=1, maximum=20),
            Column("SURFHAB", "decimal", required=False, minimum=5, maximum=500),
            Column("FINAN", required=False),
            Column("statut", "enum", allowed=STATUTS_LOGEMENT),
        ),
        unique_within_delivery=("id_logement",),
    ),
    DeliveryKind(
        name="incidents",
        family="landlord",
        table="landlord_incidents",
        filename=_name("incidents", "month", landlord=True),
        period="month",
        landlord_in_name=True,
        period_date="date_signalement",
        columns=(
            Column("id_incident"),
            Column("date_signalement", "date"),
            Column("id_residence"),
            Column("id_logement", required=False),
            Column("code_categorie"),
            Column("lieu", "enum", allowed=LIEUX),
            Column("gravite", "int", minimum=1, maximum=4),
            Column("date_cloture", "date", required=False),
            Column("plainte_deposee", "oui_non"),
            Column("cout_euros", "decimal", required=False, minimum=0),
            Column("id_locataire", required=False, pseudonymise=True, target="pseudo_locataire"),
            Column("commentaire", required=False, drop=True),
        ),
        unique_within_delivery=("id_incident",),
        ordered_dates=(("date_cloture", "date_signalement"),),
    ),
    DeliveryKind(
        name="procedures",
        family="landlord",
        table="landlord_procedures",
        filename=_name("procedures", "month", landlord=True),
        period="month",
        landlord_in_name=True,
        period_date="date_etape",
        columns=(
            Column("id_procedure"),
            Column("id_logement", required=False),
            Column("id_locataire", required=False, pseudonymise=True, target="pseudo_locataire"),
            Column("motif", "enum", allowed=MOTIFS_PROCEDURE),
            Column("etape", "enum", allowed=ETAPES_PROCEDURE),
            Column("date_etape", "date"),
            Column("origine", "enum", allowed=ORIGINES_PROCEDURE),
        ),
        unique_within_delivery=("id_procedure", "etape"),
    ),
)

POLICE_KINDS: tuple[DeliveryKind, ...] = (
    DeliveryKind(
        name="evenements",
        family="police",
        table="police_evenements",
        filename=_name("evenements", "month"),
        period="month",
        period_date="date",
        columns=(
            Column("id_evenement"),
            Column("date", "date"),
            _commune("DEPCOM"),
            _qpv("QPV"),
            Column("code_bailleur", required=False),
            Column("id_residence", required=False),
            Column("type", "enum", allowed=TYPES_EVENEMENT),
            Column("duree_jours", "int", required=False, minimum=0, maximum=3650),
        ),
        unique_within_delivery=("id_evenement",),
    ),
)

ALLOCATION_KINDS: tuple[DeliveryKind, ...] = (
    DeliveryKind(
        name="attributions",
        family="allocations",
        table="allocations_attributions",
        filename=_name("attributions", "month"),
        period="month",
        period_date="date_attribution",
        columns=(
            Column("num_unique_demande", pseudonymise=True, target="pseudo_demande"),
            Column("date_attribution", "date"),
            Column("date_signature_bail", "date", required=False),
            Column("code_bailleur"),
            Column("id_logement", required=False),
            _commune("DEPCOM"),
            _qpv("QPV"),
            Column("revenu_annuel_euros", "decimal", minimum=0),
            Column("nb_personnes_14_ans_et_plus", "int", minimum=1, maximum=30),
            Column("nb_enfants_moins_14_ans", "int", minimum=0, maximum=30),
            Column("menage_prioritaire", "enum", allowed=MENAGES_PRIORITAIRES),
            Column("reservataire", "enum", allowed=RESERVATAIRES),
            Column("relogement_anru", "oui_non"),
        ),
        ordered_dates=(("date_signature_bail", "date_attribution"),),
    ),
)

# SSMSI files are recognised by their header, not their name (any name: docs/deliveries.md, SSMSI).
SSMSI_KIND = DeliveryKind(
    name="ssmsi",
    family="police",
    table="police_ssmsi",
    filename=re.compile(r"^.+\.(?:csv|csv\.gz)$", re.IGNORECASE),
    period="year",
    columns=(),
)

ALL_KINDS: tuple[DeliveryKind, ...] = (
    REFERENCE_KINDS + LANDLORD_KINDS + POLICE_KINDS + ALLOCATION_KINDS
)

# Order of processing inside a family: a landlord's stock before its incidents, because an
# incident is checked against the stock of its year.
KIND_ORDER = {kind.name: i for i, kind in enumerate((*ALL_KINDS, SSMSI_KIND))}


# Years a file name (or an SSMSI edition) may carry: anything else is a typing error.
YEARS = (1990, 2100)


@dataclass(frozen=True)
class Recognised:
    kind: DeliveryKind
    landlord: str | None
    period: str | None


class UnreadableName(ValueError):
    """The name has the form of a delivery kind, but one of its parts cannot be right (a
    month 13, a period in the wrong form): the message says which, for the partner."""


def name_hint(kind: DeliveryKind) -> str:
    """The expected file name of a kind, as a partner reads it."""
    if kind is SSMSI_KIND:
        return "la base communale SSMSI telle que publiée (.csv, .csv.gz)"
    if kind.name == "correspondance_categories":
        return "correspondance_categories_<code_bailleur>.csv"
    landlord = "<code_bailleur>_" if kind.landlord_in_name else ""
    period = {"month": "_<AAAA-MM>", "year": "_<AAAA>", "none": ""}[kind.period]
    return f"{landlord}{kind.name}{period}[_suffixe].csv (ou .csv.gz, .xlsx)"


def check_year(year: int, where: str) -> None:
    if not YEARS[0] <= year <= YEARS[1]:
        raise UnreadableName(
            f"année impossible {where}: {year} (attendue entre {YEARS[0]} et {YEARS[1]})"
        )


def _check_period(kind: DeliveryKind, period: str | None) -> None:
    if period is None:
        return
    check_year(int(period[:4]), "dans le nom du fichier")
    if kind.period == "month" and not 1 <= int(period[5:7]) <= 12:
        raise UnreadableName(
            f"mois impossible dans le nom du fichier: {period} (mois de 01 à 12 ; attendu "
            f"{name_hint(kind)})"
        )


def _looks_like(kind: DeliveryKind, filename: str) -> bool:
    """The name starts like the kind's (landlord code, stem) but the rest is not its form."""
    landlord = r"[A-Za-z0-9][A-Za-z0-9_-]*?_" if kind.landlord_in_name else ""
    if kind.name == "correspondance_categories":
        landlord = ""
    return re.match(rf"^{landlord}{kind.name}(?:[_. -]|$)", filename, re.IGNORECASE) is not None


def recognise(family: str, filename: str) -> Recognised | None:
    """Which delivery kind a file is, from its family folder and its name; every part of the
    name is checked. None when the name is no kind's; `UnreadableName` when it is a kind's
    but a part of it (the period) cannot be right."""
    for kind in ALL_KINDS:
        if kind.family != family:
            continue
        match = kind.filename.match(filename)
        if match:
            groups = match.groupdict()
            _check_period(kind, groups.get("period"))
            return Recognised(kind, groups.get("landlord"), groups.get("period"))
    for kind in ALL_KINDS:
        if kind.family == family and kind.period != "none" and _looks_like(kind, filename):
            raise UnreadableName(
                f"nom de fichier {kind.name} illisible (période ou extension): attendu "
                f"{name_hint(kind)}"
            )
    if family == "police" and SSMSI_KIND.filename.match(filename):
        return Recognised(SSMSI_KIND, None, None)
    return None
