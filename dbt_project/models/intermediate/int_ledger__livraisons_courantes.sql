-- Current deliveries: statut 'chargee', and (defensively) only the newest one per ledger key
-- (type_fichier, code_bailleur, periode), newest = latest modifie_le, then file name.
with chargees as (
    select
        *,
        row_number() over (
            partition by type_fichier, coalesce(code_bailleur, ''), coalesce(periode, '')
            order by modifie_le desc, fichier desc, livraison_id desc
        ) as rang_dans_cle
    from {{ ref('stg_ledger__livraisons') }}
    where statut = 'chargee'
)

select
    livraison_id,
    famille,
    type_fichier,
    code_bailleur,
    periode,
    fichier,
    modifie_le,
    sha256,
    case
        when regexp_full_match(periode, '\d{4}-\d{2}')
            then cast(strptime(periode || '-01', '%Y-%m-%d') as date)
    end as mois_fichier,
    case
        when regexp_matches(periode, '^\d{4}') then cast(left(periode, 4) as integer)
    end as annee_fichier,
    row_number() over (order by modifie_le, fichier, livraison_id) as ordre_livraison
from chargees
where rang_dans_cle = 1
