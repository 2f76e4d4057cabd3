-- Yearly incident indicators per territory and category, from the monthly table, with the
-- change from the previous year. Only covered months count: dwellings are summed as
-- dwelling-months so that a partly covered year stays comparable once annualised.
-- Incremental: a changed month reaches its year and the next (its change from the year before).
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ supprimer_fenetre() }}",
) }}

with annuel as (
    select
        niveau,
        code_territoire,
        nom_territoire,
        cast(year(mois) as integer) as annee,
        categorie,
        count(*) as n_mois_couverts,
        sum(n_incidents) as n_incidents,
        sum(n_logements) as n_logements_mois,
        avg(n_logements) as n_logements_moyen
    from {{ ref('indicateurs_incidents_mois') }}
    {% if is_incremental() %}
        where {{ dans_fenetre('year(mois)', 'annee', -1, 1) }}
    {% endif %}
    group by niveau, code_territoire, nom_territoire, year(mois), categorie
),

taux as (
    select
        *,
        1000.0 * n_incidents / n_logements_moyen as taux_pour_1000_logements,
        12000.0 * n_incidents / n_logements_mois as taux_annualise_pour_1000_logements
    from annuel
)

select
    t.niveau,
    t.code_territoire,
    t.nom_territoire,
    t.annee,
    t.categorie,
    cast(t.n_mois_couverts as bigint) as n_mois_couverts,
    cast(t.n_incidents as bigint) as n_incidents,
    cast(t.n_logements_moyen as double) as n_logements_moyen,
    cast(t.taux_pour_1000_logements as double) as taux_pour_1000_logements,
    cast(t.taux_annualise_pour_1000_logements as double) as taux_annualise_pour_1000_logements,
    cast(p.n_incidents as bigint) as n_incidents_annee_precedente,
    cast(p.taux_annualise_pour_1000_logements as double) as taux_annualise_annee_precedente,
    cast(
        100.0 * (t.taux_annualise_pour_1000_logements - p.taux_annualise_pour_1000_logements)
        / nullif(p.taux_annualise_pour_1000_logements, 0) as double
    ) as evolution_taux_annualise_pct,
    -- Complete when every landlord covering the year delivered its 12 monthly files.
    coalesce(c.annee_complete, false) as annee_complete
from taux as t
left join taux as p
    on p.niveau = t.niveau
    and p.code_territoire = t.code_territoire
    and p.categorie = t.categorie
    and p.annee = t.annee - 1
left join {{ ref('periodes_couvertes') }} as c
    on c.type_fichier = 'incidents' and c.annee = t.annee
{% if is_incremental() %}
    where {{ fenetre_du_modele(model, 't.') }}
{% endif %}
