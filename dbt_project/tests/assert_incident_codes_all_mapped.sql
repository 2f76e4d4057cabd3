-- BLOCKING: an incident code of a current incidents delivery with no row in its landlord's
-- current correspondance file. One row per offending incident line.
-- meta.dagster.ref: shown in Dagster as an asset check of the model holding the bad rows.
{{ config(severity='error', tags=['bloquant'], store_failures=true, schema='controles',
    meta={'dagster': {'ref': {'name': 'stg_landlord__incidents'}}}) }}
select
    i.livraison_id,
    l.fichier,
    i.ligne,
    i.code_bailleur,
    i.id_incident,
    i.code_categorie
from {{ ref('stg_landlord__incidents') }} as i
inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
left join {{ ref('int_reference__correspondance_categories') }} as c
    on c.code_bailleur = i.code_bailleur and c.code_source = i.code_categorie
where l.type_fichier = 'incidents'
    and c.code_source is null
order by i.livraison_id, i.ligne
