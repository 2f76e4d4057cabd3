-- Eviction / lease-termination procedures per landlord, year, motive and step: procedures that
-- reached the step in the year, those started on the prefect's injunction counted apart.
-- A landlord's year is complete when it delivered its 12 monthly procedure files.
select
    e.code_bailleur,
    n.nom_territoire as nom_bailleur,
    e.annee,
    e.motif,
    e.etape,
    cast(count(distinct e.id_procedure) as bigint) as n_procedures,
    cast(count(distinct e.id_procedure) filter (where e.origine = 'bailleur') as bigint)
        as n_procedures_bailleur,
    cast(
        count(distinct e.id_procedure) filter (where e.origine = 'injonction_prefet') as bigint
    ) as n_procedures_injonction_prefet,
    coalesce(bool_and(m.annee_complete), false) as annee_complete
from {{ ref('int_procedures__etapes') }} as e
left join {{ ref('int_periodes__mois_couverts') }} as m
    on m.type_fichier = 'procedures'
    and m.code_bailleur = e.code_bailleur
    and m.annee = e.annee
left join {{ ref('int_reference__noms_territoires') }} as n
    on n.niveau = 'bailleur' and n.code_territoire = e.code_bailleur
group by e.code_bailleur, n.nom_territoire, e.annee, e.motif, e.etape
