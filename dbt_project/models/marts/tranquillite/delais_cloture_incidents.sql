-- Time to close incidents (days from report to closure) per territory, year and category,
-- over closed incidents; open incidents are counted apart.
with incidents as (
    select
        niveau,
        code_territoire,
        annee,
        categorie,
        date_signalement,
        date_cloture
    from {{ ref('int_incidents__territoires') }}
    where categorie is not null
    union all
    select
        niveau,
        code_territoire,
        annee,
        'total' as categorie,
        date_signalement,
        date_cloture
    from {{ ref('int_incidents__territoires') }}
)

select
    niveau,
    code_territoire,
    cast(annee as integer) as annee,
    categorie,
    cast(count(*) as bigint) as n_incidents,
    cast(count(date_cloture) as bigint) as n_clotures,
    cast(count(*) - count(date_cloture) as bigint) as n_en_cours,
    cast(median(date_cloture - date_signalement) as double) as delai_median_jours,
    cast(quantile_cont(date_cloture - date_signalement, 0.9) as double) as delai_p90_jours,
    cast(avg(date_cloture - date_signalement) as double) as delai_moyen_jours
from incidents
group by niveau, code_territoire, annee, categorie
