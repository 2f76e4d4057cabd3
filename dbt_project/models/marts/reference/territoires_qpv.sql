-- QPV -> communes -> EPCI / département for each year of the publication's monthly deliveries
-- (the years of territoires_communes). Why: the open data's protection needs the public
-- QPV -> commune composition (a QPV's incidents are at most those of its communes: an attacker
-- bounds a QPV cell by its communes' cells, so the protection must know the link), and the
-- official reports list the QPVs of an EPCI.
-- The composition of year Y comes from the QPV file applicable to Y, by the rule the contract
-- (section 2.1) gives for the EPCI file: the file of the latest year <= Y, or the earliest file
-- when none is; the commune's EPCI and département from the EPCI file applicable
-- to Y (int_reference__epci_communes, as territoires_communes). A QPV commune missing from that
-- EPCI file keeps its row with no EPCI nor département (the composition stays whole; a warning
-- test lists it).
with annees as (
    select distinct annee
    from {{ ref('int_periodes__mois_couverts') }}
),

fichiers as (
    -- one current delivery per file year (the ledger already guarantees it; the newest id
    -- otherwise), as int_reference__epci_communes
    select
        q.annee_fichier,
        max(q.livraison_id) as livraison_id
    from {{ ref('stg_reference__qpv') }} as q
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = 'qpv'
    group by q.annee_fichier
),

bornes as (
    {{ annees_applicables('fichiers') }}
),

lignes as (
    -- (code_qpv, code_commune) is unique within a delivery (ingestion quarantines repeats);
    -- defensively its last line otherwise
    select
        *,
        row_number() over (
            partition by livraison_id, code_qpv, code_commune
            order by ligne desc
        ) as rang
    from {{ ref('stg_reference__qpv') }}
)

select
    a.annee,
    q.code_qpv,
    nq.nom_territoire as nom_qpv,
    q.code_commune,
    nc.nom_territoire as nom_commune,
    e.code_epci,
    ne.nom_territoire as nom_epci,
    e.code_departement,
    nd.nom_territoire as nom_departement,
    q.population
from annees as a
inner join bornes as b
    on a.annee between b.annee_debut and b.annee_fin
inner join lignes as q
    on q.livraison_id = b.livraison_id and q.rang = 1
left join {{ ref('int_reference__epci_communes') }} as e
    on e.code_commune = q.code_commune
    and a.annee between e.annee_debut and e.annee_fin
left join {{ ref('int_reference__noms_territoires') }} as nq
    on nq.niveau = 'qpv' and nq.code_territoire = q.code_qpv
left join {{ ref('int_reference__noms_territoires') }} as nc
    on nc.niveau = 'commune' and nc.code_territoire = q.code_commune
left join {{ ref('int_reference__noms_territoires') }} as ne
    on ne.niveau = 'epci' and ne.code_territoire = e.code_epci
left join {{ ref('int_reference__noms_territoires') }} as nd
    on nd.niveau = 'departement' and nd.code_territoire = e.code_departement
