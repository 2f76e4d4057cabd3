-- Hall severity level per residence and quarter (vert / jaune / orange / rouge), in the spirit
-- of the USH incivility observatory. Each indicator below is compared with the thresholds of the
-- seed `seuils_gravite_halls`; the level is the highest one with at least one threshold reached,
-- `vert` when none is. Residences of the year's stock of landlords covering at least one month
-- of the quarter; incidents counted over the covered months.
with couverture as (
    select
        code_bailleur,
        cast(date_trunc('quarter', mois) as date) as trimestre,
        count(*) as n_mois_couverts
    from {{ ref('int_incidents__couverture') }}
    group by code_bailleur, date_trunc('quarter', mois)
),

residences as (
    select
        r.code_bailleur,
        r.id_residence,
        r.code_residence,
        c.trimestre,
        c.n_mois_couverts,
        r.code_commune,
        r.code_qpv,
        r.n_logements
    from {{ ref('int_patrimoine__residences') }} as r
    inner join couverture as c
        on c.code_bailleur = r.code_bailleur and year(c.trimestre) = r.annee
),

incidents as (
    select
        code_bailleur,
        id_residence,
        cast(date_trunc('quarter', mois) as date) as trimestre,
        count_if(lieu in ('hall', 'cage_escalier', 'cave', 'local_commun'))
            as n_incidents_parties_communes,
        count_if(
            lieu in ('hall', 'cage_escalier', 'cave', 'local_commun')
            and categorie in ('degradation', 'occupation_hall', 'depot_sauvage', 'incendie')
        ) as n_degradations_occupations,
        count_if(lieu in ('hall', 'cage_escalier', 'cave', 'local_commun') and gravite >= 3)
            as n_incidents_graves_parties_communes,
        count_if(categorie = 'trafic_stupefiants') as n_trafic_constate,
        count_if(categorie = 'agression_personnel') as n_agressions_personnel,
        count_if(categorie = 'agression_personnel' and gravite >= 3)
            as n_agressions_personnel_graves
    from {{ ref('int_incidents__localises') }}
    group by code_bailleur, id_residence, date_trunc('quarter', mois)
),

evenements as (
    select
        code_bailleur,
        id_residence,
        cast(date_trunc('quarter', mois) as date) as trimestre,
        count_if(type_evenement = 'intervention_police') as n_interventions_police,
        count_if(
            type_evenement in (
                'interdiction_paraitre', 'fermeture_administrative', 'injonction_resiliation_bail'
            )
        ) as n_mesures_police_prefet,
        count_if(type_evenement = 'point_deal_demantele') as n_points_deal_demanteles
    from {{ ref('int_evenements__dedoublonnes') }}
    where code_residence is not null
    group by code_bailleur, id_residence, date_trunc('quarter', mois)
),

mesures as (
    select
        r.*,
        cast(coalesce(i.n_incidents_parties_communes, 0) as bigint) as n_incidents_parties_communes,
        cast(coalesce(i.n_degradations_occupations, 0) as bigint) as n_degradations_occupations,
        cast(coalesce(i.n_incidents_graves_parties_communes, 0) as bigint)
            as n_incidents_graves_parties_communes,
        cast(coalesce(i.n_trafic_constate, 0) as bigint) as n_trafic_constate,
        cast(coalesce(i.n_agressions_personnel, 0) as bigint) as n_agressions_personnel,
        cast(coalesce(i.n_agressions_personnel_graves, 0) as bigint)
            as n_agressions_personnel_graves,
        cast(coalesce(e.n_interventions_police, 0) as bigint) as n_interventions_police,
        cast(coalesce(e.n_mesures_police_prefet, 0) as bigint) as n_mesures_police_prefet,
        cast(coalesce(e.n_points_deal_demanteles, 0) as bigint) as n_points_deal_demanteles
    from residences as r
    left join incidents as i
        on i.code_bailleur = r.code_bailleur
        and i.id_residence = r.id_residence
        and i.trimestre = r.trimestre
    left join evenements as e
        on e.code_bailleur = r.code_bailleur
        and e.id_residence = r.id_residence
        and e.trimestre = r.trimestre
),

