-- Social-mix indicators of article L441-1 per EPCI and lease-signature year.
-- taux_* are ratios in [0, 1]; objectifs in percent; manque/conforme computed in integers.
with attributions as (
    select *
    from {{ ref('int_attributions__signees') }}
    where code_epci is not null
),

comptes as (
    select
        code_epci,
        annee,
        count(*) as n_attributions,
        count_if(not en_qpv) as n_attributions_hors_qpv,
        count_if(not en_qpv and (est_q1 or relogement_anru)) as n_q1_hors_qpv,
        count_if(en_qpv) as n_attributions_qpv,
        count_if(en_qpv and not est_q1) as n_hors_q1_qpv,
        count_if(est_prioritaire) as n_menages_prioritaires,
        min(seuil_q1_euros_uc) as seuil_q1_euros_uc
    from attributions
    group by code_epci, annee
),

avec_objectifs as (
    select
        c.*,
        cast(coalesce(o.objectif_q1_hors_qpv_pct, 25) as double) as objectif_q1_hors_qpv_pct,
        cast(50 as double) as objectif_hors_q1_qpv_pct
    from comptes as c
    left join {{ ref('int_reference__objectifs_epci') }} as o
        on o.code_epci = c.code_epci and o.annee = c.annee
),

avec_periodes as (
    select
        a.*,
        -- A year whose 12 monthly allocation files are not all delivered is never complete.
        coalesce(p.annee_complete, false) as annee_complete,
        n.nom_territoire as nom_epci
    from avec_objectifs as a
    left join {{ ref('periodes_couvertes') }} as p
        on p.type_fichier = 'attributions' and p.annee = a.annee
    left join {{ ref('int_reference__noms_territoires') }} as n
        on n.niveau = 'epci' and n.code_territoire = a.code_epci
)

select
    code_epci,
    nom_epci,
    cast(annee as integer) as annee,
    cast(n_attributions as bigint) as n_attributions,
    cast(n_attributions_hors_qpv as bigint) as n_attributions_hors_qpv,
    cast(n_q1_hors_qpv as bigint) as n_q1_hors_qpv,
    {{ taux_ratio('n_q1_hors_qpv', 'n_attributions_hors_qpv') }} as taux_q1_hors_qpv,
    objectif_q1_hors_qpv_pct,
    {{ manque_objectif('objectif_q1_hors_qpv_pct', 'n_attributions_hors_qpv', 'n_q1_hors_qpv') }}
        as manque_q1_hors_qpv,
    {{ conforme_objectif('objectif_q1_hors_qpv_pct', 'n_attributions_hors_qpv', 'n_q1_hors_qpv') }}
        as conforme_q1_hors_qpv,
    cast(n_attributions_qpv as bigint) as n_attributions_qpv,
    cast(n_hors_q1_qpv as bigint) as n_hors_q1_qpv,
    {{ taux_ratio('n_hors_q1_qpv', 'n_attributions_qpv') }} as taux_hors_q1_qpv,
    objectif_hors_q1_qpv_pct,
    {{ manque_objectif('objectif_hors_q1_qpv_pct', 'n_attributions_qpv', 'n_hors_q1_qpv') }}
        as manque_hors_q1_qpv,
    {{ conforme_objectif('objectif_hors_q1_qpv_pct', 'n_attributions_qpv', 'n_hors_q1_qpv') }}
        as conforme_hors_q1_qpv,
    cast(n_menages_prioritaires as bigint) as n_menages_prioritaires,
    {{ taux_ratio('n_menages_prioritaires', 'n_attributions') }} as taux_menages_prioritaires,
    seuil_q1_euros_uc,
    annee_complete
from avec_periodes
