-- SSMSI recorded crime per commune, year and indicator, from the latest edition containing it.
-- Masked rows (not diffused) keep NULL counts and rates: never 0, never complement_info_*.
select
    code_commune,
    cast(annee as integer) as annee,
    indicateur,
    unite_de_compte,
    cast(case when diffuse then nombre end as bigint) as nombre,
    cast(case when diffuse then taux_pour_mille end as double) as taux_pour_mille,
    cast(population as bigint) as population,
    cast(logements as double) as logements,
    cast(diffuse as boolean) as diffuse,
    cast(edition as integer) as edition,
    -- The SSMSI publishes whole calendar years only.
    true as annee_complete
from {{ ref('int_ssmsi__derniere_edition') }}
