-- Bridge: each (year of use, landlord, residence of the applicable stock) with every
-- territory it belongs to, one row per level.
with r as (select * from {{ ref('int_patrimoine__residences') }})

select
    annee,
    annee_patrimoine,
    code_bailleur,
    id_residence,
    'residence' as niveau,
    code_residence as code_territoire,
    n_logements
from r
union all
select
    annee,
    annee_patrimoine,
    code_bailleur,
    id_residence,
    'qpv' as niveau,
    code_qpv as code_territoire,
    n_logements
from r
where code_qpv is not null
union all
select
    annee,
    annee_patrimoine,
    code_bailleur,
    id_residence,
    'commune' as niveau,
    code_commune as code_territoire,
    n_logements
from r
where code_commune is not null
union all
select
    annee,
    annee_patrimoine,
    code_bailleur,
    id_residence,
    'epci' as niveau,
    code_epci as code_territoire,
    n_logements
from r
where code_epci is not null
union all
select
    annee,
    annee_patrimoine,
    code_bailleur,
    id_residence,
    'departement' as niveau,
    code_departement as code_territoire,
    n_logements
from r
where code_departement is not null
union all
select
    annee,
    annee_patrimoine,
    code_bailleur,
    id_residence,
    'bailleur' as niveau,
    code_bailleur as code_territoire,
    n_logements
from r
union all
select
    annee,
    annee_patrimoine,
    code_bailleur,
    id_residence,
    'ensemble' as niveau,
    'FR' as code_territoire,
    n_logements
from r
