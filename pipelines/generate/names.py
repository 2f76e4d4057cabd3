"""Invented names and labels (places, organisations, incident labels, free-text comments).

Why: deliveries must look like the real ones (accented names so that the encoding matters;
separators, double quotes, typographic apostrophes and guillemets in free text and names so
that quoting and Windows-1252 matter) without containing any real person's data. Every
character used here exists in Windows-1252 (’ « » œ … ° –), as in real French exports.
"""

from __future__ import annotations

import numpy as np

from pipelines.ingest.specs import CATEGORIES

QPV_NAMES = [
    "Les Tilleuls",
    "La Bourgade",
    "Le Mail",
    "Cité des Œillets",
    "Les Érables",
    "Bel-Air",
    "Les Hauts de Ville",
    "La Source",
    "Les Amandiers",
    "Le Plan",
    "La Castellane, La Bricarde",
    "Les Aubépines",
    "Le Vallon Fleuri",
    "Les Cèdres",
    "La Pinède",
    "Les Lauriers",
    "Saint-Éloi",
    "Les Pléiades",
    "La Roseraie",
    "Le Grand Ensemble",
    "Les Chênes",
    "Cœur de Ville",
    "Les Marronniers",
    "La Croix-Rouge",
    "Le Moulin",
    "Les Mimosas",
    "Les Genêts",
    "La Soleillade",
    "Les Hirondelles",
    "Le Parc Sud",
    "Les Oliviers",
    "La Butte",
    "Le Canal",
    "Les Sablons",
    "Les Peupliers",
    "La Clairière",
    "Le Béal",
    "Les Bruyères",
    "La Gare",
    "Les Platanes",
    "Font-Vert",
    "Les Acacias",
    "La Bégude",
]

_RESIDENCE_PREFIXES = [
    "Résidence",
    "Résidence",
    "Cité",
    "Les Jardins de",
    "Le Clos",
    "Les Terrasses de",
    "Le Hameau de",
    "Les Hauts de",
    "Domaine de",
    "Villa",
    "Le Parc de",
    "Îlot",
]
_RESIDENCE_CORES = [
    "Les Érables",
    "Bellevue",
    "Les Œillets",
    "Saint-Éloi",
    "Les Cèdres",
    "Le Lavoir",
    "La Fontaine",
    "Les Genêts",
    "Mistral",
    "Les Pins",
    "Beauséjour",
    "La Forêt",
    "Les Iris",
    "Pasteur",
    "Jean-Moulin",
    "Les Platanes",
    "Val Fleuri",
    "La Chênaie",
    "Les Cigales",
    "L'Estérel",
    "Les Pêcheurs",
    "Le Château",
    "Les Sœurs Blanches",
    "Montéclair",
    "Les Dahlias",
    "Les Écureuils",
    "La Clémentine",
    "Les Bleuets",
    "Le Bocage",
    "Les Églantiers",
    "Sainte-Thérèse",
    "Les Mouettes",
    "La Garrigue",
]


def residence_names(rng: np.random.Generator, n: int) -> list[str]:
    """Residence names with accents and ligatures (œ), some with a building letter."""
    prefix_picks = rng.integers(0, len(_RESIDENCE_PREFIXES), size=n)
    core_picks = rng.integers(0, len(_RESIDENCE_CORES), size=n)
    # 0-2: building letter, 3: "II", 4: ", bât. X", 5: in double quotes, 6-11: plain name
    suffix_picks = rng.integers(0, 12, size=n)
    names = []
    for prefix_pick, core_pick, suffix in zip(prefix_picks, core_picks, suffix_picks, strict=True):
        core = _RESIDENCE_CORES[core_pick]
        prefix = _RESIDENCE_PREFIXES[prefix_pick]
        # French elision and contraction of "de" before the core name
        if prefix.endswith(" de") and core[:1] in "AEIOUÉÈÊÎŒaeiou":
            name = f"{prefix[:-3]} d'{core}"
        elif prefix.endswith(" de") and core.startswith("Les "):
            name = f"{prefix[:-3]} des {core[4:]}"
        elif prefix.endswith(" de") and core.startswith("Le "):
            name = f"{prefix[:-3]} du {core[3:]}"
        else:
            name = f"{prefix} {core}"
        if suffix < 3:
            name += f" {'ABC'[suffix]}"
        elif suffix == 3:
            name += " II"
        elif suffix == 4:  # building designation after a comma: the separator must be quoted
            name += f", bât. {'ABC'[core_pick % 3]}"
        elif suffix == 5 and prefix == "Résidence":  # name typed in double quotes
            name = f'Résidence "{core}"'
        names.append(name)
    return names


