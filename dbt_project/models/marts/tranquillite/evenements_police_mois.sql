-- Police and prefecture events per territory, month and type (plus `total`). Territories:
-- residence (when landlord and residence are given), QPV and commune as delivered, EPCI and
-- département from the EPCI file, landlord, and `FR`. Only observed combinations (no zero rows).
with e as (
    select * from {{ ref('int_evenements__dedoublonnes') }}
),

territoires as (
    select
        'residence' as niveau,
        code_residence as code_territoire,
        *
    from e
    where code_residence is not null
    union all by name
    select
        'qpv' as niveau,
        code_qpv as code_territoire,
        *
    from e
    where code_qpv is not null
    union all by name
    select
        'commune' as niveau,
        code_commune as code_territoire,
        *
    from e
    where code_commune is not null
    union all by name
    select
        'epci' as niveau,
        code_epci as code_territoire,
        *
    from e
    where code_epci is not null
    union all by name
    select
        'departement' as niveau,
        code_departement as code_territoire,
        *
    from e
    where code_departement is not null
    union all by name
    select
        'bailleur' as niveau,
        code_bailleur as code_territoire,
        *
    from e
    where code_bailleur is not null
    union all by name
    select
        'ensemble' as niveau,
        'FR' as code_territoire,
        *
    from e
),

types as (
    select
        niveau,
        code_territoire,
        mois,
        type_evenement,
        duree_jours
    from territoires
    union all
    select
        niveau,
        code_territoire,
        mois,
        'total' as type_evenement,
        duree_jours
    from territoires
)

select
    t.niveau,
    t.code_territoire,
    n.nom_territoire,
    t.mois,
    t.type_evenement,
    cast(count(*) as bigint) as n_evenements,
    cast(sum(t.duree_jours) as bigint) as duree_jours_totale
from types as t
left join {{ ref('int_reference__noms_territoires') }} as n
    on n.niveau = t.niveau and n.code_territoire = t.code_territoire
group by t.niveau, t.code_territoire, n.nom_territoire, t.mois, t.type_evenement
