-- Months of each year covered by the current monthly deliveries of each series: a landlord's
-- incidents or procedures, the police events, the allocations (code_bailleur is then NULL).
-- A month is covered when a current delivery exists for it.
select
    type_fichier,
    code_bailleur,
    annee_fichier as annee,
    cast(count(distinct mois_fichier) as integer) as n_mois_couverts,
    count(distinct mois_fichier) = 12 as annee_complete
from {{ ref('int_ledger__livraisons_courantes') }}
where mois_fichier is not null
group by type_fichier, code_bailleur, annee_fichier
