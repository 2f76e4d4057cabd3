-- Deduplicated incidents with their residence's territories (the stock applicable to the
-- incident's year). Incidents whose residence is not in that stock are left out, and reported
-- by the warning test warn_incidents_residence_hors_patrimoine (judged again whenever the
-- applicable stock changes).
select
    i.code_bailleur,
    i.id_incident,
    i.date_signalement,
    i.mois,
    i.annee,
    i.id_residence,
    i.id_logement,
    i.code_categorie,
    i.categorie,
    i.lieu,
    i.gravite,
    i.date_cloture,
    i.plainte_deposee,
    i.cout_euros,
    i.livraison_id,
    i.fichier,
    i.ligne,
    r.code_residence,
    r.code_commune,
    r.code_qpv,
    r.code_epci,
    r.code_departement
from {{ ref('int_incidents__dedoublonnes') }} as i
inner join {{ ref('int_patrimoine__residences') }} as r
    on r.code_bailleur = i.code_bailleur
    and r.id_residence = i.id_residence
    and r.annee = i.annee
