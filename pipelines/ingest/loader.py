"""Inbox -> raw tables, with the delivery ledger.

Each inbox file is one delivery. It is recorded in `raw.livraisons` (family, kind, landlord,
period, file, sha256, rows read / loaded / quarantined, status) in the same transaction as
its rows, so the ledger never claims rows that are not there. Deliveries are processed in
the contract's order (modification time, then name), stock files before incident files.

Statuses: `chargee` (current for its key), `remplacee` (a newer delivery for the same key
(kind, landlord, period) exists), `doublon` (same bytes as an earlier delivery of the same kind,
landlord and period: not loaded again), `rejetee` (unreadable as a whole: the reason is in
`motif`), `bloquee` (readable, but it failed a blocking expectation of its family's quality
suite, see pipelines.quality.deliveries: nothing of it is loaded, its quarantined rows are kept
for the partner, and it blocks publication until a newer delivery for its key is loaded, which
sets `remplacee_par`). A blocked delivery is examined again on every refresh.

Rows read = rows loaded + rows quarantined for `chargee` and `remplacee`; a `bloquee` delivery
loads nothing (its `lignes_chargees` is 0), a `rejetee` one reads nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.audit import CheckOutcome
from pipelines.ingest import ssmsi
from pipelines.ingest.reader import RejectedFile, read_delivery
from pipelines.ingest.specs import (
    ALL_KINDS,
    KIND_ORDER,
    SSMSI_KIND,
    DeliveryKind,
    Recognised,
    UnreadableName,
    name_hint,
    recognise,
)
from pipelines.ingest.validate import Rule, Validated, validate
from pipelines.quality.deliveries import DeliveryGate, Previous, profile
from pipelines.quality.runner import QualityRun
from pipelines.settings import FAMILIES, Home

SQL_TYPES = {
    "text": "VARCHAR",
    "int": "BIGINT",
    "decimal": "DOUBLE",
    "date": "DATE",
    "enum": "VARCHAR",
    "oui_non": "BOOLEAN",
}

LEDGER_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.livraisons (
    livraison_id BIGINT PRIMARY KEY,
    famille VARCHAR NOT NULL,
    type_fichier VARCHAR,
    code_bailleur VARCHAR,
    periode VARCHAR,
    fichier VARCHAR NOT NULL,
    taille_octets BIGINT,
    modifie_le TIMESTAMP,
    sha256 VARCHAR NOT NULL,
    recue_le TIMESTAMP NOT NULL,
    dialecte VARCHAR,
    lignes_lues BIGINT NOT NULL,
    lignes_chargees BIGINT NOT NULL,
    lignes_quarantaine BIGINT NOT NULL,
    statut VARCHAR NOT NULL,
    motif VARCHAR,
    colonnes_ignorees VARCHAR,
    remplacee_par BIGINT,
    doublon_de BIGINT,
    remarques VARCHAR
);
-- Added after the first release: warehouses built before get it here.
ALTER TABLE raw.livraisons ADD COLUMN IF NOT EXISTS remarques VARCHAR;
CREATE TABLE IF NOT EXISTS raw.derogations (
    fichier VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    motif VARCHAR NOT NULL,
    accordee_par VARCHAR,
    accordee_le TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.quarantaine (
    livraison_id BIGINT NOT NULL,
    fichier VARCHAR NOT NULL,
    ligne BIGINT NOT NULL,
    regle VARCHAR NOT NULL,
    motif VARCHAR NOT NULL,
    contenu VARCHAR
);
"""

LEDGER_COLUMNS = (
    "livraison_id",
    "famille",
    "type_fichier",
    "code_bailleur",
    "periode",
    "fichier",
    "taille_octets",
    "modifie_le",
    "sha256",
    "recue_le",
    "dialecte",
    "lignes_lues",
    "lignes_chargees",
    "lignes_quarantaine",
    "statut",
    "motif",
    "colonnes_ignorees",
    "remplacee_par",
    "doublon_de",
    "remarques",
)

# Flush accumulated rows to DuckDB in large batches: thousands of small monthly files would
# otherwise pay a transaction each.
FLUSH_ROWS = 1_000_000
FLUSH_FILES = 1_000