# Landlord-side labels per common category (libelle_source of the mapping files).
SOURCE_LABELS = {
    "degradation": [
        "Dégradation porte de hall",
        "Tags, graffitis ; inscriptions",
        "Vandalisme ascenseur",
        "Boîtes aux lettres fracturées",
        "Éclairage détérioré",
        "Vitrage brisé",
    ],
    "occupation_hall": [
        "Occupation abusive de hall",
        "Regroupement cage d'escalier",
        'Squat "parties communes"',
        "Occupation toiture / coursive",
    ],
    "trouble_voisinage": [
        "Nuisances sonores",
        "Conflit de voisinage",
        "Animaux dangereux",
        "Troubles de jouissance ; nuisances répétées",
    ],
    "agression_personnel": [
        "Agression verbale gardien",
        "Agression physique personnel",
        "Menaces envers le personnel",
    ],
    "trafic_stupefiants": ["Trafic constaté", "Guetteurs / point de deal", "Stockage produits"],
    "incendie": ["Feu de poubelle", "Incendie de véhicule", "Départ de feu parties communes"],
    "depot_sauvage": [
        "Encombrants (meubles, électroménager…)",
        "Dépôt d’ordures",
        "Jet de détritus par les fenêtres",
    ],
    "autre": ["Autre incivilité", "Rodéo motorisé", "Intrusion / effraction d’un local"],
}

COMMENTS = {
    "degradation": [
        "Porte du hall forcée, serrure à changer",
        "Tags bât. C ; 3e étage, « nettoyage demandé »",
        'Ascenseur vandalisé : "hors service" affiché',
        "Vitre de la porte d’entrée cassée",
        "Boîtes aux lettres arrachées",
    ],
    "occupation_hall": [
        "Rassemblement dans le hall, gardien empêché d'entrer",
        "Jeunes assis dans l’escalier",
        "Hall occupé en soirée ; bruit, odeurs…",
        "Chaises et canapé installés dans le hall",
    ],
    "trouble_voisinage": [
        'Musique forte après 23h ; voisin : "ça va durer"',
        "Conflit entre voisins du 2e",
        "Chien non tenu, plainte",
        "Bruits répétés, « fête » le week-end",
    ],
    "agression_personnel": [
        "Gardienne insultée lors de la sortie des bacs",
        "Menaces envers l’agent d’entretien ; main courante déposée",
        "Chargé de secteur bousculé",
    ],
    "trafic_stupefiants": [
        "Guetteurs à l’entrée ; va-et-vient « toute la nuit »",
        "Point de vente signalé par locataires",
        "Cache découverte dans la gaine technique",
    ],
    "incendie": [
        "Feu de poubelle local OM",
        "Véhicule incendié sur le parking",
        "Départ de feu cave n°12 ; pompiers sur place",
    ],
    "depot_sauvage": [
        "Encombrants devant le local vélos",
        "Sacs d'ordures sur le palier",
        'Matelas aux abords, "encore"…',
    ],
    "autre": ["Rodéo moto sur le parking", "Intrusion dans la chaufferie", "Divers ; voir rapport"],
}

# Labels and comments are written per category of the common nomenclature (defined with the
# ingestion rules): a category added there must get its own here.
for _table in (SOURCE_LABELS, COMMENTS):
    if set(_table) != set(CATEGORIES):
        raise AssertionError(f"names per category do not match the nomenclature: {sorted(_table)}")

# Second lines of the few comments typed on two lines.
COMMENT_SECOND_LINES = [
    "Relance du gardien le lendemain – sans suite",
    'Locataire : « c’est tous les soirs » ; voir "main courante"',
    "Devis demandé ; intervention prévue lundi…",
]

# Fragments for invented organisation names.
ESH_SYLLABLES_A = [
    "Logi",
    "Habi",
    "Domi",
    "Neo",
    "Alli",
    "Terra",
    "Provi",
    "Sud",
    "Atlan",
    "Valo",
    "Arca",
    "Civi",
    "Fonci",
    "Résid",
    "Azur",
    "Méri",
    "Litto",
    "Esté",
    "Vivé",
    "Coro",
    "Iso",
    "Ora",
]
ESH_SYLLABLES_B = [
    "rem",
    "tat",
    "méo",
    "log",
    "cia",
    "sol",
    "via",
    "ane",
    "lia",
    "dis",
    "sia",
    "nor",
    "gem",
    "tis",
    "cap",
    "rio",
    "lys",
    "van",
    "mur",
    "bel",
]
ESH_SUFFIX = [
    "Habitat",
    "Logement",
    "Résidences",
    "Immobilière",
    "Habitat social",
    "Foyer",
    "Cités",
    "Toit",
    "Demeures",
]
