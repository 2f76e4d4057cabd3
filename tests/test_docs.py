"""The user documentation in docs/ cannot drift from the code.

The pages are written so that their facts can be read back mechanically:

- `docs/published-tables.md` and `docs/open-data.md`: one heading per table made only of the
  table name(s) in backticks (`### `name``), followed by a Markdown table whose first column
  is the column name in backticks (and, in the data dictionary, a `type` column);
- `docs/deliveries.md`: one heading per file kind, `### `<kind>`: `<file name>``, followed by
  a `column | type | required | rule` table and a "Key within a file:" line;
- `docs/command-line.md`: one `### `tranquillity <command>`` heading per command.

The pure tests below compare them with `pipelines/ingest/specs.py`, the dbt YAML of the
marts and the click command. `check_docs_match_publication` and `check_open_data_docs_match`
compare them with a real publication; tests/test_pipeline.py calls them on its `tiny` one
(building a publication costs a Dagster run and a `dbt build`), and
`TRANQUILLITY_DOCS_HOME=<a home with a publication> pytest tests/test_docs.py` runs them here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TABLES_DOC = DOCS / "published-tables.md"
OPEN_DOC = DOCS / "open-data.md"
DELIVERIES_DOC = DOCS / "deliveries.md"
CLI_DOC = DOCS / "command-line.md"
MARTS = REPO / "dbt_project" / "models" / "marts"

# Tables of the publication written by pipelines/publish.py itself, not by dbt.
PUBLICATION_TABLES = {"publication", "publication_livraisons", "dictionnaire"}
DUCKDB_TYPES = {"VARCHAR", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP"}

# --- Markdown ---------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$")
_CODE = re.compile(r"`([^`]+)`")
_NAMES_ONLY = re.compile(r"^`[a-z][a-z0-9_]*`(?:\s*,\s*`[a-z][a-z0-9_]*`)*$")


@dataclass
class Section:
    level: int
    title: str
    lines: list[str]

    @property
    def code(self) -> list[str]:
        """Code spans of the title, in order."""
        return _CODE.findall(self.title)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _without_fences(text: str) -> list[str]:
    """Lines outside fenced code blocks (a `# comment` in a shell block is not a heading)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        kept.append("" if fenced else line)
    return kept


