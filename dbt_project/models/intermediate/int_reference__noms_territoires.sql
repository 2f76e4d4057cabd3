-- One name per territory code of each level (niveau) of the published tables, from the most
-- recent source holding the code: residence (stock of the latest year; its code when the stock
-- gives no name or when only a police event names it), QPV (QPV file), commune and EPCI (EPCI
-- file, INSEE's commune composition), département (seed `departements`, INSEE's COG), landlord
-- (`bailleurs` file), and `FR` = France. Reference files count only as current deliveries.
with courantes as (
    select
        livraison_id,
        type_fichier
    from {{ ref('int_ledger__livraisons_courantes') }}
),

candidats as (
    select
        'residence' as niveau,
        code_residence as code_territoire,
        coalesce(nullif(trim(nom_residence), ''), code_residence) as nom_territoire,
        annee as priorite,
        livraison_id,
        0 as ligne
    from {{ ref('int_patrimoine__residences') }}
    union all
    select distinct
        'residence' as niveau,
        code_residence as code_territoire,
        code_residence as nom_territoire,
        -1 as priorite,
        0 as livraison_id,
        0 as ligne
    from {{ ref('int_evenements__dedoublonnes') }}
    where code_residence is not null
    union all
    select
        'qpv' as niveau,
        q.code_qpv as code_territoire,
        nullif(trim(q.nom_qpv), '') as nom_territoire,
        q.annee_fichier as priorite,
        q.livraison_id,
        q.ligne
    from {{ ref('stg_reference__qpv') }} as q
    inner join courantes as c
        on c.livraison_id = q.livraison_id and c.type_fichier = 'qpv'
    union all
    select
        'commune' as niveau,
        code_commune as code_territoire,
        nullif(trim(nom_commune), '') as nom_territoire,
        annee_fichier as priorite,
        livraison_id,
        0 as ligne
    from {{ ref('int_reference__epci_communes') }}
    union all
    select
        'epci' as niveau,
        code_epci as code_territoire,
        nullif(trim(libelle_epci), '') as nom_territoire,
        annee_fichier as priorite,
        livraison_id,
        0 as ligne
    from {{ ref('int_reference__epci_communes') }}
    where code_epci is not null
    union all
    select
        'departement' as niveau,
        code_departement as code_territoire,
        nom_departement as nom_territoire,
        0 as priorite,
        0 as livraison_id,
        0 as ligne
    from {{ ref('departements') }}
    union all
    select
        'bailleur' as niveau,
        b.code_bailleur as code_territoire,
        nullif(trim(b.nom_bailleur), '') as nom_territoire,
        0 as priorite,
        b.livraison_id,
        b.ligne
    from {{ ref('stg_reference__bailleurs') }} as b
    inner join courantes as c
        on c.livraison_id = b.livraison_id and c.type_fichier = 'bailleurs'
    union all
    select
        'ensemble' as niveau,
        'FR' as code_territoire,
        'France' as nom_territoire,
        0 as priorite,
        0 as livraison_id,
        0 as ligne
),

classes as (
    select
        *,
        row_number() over (
            partition by niveau, code_territoire
            order by priorite desc, livraison_id desc, ligne desc, nom_territoire asc
        ) as rang
    from candidats
    where code_territoire is not null and nom_territoire is not null
)

select
    niveau,
    code_territoire,
    nom_territoire
from classes
where rang = 1