def raw_columns(kind: DeliveryKind) -> dict[str, str]:
    """Raw table layout: delivery id, line number, landlord (from the file name), typed columns."""
    if kind is SSMSI_KIND:
        columns = dict(ssmsi.RAW_COLUMNS)
    else:
        columns = {c.column: SQL_TYPES[c.type] for c in kind.kept_columns}
    head = {"livraison_id": "BIGINT", "ligne": "BIGINT"}
    if kind.landlord_in_name:
        head["code_bailleur"] = "VARCHAR"
    return head | columns


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema (idempotent): ledger, quarantine and one table per kind."""
    con.execute(LEDGER_DDL)
    for kind in (*ALL_KINDS, SSMSI_KIND):
        expected = raw_columns(kind)
        columns = ", ".join(f"{name} {sql}" for name, sql in expected.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS raw.{kind.table} ({columns})")
        _upgrade(con, kind.table, expected)


# Type changes a warehouse built by an earlier version may need, all lossless widenings
# (e.g. SSMSI dwellings were BIGINT before their published decimals were kept).
_WIDENINGS = {("BIGINT", "DOUBLE"), ("INTEGER", "BIGINT"), ("INTEGER", "DOUBLE")}


def _upgrade(con: duckdb.DuckDBPyConnection, table: str, expected: dict[str, str]) -> None:
    """Bring a raw table of an older warehouse to the current layout without losing a row:
    new columns are added (NULL for old rows), widened types are altered in place."""
    present = {
        name: sql_type
        for name, sql_type in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = ?",
            [table],
        ).fetchall()
    }
    for name, sql_type in expected.items():
        if name not in present:
            con.execute(f"ALTER TABLE raw.{table} ADD COLUMN {name} {sql_type}")
        elif (present[name], sql_type) in _WIDENINGS:
            con.execute(f"ALTER TABLE raw.{table} ALTER {name} TYPE {sql_type}")


@dataclass
class FamilyReport:
    """What one ingestion pass did for one family (printed by `tranquillity refresh`)."""

    family: str
    new_deliveries: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    # Deliveries blocked by the quality suite in this pass, and every blocked delivery of the
    # family still waiting for a replacement (this pass's included).
    blocked: list[tuple[str, str]] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)
    # Files of the family folder that are not deliveries (in a subfolder, unreadable to hash):
    # not in the ledger, said in the refresh summary.
    ignored: list[tuple[str, str]] = field(default_factory=list)
    # Deliveries an unexpected error stopped (rejected, examined again at the next refresh).
    errors: list[tuple[str, str]] = field(default_factory=list)
    outcomes: list[CheckOutcome] = field(default_factory=list)

    def as_metadata(self) -> dict[str, int | str]:
        return {
            "new_deliveries": self.new_deliveries,
            "deliveries_loaded": self.loaded,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "blocked": len(self.blocked),
            "blocked_waiting": len(self.waiting),
            "ignored_files": len(self.ignored),
            "unexpected_errors": len(self.errors),
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "rejections": "\n".join(f"{f}: {r}" for f, r in self.rejected) or "none",
        }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Candidate:
    path: Path
    relative: str
    mtime: datetime
    size: int
    recognised: Recognised | None
    # Why the name is not a delivery's (None: recognised, or no kind's name at all).
    name_problem: str | None = None

    @property
    def order(self) -> tuple[int, datetime, str]:
        kind_rank = KIND_ORDER[self.recognised.kind.name] if self.recognised else -1
        return (kind_rank, self.mtime, self.path.name)


class FamilyIngestion:
    """One pass over one inbox family folder; loads every file not yet in the ledger."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        home: Home,
        family: str,
        key: bytes,
        quality: QualityRun | None = None,
    ):
        self.con = con
        self.home = home
        self.family = family
        self.key = key
        self.report = FamilyReport(family)
        self.gate = DeliveryGate(family, quality)
        self._ledger_rows: list[dict[str, object]] = []
        self._tables: dict[str, list[tuple[int, pl.DataFrame]]] = defaultdict(list)
        self._quarantine: list[pl.DataFrame] = []
        self._profiles: list[dict[str, object]] = []
        # Periods of each series waiting in the batch, and what each delivery overwrote in
        # the series (restored when the gate blocks it).
        self._pending_periods: dict[tuple[str | None, str | None], set[str]] = defaultdict(set)
        self._before: dict[int, tuple[tuple[str | None, str | None], str, int | None]] = {}
        self._pending_rows = 0
        self._residences: dict[tuple[str, str], frozenset[str]] = {}
        known = con.execute(
            "SELECT fichier, sha256, livraison_id, type_fichier, code_bailleur, periode, "
            "(statut = 'bloquee' AND remplacee_par IS NULL) "
            "OR (statut = 'rejetee' AND starts_with(motif, ?)) AS en_attente "
            "FROM raw.livraisons",
            [UNEXPECTED],
        ).fetchall()
        # A blocked delivery still waiting is examined again (under its ledger id): what
        # blocked it may have been fixed since (its stock delivered, a tolerance revised).
        # So is a delivery an unexpected error stopped: the error may be transient, or fixed.
        self._retry_ids = {(f, s): lid for f, s, lid, *_, waiting in known if waiting}
        self._retried: list[int] = []
        # Blocked deliveries an operator accepted (`tranquillity accept`): loaded despite
        # their blocking failures, which are then reported as warnings.
        self._accepted = {
            (f, sha): motif
            for f, sha, motif in con.execute(
                "SELECT fichier, sha256, motif FROM raw.derogations"
            ).fetchall()
        }
        self._derogations: dict[int, str] = {}
        self._seen_files = {(f, s) for f, s, *_, waiting in known if not waiting}
        # A duplicate is the same bytes delivered again *for the same key*: two header-only
        # files of different months (or landlords) are identical but are two deliveries.
        self._first_by_content: dict[tuple[str, str | None, str | None, str | None], int] = {}
        for _f, sha, lid, kind, landlord, period, waiting in sorted(known, key=lambda r: r[2]):
            if not waiting:
                self._first_by_content.setdefault(_content_key(sha, kind, landlord, period), lid)
        # Row counts of loaded deliveries per series (kind, landlord) and period, newest last:
        # the base of the quality suite's "row count against the previous delivery".
        self._series: dict[tuple[str | None, str | None], dict[str, int]] = defaultdict(dict)
        for kind, landlord, period, rows in con.execute(
            "SELECT type_fichier, code_bailleur, periode, lignes_lues FROM raw.livraisons "
            "WHERE statut = 'chargee' ORDER BY modifie_le, fichier"
        ).fetchall():
            self._series[(kind, landlord)][period or ""] = int(rows)
        self._next_id = (
            int(
                con.execute("SELECT coalesce(max(livraison_id), 0) FROM raw.livraisons").fetchall()[
                    0
                ][0]
            )
            + 1
        )

    # -- discovery -----------------------------------------------------------------------
    def candidates(self) -> list[_Candidate]:
        inbox = scan_inbox(self.home, self.family)
        self.report.ignored.extend(inbox.ignored)
        found = []
        for path in inbox.deliveries[self.family]:
            relative = path.relative_to(self.home.inbox).as_posix()
            try:
                stat = path.stat()
            except OSError as exc:  # vanished or unreadable since the listing
                self.report.ignored.append((relative, f"illisible: {exc.strerror}"))
                continue
            try:
                recognised, problem = recognise(self.family, path.name), None
            except UnreadableName as exc:
                recognised, problem = None, str(exc)
            found.append(
                _Candidate(
                    path=path,
                    relative=relative,
                    mtime=datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None),
                    size=stat.st_size,
                    recognised=recognised,
                    name_problem=problem,
                )
            )
        return sorted(found, key=lambda c: c.order)

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> FamilyReport:
        current_kind: str | None = None
        for candidate in self.candidates():
            kind_name = candidate.recognised.kind.name if candidate.recognised else None
            if kind_name != current_kind:
                # Incidents are checked against stock: the stock must be flushed first.
                self.flush()
                current_kind = kind_name
            self._ingest(candidate)
            if self._pending_rows >= FLUSH_ROWS or len(self._ledger_rows) >= FLUSH_FILES:
                self.flush()
        self.flush()
        update_statuses(self.con)
        resolve_blocked(self.con)
        waiting = waiting_blocked(self.con, self.family)
        self.report.waiting = [(fichier, motif) for _, fichier, motif in waiting]
        self.report.outcomes = [
            *self.gate.outcomes({lid for lid, _, _ in waiting}),
            _waiting_outcome(self.report),
            _errors_outcome(self.report),
        ]
        return self.report

    def _ingest(self, candidate: _Candidate) -> None:
        try:
            sha = sha256_of(candidate.path)
        except OSError as exc:  # vanished or unreadable since the listing: next refresh
            self.report.ignored.append((candidate.relative, f"illisible: {exc.strerror}"))
            return
        if (candidate.relative, sha) in self._seen_files:
            return  # already recorded by an earlier refresh: the inbox is never modified
        self._seen_files.add((candidate.relative, sha))
        recognised = candidate.recognised
        retried = self._retry_ids.get((candidate.relative, sha))
        if retried is not None:
            self._retried.append(retried)
            if (candidate.relative, sha) in self._accepted:
                self._derogations[retried] = self._accepted[(candidate.relative, sha)]
        row: dict[str, object] = {
            "livraison_id": retried if retried is not None else self._next_id,
            "famille": self.family,
            "type_fichier": recognised.kind.name if recognised else None,
            "code_bailleur": recognised.landlord if recognised else None,
            "periode": recognised.period if recognised else None,
            "fichier": candidate.relative,
            "taille_octets": candidate.size,
            "modifie_le": candidate.mtime,
            "sha256": sha,
            "recue_le": datetime.now(UTC).replace(tzinfo=None),
            "dialecte": None,
            "lignes_lues": 0,
            "lignes_chargees": 0,
            "lignes_quarantaine": 0,
            "statut": "rejetee",
            "motif": None,
            "colonnes_ignorees": None,
            "remplacee_par": None,
            "doublon_de": None,
            "remarques": None,
        }
        if retried is None:
            self._next_id += 1
            self.report.new_deliveries += 1
        content_key = _content_key(sha, row["type_fichier"], row["code_bailleur"], row["periode"])  # type: ignore[arg-type]
        if content_key in self._first_by_content:
            row.update(statut="doublon", doublon_de=self._first_by_content[content_key])
            row["motif"] = "mêmes octets qu'une livraison précédente: non rechargée"
            self.report.duplicates += 1
            self._ledger_rows.append(row)
            return
        self._first_by_content[content_key] = int(row["livraison_id"])  # type: ignore[arg-type]
        try:
            if recognised is None:
                raise RejectedFile(
                    candidate.name_problem or _unrecognised_name(self.family, candidate.path.name)
                )
            validated, extra = self._validate(candidate, recognised)
            row["dialecte"] = extra.pop("__dialect")
        except RejectedFile as exc:
            row["motif"] = str(exc)
            self.report.rejected.append((candidate.relative, str(exc)))
            self._ledger_rows.append(row)
            return
        except (Exception, pl.exceptions.PanicException) as exc:
            # No single file may fail the step: an error nobody foresaw rejects this file
            # (examined again at the next refresh), its trace goes to the log, the others go on.
            _log.error("unexpected error on %s:\n%s", candidate.relative, traceback.format_exc())
            row["motif"] = unexpected_reason(exc)
            self.report.rejected.append((candidate.relative, row["motif"]))  # type: ignore[arg-type]
            self.report.errors.append((candidate.relative, row["motif"]))  # type: ignore[arg-type]
            self._ledger_rows.append(row)
            return
        row.update(extra)
        lid = int(row["livraison_id"])  # type: ignore[arg-type]
        kind = recognised.kind
        series_key = (kind.name, recognised.landlord)
        period = str(row["periode"] or "")
        pending = self._pending_periods[series_key]
        if period in pending or (kind.period != "month" and pending):
            # Compare with a judged delivery, not one the gate may still block: judge the
            # batch first (re-deliveries and yearly files are few, so this flush is rare).
            self.flush()
        loaded = validated.loaded.with_columns(pl.lit(lid, pl.Int64).alias("livraison_id"))
        if kind.landlord_in_name:
            loaded = loaded.with_columns(pl.lit(recognised.landlord).alias("code_bailleur"))
        self._tables[kind.table].append((lid, loaded))
        if validated.quarantine.height:
            self._quarantine.append(
                validated.quarantine.with_columns(
                    pl.lit(lid, pl.Int64).alias("livraison_id"),
                    pl.lit(candidate.relative).alias("fichier"),
                )
            )
        row.update(
            statut="chargee",
            lignes_lues=validated.rows_read,
            lignes_chargees=validated.loaded.height,
            lignes_quarantaine=validated.quarantine.height,
            colonnes_ignorees=", ".join(validated.ignored_columns) or None,
            # What was read differently from the file's text (e.g. commune codes given back
            # their leading zero): never done silently.
            remarques=" ; ".join(validated.notes) or None,
        )
        self._ledger_rows.append(row)
        series = self._series[series_key]
        self._pending_periods[series_key].add(period)
        self._before[lid] = (series_key, period, series.get(period))
        earlier = [p for p in series if p < period]
        self._profiles.append(
            profile(
                row,
                validated.quarantine.get_column("regle").to_list(),
                Previous(
                    same_key=series.get(period),
                    previous_period=series[max(earlier)] if earlier else None,
                ),
            )
        )
        # Monthly series are optimistic: next month's file in the same batch compares with
        # this one before the gate has judged it (only warnings use that comparison).
        series[period] = validated.rows_read
        self._pending_rows += validated.rows_read
        self.report.loaded += 1
        self.report.rows_read += validated.rows_read
        self.report.rows_loaded += validated.loaded.height
        self.report.rows_quarantined += validated.quarantine.height

    def _validate(
        self, candidate: _Candidate, recognised: Recognised
    ) -> tuple[Validated, dict[str, object]]:
        raw = read_delivery(candidate.path)
        kind = recognised.kind
        extra: dict[str, object] = {"__dialect": raw.dialect.describe()}
        if kind is SSMSI_KIND:
            edition, schema, columns = ssmsi.detect(raw)
            diffusion = next(c for c in columns if c.column == "diffusion").name.lower()
            count = next(c for c in columns if c.column == "nombre").name.lower()
            published_without_count = Rule(
                "nombre_manquant",
                (pl.col(diffusion).str.strip_chars().str.to_lowercase() == "diff")
                & pl.col(count).str.strip_chars().replace("", None).is_null(),
                pl.lit(f"{count}: valeur diffusée ('diff') sans nombre"),
            )
            validated = validate(
                raw,
                kind,
                period=None,
                key=self.key,
                columns=columns,
                extra_rules=[published_without_count],
            )
            validated.loaded = ssmsi.finish(validated.loaded, edition, schema)
            extra["periode"] = str(edition)
            return validated, extra
        rules: list[Rule] = []
        if kind.name == "incidents" and recognised.period:
            residences = self._stock_residences(recognised.landlord or "", recognised.period[:4])
            label = f"{recognised.landlord} {recognised.period[:4]}"
            if residences:
                message = pl.format(
                    f"id_residence: '{{}}' absente du patrimoine {label}",
                    pl.col("id_residence").str.strip_chars(),
                )
            else:
                message = pl.lit(f"id_residence: aucun patrimoine {label} n'a été livré")
            rules.append(
                Rule(
                    "residence_hors_patrimoine",
                    pl.col("id_residence").str.strip_chars().is_in(list(residences)).not_(),
                    message,
                )
            )
        return validate(raw, kind, period=recognised.period, key=self.key, extra_rules=rules), extra

    def _stock_residences(self, landlord: str, year: str) -> frozenset[str]:
        """Residences of the landlord's current stock file of that year."""
        if (landlord, year) not in self._residences:
            rows = self.con.execute(
                """
                WITH current AS (
                    SELECT livraison_id FROM raw.livraisons
                    WHERE type_fichier = 'patrimoine' AND code_bailleur = ? AND periode = ?
                      AND statut IN ('chargee', 'remplacee')
                    ORDER BY modifie_le DESC, fichier DESC LIMIT 1
                )
                SELECT DISTINCT id_residence FROM raw.landlord_patrimoine
                WHERE livraison_id IN (SELECT livraison_id FROM current)
                """,
                [landlord, year],
            ).fetchall()
            self._residences[(landlord, year)] = frozenset(r[0] for r in rows)
        return self._residences[(landlord, year)]

    # -- writing -------------------------------------------------------------------------
    def flush(self) -> None:
        """Judge the accumulated deliveries, then write them and their rows in one transaction."""
        if not self._ledger_rows:
            return
        blocked = self.gate.judge(self._profiles)
        for row in self._ledger_rows:
            lid = int(row["livraison_id"])  # type: ignore[arg-type]
            reason = blocked.get(lid)
            if reason is None:
                continue
            if lid in self._derogations:
                row["motif"] = (
                    f"acceptée par dérogation ({self._derogations[lid]}) malgré: {reason}"
                )
                del blocked[lid]
                continue
            self.report.loaded -= 1
            self.report.rows_loaded -= int(row["lignes_chargees"])  # type: ignore[arg-type]
            self.report.blocked.append((str(row["fichier"]), reason))
            row.update(statut="bloquee", motif=reason, lignes_chargees=0)
            series_key, period, before = self._before[lid]
            if before is None:
                self._series[series_key].pop(period, None)
            else:
                self._series[series_key][period] = before
        self.con.execute("BEGIN TRANSACTION")
        try:
            if self._retried:
                ids = ", ".join(str(i) for i in self._retried)
                self.con.execute(f"DELETE FROM raw.livraisons WHERE livraison_id IN ({ids})")
                self.con.execute(f"DELETE FROM raw.quarantaine WHERE livraison_id IN ({ids})")
            ledger = pl.DataFrame(self._ledger_rows, schema=_LEDGER_SCHEMA)
            self._insert("livraisons", ledger)
            for table, frames in self._tables.items():
                kept = [frame for lid, frame in frames if lid not in blocked]
                if kept:
                    self._insert(table, pl.concat(kept, how="diagonal_relaxed"))
            if self._quarantine:
                self._insert("quarantaine", pl.concat(self._quarantine, how="diagonal_relaxed"))
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        touched_stock = "landlord_patrimoine" in self._tables
        self._ledger_rows, self._tables, self._quarantine = [], defaultdict(list), []
        self._profiles, self._retried = [], []
        self._pending_periods, self._before = defaultdict(set), {}
        self._derogations = {}
        self._pending_rows = 0
        if touched_stock:
            update_statuses(self.con)
            self._residences.clear()

    def _insert(self, table: str, frame: pl.DataFrame) -> None:
        columns = [r[0] for r in self.con.execute(f"DESCRIBE raw.{table}").fetchall()]
        present = [c for c in columns if c in frame.columns]
        view = frame.select(present)
        self.con.register("__incoming", view)
        try:
            names = ", ".join(present)
            self.con.execute(f"INSERT INTO raw.{table} ({names}) SELECT {names} FROM __incoming")
        finally:
            self.con.unregister("__incoming")


