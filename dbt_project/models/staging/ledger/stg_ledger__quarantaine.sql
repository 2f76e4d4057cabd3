select
    cast(livraison_id as bigint) as livraison_id,
    fichier,
    ligne,
    regle,
    motif,
    contenu
from {{ source('raw', 'quarantaine') }}
