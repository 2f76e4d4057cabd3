"""One configuration surface: every setting is declared once (pipelines/settings.py) and
everything else (the resources, dbt's profile, the help, the docs) follows it.

These tests fail when a copy drifts: a default changed in one place only, a module reading
the environment behind the resources' back, a documented variable that does nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.resources import QualityResource, WarehouseResource, run_resources
from pipelines.settings import (
    DUCKDB_MEMORY,
    KEEP_DATA_DOCS,
    KEEP_PUBLICATIONS,
    PSEUDO_KEY,
    SETTINGS,
    Home,
)

REPO = Path(__file__).resolve().parents[1]
CLI_DOC = REPO / "docs" / "command-line.md"

# Modules allowed to touch the environment, and why. Everything else gets its settings from
# the resources (or from `Setting.value()` when it runs outside Dagster).
ENVIRONMENT_READERS = {
    # Declares the settings and reads them for code that runs outside Dagster.
    "pipelines/settings.py",
    # The process's entry point: sets the home for what it starts (Dagster, dbt).
    "pipelines/cli.py",
    # `dbt parse` in a child process: passes the environment on, with a home to render.
    "pipelines/dbt_project.py",
    # Turns Great Expectations' analytics off before it is imported (a library switch).
    "pipelines/quality/runner.py",
    # Gives the resource fields `dg.EnvVar` when a variable is set.
    "pipelines/resources.py",
    # Redirects file descriptors of the process for the refresh log (no setting read).
    "pipelines/refresh.py",
    # Reads TERM, what the terminal can draw (a property of the terminal, not a setting).
    "pipelines/progress.py",
}


def _environment_uses(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
            return True
    return False


def test_only_the_listed_modules_touch_the_environment() -> None:
    readers = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "pipelines").rglob("*.py")
        if "generate" not in path.parts and _environment_uses(path)
    }
    assert readers <= ENVIRONMENT_READERS, (
        f"read the setting through a resource field instead: {sorted(readers - ENVIRONMENT_READERS)}"
    )


def _documented() -> dict[str, str]:
    """`variable -> default` of the environment table in docs/command-line.md."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", CLI_DOC.read_text(encoding="utf-8"), re.M)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_documented_with_its_default() -> None:
    documented = _documented()
    for setting in SETTINGS:
        assert setting.variable in documented, f"{setting.variable} missing from {CLI_DOC}"
        if setting.default is not None:
            assert documented[setting.variable] == f"`{setting.default}`", (
                f"{CLI_DOC.name}: default of {setting.variable} is {setting.default}"
            )
    # Nothing documented that the code does not know (DO_NOT_TRACK is the libraries').
    unknown = set(documented) - {s.variable for s in SETTINGS} - {"DO_NOT_TRACK"}
    assert not unknown, f"documented but not a setting: {sorted(unknown)}"


def test_dbt_profile_follows_the_home_and_the_memory_setting() -> None:
    profile = yaml.safe_load((REPO / "dbt_project" / "profiles.yml").read_text())
    output = profile["tranquillity"]["outputs"]["dev"]
    home = Home(Path("/h"))
    rendered = output["path"].replace("{{ env_var('TRANQUILLITY_HOME') }}", "/h")
    assert Path(rendered) == home.warehouse_db
    assert output["settings"]["memory_limit"] == (
        f"{{{{ env_var('{DUCKDB_MEMORY.variable}', '{DUCKDB_MEMORY.default}') }}}}"
    )


def _connect_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "connect"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "duckdb"
    ]


def test_every_duckdb_connection_of_the_pipeline_is_capped() -> None:
    """DuckDB takes 80 % of the machine by default: one connection opened without the cap
    (a read-only one on the 2 GB publication, say) is enough to break the refresh's memory
    bound. In-memory connections on small frames (no path) are the exception."""
    uncapped = [
        f"{path.relative_to(REPO)}:{call.lineno}"
        for path in sorted((REPO / "pipelines").rglob("*.py"))
        if "generate" not in path.parts
        for call in _connect_calls(path)
        if call.args and not any(k.arg == "config" for k in call.keywords)
    ]
    assert not uncapped, f"pass config=connection_config() (pipelines/settings.py): {uncapped}"


def _initialised(resource: dg.ConfigurableResource) -> dg.ConfigurableResource:
    with dg.build_resources({"it": resource}) as built:
        return built.it  # type: ignore[no-any-return]


def test_resources_take_the_environment_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANQUILLITY_HOME", str(tmp_path / "h"))
    monkeypatch.setenv(KEEP_PUBLICATIONS.variable, "3")
    monkeypatch.setenv(DUCKDB_MEMORY.variable, "1GB")
    monkeypatch.setenv(PSEUDO_KEY.variable, "a-key")
    monkeypatch.setenv(KEEP_DATA_DOCS.variable, "4")
    resources = run_resources()
    warehouse = _initialised(resources["warehouse"])
    assert isinstance(warehouse, WarehouseResource)
    assert warehouse.get_home().root == tmp_path / "h"
    assert warehouse.keep_publications == 3
    assert warehouse.pseudonymisation() == b"a-key"
    with warehouse.get_connection() as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert limit.startswith(("953.6 MiB", "1.0 GiB", "1000.0 MB")), limit
    quality = _initialised(resources["quality"])
    assert isinstance(quality, QualityResource) and quality.keep_data_docs == 4


def test_resources_fall_back_to_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANQUILLITY_HOME", str(tmp_path / "h"))
    for setting in (KEEP_PUBLICATIONS, DUCKDB_MEMORY, PSEUDO_KEY, KEEP_DATA_DOCS):
        monkeypatch.delenv(setting.variable, raising=False)
    resources = run_resources()
    warehouse = _initialised(resources["warehouse"])
    assert isinstance(warehouse, WarehouseResource)
    assert warehouse.keep_publications == int(KEEP_PUBLICATIONS.default or 0)
    assert warehouse.memory_limit == DUCKDB_MEMORY.default
    # No key given: the key file of the home, created once.
    key = warehouse.pseudonymisation()
    assert key == (tmp_path / "h" / "secrets" / "pseudonymisation.key").read_text().strip().encode()
    quality = _initialised(resources["quality"])
    assert isinstance(quality, QualityResource)
    assert quality.keep_data_docs == int(KEEP_DATA_DOCS.default or 0)