_LEDGER_SCHEMA = {
    "livraison_id": pl.Int64,
    "famille": pl.String,
    "type_fichier": pl.String,
    "code_bailleur": pl.String,
    "periode": pl.String,
    "fichier": pl.String,
    "taille_octets": pl.Int64,
    "modifie_le": pl.Datetime("us"),
    "sha256": pl.String,
    "recue_le": pl.Datetime("us"),
    "dialecte": pl.String,
    "lignes_lues": pl.Int64,
    "lignes_chargees": pl.Int64,
    "lignes_quarantaine": pl.Int64,
    "statut": pl.String,
    "motif": pl.String,
    "colonnes_ignorees": pl.String,
    "remplacee_par": pl.Int64,
    "doublon_de": pl.Int64,
    "remarques": pl.String,
}


def _content_key(
    sha: str, kind: str | None, landlord: str | None, period: str | None
) -> tuple[str, str | None, str | None, str | None]:
    """What makes two deliveries the same: their bytes and their key. The SSMSI edition is
    read from the file's header, so its bytes alone identify it."""
    return (sha, kind, landlord, None if kind == SSMSI_KIND.name else period)


def _unrecognised_name(family: str, name: str) -> str:
    hints = [name_hint(k) for k in (*ALL_KINDS, SSMSI_KIND) if k.family == family]
    return f"nom de fichier non reconnu dans {family}/: attendu {' ; '.join(hints)}"


