-- BLOCKING: a commune of a current delivery (stock, police events, allocations) missing from
-- the EPCI file applicable to the row's year. One row per (delivery, commune, year).
-- meta.dagster.ref: shown in Dagster as an asset check of the model holding the bad rows.
{{ config(severity='error', tags=['bloquant'], store_failures=true, schema='controles',
    meta={'dagster': {'ref': {'name': 'int_reference__epci_communes'}}}) }}
with communes as (
    select
        'patrimoine' as source,
        livraison_id,
        ligne,
        code_commune,
        annee
    from {{ ref('int_patrimoine__logements') }}
    union all
    select
        'evenements' as source,
        e.livraison_id,
        e.ligne,
        e.code_commune,
        cast(year(e.date_evenement) as integer) as annee
    from {{ ref('stg_police__evenements') }} as e
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'evenements'
    union all
    select
        'attributions' as source,
        a.livraison_id,
        a.ligne,
        a.code_commune,
        cast(year(coalesce(a.date_signature_bail, a.date_attribution)) as integer) as annee
    from {{ ref('stg_allocations__attributions') }} as a
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'attributions'
)

select
    c.source,
    c.livraison_id,
    l.fichier,
    c.code_commune,
    c.annee,
    count(*) as n_lignes,
    min(c.ligne) as premiere_ligne
from communes as c
inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
left join {{ ref('int_reference__epci_communes') }} as e
    on e.code_commune = c.code_commune
    and c.annee between e.annee_debut and e.annee_fin
where e.code_commune is null
group by c.source, c.livraison_id, l.fichier, c.code_commune, c.annee
order by c.source, c.livraison_id, c.code_commune
