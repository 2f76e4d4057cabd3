{#-
  The monthly cycle recomputes only the months a refresh changed (docs/operations.md,
  "Incremental refreshes"). The refresh passes them as the var `mois_a_recalculer`: a list of
  first days of months ('YYYY-MM-01'), or nothing (none: every month, a full build).

  A model that is incremental by month says, in its YAML, which of its rows a changed month
  reaches: `config.meta.fenetre = {colonne, unite, portee}`, e.g. a 12-month rolling rate and
  its change from the year before reach the month and the 23 after it (`portee: 23`), a yearly
  table reaches the month's year and the next (`unite: annee, portee: 1`). That meta is the
  one home of the rule: the model's delete (pre-hook) and its insert, its dbt tests
  (duckdb__get_where_subquery below), and in Python the publication suites and the copy into
  the publication (pipelines/window.py) all derive from it.
-#}

{#- SQL: `colonne` is among the window's months (or years) shifted by debut..fin units. -#}
{% macro dans_fenetre(colonne, unite='mois', debut=0, fin=0) -%}
    {%- set mois = var('mois_a_recalculer', none) -%}
    {%- if mois is none -%}
        true
    {%- elif mois | length == 0 -%}
        false
    {%- else -%}
        {%- set fenetre -%}
            (select unnest([{% for m in mois %}date '{{ m }}'{% if not loop.last %}, {% endif %}{% endfor %}]) as mois) as f
            cross join range({{ debut }}, {{ fin + 1 }}) as d (k)
        {%- endset -%}
        {%- if unite == 'annee' -%}
            {{ colonne }} in (select distinct cast(year(f.mois) + d.k as integer) from {{ fenetre }})
        {%- else -%}
            {{ colonne }} in (select distinct cast(f.mois + to_months(d.k) as date) from {{ fenetre }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The rows of a model the window reaches (its meta `fenetre`), optionally through an alias. -#}
{% macro fenetre_du_modele(noeud, alias='') -%}
    {%- set f = noeud.config.meta.fenetre -%}
    {{ dans_fenetre(alias ~ f.colonne, f.unite, 0, f.portee) }}
{%- endmacro %}

{#- The incremental model's pre-hook: its rows the window reaches go, before the insert. -#}
{% macro supprimer_fenetre() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ fenetre_du_modele(model) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#-
  dbt tests of a model incremental by month read only the rows the window reaches: the rest
  was tested when it was built and has not changed since (the refresh widens the window to
  every month when that is not sure: pipelines/window.py). dbt's own macro, plus that filter.
-#}
{% macro duckdb__get_where_subquery(relation) -%}
    {%- set filtres = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}{%- do filtres.append('(' ~ where ~ ')') -%}{%- endif -%}
    {%- if execute and var('mois_a_recalculer', none) is not none -%}
        {%- for noeud in graph.nodes.values() -%}
            {%- if noeud.resource_type == 'model' and noeud.alias == relation.identifier
                and noeud.schema == relation.schema and noeud.config.meta.fenetre is defined -%}
                {%- do filtres.append('(' ~ fenetre_du_modele(noeud) ~ ')') -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if filtres -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ filtres | join(' and ') ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
