select
    livraison_id,
    ligne,
    trim(code_bailleur) as code_bailleur,
    trim(id_procedure) as id_procedure,
    nullif(trim(id_logement), '') as id_logement,
    pseudo_locataire,
    motif,
    etape,
    date_etape,
    origine
from {{ source('raw', 'landlord_procedures') }}
