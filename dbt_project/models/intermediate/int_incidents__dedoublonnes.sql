-- Incidents of current deliveries, one per (landlord, id_incident): the newest delivery wins
-- (modifie_le then file name), then the last line. Mapped to the common nomenclature.
with courants as (
    {{ ranked_current_rows(
        'stg_landlord__incidents', 'incidents', ['code_bailleur', 'id_incident'],
        ledger_columns=['fichier'],
    ) }}
)

select
    i.code_bailleur,
    i.id_incident,
    i.date_signalement,
    cast(date_trunc('month', i.date_signalement) as date) as mois,
    cast(year(i.date_signalement) as integer) as annee,
    i.id_residence,
    i.id_logement,
    i.code_categorie,
    c.categorie,
    i.lieu,
    i.gravite,
    i.date_cloture,
    i.plainte_deposee,
    i.cout_euros,
    i.livraison_id,
    i.fichier,
    i.ligne
from courants as i
left join {{ ref('int_reference__correspondance_categories') }} as c
    on c.code_bailleur = i.code_bailleur and c.code_source = i.code_categorie
where i.rang = 1
