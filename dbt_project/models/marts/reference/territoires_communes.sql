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
    nc.nom_territoire as nom_commune,
    e.code_epci,
    ne.nom_territoire as nom_epci,
    e.code_departement,
    nd.nom_territoire as nom_departement
from annees as a
inner join {{ ref('int_reference__epci_communes') }} as e
    on a.annee between e.annee_debut and e.annee_fin
left join {{ ref('int_reference__noms_territoires') }} as nc
    on nc.niveau = 'commune' and nc.code_territoire = e.code_commune
left join {{ ref('int_reference__noms_territoires') }} as ne
    on ne.niveau = 'epci' and ne.code_territoire = e.code_epci
left join {{ ref('int_reference__noms_territoires') }} as nd
    on nd.niveau = 'departement' and nd.code_territoire = e.code_departement
