"""Incremental refreshes: a new month recomputes that month, and publishes what a full
refresh of the same deliveries publishes (pipelines/window.py, docs/operations.md).

The `tiny` inbox is delivered as an operator lives it: every month but the last; then the last
month together with a corrected re-delivery of the first month (a `_corrige` file dropping an
incident). The second refresh must recompute exactly those two months, rewrite only them in a
clone of the previous publication, and end identical, table by table, to one refresh of the
final inbox. A backfill (`--mois`) recomputes the months asked and changes nothing else.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.settings import Home
from pipelines.window import INCREMENTAL_MODELS, Reach, Window, describe_months, months_between
from tests.conftest import home_environment
from tests.fingerprint import fingerprints

KEY = "incremental-test"
LAST = "2025-03"
CORRECTED = "2025-01"
# Tables whose content records the run itself, not the figures.
RUN_TABLES = {"main.publication", "main.publication_livraisons"}


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _copy(source: Path, inbox: Path, keep: object) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file() and keep(path):  # type: ignore[operator]
            target = inbox / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)  # same bytes, same modification time


def _corrected_delivery(source: Path) -> Path:
    """A landlord's first month again, one incident fewer, delivered after everything else."""
    original = sorted(source.rglob(f"*_incidents_{CORRECTED}.csv"))[0]
    lines = original.read_bytes().splitlines(keepends=True)
    assert len(lines) > 2, original
    corrected = original.with_name(original.stem + "_corrige.csv")
    corrected.write_bytes(b"".join(lines[:-1]))
    newest = max(p.stat().st_mtime for p in source.rglob("*") if p.is_file())
    os.utime(corrected, (newest + 60, newest + 60))
    return corrected


def _figures(home: Home) -> dict[str, tuple[str, int]]:
    return {t: f for t, f in fingerprints(home.current_publication).items() if t not in RUN_TABLES}


def _open_data(home: Home) -> dict[str, pl.DataFrame]:
    """The current publication's open tables, rows sorted (as readers get them)."""
    folder = home.published / "open" / _publication_id(home)
    return {p.name: pl.read_parquet(p).sort(pl.all()) for p in sorted(folder.glob("*.parquet"))}


