-- Steps of eviction / lease procedures of current deliveries, one per (landlord, procedure, step,
-- date): a step delivered again counts once, from the newest delivery.
with courants as (
    {{ ranked_current_rows(
        'stg_landlord__procedures', 'procedures',
        ['code_bailleur', 'id_procedure', 'etape', 'date_etape'],
    ) }}
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
