select
    p.livraison_id,
    p.ligne,
    cast(l.periode as integer) as annee_fichier,
    trim(p.code_bailleur) as code_bailleur,
    trim(p.id_logement) as id_logement,
    trim(p.id_residence) as id_residence,
    p.nom_residence,
    trim(p.depcom) as code_commune,
    nullif(trim(p.qpv), '') as code_qpv,
    cast(p.construct as integer) as annee_construction,
    cast(p.nbpiece as integer) as nb_pieces,
    cast(p.surfhab as double) as surface_habitable_m2,
    p.finan as financement,
    p.statut as statut_occupation
from {{ source('raw', 'landlord_patrimoine') }} as p
left join {{ source('raw', 'livraisons') }} as l using (livraison_id)
