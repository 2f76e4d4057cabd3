-- Locally agreed Q1 target per (EPCI, year): the newest current delivery containing it wins.
with lignes as (
    select
        o.code_epci,
        o.annee,
        o.objectif_q1_hors_qpv_pct,
        o.livraison_id,
        row_number() over (
            partition by o.code_epci, o.annee
            order by l.ordre_livraison desc, o.ligne desc
        ) as rang
    from {{ ref('stg_reference__objectifs_epci') }} as o
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'objectifs_epci'
)

select code_epci, annee, objectif_q1_hors_qpv_pct, livraison_id
from lignes
where rang = 1
