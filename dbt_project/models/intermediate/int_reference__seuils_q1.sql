-- One Q1 threshold per (EPCI, year): the newest current delivery containing it wins.
with lignes as (
    select
        s.code_epci,
        s.annee,
        s.seuil_q1_euros_uc,
        s.livraison_id,
        row_number() over (
            partition by s.code_epci, s.annee
            order by l.ordre_livraison desc, s.ligne desc
        ) as rang
    from {{ ref('stg_reference__seuils_q1') }} as s
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'seuils_q1'
)

select code_epci, annee, seuil_q1_euros_uc, livraison_id
from lignes
where rang = 1
