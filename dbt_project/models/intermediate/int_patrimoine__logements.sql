-- Dwellings of the current stock file of each (landlord, year).
select
    p.annee_fichier as annee,
    p.code_bailleur,
    p.id_logement,
    p.id_residence,
    p.nom_residence,
    p.code_commune,
    p.code_qpv,
    p.statut_occupation,
    p.livraison_id,
    p.ligne
from {{ ref('stg_landlord__patrimoine') }} as p
inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
where l.type_fichier = 'patrimoine'
