select
    q.livraison_id,
    q.ligne,
    cast(l.periode as integer) as annee_fichier,
    trim(q.code_qpv) as code_qpv,
    q.nom_qpv,
    trim(q.code_commune) as code_commune,
    q.population
from {{ source('raw', 'reference_qpv') }} as q
left join {{ source('raw', 'livraisons') }} as l using (livraison_id)
