-- The file year (epci_<YYYY>) is the delivery's period in the ledger.
select
    e.livraison_id,
    e.ligne,
    cast(l.periode as integer) as annee_fichier,
    trim(e.codgeo) as code_commune,
    e.libgeo as nom_commune,
    trim(e.epci) as code_epci,
    e.libepci as libelle_epci,
    trim(e.dep) as code_departement,
    trim(e.reg) as code_region
from {{ source('raw', 'reference_epci') }} as e
left join {{ source('raw', 'livraisons') }} as l using (livraison_id)
