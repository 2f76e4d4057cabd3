select
    livraison_id,
    ligne,
    trim(code_bailleur) as code_bailleur,
    nom_bailleur,
    siren
from {{ source('raw', 'reference_bailleurs') }}