_log = logging.getLogger(__name__)

# The reason of a delivery rejected by an error nobody foresaw starts with this: such a
# delivery is examined again at every refresh (the error may be transient, or fixed since).
UNEXPECTED = "erreur inattendue"


def unexpected_reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0][:300] if lines else ""
    return (
        f"{UNEXPECTED} en lisant le fichier ({type(exc).__name__}: {first}) ; il sera relu au "
        "prochain rafraîchissement, le détail est dans le journal du rafraîchissement"
    )


@dataclass(frozen=True)
class Inbox:
    """What the inbox holds: deliveries per family, and files that are not deliveries."""

    deliveries: dict[str, list[Path]]
    ignored: list[tuple[str, str]]


def scan_inbox(home: Home, family: str | None = None) -> Inbox:
    """A delivery is a file placed directly in its family folder. Subfolders are not read
    (operators keep archives there; a partner's dated subfolder must be emptied into the
    family folder) and files outside the family folders belong to no family: both are
    listed with the reason, never loaded silently. Hidden files and Office lock files
    (`~$…`) are nobody's deliveries and are passed over in silence.

    With `family`, only that family's folder is walked (each ingestion step reads its own:
    the national inbox holds 62,000 files)."""
    deliveries: dict[str, list[Path]] = {f: [] for f in FAMILIES}
    ignored: list[tuple[str, str]] = []
    families = ", ".join(FAMILIES)
    top = home.inbox_family(family) if family else home.inbox
    if not top.is_dir():
        return Inbox(deliveries, ignored)
    for path in sorted(top.rglob("*")):
        relative = path.relative_to(home.inbox)
        if any(part.startswith((".", "~$")) for part in relative.parts) or path.is_dir():
            continue
        parts = relative.parts
        where = relative.as_posix()
        if len(parts) == 1:
            ignored.append(
                (where, f"à la racine de inbox/: à déposer dans un dossier de famille ({families})")
            )
        elif parts[0] not in deliveries:
            ignored.append(
                (
                    where,
                    f"dossier {parts[0]}/ inconnu: à déposer dans un dossier de famille ({families})",
                )
            )
        elif len(parts) > 2:
            ignored.append(
                (
                    where,
                    f"dans un sous-dossier de {parts[0]}/: seuls les fichiers posés directement "
                    f"dans {parts[0]}/ sont des livraisons (les sous-dossiers servent d'archives)",
                )
            )
        elif path.is_file():
            deliveries[parts[0]].append(path)
    return Inbox(deliveries, ignored)


