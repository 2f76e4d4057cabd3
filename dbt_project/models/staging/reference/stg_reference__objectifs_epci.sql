select
    livraison_id,
    ligne,
    trim(code_epci) as code_epci,
    cast(annee as integer) as annee,
    cast(objectif_q1_hors_qpv_pct as double) as objectif_q1_hors_qpv_pct
from {{ source('raw', 'reference_objectifs_epci') }}
