-- BLOCKING: dwellings of one residence that disagree on commune or QPV, per current
-- landlord-year stock file. One row per offending residence, with the values found.
-- meta.dagster.ref: shown in Dagster as an asset check of the model holding the bad rows.
{{ config(severity='error', tags=['bloquant'], store_failures=true, schema='controles',
    meta={'dagster': {'ref': {'name': 'int_patrimoine__logements'}}}) }}
select
    p.livraison_id,
    l.fichier,
    p.code_bailleur,
    p.annee,
    p.id_residence,
    count(*) as n_logements,
    string_agg(distinct p.code_commune, ', ' order by p.code_commune) as communes,
    string_agg(
        distinct coalesce(p.code_qpv, '(hors QPV)'),
        ', ' order by coalesce(p.code_qpv, '(hors QPV)')
    ) as qpvs,
    min(p.ligne) as premiere_ligne
from {{ ref('int_patrimoine__logements') }} as p
inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
group by p.livraison_id, l.fichier, p.code_bailleur, p.annee, p.id_residence
having count(distinct p.code_commune) > 1
    or count(distinct coalesce(p.code_qpv, '')) > 1
order by p.livraison_id, p.id_residence
