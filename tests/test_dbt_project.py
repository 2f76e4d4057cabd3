"""The manifest Dagster reads must follow the dbt project, deletions included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pipelines.dbt_project as dbt_project


def test_deleting_a_test_makes_the_manifest_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tests").mkdir()
    kept = tmp_path / "tests" / "assert_kept.sql"
    removed = tmp_path / "tests" / "assert_removed.sql"
    for path in (kept, removed):
        path.write_text("select 1")
        os.utime(path, (1_000_000, 1_000_000))
    os.utime(tmp_path / "tests", (1_000_000, 1_000_000))
    monkeypatch.setattr(dbt_project, "DBT_PROJECT_DIR", tmp_path)
    before = dbt_project._newest_source_mtime()
    assert before == 1_000_000
    removed.unlink()  # the remaining file is as old as before; only the folder says so
    assert dbt_project._newest_source_mtime() > before
