"""The dbt project as Dagster sees it.

`@dbt_assets` reads dbt's manifest when the definitions are imported, so the manifest must
exist before that: `ensure_manifest()` runs `dbt parse` when it is missing or older than any
file of the project (the make targets and `tranquillity refresh` call it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from pipelines.settings import HOME_SETTING, REPO_ROOT, Home

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
_SOURCES = ("models", "macros", "tests", "seeds", "dbt_project.yml", "profiles.yml")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _newest_source_mtime() -> float:
    """Newest modification among the project's files and folders: a folder's time changes
    when a file is deleted from it, which no remaining file's time shows."""
    newest = 0.0
    for name in _SOURCES:
        path = DBT_PROJECT_DIR / name
        if not path.exists():
            continue
        for entry in [path, *path.rglob("*")] if path.is_dir() else [path]:
            newest = max(newest, entry.stat().st_mtime)
    return newest


def ensure_manifest() -> Path:
    """Parse the project when the manifest is missing or stale; return the manifest path."""
    manifest = dbt_project.manifest_path
    if manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime():
        return manifest
    env = dict(os.environ, DO_NOT_TRACK="1")
    # Parsing never opens the database, but the profile needs a home to render its path.
    env.setdefault(HOME_SETTING.variable, str(Home.from_env().root))
    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run(
        [
            str(dbt),
            "parse",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{result.stdout}\n{result.stderr}")
    manifest.touch()
    return manifest
