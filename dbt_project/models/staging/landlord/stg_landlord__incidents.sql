select
    livraison_id,
    ligne,
    trim(code_bailleur) as code_bailleur,
    trim(id_incident) as id_incident,
    date_signalement,
    trim(id_residence) as id_residence,
    nullif(trim(id_logement), '') as id_logement,
    trim(code_categorie) as code_categorie,
    lieu,
    cast(gravite as integer) as gravite,
    date_cloture,
    plainte_deposee,
    cast(cout_euros as double) as cout_euros,
    pseudo_locataire
from {{ source('raw', 'landlord_incidents') }}