def update_statuses(con: duckdb.DuckDBPyConnection) -> None:
    """Newest delivery per (kind, landlord, period) is current; older ones are superseded."""
    con.execute(
        """
        WITH ranked AS (
            SELECT livraison_id,
                   first_value(livraison_id) OVER (
                       PARTITION BY type_fichier, coalesce(code_bailleur, ''), coalesce(periode, '')
                       ORDER BY modifie_le DESC, fichier DESC
                   ) AS courante
            FROM raw.livraisons
            WHERE statut IN ('chargee', 'remplacee')
        )
        UPDATE raw.livraisons AS l
        SET statut = CASE WHEN r.courante = l.livraison_id THEN 'chargee' ELSE 'remplacee' END,
            remplacee_par = CASE WHEN r.courante = l.livraison_id THEN NULL ELSE r.courante END
        FROM ranked AS r
        WHERE r.livraison_id = l.livraison_id
          AND (l.statut IS DISTINCT FROM
                   CASE WHEN r.courante = l.livraison_id THEN 'chargee' ELSE 'remplacee' END
               OR l.remplacee_par IS DISTINCT FROM
                   CASE WHEN r.courante = l.livraison_id THEN NULL ELSE r.courante END)
        """
    )


MEMORY_ENV = "TRANQUILLITY_DUCKDB_MEMORY"
DEFAULT_MEMORY = "8GB"


