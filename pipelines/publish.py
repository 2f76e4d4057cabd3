"""Write-audit-publish: a publication is a new DuckDB file, swapped in atomically.

The marts are built in the working database; the publication is a *copy* of the published
tables into `published/<publication_id>.duckdb`, written under a temporary name, fsynced,
renamed, then hard-linked over `published/current.duckdb` with one atomic `rename`. A reader
holding the old file keeps reading the old inode; a crash at any point leaves the previous
`current.duckdb` whole (at worst a `.partial` file, removed by the next publication).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from pipelines.dictionary import DICTIONARY_TABLE, write_dictionary
from pipelines.ingest.ledger import CURRENT, WAITING, Status
from pipelines.ingest.specs import ALL_KINDS
from pipelines.opendata import write_open_data
from pipelines.settings import DBT_MANIFEST, KEEP_PUBLICATIONS, REPO_ROOT, Home, connection_config
from pipelines.window import INCREMENTAL_MODELS, Window, describe_months

MANIFEST = DBT_MANIFEST


def contract_tables(manifest: Path = MANIFEST) -> tuple[str, ...]:
    """The models whose dbt contract is enforced (`config.contract.enforced` in the marts YAML),
    in the contract's order (`config.meta.ordre_contrat`): read from dbt's manifest, so that
    declaring a contract in dbt is the one way to make a contract table. Like `@dbt_assets`,
    this reads the manifest as it is (`make manifest` and `tranquillity refresh` parse the
    project first); it is parsed here only when it does not exist yet."""
    if not manifest.exists():
        from pipelines.dbt_project import ensure_manifest

        ensure_manifest()
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"].values()
    enforced = [
        n
        for n in nodes
        if n["resource_type"] == "model" and (n["config"].get("contract") or {}).get("enforced")
    ]
    unordered = [n["name"] for n in enforced if "ordre_contrat" not in n["config"].get("meta", {})]
    if unordered:
        raise RuntimeError(f"contract tables without meta.ordre_contrat: {', '.join(unordered)}")
    enforced.sort(key=lambda n: (n["config"]["meta"]["ordre_contrat"], n["name"]))
    return tuple(n["name"] for n in enforced)


CONTRACT_TABLES: tuple[str, ...] = contract_tables()
MARTS_SCHEMA = "marts"
DEFAULT_KEEP = int(KEEP_PUBLICATIONS.default or 10)
# The publication's period is the span of the monthly deliveries (specs.py: `period`).
MONTHLY_KINDS = ", ".join(f"'{k.name}'" for k in ALL_KINDS if k.period == "month")
# The tables write_publication builds itself, after the marts (described in
# pipelines/dictionary.py).
BUILT_HERE = ("publication", "publication_livraisons", DICTIONARY_TABLE)
# The statistical secret's repair of each component of the last open data, reused by the next
# (pipelines/opendata.py `protect_linked`); the working folder's, never published.
DISCLOSURE_CACHE = "secret_statistique.json"


@dataclass(frozen=True)
class Publication:
    publication_id: str
    path: Path
    tables: tuple[str, ...]
    n_controles: int
    # The open data's share of the step (its protection dominates it nationally).
    open_data_seconds: float = 0.0


def version_code() -> str:
    """Package version and git commit of the code that built the publication."""
    from importlib.metadata import version

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version('tranquillity')}+{commit}" if commit else version("tranquillity")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_publication_id(published: Path, now: datetime) -> str:
    """UTC time to the millisecond, always after every existing publication.

    Ids sort like the publications' order, which pruning relies on; an id is never reused,
    even after the file bearing it was pruned (the clock may step back, two runs may fall in
    one millisecond).
    """
    existing = [p.stem for p in published.glob("2*.duckdb")]
    latest = max(existing, default="")
    moment = now
    while True:
        candidate = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
        if candidate > latest:
            return candidate
        moment += timedelta(milliseconds=1)


def _exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    schema, table = relation.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def published_tables(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """Contract tables first, then every other mart (additions are welcome)."""
    marts = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_type = 'BASE TABLE'",
            [MARTS_SCHEMA],
        ).fetchall()
    }
    missing = [t for t in CONTRACT_TABLES if t not in marts]
    if missing:
        raise RuntimeError(f"contract tables missing from the marts: {', '.join(missing)}")
    return CONTRACT_TABLES + tuple(sorted(marts - set(CONTRACT_TABLES)))


def write_publication(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    *,
    run_id: str,
    n_controles: int,
    keep: int = DEFAULT_KEEP,
    window: Window | None = None,
) -> Publication:
    """Copy the marts into a new publication file and make it current, atomically
    (`stage_publication`, then `make_current`)."""
    staged = stage_publication(con, home, run_id=run_id, n_controles=n_controles, window=window)
    return make_current(home, staged, keep)


def stage_publication(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    *,
    run_id: str,
    n_controles: int,
    window: Window | None = None,
) -> Publication:
    """Copy the marts into a new publication file, complete but not yet current.

    With a window of months (pipelines/window.py) computed against the current publication,
    the new file starts as a clone of the current one, and of the tables incremental by month
    only the rows the window reaches are rewritten: a new month does not copy the history
    again through DuckDB. Otherwise (no window, every month, or another publication became
    current meanwhile) every table is copied from the marts.

    Every table and column of the file carries a COMMENT (its description and unit) and the
    file holds their list, `dictionnaire` (pipelines/dictionary.py)."""
    published = home.published
    published.mkdir(parents=True, exist_ok=True)
    for stale in [*published.glob(".*.partial"), *(published / "open").glob(".*.partial")]:
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    now = datetime.now(UTC)
    publication_id = new_publication_id(published, now)
    final = published / f"{publication_id}.duckdb"
    partial = published / f".{publication_id}.duckdb.partial"
    tables = published_tables(con)
    base = _incremental_base(home, window)
    if base is not None:
        clone_file(base, partial)
    con.execute(f"ATTACH '{partial}' AS pub")
    try:
        if base is not None and window is not None and window.months is not None:
            _copy_changed(con, tables, window.months)
        else:
            for table in tables:
                con.execute(f'CREATE TABLE pub."{table}" AS SELECT * FROM {MARTS_SCHEMA}."{table}"')
        # The landlord's name, from the names dbt gives every published code.
        names = "intermediate.int_reference__noms_territoires"
        landlord_name = (
            f"(SELECT n.nom_territoire FROM {names} AS n WHERE n.niveau = 'bailleur' "
            "AND n.code_territoire = raw.livraisons.code_bailleur) AS nom_bailleur"
            if _exists(con, names)
            else "NULL::VARCHAR AS nom_bailleur"
        )
        con.execute(
            f"""
            CREATE TABLE pub.publication_livraisons AS
            SELECT livraison_id, famille, type_fichier, code_bailleur, {landlord_name},
                   periode, fichier, sha256, lignes_lues, lignes_chargees, lignes_quarantaine,
                   statut
            FROM raw.livraisons WHERE {CURRENT} OR {WAITING} ORDER BY livraison_id
            """
        )
        # Which years are complete, from the published `periodes_couvertes` (the dbt mart).
        complete_years = (
            """(SELECT string_agg(type_fichier || ' ' || annees, ' ; ' ORDER BY type_fichier)
                FROM (SELECT type_fichier,
                             string_agg(annee::VARCHAR, ', ' ORDER BY annee) AS annees
                      FROM pub.periodes_couvertes WHERE annee_complete
                      GROUP BY type_fichier))"""
            if "periodes_couvertes" in tables
            else "NULL::VARCHAR"
        )
        con.execute(
            f"""
            CREATE TABLE pub.publication AS
            SELECT ?::VARCHAR AS publication_id,
                   ?::TIMESTAMP AS publiee_le,
                   min(strptime(periode, '%Y-%m'))::DATE AS periode_debut,
                   last_day(max(strptime(periode, '%Y-%m')))::DATE AS periode_fin,
                   (SELECT count(*) FROM pub.publication_livraisons
                    WHERE statut = '{Status.LOADED}') AS n_livraisons,
                   ?::BIGINT AS n_controles,
                   0::BIGINT AS n_controles_en_echec,
                   ?::VARCHAR AS version_code,
                   ?::VARCHAR AS run_id,
                   {complete_years} AS annees_completes,
                   ?::VARCHAR AS mois_recalcules
            FROM raw.livraisons
            WHERE {CURRENT}
              AND type_fichier IN ({MONTHLY_KINDS})
            """,
            [
                publication_id,
                now.replace(tzinfo=None),
                n_controles,
                version_code(),
                run_id,
                recomputed_months(window),
            ],
        )
        # CREATE TABLE AS copies no COMMENT: the data dictionary is written here, last.
        write_dictionary(con, "pub", (*tables, *BUILT_HERE), MANIFEST)
    finally:
        con.execute("DETACH pub")
    _fsync(partial)
    os.replace(partial, final)
    return Publication(publication_id, final, (*tables, *BUILT_HERE), n_controles)


def make_current(home: Home, staged: Publication, keep: int = DEFAULT_KEEP) -> Publication:
    """Write the staged publication's open data, then make it the current publication.

    Called once the warehouse's connection is closed (pipelines/assets/publication.py): its
    DuckDB buffers, filled by the copy up to the memory cap, stayed resident through the open
    data's repair otherwise (nationally the refresh's process held 3.4 GB during the repair
    with a 2 GB cap, against 1.7 GB for the same open data in a process of its own)."""
    published = home.published
    publication_id, final = staged.publication_id, staged.path
    # Open data (docs/open-data.md) is complete before the publication becomes current.
    open_root = published / "open"
    open_partial = open_root / f".{publication_id}.partial"
    open_started = time.perf_counter()
    write_open_data(final, open_partial, cache=home.work / DISCLOSURE_CACHE)
    os.replace(open_partial, open_root / publication_id)
    open_data_seconds = time.perf_counter() - open_started
    swap = published / ".current.duckdb.swap"
    swap.unlink(missing_ok=True)
    try:
        os.link(final, swap)
    except OSError:  # file systems without hard links: a copy, still swapped atomically
        shutil.copyfile(final, swap)
        _fsync(swap)
    os.replace(swap, home.current_publication)
    _fsync(published)
    prune(home, keep)
    return replace(staged, open_data_seconds=round(open_data_seconds, 3))


def recomputed_months(window: Window | None) -> str:
    """`publication.mois_recalcules`."""
    if window is None or window.months is None:
        return "tous"
    return describe_months(window.months) if window.months else "aucun"


def _incremental_base(home: Home, window: Window | None) -> Path | None:
    """The current publication, when the window was computed against it."""
    if window is None or window.months is None or window.base is None:
        return None
    current = home.current_publication
    if not current.exists():
        return None
    try:
        with duckdb.connect(str(current), read_only=True, config=connection_config()) as pub:
            rows = pub.execute("SELECT publication_id FROM publication").fetchall()
    except duckdb.Error:
        return None
    return current if rows and rows[0][0] == window.base else None


def clone_file(source: Path, target: Path) -> None:
    """A copy of `source` that shares its blocks where the file system can (a reflink on
    btrfs or XFS: instant), else a kernel-side copy (no decoding: bytes, at disk speed)."""
    with source.open("rb") as src, target.open("wb") as dst:
        try:
            import fcntl

            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
        except OSError:
            shutil.copyfileobj(src, dst, length=16 * 2**20)
            dst.flush()
    _fsync(target)


# ioctl FICLONE (linux/fs.h): clone a whole file's extents.
_FICLONE = 0x40049409


def _copy_changed(
    con: duckdb.DuckDBPyConnection, tables: tuple[str, ...], months: tuple[date, ...]
) -> None:
    """Into the clone of the current publication: the rows the window reaches of the tables
    incremental by month, every other table whole (they are small), nothing else."""
    existing = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'pub'"
        ).fetchall()
    }
    for table in sorted(existing - {t for t in tables if t in INCREMENTAL_MODELS}):
        con.execute(f'DROP TABLE pub."{table}"')
    for table in tables:
        reach = INCREMENTAL_MODELS.get(table)
        if reach is not None and table in existing:
            rows = reach.predicate(months)
            con.execute(f'DELETE FROM pub."{table}" WHERE {rows}')
            con.execute(
                f'INSERT INTO pub."{table}" SELECT * FROM {MARTS_SCHEMA}."{table}" WHERE {rows}'
            )
        else:
            con.execute(f'CREATE TABLE pub."{table}" AS SELECT * FROM {MARTS_SCHEMA}."{table}"')


def prune(home: Home, keep: int = DEFAULT_KEEP) -> list[Path]:
    """Keep the newest `keep` publications (TRANQUILLITY_KEEP_PUBLICATIONS), at least one."""
    keep = max(1, keep)
    history = sorted(
        home.published.glob("2*.duckdb"),
        key=lambda p: p.name,
        reverse=True,
    )
    removed = []
    current_inode = (
        home.current_publication.stat().st_ino if home.current_publication.exists() else None
    )
    for path in history[keep:]:
        if path.stat().st_ino == current_inode:
            continue
        path.unlink()
        shutil.rmtree(home.published / "open" / path.stem, ignore_errors=True)
        removed.append(path)
    return removed
