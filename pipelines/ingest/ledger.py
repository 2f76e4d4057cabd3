"""The delivery ledger `raw.livraisons`: its row, its statuses and the questions asked of it.

Every inbox file is one delivery and one ledger row, written in the same transaction as its
rows. The row, the status values and each predicate over them ("blocked and waiting",
"to be read again") are defined here once: the loader, the quality gate, the command line,
the publication and the dbt staging model all ask this module (or are tested against it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, get_args, get_type_hints

import duckdb
import polars as pl

from pipelines.ingest.specs import SSMSI_KIND


class Status(StrEnum):
    """What became of a delivery (`raw.livraisons.statut`, docs/operations.md).

    `chargee`: loaded, current for its key (kind, landlord, period). `remplacee`: loaded, a
    newer delivery for the same key exists. `doublon`: the same bytes as an earlier delivery
    of the same key, not loaded again. `rejetee`: unreadable as a whole (reason in `motif`).
    `bloquee`: readable but it failed a blocking expectation of its family's suite: held,
    nothing of it is loaded until a newer delivery for its key is; the publication goes
    ahead with the key's last accepted delivery (or blocks, `TRANQUILLITY_GATE=strict`).
    """

    LOADED = "chargee"
    SUPERSEDED = "remplacee"
    DUPLICATE = "doublon"
    REJECTED = "rejetee"
    BLOCKED = "bloquee"


# The reason of a delivery rejected by an error nobody foresaw starts with this: such a
# delivery is examined again at every refresh (the error may be transient, or fixed since).
UNEXPECTED = "erreur inattendue"


def waiting(table: str = "") -> str:
    """A held delivery no newer delivery for its key has replaced (listed in the publication;
    it blocks it in strict mode).
    (`table`: the alias of raw.livraisons in the query, if any.)"""
    t = f"{table}." if table else ""
    return f"({t}statut = '{Status.BLOCKED}' AND {t}remplacee_par IS NULL)"


def loaded(table: str = "") -> str:
    """A delivery whose rows are in the raw tables (the current one for its key, or older)."""
    t = f"{table}." if table else ""
    return f"{t}statut IN ('{Status.LOADED}', '{Status.SUPERSEDED}')"


WAITING = waiting()
LOADED = loaded()
# A delivery examined again at every refresh, under its ledger id: a blocked one still
# waiting (what blocked it may have been fixed since: its stock delivered, a tolerance
# revised), and one an unexpected error stopped (the error may be transient, or fixed).
TO_RETRY = f"({WAITING} OR (statut = '{Status.REJECTED}' AND starts_with(motif, '{UNEXPECTED}')))"
# The current delivery of its key: the one the models read.
CURRENT = f"statut = '{Status.LOADED}'"


@dataclass
class LedgerRow:
    """One delivery, one row of `raw.livraisons` (docs/operations.md, "The delivery ledger").

    The loader fills it as it reads the file and writes it in the same transaction as the
    delivery's rows. The table's DDL and the frame schema used to write it are derived from
    these fields: a column is added here and nowhere else.
    """

    livraison_id: int
    famille: str
    type_fichier: str | None
    code_bailleur: str | None
    periode: str | None
    fichier: str
    taille_octets: int | None
    modifie_le: datetime | None
    sha256: str
    recue_le: datetime
    dialecte: str | None = None
    lignes_lues: int = 0
    lignes_chargees: int = 0
    lignes_quarantaine: int = 0
    statut: Status = Status.REJECTED
    motif: str | None = None
    colonnes_ignorees: str | None = None
    remplacee_par: int | None = None
    doublon_de: int | None = None
    # Added after the first release: `pipelines.warehouse.upgrade` adds it to older warehouses.
    remarques: str | None = None


@dataclass(frozen=True)
class LedgerColumn:
    name: str
    sql: str
    polars: pl.DataType
    nullable: bool


def _columns() -> tuple[LedgerColumn, ...]:
    """The ledger's columns from `LedgerRow`'s annotations (SQL and polars types, NULL-ness)."""
    hints = get_type_hints(LedgerRow)
    columns = []
    for item in fields(LedgerRow):
        hint = hints[item.name]
        nullable = type(None) in get_args(hint)
        base = next((a for a in get_args(hint) if a is not type(None)), hint)
        sql, polars = _TYPES[base]
        columns.append(LedgerColumn(item.name, sql, polars, nullable))
    return tuple(columns)


_TYPES: dict[Any, tuple[str, pl.DataType]] = {
    int: ("BIGINT", pl.Int64()),
    str: ("VARCHAR", pl.String()),
    Status: ("VARCHAR", pl.String()),
    datetime: ("TIMESTAMP", pl.Datetime("us")),
}
LEDGER_COLUMNS = _columns()
LEDGER_SCHEMA = {c.name: c.polars for c in LEDGER_COLUMNS}


def ledger_ddl() -> str:
    """`raw.livraisons`, keyed by `livraison_id` (the first field)."""
    key, *others = LEDGER_COLUMNS
    lines = [f"{key.name} {key.sql} PRIMARY KEY"] + [
        f"{c.name} {c.sql}{'' if c.nullable else ' NOT NULL'}" for c in others
    ]
    body = ",\n    ".join(lines)
    return f"CREATE SCHEMA IF NOT EXISTS raw;\nCREATE TABLE IF NOT EXISTS raw.livraisons (\n    {body}\n);"


def ledger_frame(rows: list[LedgerRow]) -> pl.DataFrame:
    return pl.DataFrame([asdict(row) for row in rows], schema=LEDGER_SCHEMA)


ContentKey = tuple[str, str | None, str | None, str | None]


def content_key(sha: str, kind: str | None, landlord: str | None, period: str | None) -> ContentKey:
    """What makes two deliveries the same: their bytes and their key. The SSMSI edition is
    read from the file's header, so its bytes alone identify it."""
    return (sha, kind, landlord, None if kind == SSMSI_KIND.name else period)


