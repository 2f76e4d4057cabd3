"""Inbox -> raw tables: which files are deliveries, in what order they are read, how they are
batched and written.

Each inbox file is one delivery, recorded in the ledger `raw.livraisons` (pipelines.ingest.
ledger: its row, statuses and predicates) in the same transaction as its rows, so the ledger
never claims rows that are not there. Deliveries are processed in the contract's order
(modification time, then name), stock files before incident files. Before anything of a
delivery is written, its rows are validated (pipelines.ingest.validate: bad rows go to
`raw.quarantaine`) and the delivery as a whole is judged by its family's quality suite
(pipelines.quality.deliveries): a blocked delivery loads nothing and blocks publication until
a newer delivery for its key is loaded.

Rows read = rows loaded + rows quarantined for `chargee` and `remplacee`; a `bloquee` delivery
loads nothing (its `lignes_chargees` is 0), a `rejetee` one reads nothing.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import traceback
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines import progress
from pipelines.audit import CheckOutcome
from pipelines.ingest import ssmsi
from pipelines.ingest.ledger import (
    LOADED,
    LedgerRow,
    LedgerState,
    Status,
    content_key,
    ledger_frame,
    resolve_blocked,
    unexpected_reason,
    update_statuses,
    waiting_blocked,
)
from pipelines.ingest.reader import RawFrame, RejectedFile, read_delivery
from pipelines.ingest.specs import (
    ALL_KINDS,
    KIND_ORDER,
    SSMSI_KIND,
    Recognised,
    UnreadableName,
    name_hint,
    recognise,
)
from pipelines.ingest.validate import Rule, Validated, check_columns, validate, validate_many
from pipelines.quality.deliveries import (
    RESIDENCE_OUTSIDE_STOCK,
    DeliveryGate,
    Previous,
    profile,
)
from pipelines.quality.runner import QualityRun
from pipelines.settings import FAMILIES, Home

# Flush accumulated rows to DuckDB in large batches: thousands of small monthly files would
# otherwise pay a transaction each.
FLUSH_ROWS = 1_000_000
FLUSH_FILES = 1_000
# Deliveries of one kind are read, then validated together in one polars plan (pipelines.
# ingest.validate.validate_many), up to this many rows or files: a plan per file cost more
# than the validation itself (62,000 files nationally).
CHUNK_ROWS = 250_000
CHUNK_FILES = 500

_log = logging.getLogger(__name__)

# Names a file carries while it is written or held open (hidden files, LibreOffice's
# `.~lock.…#`, Office's `~$…`, partial downloads and copies): nobody's delivery, passed over
# in silence. Discovery skips them, so neither a refresh nor the inbox sensor reads a file
# before it has its final name.
TEMPORARY_PREFIXES = (".", "~$")
TEMPORARY_SUFFIXES = (".part", ".tmp", ".crdownload")


def is_temporary(name: str) -> bool:
    """Tested on every part of a path: nothing under a hidden folder (a sync tool's cache)
    is a delivery either. Suffixes in any case: Windows shares upper-case them."""
    return name.startswith(TEMPORARY_PREFIXES) or name.lower().endswith(TEMPORARY_SUFFIXES)


def ledger_name(home: Home, path: Path) -> str:
    """How the ledger names a delivery (`fichier`): its path under the inbox, `/`-separated."""
    return path.relative_to(home.inbox).as_posix()


def modified_at(path_stat: os.stat_result) -> datetime:
    """A file's modification time as the ledger stores it (`modifie_le`, naive UTC): the
    sensor compares the inbox with the ledger in this form."""
    return datetime.fromtimestamp(path_stat.st_mtime, UTC).replace(tzinfo=None)


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

    def as_metadata(self) -> dict[str, int]:
        """The counts of the pass (the asset adds the files, as Markdown lists)."""
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


@dataclass
class _Read:
    """A recorded delivery on its way to the batch: its ledger row, and its validated rows
    once read (None for a duplicate or a rejected file, whose row is complete)."""

    candidate: _Candidate
    row: LedgerRow
    validated: Validated | None = None
    edition: str | None = None
    retried: bool = False
    accepted: str | None = None


Series = tuple[str | None, str | None]


@dataclass
class _Batch:
    """Deliveries read but not yet judged nor written: flushed together, in one transaction."""

    ledger: list[LedgerRow] = field(default_factory=list)
    tables: dict[str, list[tuple[int, pl.DataFrame]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    quarantine: list[pl.DataFrame] = field(default_factory=list)
    profiles: list[dict[str, object]] = field(default_factory=list)
    rows: int = 0
    # Periods of each series waiting in the batch, and what each delivery overwrote in the
    # series (restored when the gate blocks it).
    periods: dict[Series, set[str]] = field(default_factory=lambda: defaultdict(set))
    overwrote: dict[int, tuple[Series, str, int | None]] = field(default_factory=dict)
    # Ledger ids examined again (their old rows are replaced), and those accepted by an
    # operator despite a blocking failure (with the operator's reason).
    retried: list[int] = field(default_factory=list)
    accepted: dict[int, str] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return self.rows >= FLUSH_ROWS or len(self.ledger) >= FLUSH_FILES


class FamilyIngestion:
    """One pass over one inbox family folder; loads every file not yet in the ledger."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        home: Home,
        family: str,
        key: bytes,
        quality: QualityRun | None = None,
        strict: bool = False,
    ):
        self.con = con
        self.strict = strict
        self.home = home
        self.family = family
        self.key = key
        self.report = FamilyReport(family)
        self.gate = DeliveryGate(family, quality)
        self.ledger = LedgerState.read(con)
        self.batch = _Batch()
        self._residences: dict[tuple[str, str], frozenset[str]] = {}

    # -- discovery -----------------------------------------------------------------------
    def candidates(self) -> list[_Candidate]:
        inbox = scan_inbox(self.home, self.family)
        self.report.ignored.extend(inbox.ignored)
        found = []
        for path in inbox.deliveries[self.family]:
            relative = ledger_name(self.home, path)
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
                    mtime=modified_at(stat),
                    size=stat.st_size,
                    recognised=recognised,
                    name_problem=problem,
                )
            )
        return sorted(found, key=lambda c: c.order)

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> FamilyReport:
        current_kind: str | None = None
        candidates = self.candidates()
        # Every file of the folder counts (one recorded as it is now, by name, size and time,
        # is passed without being read); the rate includes the batches' writes.
        with _collected_per_batch(), progress.ingestion(self.family, len(candidates)) as shown:
            done = 0
            while done < len(candidates):
                kind_name = _kind_name(candidates[done])
                if kind_name != current_kind:
                    # Incidents are checked against stock: the stock must be flushed first.
                    self.flush()
                    current_kind = kind_name
                for entry in self._read_chunk(candidates, done):
                    done += 1
                    if entry is not None:
                        self._place(entry)
                    if self.batch.full:
                        self.flush()
                    shown.update(done, self.report.rows_read)
            self.flush()
        self.gate.document()
        update_statuses(self.con)
        resolve_blocked(self.con)
        waiting = waiting_blocked(self.con, self.family)
        self.report.waiting = [(fichier, motif) for _, fichier, motif in waiting]
        self.report.outcomes = [
            *self.gate.outcomes({lid for lid, _, _ in waiting}, strict=self.strict),
            _waiting_outcome(self.report, strict=self.strict),
            _errors_outcome(self.report),
        ]
        return self.report

    def _record(self, candidate: _Candidate) -> _Read | None:
        """The delivery's ledger row (a duplicate is complete at once), or None when the
        file is not to be read now (already recorded, or unreadable to hash). Nothing goes
        into the batch yet: `_place` does that in the files' order, so that a flush between
        two files of a chunk writes exactly what it did when files were read one by one."""
        stamp = (candidate.relative, candidate.size, candidate.mtime.isoformat())
        if stamp in self.ledger.settled_stamps:
            return None  # recorded as it is now: not even hashed again
        try:
            sha = sha256_of(candidate.path)
        except OSError as exc:  # vanished or unreadable since the listing: next refresh
            self.report.ignored.append((candidate.relative, f"illisible: {exc.strerror}"))
            return None
        if (candidate.relative, sha) in self.ledger.seen_files:
            return None  # already recorded by an earlier refresh: the inbox is never modified
        self.ledger.seen_files.add((candidate.relative, sha))
        recognised = candidate.recognised
        retried = self.ledger.retry_ids.get((candidate.relative, sha))
        if retried is None:
            lid = self.ledger.next_id
            self.ledger.next_id += 1
            self.report.new_deliveries += 1
        else:
            lid = retried
        row = LedgerRow(
            livraison_id=lid,
            famille=self.family,
            type_fichier=recognised.kind.name if recognised else None,
            code_bailleur=recognised.landlord if recognised else None,
            periode=recognised.period if recognised else None,
            fichier=candidate.relative,
            taille_octets=candidate.size,
            modifie_le=candidate.mtime,
            sha256=sha,
            recue_le=datetime.now(UTC).replace(tzinfo=None),
        )
        key = content_key(sha, row.type_fichier, row.code_bailleur, row.periode)
        first = self.ledger.first_by_content.setdefault(key, lid)
        if first != lid:
            row.statut, row.doublon_de = Status.DUPLICATE, first
            row.motif = "mêmes octets qu'une livraison précédente: non rechargée"
            self.report.duplicates += 1
        return _Read(
            candidate,
            row,
            retried=retried is not None,
            accepted=(
                self.ledger.accepted.get((candidate.relative, sha)) if retried is not None else None
            ),
        )

    def _read_chunk(self, candidates: list[_Candidate], start: int) -> list[_Read | None]:
        """Record and read the files from `start` on, while they are of one kind and within
        `CHUNK_ROWS` / `CHUNK_FILES`, then validate them together; the entries in order (None
        for a file not to be read now), one per file of the chunk."""
        kind_name = _kind_name(candidates[start])
        entries: list[_Read | None] = []
        opened: list[tuple[_Read, RawFrame]] = []
        rows = 0
        index = start
        while (
            index < len(candidates)
            and _kind_name(candidates[index]) == kind_name
            and rows < CHUNK_ROWS
            and len(entries) < CHUNK_FILES
        ):
            candidate = candidates[index]
            index += 1
            entry = self._record(candidate)
            entries.append(entry)
            if entry is None or entry.row.statut is Status.DUPLICATE:
                continue
            try:
                recognised = candidate.recognised
                if recognised is None:
                    raise RejectedFile(
                        candidate.name_problem
                        or _unrecognised_name(self.family, candidate.path.name)
                    )
                if recognised.kind is SSMSI_KIND:
                    entry.validated, entry.row.dialecte, entry.edition = self._validate_ssmsi(
                        candidate
                    )
                    rows += entry.validated.rows_read
                    continue
                raw = read_delivery(candidate.path)
                entry.row.dialecte = raw.dialect.describe()
                check_columns(raw, recognised.kind.columns)
            except (Exception, pl.exceptions.PanicException) as exc:
                self._reject(entry, exc)
                continue
            opened.append((entry, raw))
            rows += raw.frame.height
        self._validate_together(opened)
        return entries

    def _validate_together(self, opened: list[tuple[_Read, RawFrame]]) -> None:
        """Validate read deliveries of one kind in one plan. Should that fail on something
        nobody foresaw, each is validated alone, so that only the file at fault is rejected."""
        if not opened:
            return
        try:
            results = self._validate_many(opened)
        except (Exception, pl.exceptions.PanicException) as exc:
            if len(opened) == 1:
                self._reject(opened[0][0], exc)
                return
            _log.warning(
                "validating %d deliveries together failed; validating each alone:\n%s",
                len(opened),
                traceback.format_exc(),
            )
            for one in opened:
                self._validate_together([one])
            return
        for (entry, _), validated in zip(opened, results, strict=True):
            entry.validated = validated

    def _validate_many(self, opened: list[tuple[_Read, RawFrame]]) -> list[Validated]:
        recognised = [entry.candidate.recognised for entry, _ in opened]
        kind = recognised[0].kind  # type: ignore[union-attr]
        results = validate_many(
            [(raw, r.period) for (_, raw), r in zip(opened, recognised, strict=True)],  # type: ignore[union-attr]
            kind,
            key=self.key,
        )
        if kind.name == "incidents":
            for validated, r in zip(results, recognised, strict=True):
                assert r is not None
                if not r.period:
                    continue
                # Residences missing from the applicable stock are loaded (dbt leaves them out
                # and reports them, against the stock that applies at each build); the
                # delivery suite still weighs their share, to hold a file of the wrong landlord.
                residences = self._stock_residences(r.landlord or "", r.period[:4])
                missing = validated.loaded.filter(
                    pl.col("id_residence").is_in(list(residences)).not_()
                ).height
                validated.flagged = [RESIDENCE_OUTSIDE_STOCK] * missing
        return results

    def _reject(self, entry: _Read, exc: BaseException) -> None:
        """A file rejected whole: its reason in the ledger. An error nobody foresaw rejects
        only this file (examined again at the next refresh), its trace goes to the log: no
        single file may fail the step."""
        relative = entry.candidate.relative
        if isinstance(exc, RejectedFile):
            entry.row.motif = str(exc)
        else:
            _log.error(
                "unexpected error on %s:\n%s",
                relative,
                "".join(traceback.format_exception(exc)),
            )
            entry.row.motif = unexpected_reason(exc)
            self.report.errors.append((relative, entry.row.motif))
        self.report.rejected.append((relative, entry.row.motif))

    def _place(self, entry: _Read) -> None:
        """Put a recorded delivery in the batch, in the files' order."""
        lid = entry.row.livraison_id
        if entry.retried:
            self.batch.retried.append(lid)
        if entry.accepted is not None:
            self.batch.accepted[lid] = entry.accepted
        if entry.validated is None:  # a duplicate or a rejected file: its row is complete
            self.batch.ledger.append(entry.row)
            return
        if entry.edition is not None:
            entry.row.periode = entry.edition
        self._stage(entry.candidate, entry.row, entry.validated)

    def _stage(self, candidate: _Candidate, row: LedgerRow, validated: Validated) -> None:
        """Put a read delivery in the batch: its rows, its quarantine, its profile for the gate."""
        recognised = candidate.recognised
        assert recognised is not None  # a delivery without a recognised name is rejected
        lid, kind = row.livraison_id, recognised.kind
        series_key = (kind.name, recognised.landlord)
        period = row.periode or ""
        pending = self.batch.periods[series_key]
        if period in pending or (kind.period != "month" and pending):
            # Compare with a judged delivery, not one the gate may still block: judge the
            # batch first (re-deliveries and yearly files are few, so this flush is rare).
            self.flush()
        loaded = validated.loaded.with_columns(pl.lit(lid, pl.Int64).alias("livraison_id"))
        if kind.landlord_in_name:
            loaded = loaded.with_columns(pl.lit(recognised.landlord).alias("code_bailleur"))
        self.batch.tables[kind.table].append((lid, loaded))
        if validated.quarantine.height:
            self.batch.quarantine.append(
                validated.quarantine.with_columns(
                    pl.lit(lid, pl.Int64).alias("livraison_id"),
                    pl.lit(candidate.relative).alias("fichier"),
                )
            )
        row.statut = Status.LOADED
        row.lignes_lues = validated.rows_read
        row.lignes_chargees = validated.loaded.height
        row.lignes_quarantaine = validated.quarantine.height
        row.colonnes_ignorees = ", ".join(validated.ignored_columns) or None
        # What was read differently from the file's text (e.g. commune codes given back their
        # leading zero): never done silently.
        row.remarques = " ; ".join(validated.notes) or None
        self.batch.ledger.append(row)
        series = self.ledger.series[series_key]
        self.batch.periods[series_key].add(period)
        self.batch.overwrote[lid] = (series_key, period, series.get(period))
        earlier = [p for p in series if p < period]
        self.batch.profiles.append(
            profile(
                row,
                [*validated.quarantine.get_column("regle").to_list(), *validated.flagged],
                Previous(
                    same_key=series.get(period),
                    previous_period=series[max(earlier)] if earlier else None,
                ),
            )
        )
        # Monthly series are optimistic: next month's file in the same batch compares with
        # this one before the gate has judged it (only warnings use that comparison).
        series[period] = validated.rows_read
        self.batch.rows += validated.rows_read
        self.report.loaded += 1
        self.report.rows_read += validated.rows_read
        self.report.rows_loaded += validated.loaded.height
        self.report.rows_quarantined += validated.quarantine.height

    def _validate_ssmsi(self, candidate: _Candidate) -> tuple[Validated, str, str]:
        """Read and validate an SSMSI file, alone (its columns depend on its edition): its
        rows, the dialect it was read in, and its edition (the period the file names)."""
        raw = read_delivery(candidate.path)
        dialect = raw.dialect.describe()
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
            SSMSI_KIND,
            period=None,
            key=self.key,
            columns=columns,
            extra_rules=[published_without_count],
        )
        validated.loaded = ssmsi.finish(validated.loaded, edition, schema)
        return validated, dialect, str(edition)

    def _stock_residences(self, landlord: str, year: str) -> frozenset[str]:
        """Residences of the landlord's stock applicable to that year (contract section 3, as
        dbt's int_patrimoine__annee_applicable): its newest loaded stock file of the latest
        year <= `year`, else of its earliest year; none when it has delivered no stock."""
        if (landlord, year) not in self._residences:
            rows = self.con.execute(
                f"""
                WITH stocks AS (
                    SELECT livraison_id, periode, modifie_le, fichier FROM raw.livraisons
                    WHERE type_fichier = 'patrimoine' AND code_bailleur = ? AND {LOADED}
                ),
                applicable AS (
                    SELECT coalesce(max(periode) FILTER (WHERE periode <= ?), min(periode)) AS p
                    FROM stocks
                ),
                current AS (
                    SELECT livraison_id FROM stocks WHERE periode = (SELECT p FROM applicable)
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
        """Judge the batch's deliveries, then write them and their rows in one transaction."""
        batch = self.batch
        if not batch.ledger:
            return
        blocked = self._judge(batch)
        self.con.execute("BEGIN TRANSACTION")
        try:
            if batch.retried:
                ids = ", ".join(str(i) for i in batch.retried)
                self.con.execute(f"DELETE FROM raw.livraisons WHERE livraison_id IN ({ids})")
                self.con.execute(f"DELETE FROM raw.quarantaine WHERE livraison_id IN ({ids})")
            self._insert("livraisons", ledger_frame(batch.ledger))
            for table, frames in batch.tables.items():
                kept = [frame for lid, frame in frames if lid not in blocked]
                if kept:
                    self._insert(table, pl.concat(kept, how="diagonal_relaxed"))
            if batch.quarantine:
                self._insert("quarantaine", pl.concat(batch.quarantine, how="diagonal_relaxed"))
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.batch = _Batch()
        if "landlord_patrimoine" in batch.tables:
            update_statuses(self.con)
            self._residences.clear()
        gc.collect()  # the batch's frames, held by reference cycles: see _collected_per_batch

    def _judge(self, batch: _Batch) -> dict[int, str]:
        """The gate's verdict on the batch: blocked deliveries (by ledger id, with the reason)
        load nothing; an operator's acceptance turns a block into a remark in `motif`."""
        blocked = self.gate.judge(batch.profiles)
        for row in batch.ledger:
            lid = row.livraison_id
            reason = blocked.get(lid)
            if reason is None:
                continue
            if lid in batch.accepted:
                row.motif = f"acceptée par dérogation ({batch.accepted[lid]}) malgré: {reason}"
                del blocked[lid]
                continue
            self.report.loaded -= 1
            self.report.rows_loaded -= row.lignes_chargees
            self.report.blocked.append((row.fichier, reason))
            row.statut, row.motif, row.lignes_chargees = Status.BLOCKED, reason, 0
            series_key, period, before = batch.overwrote[lid]
            if before is None:
                self.ledger.series[series_key].pop(period, None)
            else:
                self.ledger.series[series_key][period] = before
        return blocked

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


@contextmanager
def _collected_per_batch() -> Iterator[None]:
    """Collect the garbage cycles after each batch, against a frozen heap.

    When the gate has Great Expectations judge a batch, GX (through pydantic v1) raises and
    catches exceptions while it builds its expectations; their tracebacks keep their frames,
    and each frame its callers' (`flush`'s, `_judge`'s), in reference cycles. Those held each
    judged batch's polars frames, up to a million rows, until Python's next full collection,
    which a heap of this size makes rare: the national landlord ingestion grew from 1 to 3.6
    GB, batch after batch, and fell back by 1.1 GB at a `gc.collect()`. Collecting after each
    flush holds its peak at 2.35 GB. The objects alive before the first batch (Dagster's, the
    imports', the inbox listing) are frozen out of those collections, which then take 20 ms
    instead of 470 ms (89 flushes nationally: 1.9 s in all)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.collect()


def _kind_name(candidate: _Candidate) -> str | None:
    return candidate.recognised.kind.name if candidate.recognised else None


def _unrecognised_name(family: str, name: str) -> str:
    hints = [name_hint(k) for k in (*ALL_KINDS, SSMSI_KIND) if k.family == family]
    return f"nom de fichier non reconnu dans {family}/: attendu {' ; '.join(hints)}"


@dataclass(frozen=True)
class Inbox:
    """What the inbox holds: deliveries per family, and files that are not deliveries."""

    deliveries: dict[str, list[Path]]
    ignored: list[tuple[str, str]]


# (size in bytes, modification time as the ledger stores it, ISO), by ledger file name.
Stamps = dict[str, tuple[int, str]]


def inbox_stamps(home: Home) -> Stamps:
    """Every file a refresh would read now, named and stamped as the ledger would record it
    (so that the two compare without reading the files: hashing 62,000 files nationally
    takes minutes). The refresh's "nothing new" test and the inbox sensor both use it."""
    stamps: Stamps = {}
    for paths in scan_inbox(home).deliveries.values():
        for path in paths:
            try:
                stat = path.stat()
            except OSError:  # vanished since the listing: nothing to refresh for it
                continue
            stamps[ledger_name(home, path)] = (stat.st_size, modified_at(stat).isoformat())
    return stamps


def recorded_stamps(con: duckdb.DuckDBPyConnection) -> set[tuple[str, int, str]]:
    """(file, size, time) of every delivery the ledger knows, in `inbox_stamps`' form."""
    rows = con.execute(
        "SELECT fichier, taille_octets, modifie_le FROM raw.livraisons "
        "WHERE taille_octets IS NOT NULL AND modifie_le IS NOT NULL"
    ).fetchall()
    return {(str(fichier), int(size), modified.isoformat()) for fichier, size, modified in rows}


def unrecorded_files(con: duckdb.DuckDBPyConnection, home: Home) -> list[str]:
    """Delivery files of the inbox the ledger has not seen as they are now: a new name, or a
    known name with another size or modification time (a replaced file). A file only
    touched counts as changed: the loader then finds its bytes already recorded."""
    recorded = recorded_stamps(con)
    return sorted(
        name
        for name, (size, mtime) in inbox_stamps(home).items()
        if (name, size, mtime) not in recorded
    )


def scan_inbox(home: Home, family: str | None = None) -> Inbox:
    """A delivery is a file placed directly in its family folder. Subfolders are not read
    (operators keep archives there; a partner's dated subfolder must be emptied into the
    family folder) and files outside the family folders belong to no family: both are
    listed with the reason, never loaded silently. Temporary names (`is_temporary`: hidden,
    lock and partial files) are nobody's deliveries and are passed over in silence.

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
        if any(is_temporary(part) for part in relative.parts) or path.is_dir():
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


def ingest_family(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    family: str,
    key: bytes,
    quality: QualityRun | None = None,
    *,
    strict: bool = False,
) -> FamilyReport:
    """Load every new file of one inbox family; idempotent (already-seen files are skipped).
    `strict`: a held delivery blocks the publication (`TRANQUILLITY_GATE=strict`)."""
    return FamilyIngestion(con, home, family, key, quality, strict).run()


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


def _waiting_outcome(report: FamilyReport, strict: bool) -> CheckOutcome:
    """Held deliveries waiting for a replacement: a warning (the publication goes ahead with
    each key's last accepted delivery, or without the key), or blocking in strict mode."""
    if strict:
        message = (
            "a held delivery blocks publication until a newer delivery for its key (same "
            "kind, landlord and period) is loaded (TRANQUILLITY_GATE=strict)"
        )
    else:
        message = (
            "a held delivery is not loaded: the publication goes ahead with its key's last "
            "accepted delivery, or without the key, until a newer delivery replaces it"
        )
    return _files_outcome(
        report, "aucune_livraison_bloquee", report.waiting, blocking=strict, message=message
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
