-- Eviction / lease-termination procedures per EPCI, year, motive and step, with the measures of
-- the landlord-level procedures_expulsion_annee: the EPCI's view of the same steps, for the
-- reports and the partners of one territory.
-- A step is located by its dwelling (id_logement) in the landlord's stock applicable to the
-- step's year (int_patrimoine__annee_applicable: the latest stock year <= the year, else the
-- earliest, as incidents are located), then by that dwelling's commune (DEPCOM) in the EPCI file
-- applicable to the year. Left out, so the sum over EPCIs can be less than over landlords:
-- steps without id_logement, whose dwelling is not in that stock (or whose landlord has no
-- stock), and whose commune is in no EPCI (islands) or missing from the EPCI file.
-- A procedure is identified by (landlord, id_procedure): ids are the landlords' own, so the same
-- id at two landlords is two procedures; it counts once per step reached in the year.
with localisees as (
    select
        e.code_bailleur,
        -- the procedure's key across landlords: a landlord code (from a file name) holds no ':'
        e.code_bailleur || ':' || e.id_procedure as cle_procedure,
        e.annee,
        e.motif,
        e.etape,
        e.origine,
        c.code_epci
    from {{ ref('int_procedures__etapes') }} as e
    inner join {{ ref('int_patrimoine__annee_applicable') }} as a
        on a.code_bailleur = e.code_bailleur
        and a.annee = e.annee
    inner join {{ ref('int_patrimoine__logements') }} as p
        on p.code_bailleur = e.code_bailleur
        and p.annee = a.annee_patrimoine
        and p.id_logement = e.id_logement
    inner join {{ ref('int_reference__epci_communes') }} as c
        on c.code_commune = p.code_commune
        and e.annee between c.annee_debut and c.annee_fin
    where c.code_epci is not null
)

select
    l.code_epci,
    n.nom_territoire as nom_epci,
    l.annee,
    l.motif,
    l.etape,
    cast(count(distinct l.cle_procedure) as bigint) as n_procedures,
    cast(count(distinct l.cle_procedure) filter (where l.origine = 'bailleur') as bigint)
        as n_procedures_bailleur,
    cast(
        count(distinct l.cle_procedure) filter (where l.origine = 'injonction_prefet') as bigint
    ) as n_procedures_injonction_prefet,
    cast(count(distinct l.code_bailleur) as bigint) as n_bailleurs,
    -- Complete when every landlord delivering procedures that year delivered its 12 monthly
    -- files (periodes_couvertes), not only the landlords of the row: a landlord's missing month
    -- may hold procedures in this EPCI.
    coalesce(bool_and(c.annee_complete), false) as annee_complete
from localisees as l
left join {{ ref('periodes_couvertes') }} as c
    on c.type_fichier = 'procedures' and c.annee = l.annee
left join {{ ref('int_reference__noms_territoires') }} as n
    on n.niveau = 'epci' and n.code_territoire = l.code_epci
group by l.code_epci, n.nom_territoire, l.annee, l.motif, l.etape
