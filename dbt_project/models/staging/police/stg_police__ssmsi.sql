select
    livraison_id,
    ligne,
    trim(code_commune) as code_commune,
    cast(annee as integer) as annee,
    indicateur,
    unite_de_compte,
    cast(nombre as bigint) as nombre,
    cast(taux_pour_mille as double) as taux_pour_mille,
    diffuse,
    cast(population as bigint) as population,
    population_millesime,
    cast(logements as double) as logements,
    logements_millesime,
    complement_info_nombre,
    complement_info_taux,
    cast(edition as integer) as edition,
    schema_ssmsi
from {{ source('raw', 'police_ssmsi') }}