def connect(home: Home) -> duckdb.DuckDBPyConnection:
    """The working warehouse (single writer), with the raw schema in place.

    DuckDB takes 80 % of the machine's memory by default; the cap (TRANQUILLITY_DUCKDB_MEMORY,
    also applied to dbt through profiles.yml) leaves room for polars and the OS, DuckDB
    spilling to disk beyond it.
    """
    home.ensure()
    con = duckdb.connect(
        str(home.warehouse_db),
        config={"memory_limit": os.environ.get(MEMORY_ENV, DEFAULT_MEMORY)},
    )
    ensure_schema(con)
    return con


def ingest_family(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    family: str,
    key: bytes,
    quality: QualityRun | None = None,
) -> FamilyReport:
    """Load every new file of one inbox family; idempotent (already-seen files are skipped)."""
    return FamilyIngestion(con, home, family, key, quality).run()


class NotBlocked(ValueError):
    """`accept` was given a file that is not a blocked delivery waiting for a replacement."""


def accept_blocked(
    con: duckdb.DuckDBPyConnection, fichier: str, motif: str, par: str | None
) -> str:
    """Record an operator's decision to load a blocked delivery at the next refresh.

    For a change the suite cannot tell from a broken extract (a landlord selling a third of
    its stock): the decision names the file and its bytes (sha256), so a different file
    needs its own, and it stays in `raw.derogations` for audit."""
    rows = con.execute(
        "SELECT fichier, sha256 FROM raw.livraisons "
        "WHERE statut = 'bloquee' AND remplacee_par IS NULL AND (fichier = ? OR fichier LIKE ?)",
        [fichier, f"%/{fichier}"],
    ).fetchall()
    if len(rows) != 1:
        waiting = [
            r[0]
            for r in con.execute(
                "SELECT fichier FROM raw.livraisons "
                "WHERE statut = 'bloquee' AND remplacee_par IS NULL ORDER BY fichier"
            ).fetchall()
        ]
        raise NotBlocked(
            f"{fichier}: not a blocked delivery waiting for a replacement"
            + (f" (blocked: {', '.join(waiting)})" if waiting else " (none is blocked)")
        )
    found, sha = rows[0]
    con.execute(
        "INSERT INTO raw.derogations VALUES (?, ?, ?, ?, ?)",
        [found, sha, motif, par, datetime.now(UTC).replace(tzinfo=None)],
    )
    return str(found)


