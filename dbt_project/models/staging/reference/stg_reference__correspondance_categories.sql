select
    livraison_id,
    ligne,
    trim(code_bailleur) as code_bailleur,
    trim(code_source) as code_source,
    libelle_source,
    lower(trim(categorie)) as categorie
from {{ source('raw', 'reference_correspondance_categories') }}
