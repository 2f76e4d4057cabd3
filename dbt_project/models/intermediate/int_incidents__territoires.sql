-- Each counted incident (deduplicated, of a covered month, residence in the year's stock) once per
-- territory level it belongs to: the numerator side of every territorial incident indicator.
select
    t.niveau,
    t.code_territoire,
    i.code_bailleur,
    i.id_incident,
    i.id_residence,
    i.date_signalement,
    i.mois,
    i.annee,
    i.categorie,
    i.lieu,
    i.gravite,
    i.date_cloture,
    i.plainte_deposee
from {{ ref('int_incidents__dedoublonnes') }} as i
inner join {{ ref('int_incidents__couverture') }} as c
    on c.code_bailleur = i.code_bailleur and c.mois = i.mois
inner join {{ ref('int_patrimoine__residences_territoires') }} as t
    on t.code_bailleur = i.code_bailleur
    and t.id_residence = i.id_residence
    and t.annee = i.annee
