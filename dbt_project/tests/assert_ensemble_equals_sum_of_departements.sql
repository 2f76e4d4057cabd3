-- BLOCKING: totals reconcile. For every month and category, the `ensemble` row of
-- indicateurs_incidents_mois equals the sum of its département rows (incidents and dwellings).
-- A difference means a residence fell outside every département (territory resolution broke).
{{ config(severity='error', tags=['bloquant'], store_failures=true, schema='controles',
    meta={'dagster': {'ref': {'name': 'indicateurs_incidents_mois'}}}) }}
with ensemble as (
    select mois, categorie, n_incidents, n_logements
    from {{ ref('indicateurs_incidents_mois') }}
    where niveau = 'ensemble'
),

departements as (
    select mois, categorie, sum(n_incidents) as n_incidents, sum(n_logements) as n_logements
    from {{ ref('indicateurs_incidents_mois') }}
    where niveau = 'departement'
    group by mois, categorie
)

select
    coalesce(e.mois, d.mois) as mois,
    coalesce(e.categorie, d.categorie) as categorie,
    e.n_incidents as n_incidents_ensemble,
    d.n_incidents as n_incidents_departements,
    e.n_logements as n_logements_ensemble,
    d.n_logements as n_logements_departements
from ensemble as e
full outer join departements as d using (mois, categorie)
where e.n_incidents is distinct from d.n_incidents
    or e.n_logements is distinct from d.n_logements