def unexpected_reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0][:300] if lines else ""
    return (
        f"{UNEXPECTED} en lisant le fichier ({type(exc).__name__}: {first}) ; il sera relu au "
        "prochain rafraîchissement, le détail est dans le journal du rafraîchissement"
    )


@dataclass
class LedgerState:
    """What the ledger already knows, read once at the start of a family's pass."""

    # (file, sha256) of deliveries examined again in this pass, and their ledger id.
    retry_ids: dict[tuple[str, str], int]
    # (file, sha256) of deliveries already recorded for good: never read again.
    seen_files: set[tuple[str, str]]
    # (file, size, modification time) of those: a file still so is not even hashed again
    # (hashing a national inbox takes minutes; the inbox is never modified in place).
    settled_stamps: set[tuple[str, int, str]]
    # The first delivery of each content key: a later one with the same key is a duplicate.
    first_by_content: dict[ContentKey, int]
    # Rows read by the current delivery of each series (kind, landlord) and period, oldest
    # first: the base of the suite's "row count against the previous delivery".
    series: dict[tuple[str | None, str | None], dict[str, int]]
    # Blocked deliveries an operator accepted (`tranquillity accept`), by (file, sha256).
    accepted: dict[tuple[str, str], str]
    next_id: int

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> LedgerState:
        known = con.execute(
            "SELECT fichier, sha256, livraison_id, type_fichier, code_bailleur, periode, "
            f"taille_octets, modifie_le, {TO_RETRY} AS a_relire "
            "FROM raw.livraisons ORDER BY livraison_id"
        ).fetchall()
        first_by_content: dict[ContentKey, int] = {}
        for _file, sha, lid, kind, landlord, period, _size, _mtime, retry in known:
            if not retry:
                first_by_content.setdefault(content_key(sha, kind, landlord, period), lid)
        series: dict[tuple[str | None, str | None], dict[str, int]] = defaultdict(dict)
        for kind, landlord, period, rows in con.execute(
            f"SELECT type_fichier, code_bailleur, periode, lignes_lues FROM raw.livraisons "
            f"WHERE {CURRENT} ORDER BY modifie_le, fichier"
        ).fetchall():
            series[(kind, landlord)][period or ""] = int(rows)
        accepted = {
            (f, sha): motif
            for f, sha, motif in con.execute(
                "SELECT fichier, sha256, motif FROM raw.derogations"
            ).fetchall()
        }
        return cls(
            retry_ids={(f, s): lid for f, s, lid, *_, retry in known if retry},
            seen_files={(f, s) for f, s, *_, retry in known if not retry},
            settled_stamps=_stamps(known, retry=False) - _stamps(known, retry=True),
            first_by_content=first_by_content,
            series=series,
            accepted=accepted,
            next_id=max((row[2] for row in known), default=0) + 1,
        )