def resolve_blocked(con: duckdb.DuckDBPyConnection) -> None:
    """A blocked delivery stops blocking once a newer delivery for its key is loaded."""
    con.execute(
        """
        UPDATE raw.livraisons AS b
        SET remplacee_par = (
            SELECT l.livraison_id FROM raw.livraisons AS l
            WHERE l.statut IN ('chargee', 'remplacee')
              AND l.type_fichier = b.type_fichier
              AND coalesce(l.code_bailleur, '') = coalesce(b.code_bailleur, '')
              AND coalesce(l.periode, '') = coalesce(b.periode, '')
              AND (l.modifie_le > b.modifie_le
                   OR (l.modifie_le = b.modifie_le AND l.fichier > b.fichier))
            ORDER BY l.modifie_le DESC, l.fichier DESC LIMIT 1
        )
        WHERE b.statut = 'bloquee' AND b.remplacee_par IS NULL
        """
    )


def waiting_blocked(con: duckdb.DuckDBPyConnection, family: str) -> list[tuple[int, str, str]]:
    """Blocked deliveries of a family not yet replaced: each blocks publication."""
    return [
        (int(lid), str(f), str(m))
        for lid, f, m in con.execute(
            "SELECT livraison_id, fichier, motif FROM raw.livraisons "
            "WHERE famille = ? AND statut = 'bloquee' AND remplacee_par IS NULL "
            "ORDER BY modifie_le, fichier",
            [family],
        ).fetchall()
    ]


