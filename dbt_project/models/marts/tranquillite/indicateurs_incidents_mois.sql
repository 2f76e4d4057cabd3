-- Incidents per 1,000 dwellings, per territory, month and category (docs/published-tables.md).
-- Denominator: dwellings of the covering landlords' stock applicable to the month's year (the
-- latest stock year <= it, else the earliest: int_patrimoine__annee_applicable), in the
-- territory; annee_patrimoine is the smallest stock year used in the row.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ supprimer_fenetre() }}",
) }}

with couverture as (
    select
        code_bailleur,
        mois
    from {{ ref('int_incidents__couverture') }}
    {% if is_incremental() %}
        -- The months the refresh recomputes (macros/fenetre.sql).
        where {{ dans_fenetre('mois') }}
    {% endif %}
),

territoires as (
    select
        annee,
        annee_patrimoine,
        code_bailleur,
        id_residence,
        niveau,
        code_territoire,
        n_logements
    from {{ ref('int_patrimoine__residences_territoires') }}
),

denominateurs as (
    select
        t.niveau,
        t.code_territoire,
        c.mois,
        sum(t.n_logements) as n_logements,
        min(t.annee_patrimoine) as annee_patrimoine
    from couverture as c
    inner join territoires as t
        on t.code_bailleur = c.code_bailleur
        and t.annee = year(c.mois)
    group by t.niveau, t.code_territoire, c.mois
    having sum(t.n_logements) > 0
),

categories as (
    select categorie from {{ ref('nomenclature_incidents') }}
    union all
    select 'total' as categorie
),

incidents as (
    select
        i.code_bailleur,
        i.id_residence,
        i.mois,
        i.categorie
    from {{ ref('int_incidents__dedoublonnes') }} as i
    inner join couverture as c
        on c.code_bailleur = i.code_bailleur and c.mois = i.mois
),

incidents_territoires as (
    select
        t.niveau,
        t.code_territoire,
        i.mois,
        i.categorie
    from incidents as i
    inner join territoires as t
        on t.code_bailleur = i.code_bailleur
        and t.id_residence = i.id_residence
        and t.annee = year(i.mois)
),

comptes as (
    select
        niveau,
        code_territoire,
        mois,
        categorie,
        count(*) as n_incidents
    from incidents_territoires
    where categorie is not null
    group by niveau, code_territoire, mois, categorie
    union all
    select
        niveau,
        code_territoire,
        mois,
        'total' as categorie,
        count(*) as n_incidents
    from incidents_territoires
    group by niveau, code_territoire, mois
)

select
    d.niveau,
    d.code_territoire,
    n.nom_territoire,
    d.mois,
    k.categorie,
    cast(coalesce(c.n_incidents, 0) as bigint) as n_incidents,
    cast(d.n_logements as bigint) as n_logements,
    cast(1000.0 * coalesce(c.n_incidents, 0) / d.n_logements as double) as taux_pour_1000_logements,
    cast(d.annee_patrimoine as integer) as annee_patrimoine
from denominateurs as d
cross join categories as k
left join comptes as c
    on c.niveau = d.niveau
    and c.code_territoire = d.code_territoire
    and c.mois = d.mois
    and c.categorie = k.categorie
left join {{ ref('int_reference__noms_territoires') }} as n
    on n.niveau = d.niveau and n.code_territoire = d.code_territoire
