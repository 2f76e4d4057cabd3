-- BLOCKING: a signed allocation (current delivery) whose EPCI has no Q1 threshold for its
-- lease-signature year. One row per offending allocation line.
-- meta.dagster.ref: shown in Dagster as an asset check of the model holding the bad rows.
{{ config(severity='error', tags=['bloquant'], store_failures=true, schema='controles',
    meta={'dagster': {'ref': {'name': 'int_attributions__signees'}}}) }}
select
    a.livraison_id,
    l.fichier,
    a.ligne,
    a.code_commune,
    a.code_epci,
    a.annee as annee_signature
from {{ ref('int_attributions__signees') }} as a
inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
where a.code_epci is not null
    and a.seuil_q1_euros_uc is null
order by a.livraison_id, a.ligne
