-- BLOCKING: totals reconcile. Allocations counted in indicateurs_mixite_epci_annee, per year,
-- equal the signed allocations of current deliveries located in an EPCI for that year.
{{ config(severity='error', tags=['bloquant'], store_failures=true, schema='controles',
    meta={'dagster': {'ref': {'name': 'indicateurs_mixite_epci_annee'}}}) }}
with comptees as (
    select annee, sum(n_attributions) as n_attributions
    from {{ ref('indicateurs_mixite_epci_annee') }}
    group by annee
),

signees as (
    select annee, count(*) as n_attributions
    from {{ ref('int_attributions__signees') }}
    where code_epci is not null
    group by annee
)

select
    coalesce(c.annee, s.annee) as annee,
    c.n_attributions as n_attributions_comptees,
    s.n_attributions as n_attributions_signees
from comptees as c
full outer join signees as s using (annee)
where c.n_attributions is distinct from s.n_attributions
