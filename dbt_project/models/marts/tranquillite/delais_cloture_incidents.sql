-- Time to close incidents (days from report to closure) per territory, year and category,
-- over closed incidents; open incidents are counted apart.
--
-- Computed from each group's histogram of delays (whole days, a few hundred distinct values)
-- rather than by median() and quantile_cont() over the incidents: those keep every value of
-- every group in memory, about 200 M nationally once each incident counts at every level,
-- and took 109 s and spilled; the histogram took 15 s for the same figures. The median and
-- the 90th percentile are the same continuous quantiles, (n - 1) * q interpolated between the
-- two closed incidents around that rank (equal to DuckDB's quantile_cont to 10 significant
-- digits; its own rounding differs in the last bit).
with histogramme_categories as (
    select
        niveau,
        code_territoire,
        annee,
        categorie,
        date_cloture - date_signalement as delai,
        count(*) as n
    from {{ ref('int_incidents__territoires') }}
    group by all
),

histogramme as (
    select
        niveau,
        code_territoire,
        annee,
        categorie,
        delai,
        n
    from histogramme_categories
    where categorie is not null
    union all
    -- `total` counts every incident, an unmapped one (categorie NULL) included.
    select
        niveau,
        code_territoire,
        annee,
        'total' as categorie,
        delai,
        sum(n) as n
    from histogramme_categories
    group by niveau, code_territoire, annee, delai
),

cumul as (
    select
        *,
        -- Closed incidents of the group, and those up to this delay (NULL, open, sorts last).
        sum(n) filter (where delai is not null) over groupe as n_clotures,
        sum(n) over (groupe order by delai rows between unbounded preceding and current row)
            as n_jusqu_ici
    from histogramme
    window groupe as (partition by niveau, code_territoire, annee, categorie)
),

rangs as (
    select
        *,
        cast(n_clotures - 1 as double) * 0.5 as rang_mediane,
        cast(n_clotures - 1 as double) * 0.9 as rang_p90
    from cumul
),

groupes as (
    -- The delay at a 0-based rank among the closed incidents is that of the first delay
    -- whose running count passes the rank.
    select
        niveau,
        code_territoire,
        annee,
        categorie,
        sum(n) as n_incidents,
        coalesce(any_value(n_clotures), 0) as n_clotures,
        sum(delai * n) as somme_delais,
        any_value(rang_mediane) as rang_mediane,
        any_value(rang_p90) as rang_p90,
        min(delai) filter (where n_jusqu_ici > floor(rang_mediane)) as mediane_bas,
        min(delai) filter (where n_jusqu_ici > ceil(rang_mediane)) as mediane_haut,
        min(delai) filter (where n_jusqu_ici > floor(rang_p90)) as p90_bas,
        min(delai) filter (where n_jusqu_ici > ceil(rang_p90)) as p90_haut
    from rangs
    group by niveau, code_territoire, annee, categorie
)

select
    g.niveau,
    g.code_territoire,
    n.nom_territoire,
    cast(g.annee as integer) as annee,
    g.categorie,
    cast(g.n_incidents as bigint) as n_incidents,
    cast(g.n_clotures as bigint) as n_clotures,
    cast(g.n_incidents - g.n_clotures as bigint) as n_en_cours,
    cast(g.mediane_bas as double)
    + (cast(g.mediane_haut as double) - cast(g.mediane_bas as double))
    * (g.rang_mediane - floor(g.rang_mediane)) as delai_median_jours,
    cast(g.p90_bas as double)
    + (cast(g.p90_haut as double) - cast(g.p90_bas as double))
    * (g.rang_p90 - floor(g.rang_p90)) as delai_p90_jours,
    cast(g.somme_delais / nullif(g.n_clotures, 0) as double) as delai_moyen_jours
from groupes as g
left join {{ ref('int_reference__noms_territoires') }} as n
    on n.niveau = g.niveau and n.code_territoire = g.code_territoire
