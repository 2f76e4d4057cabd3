select
    livraison_id,
    ligne,
    pseudo_demande,
    date_attribution,
    date_signature_bail,
    nullif(trim(code_bailleur), '') as code_bailleur,
    nullif(trim(id_logement), '') as id_logement,
    trim(depcom) as code_commune,
    nullif(trim(qpv), '') as code_qpv,
    cast(revenu_annuel_euros as double) as revenu_annuel_euros,
    cast(nb_personnes_14_ans_et_plus as integer) as nb_personnes_14_ans_et_plus,
    cast(nb_enfants_moins_14_ans as integer) as nb_enfants_moins_14_ans,
    menage_prioritaire,
    reservataire,
    relogement_anru
from {{ source('raw', 'allocations_attributions') }}
