-- SSMSI indicators aggregated per EPCI (EPCI file applicable to the year): sums over diffused
-- communes only; masked communes are counted, never valued. With no diffused commune, nombre is
-- NULL (no figure) but population and logements are 0 (the population covered by diffused
-- figures is nil). Dwelling counts are census estimates with decimals, summed exactly.
with communes as (
    select
        e.code_epci,
        c.annee,
        c.indicateur,
        c.unite_de_compte,
        c.nombre,
        c.population,
        c.logements,
        c.diffuse,
        c.edition
    from {{ ref('indicateurs_delinquance_commune_annee') }} as c
    inner join {{ ref('int_reference__epci_communes') }} as e
        on e.code_commune = c.code_commune
        and c.annee between e.annee_debut and e.annee_fin
    -- A commune outside any EPCI (INSEE's `ZZZZZZZZZ`) counts in no EPCI.
    where e.code_epci is not null
),

agregats as (
    select
        code_epci,
        annee,
        indicateur,
        min(unite_de_compte) as unite_de_compte,
        sum(nombre) filter (where diffuse) as nombre,
        coalesce(sum(population) filter (where diffuse), 0) as population,
        -- Summed as decimals: a sum of DOUBLEs depends on the order DuckDB's threads add them
        -- in, and the last bits of the figures (and of the reports drawn from them) would
        -- change from one refresh to the next with the same data.
        cast(
            coalesce(sum(cast(logements as decimal(38, 10))) filter (where diffuse), 0) as double
        ) as logements,
        count(*) filter (where not diffuse) as n_communes_non_diffusees,
        count(*) filter (where diffuse) as n_communes_diffusees,
        max(edition) as edition
    from communes
    group by code_epci, annee, indicateur
)

select
    a.code_epci,
    n.nom_territoire as nom_epci,
    cast(a.annee as integer) as annee,
    a.indicateur,
    a.unite_de_compte,
    cast(a.nombre as bigint) as nombre,
    cast(a.population as bigint) as population,
    cast(a.logements as double) as logements,
    cast(a.n_communes_non_diffusees as bigint) as n_communes_non_diffusees,
    cast(a.n_communes_diffusees as bigint) as n_communes_diffusees,
    cast(
        case
            when a.indicateur = 'Cambriolages de logement'
                then 1000.0 * a.nombre / nullif(a.logements, 0)
            else 1000.0 * a.nombre / nullif(a.population, 0)
        end as double
    ) as taux_pour_mille,
    -- The SSMSI publishes whole calendar years only.
    true as annee_complete,
    a.edition
from agregats as a
left join {{ ref('int_reference__noms_territoires') }} as n
    on n.niveau = 'epci' and n.code_territoire = a.code_epci
