-- Assaults on landlord staff (category agression_personnel) per territory and month: the
-- monthly indicator row, plus how many led to a complaint and how many were serious (gravite >= 3).
-- Incremental by month like the monthly table it reads (macros/fenetre.sql).
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ supprimer_fenetre() }}",
) }}

with details as (
    select
        niveau,
        code_territoire,
        mois,
        count_if(plainte_deposee) as n_avec_plainte,
        count_if(gravite >= 3) as n_gravite_3_plus
    from {{ ref('int_incidents__territoires') }}
    where categorie = 'agression_personnel'
    {% if is_incremental() %}
        and {{ dans_fenetre('mois') }}
    {% endif %}
    group by niveau, code_territoire, mois
)

select
    m.niveau,
    m.code_territoire,
    m.nom_territoire,
    m.mois,
    m.n_incidents as n_agressions,
    cast(coalesce(d.n_avec_plainte, 0) as bigint) as n_agressions_avec_plainte,
    cast(coalesce(d.n_gravite_3_plus, 0) as bigint) as n_agressions_gravite_3_plus,
    m.n_logements,
    m.taux_pour_1000_logements
from {{ ref('indicateurs_incidents_mois') }} as m
left join details as d
    on d.niveau = m.niveau and d.code_territoire = m.code_territoire and d.mois = m.mois
where m.categorie = 'agression_personnel'
{% if is_incremental() %}
    and {{ fenetre_du_modele(model, 'm.') }}
{% endif %}
