{#-
  One row per key from the current deliveries of one reference file type: the newest delivery
  containing the key wins, then its last line. Shared by the yearly per-EPCI reference files.
-#}
{% macro newest_current_rows(staging_model, type_fichier, keys, values) -%}
with lignes as (
    select
        {% for column in keys + values %}s.{{ column }},
        {% endfor %}s.livraison_id,
        row_number() over (
            partition by {% for key in keys %}s.{{ key }}{% if not loop.last %}, {% endif %}{% endfor %}
            order by l.ordre_livraison desc, s.ligne desc
        ) as rang
    from {{ ref(staging_model) }} as s
    inner join {{ ref('int_ledger__livraisons_courantes') }} as l using (livraison_id)
    where l.type_fichier = '{{ type_fichier }}'
)

select {% for column in keys + values %}{{ column }}, {% endfor %}livraison_id
from lignes
where rang = 1
{%- endmacro %}
