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
    i.niveau,
    i.code_territoire,
    n.nom_territoire,
    cast(i.annee as integer) as annee,
    i.categorie,
    cast(count(*) as bigint) as n_incidents,
    cast(count(i.date_cloture) as bigint) as n_clotures,
    cast(count(*) - count(i.date_cloture) as bigint) as n_en_cours,
    cast(median(i.date_cloture - i.date_signalement) as double) as delai_median_jours,
    cast(quantile_cont(i.date_cloture - i.date_signalement, 0.9) as double) as delai_p90_jours,
    cast(avg(i.date_cloture - i.date_signalement) as double) as delai_moyen_jours
from incidents as i
left join {{ ref('int_reference__noms_territoires') }} as n
    on n.niveau = i.niveau and n.code_territoire = i.code_territoire
group by i.niveau, i.code_territoire, n.nom_territoire, i.annee, i.categorie