def _recorded(home: Home) -> str:
    with duckdb.connect(str(home.current_publication), read_only=True) as con:
        return str(con.execute("SELECT mois_recalcules FROM publication").fetchall()[0][0])


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The monthly cycle on one home, and one full refresh of the final inbox on another."""
    source = tmp_path_factory.mktemp("incremental") / "inbox"
    full = Home(tmp_path_factory.mktemp("full") / "home")
    with home_environment(full.root, TRANQUILLITY_PSEUDO_KEY=KEY):
        full.ensure()
        code, output = _invoke("generate", "--scale", "tiny", "--seed", "5", "--out", str(source))
        assert code == 0, output
        _corrected_delivery(source)
        _copy(source, full.inbox, lambda p: True)
        code, output = _invoke("refresh")
        assert code == 0, output
        expected, expected_open = _figures(full), _open_data(full)

    home = Home(tmp_path_factory.mktemp("monthly") / "home")
    with home_environment(home.root, TRANQUILLITY_PSEUDO_KEY=KEY):
        home.ensure()
        _copy(source, home.inbox, lambda p: LAST not in p.name and "_corrige" not in p.name)
        code, first = _invoke("refresh")
        assert code == 0, first
        first_id = _publication_id(home)
        before = home.published / f"{first_id}.duckdb"
        _copy(source, home.inbox, lambda p: LAST in p.name or "_corrige" in p.name)
        code, second = _invoke("refresh")
        assert code == 0, second
        yield {
            "home": home,
            "expected": expected,
            "expected_open": expected_open,
            "first": first,
            "second": second,
            "first_id": first_id,
            "before": before,
        }


def _publication_id(home: Home) -> str:
    with duckdb.connect(str(home.current_publication), read_only=True) as con:
        return str(con.execute("SELECT publication_id FROM publication").fetchall()[0][0])


def test_the_first_refresh_computes_every_month(cycle: dict[str, object]) -> None:
    assert "months recomputed: every month (no publication yet)" in str(cycle["first"])


def test_a_new_month_and_a_correction_recompute_those_two_months(
    cycle: dict[str, object],
) -> None:
    home = cycle["home"]
    assert isinstance(home, Home)
    assert (
        f"months recomputed: 2 month(s): {CORRECTED}, {LAST} (incidents deliveries changed)"
        in str(cycle["second"])
    ), cycle["second"]
    assert _recorded(home) == f"{CORRECTED}, {LAST}"


def test_the_monthly_cycle_publishes_what_one_full_refresh_does(
    cycle: dict[str, object],
) -> None:
    home = cycle["home"]
    assert isinstance(home, Home)
    got, expected = _figures(home), cycle["expected"]
    assert isinstance(expected, dict)
    assert set(got) == set(expected)
    assert set(INCREMENTAL_MODELS) <= {t.split(".", 1)[1] for t in got}
    assert {t: got[t] for t in got if got[t] != expected[t]} == {}


def test_the_open_data_is_what_one_full_refresh_publishes(cycle: dict[str, object]) -> None:
    """The second refresh reused the statistical secret's repair of the year it did not
    change (the cache of pipelines/disclosure.py), and publishes the same open tables."""
    home, expected = cycle["home"], cycle["expected_open"]
    assert isinstance(home, Home) and isinstance(expected, dict)
    got = _open_data(home)
    assert sorted(got) == sorted(expected)
    for name, frame in got.items():
        assert frame.equals(expected[name]), name
    assert (home.work / "secret_statistique.json").exists()


def test_the_previous_publication_is_left_whole(cycle: dict[str, object]) -> None:
    """The new file is a clone of the previous one; the previous one is untouched history."""
    home, before = cycle["home"], cycle["before"]
    assert isinstance(home, Home) and isinstance(before, Path)
    assert before.exists() and before.stat().st_ino != home.current_publication.stat().st_ino
    with duckdb.connect(str(before), read_only=True) as con:
        months = con.execute(
            "SELECT DISTINCT strftime(mois, '%Y-%m') FROM indicateurs_incidents_mois ORDER BY 1"
        ).fetchall()
        assert [m for (m,) in months] == ["2025-01", "2025-02"]
        assert con.execute("SELECT publication_id FROM publication").fetchall() == [
            (cycle["first_id"],)
        ]


def test_nothing_new_recomputes_nothing_and_a_backfill_its_months(
    cycle: dict[str, object],
) -> None:
    home = cycle["home"]
    assert isinstance(home, Home)
    with home_environment(home.root, TRANQUILLITY_PSEUDO_KEY=KEY):
        code, output = _invoke("refresh")
        assert code == 0 and "nothing new" in output, output
        published = _figures(home)
        code, output = _invoke("refresh", "--mois", "2025-02")
        assert code == 0, output
        assert "months recomputed: 1 month(s): 2025-02 (partitions 2025-02)" in output, output
        assert _recorded(home) == "2025-02"
        assert _figures(home) == published
        code, output = _invoke("refresh", "--mois", "2010-01:2010-03")
        assert code == 2, output
        assert "the monthly partitions go from 2015-01" in output, output


def test_force_recomputes_every_month(cycle: dict[str, object]) -> None:
    home = cycle["home"]
    assert isinstance(home, Home)
    with home_environment(home.root, TRANQUILLITY_PSEUDO_KEY=KEY):
        published = _figures(home)
        code, output = _invoke("refresh", "--force")
        assert code == 0, output
        assert "months recomputed: every month (refresh --force)" in output, output
        assert _recorded(home) == "tous"
        assert _figures(home) == published


# The window's arithmetic, on its own.


def test_a_month_reaches_the_rows_its_model_declares() -> None:
    march = (date(2025, 3, 1),)
    rolling = Reach("mois", "mois", 23)
    reached = rolling.values(march)
    assert reached[0] == date(2025, 3, 1) and reached[-1] == date(2027, 2, 1)
    assert len(reached) == 24
    assert Reach("annee", "annee", 1).values(march) == [2025, 2026]
    assert Reach("mois", "mois", 0).predicate(march, "d.") == "d.\"mois\" IN (DATE '2025-03-01')"
    assert Reach("mois", "mois", 0).predicate(None) == "true"
    assert Reach("mois", "mois", 0).predicate(()) == "false"


def test_windows_add_up_and_every_month_wins() -> None:
    a = Window((date(2025, 1, 1),), ("incidents deliveries changed",), "P1")
    b = Window(months_between(date(2025, 3, 1), date(2025, 4, 1)), ("partitions 2025-03..2025-04",))
    both = a.union(b)
    assert both.months == (date(2025, 1, 1), date(2025, 3, 1), date(2025, 4, 1))
    assert both.base == "P1"
    assert both.describe() == "3 month(s): 2025-01, 2025-03..2025-04"
    assert both.union(Window.every_month("refresh --force")).every
    assert Window(()).describe() == "no month"
    assert describe_months((date(2024, 12, 1), date(2025, 1, 1))) == "2024-12..2025-01"
