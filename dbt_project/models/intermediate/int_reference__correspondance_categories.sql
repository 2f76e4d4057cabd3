-- Each landlord's code -> common nomenclature category, from its current mapping file.
with lignes as (
    select
        coalesce(l.code_bailleur, c.code_bailleur) as code_bailleur,
        c.code_source,
        c.libelle_source,
        c.categorie,
        c.livraison_id,
        row_number() over (
            partition by coalesce(l.code_bailleur, c.code_bailleur), c.code_source
            order by l.ordre_livraison desc, c.ligne desc
        ) as rang
    from {{ ref('stg_reference__correspondance_categories') }} as c
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'correspondance_categories'
)

select
    code_bailleur,
    code_source,
    libelle_source,
    categorie,
    livraison_id
from lignes
where rang = 1