valeurs as (
    unpivot (
        select
            code_bailleur,
            id_residence,
            trimestre,
            n_incidents_parties_communes,
            n_degradations_occupations,
            n_incidents_graves_parties_communes,
            n_trafic_constate,
            n_agressions_personnel,
            n_agressions_personnel_graves,
            n_interventions_police,
            n_mesures_police_prefet,
            n_points_deal_demanteles
        from mesures
    )
    -- sqlfluff's DuckDB grammar does not indent the list of the simplified unpivot's `on`.
    on -- noqa: disable=LT02
        n_incidents_parties_communes,
        n_degradations_occupations,
        n_incidents_graves_parties_communes,
        n_trafic_constate,
        n_agressions_personnel,
        n_agressions_personnel_graves,
        n_interventions_police,
        n_mesures_police_prefet,
        n_points_deal_demanteles
    into name indicateur value valeur -- noqa: enable=LT02
),

declenches as (
    select
        v.code_bailleur,
        v.id_residence,
        v.trimestre,
        s.niveau,
        s.rang,
        s.indicateur,
        s.seuil_min,
        v.valeur
    from valeurs as v
    inner join {{ ref('seuils_gravite_halls') }} as s
        on s.indicateur = v.indicateur and s.seuil_min <= v.valeur
),

rang_max as (
    select
        code_bailleur,
        id_residence,
        trimestre,
        max(rang) as rang
    from declenches
    group by code_bailleur, id_residence, trimestre
),

criteres as (
    select
        d.code_bailleur,
        d.id_residence,
        d.trimestre,
        d.rang,
        min(d.niveau) as niveau,
        string_agg(
            d.indicateur || ' = ' || d.valeur || ' >= ' || d.seuil_min, '; ' order by d.indicateur
        ) as criteres
    from declenches as d
    inner join rang_max as m
        on m.code_bailleur = d.code_bailleur and m.id_residence = d.id_residence
        and m.trimestre = d.trimestre and m.rang = d.rang
    group by d.code_bailleur, d.id_residence, d.trimestre, d.rang
)

select
    m.code_bailleur,
    nb.nom_territoire as nom_bailleur,
    m.id_residence,
    m.code_residence,
    nr.nom_territoire as nom_residence,
    m.trimestre,
    cast(year(m.trimestre) as integer) as annee,
    cast(quarter(m.trimestre) as integer) as numero_trimestre,
    cast(m.n_mois_couverts as bigint) as n_mois_couverts,
    m.code_commune,
    nc.nom_territoire as nom_commune,
    m.code_qpv,
    nq.nom_territoire as nom_qpv,
    m.n_logements,
    m.n_incidents_parties_communes,
    m.n_degradations_occupations,
    m.n_incidents_graves_parties_communes,
    m.n_trafic_constate,
    m.n_agressions_personnel,
    m.n_agressions_personnel_graves,
    m.n_interventions_police,
    m.n_mesures_police_prefet,
    m.n_points_deal_demanteles,
    coalesce(c.niveau, 'vert') as niveau_gravite,
    cast(coalesce(c.rang, 0) as integer) as rang_gravite,
    c.criteres as criteres_declenches
from mesures as m
left join criteres as c
    on c.code_bailleur = m.code_bailleur
    and c.id_residence = m.id_residence
    and c.trimestre = m.trimestre
left join {{ ref('int_reference__noms_territoires') }} as nb
    on nb.niveau = 'bailleur' and nb.code_territoire = m.code_bailleur
left join {{ ref('int_reference__noms_territoires') }} as nr
    on nr.niveau = 'residence' and nr.code_territoire = m.code_residence
left join {{ ref('int_reference__noms_territoires') }} as nc
    on nc.niveau = 'commune' and nc.code_territoire = m.code_commune
left join {{ ref('int_reference__noms_territoires') }} as nq
    on nq.niveau = 'qpv' and nq.code_territoire = m.code_qpv
