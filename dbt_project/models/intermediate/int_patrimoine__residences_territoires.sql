-- Bridge: each (year, landlord, residence) with every territory it belongs to, one row per level.
with r as (select * from {{ ref('int_patrimoine__residences') }})

select annee, code_bailleur, id_residence, 'residence' as niveau, code_residence as code_territoire, n_logements from r
union all
select annee, code_bailleur, id_residence, 'qpv', code_qpv, n_logements from r where code_qpv is not null
union all
select annee, code_bailleur, id_residence, 'commune', code_commune, n_logements from r where code_commune is not null
union all
select annee, code_bailleur, id_residence, 'epci', code_epci, n_logements from r where code_epci is not null
union all
select annee, code_bailleur, id_residence, 'departement', code_departement, n_logements from r where code_departement is not null
union all
select annee, code_bailleur, id_residence, 'bailleur', code_bailleur, n_logements from r
union all
select annee, code_bailleur, id_residence, 'ensemble', 'FR', n_logements from r
