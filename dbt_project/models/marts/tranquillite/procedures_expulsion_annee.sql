-- Eviction / lease-termination procedures per landlord, year, motive and step: procedures that
-- reached the step in the year, those started on the prefect's injunction counted apart.
select
    code_bailleur,
    annee,
    motif,
    etape,
    cast(count(distinct id_procedure) as bigint) as n_procedures,
    cast(count(distinct id_procedure) filter (where origine = 'bailleur') as bigint)
        as n_procedures_bailleur,
    cast(count(distinct id_procedure) filter (where origine = 'injonction_prefet') as bigint)
        as n_procedures_injonction_prefet
from {{ ref('int_procedures__etapes') }}
group by code_bailleur, annee, motif, etape
