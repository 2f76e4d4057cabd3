-- Who covers each EPCI and month: the landlords that delivered the month's incidents file and
-- hold dwellings in the EPCI (their stock applicable to the year), and those dwellings, the
-- denominator of the EPCI's incident rates (`indicateurs_incidents_mois`, same join). The
-- official reports say from it how many landlords each month's figures rest on; it carries no
-- incident count (open table `couverture_epci_mois`, docs/open-data.md).
select
    t.code_territoire as code_epci,
    n.nom_territoire as nom_epci,
    c.mois,
    cast(count(distinct t.code_bailleur) as bigint) as n_bailleurs,
    cast(sum(t.n_logements) as bigint) as n_logements
from {{ ref('int_incidents__couverture') }} as c
inner join {{ ref('int_patrimoine__residences_territoires') }} as t
    on t.code_bailleur = c.code_bailleur
    and t.annee = year(c.mois)
left join {{ ref('int_reference__noms_territoires') }} as n
    on n.niveau = 'epci' and n.code_territoire = t.code_territoire
where t.niveau = 'epci'
group by t.code_territoire, n.nom_territoire, c.mois
having sum(t.n_logements) > 0
