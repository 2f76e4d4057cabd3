-- Commune -> EPCI / département for each year of the publication's monthly deliveries, from
-- the EPCI file applicable to the year (as every indicator by EPCI or département): the
-- hierarchy an open-data reader knows, which the protection across levels needs
-- (pipelines/opendata.py, publication_hierarchy).
with annees as (
    select distinct annee
    from {{ ref('int_periodes__mois_couverts') }}
)

select
    a.annee,
    e.code_commune,
    e.code_epci,
    e.code_departement
from annees as a
inner join {{ ref('int_reference__epci_communes') }} as e
    on a.annee between e.annee_debut and e.annee_fin
