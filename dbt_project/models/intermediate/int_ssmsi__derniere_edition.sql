-- For each (commune, year, indicator), the row of the latest SSMSI edition containing it
-- (ties: newest delivery, then last line).
with lignes as (
    {{ ranked_current_rows(
        'stg_police__ssmsi', 'ssmsi', ['code_commune', 'annee', 'indicateur'],
        first_order='edition',
    ) }}
)

select
    code_commune,
    annee,
    indicateur,
    unite_de_compte,
    nombre,
    taux_pour_mille,
    diffuse,
    population,
    logements,
    edition,
    livraison_id,
    ligne
from lignes
where rang = 1
