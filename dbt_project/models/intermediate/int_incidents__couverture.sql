-- A landlord covers a month when a current incidents delivery exists for it.
select
    code_bailleur,
    mois_fichier as mois,
    livraison_id,
    fichier
from {{ ref('int_ledger__livraisons_courantes') }}
where type_fichier = 'incidents'
