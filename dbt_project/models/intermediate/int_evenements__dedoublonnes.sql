-- Police / prefecture events of current deliveries, one per id_evenement (newest delivery, then
-- last line), located: commune and QPV as delivered, EPCI and département from the EPCI file
-- applicable to the event's year, residence when the landlord and residence are given.
with courants as (
    {{ ranked_current_rows('stg_police__evenements', 'evenements', ['id_evenement']) }}
)

select
    e.id_evenement,
    e.date_evenement,
    cast(date_trunc('month', e.date_evenement) as date) as mois,
    cast(year(e.date_evenement) as integer) as annee,
    e.type_evenement,
    e.duree_jours,
    e.code_commune,
    e.code_qpv,
    e.code_bailleur,
    e.id_residence,
    case
        when e.code_bailleur is not null and e.id_residence is not null
            then e.code_bailleur || ':' || e.id_residence
    end as code_residence,
    r.code_epci,
    r.code_departement,
    e.livraison_id,
    e.ligne
from courants as e
left join {{ ref('int_reference__epci_communes') }} as r
    on r.code_commune = e.code_commune
    and year(e.date_evenement) between r.annee_debut and r.annee_fin
where e.rang = 1
