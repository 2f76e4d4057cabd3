select
    livraison_id,
    ligne,
    trim(code_epci) as code_epci,
    cast(annee as integer) as annee,
    cast(seuil_q1_euros_uc as double) as seuil_q1_euros_uc
from {{ source('raw', 'reference_seuils_q1') }}
