-- Which years of each monthly series are complete. A year is complete for a series when every
-- source that delivered at least one of its months delivered all 12: each landlord covering
-- the year for incidents and procedures, the single source of police events and allocations.
-- A year with no delivery at all is not listed (and is never complete).
select
    type_fichier,
    annee,
    cast(count(*) as integer) as n_sources,
    cast(count(*) filter (where annee_complete) as integer) as n_sources_completes,
    cast(min(n_mois_couverts) as integer) as n_mois_couverts_min,
    bool_and(annee_complete) as annee_complete
from {{ ref('int_periodes__mois_couverts') }}
group by type_fichier, annee
