-- For each (commune, year, indicator), the row of the latest SSMSI edition containing it
-- (ties: newest delivery, then last line).
with lignes as (
    select
        s.*,
        row_number() over (
            partition by s.code_commune, s.annee, s.indicateur
            order by s.edition desc, l.ordre_livraison desc, s.ligne desc
        ) as rang
    from {{ ref('stg_police__ssmsi') }} as s
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'ssmsi'
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