def sections(path: Path) -> list[Section]:
    """Every heading of a page with the lines up to the next heading (of any level)."""
    found: list[Section] = []
    for line in _without_fences(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if match:
            found.append(Section(len(match.group(1)), match.group(2), []))
        elif found:
            found[-1].lines.append(line)
    return found


def first_table(lines: list[str]) -> list[dict[str, str]]:
    """The first Markdown table of the lines, as dicts keyed by its (lower-case) header."""
    block: list[str] = []
    for line in lines:
        if line.startswith("|"):
            block.append(line)
        elif block:
            break
    if len(block) < 2:
        return []

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    header = [h.lower() for h in cells(block[0])]
    rows = []
    for line in block[2:]:
        values = cells(line)
        assert len(values) == len(header), f"ragged table row: {line}"
        rows.append(dict(zip(header, values, strict=True)))
    return rows


def _column_name(cell: str) -> str:
    names = _CODE.findall(cell)
    assert len(names) == 1, f"first cell must be one name in backticks: {cell!r}"
    return names[0]


def documented_tables(path: Path) -> dict[str, dict[str, str | None]]:
    """{table: {column: type or None}} from the `### `table`` sections of a page."""
    tables: dict[str, dict[str, str | None]] = {}
    for section in sections(path):
        if not _NAMES_ONLY.match(section.title):
            continue
        rows = first_table(section.lines)
        assert rows, f"{path.name}: no column table under {section.title}"
        columns: dict[str, str | None] = {}
        for row in rows:
            name = _column_name(row["column"])
            assert name not in columns, f"{path.name}: {section.title}: {name} twice"
            assert row.get("description"), f"{path.name}: {section.title}: {name} undescribed"
            columns[name] = row.get("type")
        for table in section.code:
            assert table not in tables, f"{path.name}: {table} documented twice"
            tables[table] = columns
    return tables


def github_slug(title: str) -> str:
    """The anchor GitHub gives a heading (without the -1, -2 suffixes of duplicates)."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def _compare(
    what: str, documented: dict[str, dict[str, str | None]], actual: dict[str, dict[str, str]]
) -> list[str]:
    problems = []
    for table in sorted(documented.keys() - actual.keys()):
        problems.append(f"{what}: {table} is documented but does not exist")
    for table in sorted(actual.keys() - documented.keys()):
        problems.append(f"{what}: {table} exists but is not documented")
    for table in sorted(documented.keys() & actual.keys()):
        doc, real = documented[table], actual[table]
        for column in doc.keys() - real.keys():
            problems.append(f"{what}: {table}.{column} is documented but does not exist")
        for column in real.keys() - doc.keys():
            problems.append(f"{what}: {table}.{column} exists but is not documented")
        for column in doc.keys() & real.keys():
            if doc[column] is not None and real[column] and doc[column] != real[column].upper():
                problems.append(
                    f"{what}: {table}.{column} is documented as {doc[column]}, is {real[column]}"
                )
    return problems


# --- against a real publication (called by tests/test_pipeline.py) --------------------------


def check_docs_match_publication(db_path: Path) -> None:
    """Every table and column of docs/published-tables.md exists in the publication with the
    documented type, and every table and column of the publication is documented."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
    actual: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        actual.setdefault(table, {})[column] = data_type
    assert actual, f"no table in {db_path}"
    problems = _compare(TABLES_DOC.name, documented_tables(TABLES_DOC), actual)
    assert not problems, "\n".join(problems)


def check_open_data_docs_match(open_dir: Path) -> None:
    """Every open-data file of docs/open-data.md exists (Parquet and CSV) with the documented
    columns, beside `datapackage.json` and `README.md`, and every file of the folder is
    documented."""
    actual: dict[str, dict[str, str]] = {}
    with duckdb.connect() as con:
        for parquet in sorted(open_dir.glob("*.parquet")):
            described = con.execute(
                "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet(?))", [str(parquet)]
            ).fetchall()
            actual[parquet.stem] = {name: "" for (name,) in described}
    assert actual, f"no Parquet file in {open_dir}"
    problems = _compare(OPEN_DOC.name, documented_tables(OPEN_DOC), actual)
    problems += [
        f"{OPEN_DOC.name}: {name}.csv missing beside {name}.parquet"
        for name in actual
        if not (open_dir / f"{name}.csv").exists()
    ]
    problems += [
        f"{OPEN_DOC.name}: {name} missing in {open_dir}"
        for name in ("datapackage.json", "README.md")
        if not (open_dir / name).exists()
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(
    not os.environ.get("TRANQUILLITY_DOCS_HOME"),
    reason="set TRANQUILLITY_DOCS_HOME to a home holding a publication",
)
def test_docs_match_an_existing_publication() -> None:
    home = Path(os.environ["TRANQUILLITY_DOCS_HOME"])
    current = home / "published" / "current.duckdb"
    check_docs_match_publication(current)
    with duckdb.connect(str(current), read_only=True) as con:
        publication_id = con.execute("SELECT publication_id FROM publication").fetchall()[0][0]
    check_open_data_docs_match(home / "published" / "open" / publication_id)


# --- published tables against the dbt models ---------------------------------------------


def _mart_models() -> dict[str, dict[str, str]]:
    models: dict[str, dict[str, str]] = {}
    for path in sorted(MARTS.rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", []):
            models[model["name"]] = {
                c["name"]: str(c.get("data_type") or "").upper() for c in model.get("columns", [])
            }
    return models


def test_published_tables_doc_matches_the_dbt_marts() -> None:
    documented = documented_tables(TABLES_DOC)
    assert documented.keys() >= PUBLICATION_TABLES
    marts = {t: c for t, c in documented.items() if t not in PUBLICATION_TABLES}
    problems = _compare("dbt marts YAML", marts, _mart_models())
    assert not problems, "\n".join(problems)


def test_published_tables_doc_is_well_formed() -> None:
    from pipelines.publish import CONTRACT_TABLES

    documented = documented_tables(TABLES_DOC)
    for table, columns in documented.items():
        for column, sql_type in columns.items():
            assert sql_type in DUCKDB_TYPES, f"{table}.{column}: type {sql_type!r}"
    by_title = {tuple(s.code): s for s in sections(TABLES_DOC)}
    for table in CONTRACT_TABLES:
        section = by_title[(table,)]
        assert "*Contract table.*" in section.text, f"{table} not marked as a contract table"
        assert "Grain:" in section.text, f"{table}: no grain"


# --- deliveries against pipelines/ingest/specs.py -------------------------------------------

_DOC_TYPES = {
    "text": "text",
    "integer": "int",
    "decimal": "decimal",
    "date": "date",
    "code": "enum",
    "oui/non": "oui_non",
}
_PLACEHOLDERS = {"<code_bailleur>": "HAB06", "<YYYY-MM>": "2025-01", "<YYYY>": "2025"}


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_column(where: str, row: dict[str, str], spec: object) -> list[str]:
    from pipelines.ingest import specs

    assert isinstance(spec, specs.Column)
    problems = []
    doc_type = _DOC_TYPES.get(row["type"])
    if doc_type != spec.type:
        problems.append(f"{where}: type {row['type']!r}, specs.py says {spec.type}")
    if row["required"] != ("yes" if spec.required else "no"):
        problems.append(f"{where}: required {row['required']!r}, specs.py says {spec.required}")
    rule = row["rule"]
    quoted = set(_CODE.findall(rule))
    missing = [v for v in spec.allowed if v not in quoted]
    if missing:
        problems.append(f"{where}: allowed values not listed: {', '.join(missing)}")
    if spec.minimum is not None and spec.maximum is not None:
        bounds = f"{_bound(spec.minimum)}..{_bound(spec.maximum)}"
    elif spec.minimum is not None:
        bounds = f"≥ {_bound(spec.minimum)}"
    elif spec.maximum is not None:
        bounds = f"≤ {_bound(spec.maximum)}"
    else:
        bounds = ""
    if bounds not in rule:
        problems.append(f"{where}: bounds {bounds!r} not in {rule!r}")
    words = {
        specs.COMMUNE_PATTERN: "commune code",
        specs.QPV_PATTERN: "QPV code",
        specs.SIREN_PATTERN: "SIREN",
    }
    if spec.pattern and words.get(spec.pattern, spec.pattern) not in rule:
        problems.append(f"{where}: the expected format is not described")
    if spec.pseudonymise and "pseudonymised" not in rule:
        problems.append(f"{where}: not said to be pseudonymised")
    if spec.drop and "dropped" not in rule:
        problems.append(f"{where}: not said to be dropped")
    return problems


def _check_kind_section(section: Section, columns: tuple, kind: object) -> list[str]:
    from pipelines.ingest import specs

    assert isinstance(kind, specs.DeliveryKind)
    where = f"{DELIVERIES_DOC.name}: {section.title}"
    rows = first_table(section.lines)
    if not rows or list(rows[0]) != ["column", "type", "required", "rule"]:
        return [f"{where}: no `column | type | required | rule` table"]
    documented = {_column_name(r["column"]).replace("CODGEO_<YYYY>", "CODGEO"): r for r in rows}
    expected = {c.name: c for c in columns}
    problems = [f"{where}: {c} documented, not in the code" for c in documented.keys() - expected]
    problems += [f"{where}: {c} not documented" for c in expected.keys() - documented.keys()]
    for name in documented.keys() & expected.keys():
        problems += _check_column(f"{where}: {name}", documented[name], expected[name])
    if kind.period_date and "date_hors_periode" not in documented[kind.period_date]["rule"]:
        problems.append(f"{where}: {kind.period_date} must be said within the file's month")
    for later, earlier in kind.ordered_dates:
        rule = documented[later]["rule"]
        if "dates_incoherentes" not in rule or f"`{earlier}`" not in rule:
            problems.append(f"{where}: {later} must be said never before {earlier}")
    key_lines = [line for line in section.lines if line.startswith("Key within a file:")]
    if len(key_lines) != 1:
        problems.append(f"{where}: no 'Key within a file:' line")
    else:
        keys = _CODE.findall(key_lines[0].split(".")[0])
        if sorted(keys) != sorted(kind.unique_within_delivery):
            problems.append(f"{where}: key {keys}, specs.py says {kind.unique_within_delivery}")
    return problems


def test_deliveries_doc_matches_specs() -> None:
    from pipelines.ingest import specs, ssmsi

    by_kind: dict[str, list[Section]] = {}
    for section in sections(DELIVERIES_DOC):
        rows = first_table(section.lines)
        if section.code and rows and "required" in rows[0]:
            by_kind.setdefault(section.code[0], []).append(section)
    names = {k.name for k in specs.ALL_KINDS} | {specs.SSMSI_KIND.name}
    problems = [f"unknown file kind documented: {k}" for k in by_kind.keys() - names]
    problems += [f"file kind not documented: {k}" for k in names - by_kind.keys()]
    for kind in specs.ALL_KINDS:
        for section in by_kind.get(kind.name, []):
            problems += _check_kind_section(section, kind.columns, kind)
            if len(section.code) < 2:
                problems.append(f"{section.title}: no file name")
                continue
            name = section.code[1]
            for placeholder, value in _PLACEHOLDERS.items():
                name = name.replace(placeholder, value)
            stem, dot, extension = name.partition(".")
            for candidate in (name, f"{stem}_corrige{dot}{extension}", f"{stem}.xlsx"):
                found = specs.recognise(kind.family, candidate)
                if found is None or found.kind.name != kind.name:
                    problems.append(
                        f"{section.title}: {candidate} is not recognised as {kind.name}"
                    )
    schemas = by_kind.get(specs.SSMSI_KIND.name, [])
    titles = sorted(s.title for s in schemas)
    assert len(schemas) == 2, f"two SSMSI schemas expected, found {titles}"
    for section in schemas:
        columns = ssmsi.NEW_SCHEMA if "2025" in section.title else ssmsi.OLD_SCHEMA
        problems += _check_kind_section(section, columns, specs.SSMSI_KIND)
    assert not problems, "\n".join(problems)


# --- command line ------------------------------------------------------------------------


def test_command_line_doc_matches_the_command() -> None:
    import click

    from pipelines.cli import main

    text = CLI_DOC.read_text(encoding="utf-8")
    documented = {
        s.code[0].removeprefix("tranquillity "): s
        for s in sections(CLI_DOC)
        if s.code and s.code[0].startswith("tranquillity ")
    }
    problems = [
        f"`tranquillity {c}` documented, no such command"
        for c in documented.keys() - main.commands.keys()
    ]
    problems += [
        f"`tranquillity {c}` not documented" for c in main.commands.keys() - documented.keys()
    ]
    for name in main.commands.keys() & documented.keys():
        section_text = documented[name].text
        for param in main.commands[name].params:
            if isinstance(param, click.Option):
                for opt in param.opts:
                    if opt.startswith("--") and f"`{opt}`" not in section_text:
                        problems.append(f"`tranquillity {name} {opt}` not documented")
    for param in main.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and f"`{opt}`" not in text:
                problems.append(f"global option {opt} not documented")
    assert not problems, "\n".join(problems)


def test_environment_variables_documented() -> None:
    text = CLI_DOC.read_text(encoding="utf-8")
    used = {"DAGSTER_HOME"}
    for path in (REPO / "pipelines").rglob("*.py"):
        used |= set(re.findall(r"\bTRANQUILLITY_[A-Z_]+\b", path.read_text(encoding="utf-8")))
    missing = sorted(v for v in used if f"`{v}`" not in text)
    assert not missing, f"environment variables not documented in {CLI_DOC.name}: {missing}"


# --- links ---------------------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _anchors(path: Path) -> set[str]:
    return {github_slug(s.title) for s in sections(path)}


def broken_links(page: Path) -> list[str]:
    """Relative links of a Markdown page that do not resolve to a file of the repository
    (and anchors that name no heading); links outside the repository count as broken."""
    problems = []
    text = "\n".join(_without_fences(page.read_text(encoding="utf-8")))
    text = re.sub(r"`[^`\n]*`", "x", text)  # a link shown as code is not a link
    for target in _LINK.findall(text):
        if re.match(r"^(?:https?|mailto):", target):
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(REPO)}: ({target})"
        if not resolved.is_relative_to(REPO):
            problems.append(f"{where} points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where} does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            problems.append(f"{where}: no heading #{anchor}")
    return problems


def test_docs_pages_exist_and_are_indexed() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    assert len(pages) >= 6, pages
    assert [p for p in pages if f"]({p})" not in index] == []


def test_docs_links_resolve_inside_the_repository() -> None:
    problems = [p for page in sorted(DOCS.rglob("*.md")) for p in broken_links(page)]
    assert not problems, "\n".join(problems)


def test_readme_links_resolve_inside_the_repository() -> None:
    problems = broken_links(REPO / "README.md")
    assert not problems, "\n".join(problems)
