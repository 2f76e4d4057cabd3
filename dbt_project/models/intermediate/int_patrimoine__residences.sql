-- One row per (year of use, landlord, residence) of the stock applicable to that year
-- (int_patrimoine__annee_applicable: the latest stock year <= the year, else the earliest),
-- located in its territories. Commune and QPV are those of its dwellings (disagreement is a
-- blocking check; the smallest value is kept here); EPCI and département come from the EPCI
-- file applicable to the year of use.
with residences as (
    select
        annee,
        code_bailleur,
        id_residence,
        min(nom_residence) as nom_residence,
        min(code_commune) as code_commune,
        min(code_qpv) as code_qpv,
        count(*) as n_logements,
        count_if(statut_occupation = 'vacant_insecurite') as n_logements_vacants_insecurite,
        min(livraison_id) as livraison_id
    from {{ ref('int_patrimoine__logements') }}
    group by annee, code_bailleur, id_residence
)

select
    a.annee,
    r.annee as annee_patrimoine,
    r.code_bailleur,
    r.id_residence,
    r.code_bailleur || ':' || r.id_residence as code_residence,
    r.nom_residence,
    r.code_commune,
    r.code_qpv,
    e.code_epci,
    e.code_departement,
    cast(r.n_logements as bigint) as n_logements,
    cast(r.n_logements_vacants_insecurite as bigint) as n_logements_vacants_insecurite,
    r.livraison_id
from {{ ref('int_patrimoine__annee_applicable') }} as a
inner join residences as r
    on r.code_bailleur = a.code_bailleur
    and r.annee = a.annee_patrimoine
left join {{ ref('int_reference__epci_communes') }} as e
    on e.code_commune = r.code_commune
    and a.annee between e.annee_debut and e.annee_fin
