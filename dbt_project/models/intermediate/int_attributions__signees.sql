-- Allocations of current deliveries followed by a signed lease, one row each, located in the
-- EPCI of their commune (EPCI file applicable to the signature year), with consumption units
-- and the Q1 flag. All comparisons are exact: uc is handled in tenths (integers) and incomes and
-- thresholds as DECIMAL, so `revenu / uc < seuil` <=> `10 * revenu < seuil * uc_dixiemes`.
with attributions as (
    select
        a.*,
        cast(year(a.date_signature_bail) as integer) as annee,
        10 + 5 * (a.nb_personnes_14_ans_et_plus - 1) + 3 * a.nb_enfants_moins_14_ans as uc_dixiemes
    from {{ ref('stg_allocations__attributions') }} as a
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'attributions'
        and a.date_signature_bail is not null
)

select
    a.livraison_id,
    a.ligne,
    a.pseudo_demande,
    a.date_attribution,
    a.date_signature_bail,
    a.annee,
    a.code_bailleur,
    a.code_commune,
    a.code_qpv,
    a.code_qpv is not null as en_qpv,
    e.code_epci,
    cast(a.uc_dixiemes as double) / 10 as uc,
    a.revenu_annuel_euros,
    s.seuil_q1_euros_uc,
    case
        when s.seuil_q1_euros_uc is null or a.revenu_annuel_euros is null or a.uc_dixiemes is null
            then null
        else cast(a.revenu_annuel_euros as decimal(18, 2)) * 10
            < cast(s.seuil_q1_euros_uc as decimal(18, 2)) * a.uc_dixiemes
    end as est_q1,
    coalesce(a.relogement_anru, false) as relogement_anru,
    a.menage_prioritaire,
    a.menage_prioritaire in ('DALO', 'prioritaire') as est_prioritaire,
    a.reservataire
from attributions as a
left join {{ ref('int_reference__epci_communes') }} as e
    on e.code_commune = a.code_commune
    and a.annee between e.annee_debut and e.annee_fin
left join {{ ref('int_reference__seuils_q1') }} as s
    on s.code_epci = e.code_epci and s.annee = a.annee