def _stamps(known: list[tuple[Any, ...]], *, retry: bool) -> set[tuple[str, int, str]]:
    """(file, size, time) of the known deliveries examined again (`retry`) or not, in the
    form of `loader.inbox_stamps`."""
    return {
        (str(row[0]), int(row[6]), row[7].isoformat())
        for row in known
        if bool(row[-1]) == retry and row[6] is not None and row[7] is not None
    }


def update_statuses(con: duckdb.DuckDBPyConnection) -> None:
    """Newest delivery per (kind, landlord, period) is current; older ones are superseded."""
    current = f"CASE WHEN r.courante = l.livraison_id THEN '{Status.LOADED}' ELSE '{Status.SUPERSEDED}' END"
    con.execute(
        f"""
        WITH ranked AS (
            SELECT livraison_id,
                   first_value(livraison_id) OVER (
                       PARTITION BY type_fichier, coalesce(code_bailleur, ''), coalesce(periode, '')
                       ORDER BY modifie_le DESC, fichier DESC
                   ) AS courante
            FROM raw.livraisons
            WHERE {LOADED}
        )
        UPDATE raw.livraisons AS l
        SET statut = {current},
            remplacee_par = CASE WHEN r.courante = l.livraison_id THEN NULL ELSE r.courante END
        FROM ranked AS r
        WHERE r.livraison_id = l.livraison_id
          AND (l.statut IS DISTINCT FROM {current}
               OR l.remplacee_par IS DISTINCT FROM
                   CASE WHEN r.courante = l.livraison_id THEN NULL ELSE r.courante END)
        """
    )


def resolve_blocked(con: duckdb.DuckDBPyConnection) -> None:
    """A held delivery stops waiting once a newer delivery for its key is loaded."""
    con.execute(
        f"""
        UPDATE raw.livraisons AS b
        SET remplacee_par = (
            SELECT l.livraison_id FROM raw.livraisons AS l
            WHERE {loaded("l")}
              AND l.type_fichier = b.type_fichier
              AND coalesce(l.code_bailleur, '') = coalesce(b.code_bailleur, '')
              AND coalesce(l.periode, '') = coalesce(b.periode, '')
              AND (l.modifie_le > b.modifie_le
                   OR (l.modifie_le = b.modifie_le AND l.fichier > b.fichier))
            ORDER BY l.modifie_le DESC, l.fichier DESC LIMIT 1
        )
        WHERE {waiting("b")}
        """
    )


def waiting_blocked(
    con: duckdb.DuckDBPyConnection, family: str | None = None
) -> list[tuple[int, str, str]]:
    """Held deliveries (of a family, or all) not yet replaced: listed in the publication,
    alerted, and blocking it in strict mode."""
    return [
        (int(lid), str(f), str(m))
        for lid, f, m in con.execute(
            f"SELECT livraison_id, fichier, motif FROM raw.livraisons "
            f"WHERE {WAITING} AND (? IS NULL OR famille = ?) ORDER BY modifie_le, fichier",
            [family, family],
        ).fetchall()
    ]


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
        f"SELECT fichier, sha256 FROM raw.livraisons "
        f"WHERE {WAITING} AND (fichier = ? OR fichier LIKE ?)",
        [fichier, f"%/{fichier}"],
    ).fetchall()
    if len(rows) != 1:
        waiting = sorted(f for _, f, _ in waiting_blocked(con))
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


def ledger_summary(con: duckdb.DuckDBPyConnection) -> list[dict[str, object]]:
    """Per family: deliveries by status and rows, over the whole ledger."""
    cursor = con.execute(
        f"""
        SELECT famille,
               count(*) AS livraisons,
               count(*) FILTER (WHERE statut = '{Status.LOADED}') AS courantes,
               count(*) FILTER (WHERE statut = '{Status.SUPERSEDED}') AS remplacees,
               count(*) FILTER (WHERE statut = '{Status.DUPLICATE}') AS doublons,
               count(*) FILTER (WHERE statut = '{Status.REJECTED}') AS rejetees,
               count(*) FILTER (WHERE {WAITING}) AS bloquees,
               coalesce(sum(lignes_lues), 0) AS lignes_lues,
               coalesce(sum(lignes_chargees), 0) AS lignes_chargees,
               coalesce(sum(lignes_quarantaine), 0) AS lignes_quarantaine
        FROM raw.livraisons GROUP BY famille ORDER BY famille
        """
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
