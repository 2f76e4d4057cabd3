{#-
  Rows of the current deliveries of one file type, ranked within each key: `rang` = 1 is the
  row that counts (the newest delivery containing the key, then its last line; `first_order`
  puts a column of the row before the delivery order, e.g. the SSMSI edition). The one place
  that says which delivered row wins: incidents, events, procedures, SSMSI and the yearly
  per-EPCI reference files all use it.
-#}
{% macro ranked_current_rows(staging_model, type_fichier, keys, first_order=none, ledger_columns=[]) -%}
select
    s.*,
    {% for column in ledger_columns %}l.{{ column }},
    {% endfor %}row_number() over (
        partition by {% for key in keys %}s.{{ key }}{% if not loop.last %}, {% endif %}{% endfor %}
        order by {% if first_order %}s.{{ first_order }} desc, {% endif %}l.ordre_livraison desc, s.ligne desc
    ) as rang
from {{ ref(staging_model) }} as s
inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
where l.type_fichier = '{{ type_fichier }}'
{%- endmacro %}

{#- One row per key, with the given columns: the yearly per-EPCI reference files. -#}
{% macro newest_current_rows(staging_model, type_fichier, keys, values) -%}
with lignes as (
    {{ ranked_current_rows(staging_model, type_fichier, keys) }}
)

select {% for column in keys + values %}{{ column }}, {% endfor %}livraison_id
from lignes
where rang = 1
{%- endmacro %}
