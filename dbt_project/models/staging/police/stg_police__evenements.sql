select
    livraison_id,
    ligne,
    trim(id_evenement) as id_evenement,
    date as date_evenement,
    trim(depcom) as code_commune,
    nullif(trim(qpv), '') as code_qpv,
    nullif(trim(code_bailleur), '') as code_bailleur,
    nullif(trim(id_residence), '') as id_residence,
    type as type_evenement,
    cast(duree_jours as integer) as duree_jours
from {{ source('raw', 'police_evenements') }}
