-- WARNING (not blocking): an incident of a current delivery whose residence is not in the
-- stock applicable to its year (int_patrimoine__annee_applicable). It is loaded, left out of
-- the indicators and reported here; judged again at every build, so a better stock arriving
-- later counts it (the publication never depends on the order deliveries arrived in).
-- meta.dagster.ref: shown in Dagster as an asset check of the model holding the bad rows.
{{ config(severity='warn', tags=['avertissement'], store_failures=true, schema='controles',
    meta={'dagster': {'ref': {'name': 'int_incidents__dedoublonnes'}}}) }}
select
    i.livraison_id,
    i.fichier,
    i.ligne,
    i.code_bailleur,
    i.id_incident,
    i.id_residence,
    i.annee,
    a.annee_patrimoine
from {{ ref('int_incidents__dedoublonnes') }} as i
left join {{ ref('int_patrimoine__annee_applicable') }} as a
    on a.code_bailleur = i.code_bailleur
    and a.annee = i.annee
left join {{ ref('int_patrimoine__residences') }} as r
    on r.code_bailleur = i.code_bailleur
    and r.id_residence = i.id_residence
    and r.annee = i.annee
where r.id_residence is null
