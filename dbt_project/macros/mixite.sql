{#-
  Formulas of article L441-1 indicators, computed exactly in integers.
  The target percentage (possibly non-integer, e.g. 27.5) is scaled to millionths and rounded once:
  objectif_e6 = round(objectif_pct * 1e6). Then, with n the denominator and k the numerator:
    manque   = max(0, ceil(objectif_pct * n / 100) - k)
             = max(0, ceil_div(objectif_e6 * n, 100 * 1e6) - k)
    conforme = 100 * k >= objectif_pct * n  <=>  100 * 1e6 * k >= objectif_e6 * n
  n = 0 gives manque 0 and conforme NULL. No binary float is involved after the scaling.
-#}
{% macro objectif_e6(objectif_pct) -%}
    cast(round(cast({{ objectif_pct }} as decimal(18, 6)) * 1000000) as hugeint)
{%- endmacro %}

{% macro manque_objectif(objectif_pct, n, k) -%}
    case
        when coalesce({{ n }}, 0) = 0 then cast(0 as bigint)
        else cast(greatest(
            0,
            (({{ objectif_e6(objectif_pct) }} * cast({{ n }} as hugeint) + 99999999) // 100000000)
                - cast({{ k }} as hugeint)
        ) as bigint)
    end
{%- endmacro %}

{% macro conforme_objectif(objectif_pct, n, k) -%}
    case
        when coalesce({{ n }}, 0) = 0 then cast(null as boolean)
        else cast({{ k }} as hugeint) * 100000000
            >= {{ objectif_e6(objectif_pct) }} * cast({{ n }} as hugeint)
    end
{%- endmacro %}

{% macro taux_ratio(k, n) -%}
    case when coalesce({{ n }}, 0) = 0 then cast(null as double)
         else cast({{ k }} as double) / cast({{ n }} as double) end
{%- endmacro %}
