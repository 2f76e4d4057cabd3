-- SSMSI recorded crime per commune, year and indicator, from the latest edition containing it.
-- Masked rows (not diffused) keep NULL counts and rates: never 0, never complement_info_*.
select
    s.code_commune,
    n.nom_territoire as nom_commune,
    cast(s.annee as integer) as annee,
    s.indicateur,
    s.unite_de_compte,
    cast(case when s.diffuse then s.nombre end as bigint) as nombre,
    cast(case when s.diffuse then s.taux_pour_mille end as double) as taux_pour_mille,
    cast(s.population as bigint) as population,
    cast(s.logements as double) as logements,
    cast(s.diffuse as boolean) as diffuse,
    cast(s.edition as integer) as edition,
    -- The SSMSI publishes whole calendar years only.
    true as annee_complete
from {{ ref('int_ssmsi__derniere_edition') }} as s
left join {{ ref('int_reference__noms_territoires') }} as n
    on n.niveau = 'commune' and n.code_territoire = s.code_commune
