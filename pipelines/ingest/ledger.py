"""The delivery ledger `raw.livraisons`: its row, its statuses and the questions asked of it.

Every inbox file is one delivery and one ledger row, written in the same transaction as its
rows. The row, the status values and each predicate over them ("blocked and waiting",
"to be read again") are defined here once: the loader, the quality gate, the command line,
the publication and the dbt staging model all ask this module (or are tested against it).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """What became of a delivery (`raw.livraisons.statut`, docs/operations.md).

    `chargee`: loaded, current for its key (kind, landlord, period). `remplacee`: loaded, a
    newer delivery for the same key exists. `doublon`: the same bytes as an earlier delivery
    of the same key, not loaded again. `rejetee`: unreadable as a whole (reason in `motif`).
    `bloquee`: readable but it failed a blocking expectation of its family's suite: nothing
    of it is loaded and it blocks publication until a newer delivery for its key is loaded.
    """

    LOADED = "chargee"
    SUPERSEDED = "remplacee"
    DUPLICATE = "doublon"
    REJECTED = "rejetee"
    BLOCKED = "bloquee"
