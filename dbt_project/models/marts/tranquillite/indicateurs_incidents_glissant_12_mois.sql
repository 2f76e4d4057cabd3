-- 12-month rolling incident rate per territory, month and category: incidents of the covered
-- months among the 12 months ending with `mois`, per 1,000 dwellings (dwelling-months / 12),
-- and its change from the same month one year earlier. Incremental: a changed month reaches
-- itself and the 23 months after it, which read the 23 months before them.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ supprimer_fenetre() }}",
) }}

with glissant as (
    select
        niveau,
        code_territoire,
        nom_territoire,
        mois,
        categorie,
        count(*) over w as n_mois_couverts_12_mois,
        sum(n_incidents) over w as n_incidents_12_mois,
        sum(n_logements) over w as n_logements_mois_12_mois
    from {{ ref('indicateurs_incidents_mois') }}
    {% if is_incremental() %}
        where {{ dans_fenetre('mois', 'mois', -23, 23) }}
    {% endif %}
    window w as (
        partition by niveau, code_territoire, categorie
        order by mois
        range between interval 11 month preceding and current row
    )
),

taux as (
    select
        *,
        12000.0 * n_incidents_12_mois / n_logements_mois_12_mois
            as taux_glissant_12_mois_pour_1000_logements
    from glissant
),

-- The rate of the same month one year earlier (NULL when that month is absent): a frame of
-- that one month, in the partitions and order the rolling sums already sorted, rather than a
-- join of the 56.8 M national rows with themselves (the query 117 s -> 103 s nationally, the
-- same rows: docs/operations.md, "Resources").
compare as (
    select
        *,
        first_value(taux_glissant_12_mois_pour_1000_logements) over (
            partition by niveau, code_territoire, categorie
            order by mois
            range between interval 12 month preceding and interval 12 month preceding
        ) as taux_annee_precedente
    from taux
)

select
    t.niveau,
    t.code_territoire,
    t.nom_territoire,
    t.mois,
    t.categorie,
    cast(t.n_mois_couverts_12_mois as bigint) as n_mois_couverts_12_mois,
    cast(t.n_incidents_12_mois as bigint) as n_incidents_12_mois,
    cast(t.n_logements_mois_12_mois as bigint) as n_logements_mois_12_mois,
    cast(t.taux_glissant_12_mois_pour_1000_logements as double)
        as taux_glissant_12_mois_pour_1000_logements,
    cast(t.taux_annee_precedente as double) as taux_glissant_12_mois_annee_precedente,
    cast(
        100.0
        * (t.taux_glissant_12_mois_pour_1000_logements - t.taux_annee_precedente)
        / nullif(t.taux_annee_precedente, 0) as double
    ) as evolution_annuelle_pct
from compare as t
{% if is_incremental() %}
    where {{ fenetre_du_modele(model, 't.') }}
{% endif %}
