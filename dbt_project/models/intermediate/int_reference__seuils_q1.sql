-- One Q1 threshold per (EPCI, year): the newest current delivery containing it wins.
{{ newest_current_rows(
    'stg_reference__seuils_q1', 'seuils_q1', ['code_epci', 'annee'], ['seuil_q1_euros_uc'],
) }}
