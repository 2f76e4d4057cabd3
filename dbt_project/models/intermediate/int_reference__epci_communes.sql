-- Commune -> EPCI / département / région, with the range of indicator years each EPCI file
-- applies to: the file of the latest year <= Y, or the earliest file when none is.
with fichiers as (
    select distinct
        e.annee_fichier,
        e.livraison_id
    from {{ ref('stg_reference__epci') }} as e
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'epci'
),

fichier_par_annee as (
    -- one delivery per file year (the ledger already guarantees it; keep the newest id otherwise)
    select
        annee_fichier,
        max(livraison_id) as livraison_id
    from fichiers
    group by annee_fichier
),

bornes as (
    {{ annees_applicables('fichier_par_annee') }}
),

lignes as (
    select
        e.*,
        row_number() over (
            partition by e.livraison_id, e.code_commune
            order by e.ligne desc
        ) as rang
    from {{ ref('stg_reference__epci') }} as e
)

select
    b.annee_fichier,
    b.annee_debut,
    b.annee_fin,
    b.livraison_id,
    l.code_commune,
    l.nom_commune,
    l.code_epci,
    l.libelle_epci,
    l.code_departement,
    l.code_region
from bornes as b
inner join lignes as l on l.livraison_id = b.livraison_id and l.rang = 1
