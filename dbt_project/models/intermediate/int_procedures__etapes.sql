-- Steps of eviction / lease procedures of current deliveries, one per (landlord, procedure, step,
-- date): a step delivered again counts once, from the newest delivery.
with courants as (
    select
        p.*,
        row_number() over (
            partition by p.code_bailleur, p.id_procedure, p.etape, p.date_etape
            order by l.ordre_livraison desc, p.ligne desc
        ) as rang
    from {{ ref('stg_landlord__procedures') }} as p
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'procedures'
)

select
    code_bailleur,
    id_procedure,
    id_logement,
    motif,
    etape,
    date_etape,
    cast(year(date_etape) as integer) as annee,
    origine,
    livraison_id,
    ligne
from courants
where rang = 1