def _files_outcome(
    report: FamilyReport, check: str, files: list[tuple[str, str]], blocking: bool, message: str
) -> CheckOutcome:
    """A family check whose failures are files, the first five with their reason."""
    examples = [{"fichier": f, "motif": m} for f, m in files[:5]]
    failed = "fail" if blocking else "warn"
    return CheckOutcome(
        controle=f"livraisons_{report.family}.{check}",
        origine="ingestion",
        cible=report.family,
        bloquant=blocking,
        statut=failed if files else "pass",
        nb_echecs=len(files),
        message=message,
        exemples=json.dumps(examples, ensure_ascii=False) if examples else None,
    )


def _waiting_outcome(report: FamilyReport) -> CheckOutcome:
    return _files_outcome(
        report,
        "aucune_livraison_bloquee",
        report.waiting,
        blocking=True,
        message="a blocked delivery blocks publication until a newer delivery for its key "
        "(same kind, landlord and period) is loaded",
    )


def _errors_outcome(report: FamilyReport) -> CheckOutcome:
    """A file an unexpected error stopped does not block the others' publication, but the
    operator must know: a warning with the files, until they read without error."""
    return _files_outcome(
        report,
        "aucune_erreur_inattendue",
        report.errors,
        blocking=False,
        message="a delivery an unexpected error stopped is rejected, examined again at the "
        "next refresh; the trace is in the refresh log",
    )


def ledger_summary(con: duckdb.DuckDBPyConnection) -> list[dict[str, object]]:
    """Per family: deliveries by status and rows, over the whole ledger."""
    cursor = con.execute(
        """
        SELECT famille,
               count(*) AS livraisons,
               count(*) FILTER (WHERE statut = 'chargee') AS courantes,
               count(*) FILTER (WHERE statut = 'remplacee') AS remplacees,
               count(*) FILTER (WHERE statut = 'doublon') AS doublons,
               count(*) FILTER (WHERE statut = 'rejetee') AS rejetees,
               count(*) FILTER (WHERE statut = 'bloquee' AND remplacee_par IS NULL)
                   AS bloquees,
               coalesce(sum(lignes_lues), 0) AS lignes_lues,
               coalesce(sum(lignes_chargees), 0) AS lignes_chargees,
               coalesce(sum(lignes_quarantaine), 0) AS lignes_quarantaine
        FROM raw.livraisons GROUP BY famille ORDER BY famille
        """
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def dumps_report(reports: list[FamilyReport]) -> str:
    return json.dumps([r.__dict__ for r in reports], ensure_ascii=False, default=str)
