"""Delivery-level quality gate: one profile row per delivery, validated by the family's suite.

Row rules (pipelines.ingest.validate) quarantine a bad *row* and load the rest. What they
cannot see is a bad *delivery*: an extract truncated to half its usual size, a file where
most rows break the contract (a shifted column, the wrong month), a stock missing an agency.
Those are judged here, before anything of the delivery enters a raw table, by the GX suite
`data_quality/suites/livraisons_<family>.yml` run over one profile row per delivery. A
delivery failing a blocking expectation is held: not loaded (ledger statut `bloquee`) until a
newer delivery for the same key replaces it (or it passes on a later refresh, e.g. once the
missing stock has arrived: held deliveries are examined again on every refresh). The
publication goes ahead meanwhile with the key's last accepted delivery (one partner never
stops the country), or is blocked by it with `TRANQUILLITY_GATE=strict`.

Profiles are computed in polars from the validation result, so the gate costs a few
milliseconds per delivery whatever the delivery's size (62,000 files nationally). GX judges
only the profiles that could fail (pipelines.quality.suspects): a batch where none could
needs no GX run; every profile of the pass is shown to GX once at its end, for the Data Docs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from pipelines.audit import CheckOutcome
from pipelines.ingest.ledger import LedgerRow
from pipelines.quality.runner import ExpectationResult, QualityRun, new_results
from pipelines.quality.suites import suite
from pipelines.quality.suspects import suspect_rows

DATASET = "profils"

# An incident citing a residence missing from the stock applicable to its year: loaded (dbt
# judges it again at every build), but its share still weighs on the delivery.
RESIDENCE_OUTSIDE_STOCK = "residence_hors_patrimoine"

# Shares of rows quarantined (or flagged), per family of row rule (first failing rule of each row).
RULE_SHARES = {
    "part_valeur_manquante": ("valeur_manquante",),
    "part_type_invalide": ("type_invalide", "date_invalide", "format_invalide"),
    "part_valeur_non_admise": ("valeur_non_admise",),
    "part_hors_bornes": ("hors_bornes",),
    "part_date_hors_periode": ("date_hors_periode",),
    "part_dates_incoherentes": ("dates_incoherentes",),
    "part_doublon_dans_fichier": ("doublon_dans_fichier",),
    "part_residence_hors_patrimoine": (RESIDENCE_OUTSIDE_STOCK,),
}

PROFILE_SCHEMA: dict[str, Any] = {
    "livraison_id": pl.Int64,
    "fichier": pl.String,
    "famille": pl.String,
    "type_fichier": pl.String,
    "code_bailleur": pl.String,
    "periode": pl.String,
    "lignes_lues": pl.Int64,
    "lignes_chargees": pl.Int64,
    "lignes_quarantaine": pl.Int64,
    "part_quarantaine": pl.Float64,
    **{name: pl.Float64 for name in RULE_SHARES},
    "n_colonnes_ignorees": pl.Int64,
    "lignes_livraison_remplacee": pl.Int64,
    "ratio_livraison_remplacee": pl.Float64,
    "lignes_periode_precedente": pl.Int64,
    "ratio_periode_precedente": pl.Float64,
}


@dataclass(frozen=True)
class Previous:
    """Row counts of the deliveries a new one is compared with."""

    same_key: int | None  # the delivery it replaces (same kind, landlord and period)
    previous_period: int | None  # latest delivery of the series for an earlier period


def profile(row: LedgerRow, regles: Iterable[str], previous: Previous) -> dict[str, Any]:
    """The profile of one validated delivery (ledger counts + rule shares + comparisons)."""
    read = row.lignes_lues
    counts = Counter(regles)

    def share(n: int) -> float:
        return n / read if read else 0.0

    def ratio(before: int | None) -> float | None:
        return read / before if before else None

    ignored = row.colonnes_ignorees
    return {
        "livraison_id": row.livraison_id,
        "fichier": row.fichier,
        "famille": row.famille,
        "type_fichier": row.type_fichier,
        "code_bailleur": row.code_bailleur,
        "periode": row.periode,
        "lignes_lues": read,
        "lignes_chargees": row.lignes_chargees,
        "lignes_quarantaine": row.lignes_quarantaine,
        "part_quarantaine": share(row.lignes_quarantaine),
        **{name: share(sum(counts[code] for code in codes)) for name, codes in RULE_SHARES.items()},
        "n_colonnes_ignorees": len(ignored.split(", ")) if ignored else 0,
        "lignes_livraison_remplacee": previous.same_key,
        "ratio_livraison_remplacee": ratio(previous.same_key),
        "lignes_periode_precedente": previous.previous_period,
        "ratio_periode_precedente": ratio(previous.previous_period),
    }


class DeliveryGate:
    """Accumulates the verdicts of one family's ingestion pass (several flush batches)."""

    def __init__(self, family: str, run: QualityRun | None, *, where_the_data_is: bool = True):
        self.family = family
        self.where_the_data_is = where_the_data_is  # False: GX sees every profile (tests)
        self.run = run or QualityRun(None)  # no Data Docs outside a Dagster run
        self.suite = suite(f"livraisons_{family}")
        self.dataset = self.suite.dataset(DATASET)
        self.results: dict[str, ExpectationResult] = new_results(self.suite, self.dataset, family)
        self.blocked_by: dict[str, set[int]] = {}
        self.judged: list[pl.DataFrame] = []

    def judge(self, profiles: list[dict[str, Any]]) -> dict[int, str]:
        """Validate a batch of profiles; the blocked deliveries with the reason, in French."""
        if not profiles:
            return {}
        frame = pl.DataFrame(profiles, schema=PROFILE_SCHEMA)
        self.judged.append(frame)
        batch = new_results(self.suite, self.dataset, self.family, keep_all=True)
        suspect = suspect_rows(frame, self.dataset) if self.where_the_data_is else None
        if suspect is not None and suspect.height == 0:
            # No profile could fail: GX would pass them all (about a second per run, 90
            # batches nationally). They are shown to GX once, for the Data Docs (`document`).
            for result in batch.values():
                result.merge(True, 0, [])
        else:
            self.run.validate(
                self.suite, self.dataset, frame if suspect is None else suspect, batch
            )
        blocked: dict[int, list[str]] = {}
        for result in batch.values():
            self.results[result.expectation.id].merge(
                result.success, result.unexpected, result.examples
            )
            if result.error:
                self.results[result.expectation.id].error = result.error
            if not result.expectation.blocking or result.success:
                continue
            for example in result.failing_rows:
                lid = example.get("livraison_id")
                if lid is None:
                    continue
                blocked.setdefault(int(lid), []).append(_reason(result.expectation, example))
                self.blocked_by.setdefault(result.expectation.id, set()).add(int(lid))
        return {lid: " ; ".join(reasons) for lid, reasons in blocked.items()}

    def document(self) -> None:
        """Every profile of the pass shown to GX once, for the run's Data Docs (the verdicts
        are `judge`'s, batch by batch, before anything is written)."""
        if self.run.docs_dir is None or not self.judged:
            return
        frame = pl.concat(self.judged)
        self.run.validate(
            self.suite, self.dataset, frame, new_results(self.suite, self.dataset, self.family)
        )

    def outcomes(self, waiting: set[int], strict: bool = False) -> list[CheckOutcome]:
        """Outcomes of the pass. A blocking expectation failed only by deliveries no longer
        waiting (replaced by a newer loaded one, e.g. a bad file and its correction in the
        same inbox, or accepted by an operator) does not block: it is reported as a warning.
        Nor does one failed by held deliveries unless `strict`: they are not loaded, and the
        publication goes ahead without them (one partner never stops the country)."""
        found = []
        for result in self.results.values():
            outcome = result.outcome()
            ids = self.blocked_by.get(result.expectation.id, set())
            if outcome.statut == "fail" and ids and not ids & waiting:
                outcome = replace(
                    outcome,
                    statut="warn",
                    message=f"{outcome.message} (livraison déjà remplacée par une plus "
                    "récente, ou acceptée par dérogation: tranquillity accept)",
                )
            elif outcome.statut == "fail" and ids and not strict:
                outcome = replace(
                    outcome,
                    statut="warn",
                    message=f"{outcome.message} (livraison retenue, non chargée : la "
                    "publication se fait avec la dernière livraison acceptée de sa clé)",
                )
            found.append(outcome)
        return found


def _reason(expectation: Any, example: dict[str, Any]) -> str:
    column = expectation.kwargs.get("column")
    value = example.get(column) if column else None
    shown = f" ({column} = {_fmt(value)})" if column and value is not None else ""
    return f"contrôle {expectation.id}{shown}: {expectation.why}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
