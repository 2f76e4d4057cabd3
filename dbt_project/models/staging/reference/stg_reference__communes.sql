select
    c.livraison_id,
    c.ligne,
    cast(l.periode as integer) as annee_fichier,
    trim(c.code_commune) as code_commune,
    c.nom_commune,
    c.population,
    c.logements
from {{ source('raw', 'reference_communes') }} as c
left join {{ source('raw', 'livraisons') }} as l using (livraison_id)
