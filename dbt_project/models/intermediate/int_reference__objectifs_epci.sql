-- Locally agreed Q1 target per (EPCI, year): the newest current delivery containing it wins.
{{ newest_current_rows(
    'stg_reference__objectifs_epci', 'objectifs_epci', ['code_epci', 'annee'],
    ['objectif_q1_hors_qpv_pct'],
) }}
