-- Which stock applies to each year a landlord has deliveries for (contract section 3): its
-- stock file of the latest year <= that year, else its earliest (the stock at 1 January
-- arrives months after the first incidents of the year). A function of the current
-- deliveries only, never of their order of arrival: a better stock arriving later moves
-- every year it applies to, and everything built on int_patrimoine__residences follows.
with stocks as (
    select distinct
        code_bailleur,
        annee
    from {{ ref('int_patrimoine__logements') }}
),

annees as (
    select distinct
        code_bailleur,
        annee_fichier as annee
    from {{ ref('int_ledger__livraisons_courantes') }}
    where code_bailleur is not null and annee_fichier is not null
)

select
    a.code_bailleur,
    a.annee,
    coalesce(
        max(s.annee) filter (where s.annee <= a.annee),
        min(s.annee)
    ) as annee_patrimoine
from annees as a
inner join stocks as s
    on s.code_bailleur = a.code_bailleur
group by a.code_bailleur, a.annee
