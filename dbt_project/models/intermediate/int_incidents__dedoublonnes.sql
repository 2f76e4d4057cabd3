-- Incidents of current deliveries, one per (landlord, id_incident): the newest delivery wins
-- (modifie_le then file name), then the last line. Mapped to the common nomenclature.
with courants as (
    select
        i.*,
        l.fichier,
        l.ordre_livraison,
        row_number() over (
            partition by i.code_bailleur, i.id_incident
            order by l.ordre_livraison desc, i.ligne desc
        ) as rang
    from {{ ref('stg_landlord__incidents') }} as i
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'incidents'
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
