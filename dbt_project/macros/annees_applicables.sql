{#-
  The indicator years each yearly reference file applies to (contract section 2.1): for year
  Y, the file of the latest year <= Y, or the earliest file when none is. `fichiers` is a
  relation with one row per file year (`annee_fichier`, `livraison_id`); the result adds
  `annee_debut` and `annee_fin` (0 for the earliest file, 9999 for the latest). The one place
  that says it: the EPCI and QPV compositions both use it.
-#}
{% macro annees_applicables(fichiers) -%}
select
    annee_fichier,
    livraison_id,
    case
        when row_number() over (order by annee_fichier) = 1 then 0
        else annee_fichier
    end as annee_debut,
    coalesce(lead(annee_fichier) over (order by annee_fichier) - 1, 9999) as annee_fin
from {{ fichiers }}
{%- endmacro %}
