"""The publication is a function of the set of current deliveries, never of the order they
arrived in or of the refreshes between (contract section 3).

The same generated inbox is published twice: once in one refresh, and once delivered in
three shuffled batches with the landlords' stock files last (the stock at 1 January arrives
months after the year's first incidents, as RPLS does), refreshing after each batch: the later
refreshes recompute only the months their deliveries changed (pipelines/window.py). Every
published table must come out identical. The intermediate refreshes may publish, hold files
or be blocked: only the end matters.
"""

from __future__ import annotations

import random
import shutil

import duckdb
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.publish import CONTRACT_TABLES
from pipelines.settings import Home
from tests.conftest import home_environment
from tests.fingerprint import fingerprints

KEY = "order-test"


def _refresh() -> tuple[int, str]:
    result = CliRunner().invoke(main, ["refresh"])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


# Tables about the run itself (its id and time; the ledger ids, numbered in arrival order).
RUN_TABLES = {"main.publication", "main.publication_livraisons"}


def _fingerprints(home: Home) -> dict[str, tuple[str, int]]:
    """Every published table's fingerprint (columns, types, rows in any order): the contract
    tables and the others, among them the monthly tables a refresh recomputes only in part."""
    found = fingerprints(home.current_publication)
    assert {f"main.{t}" for t in CONTRACT_TABLES} <= set(found)
    return {table: f for table, f in found.items() if table not in RUN_TABLES}


def _deliveries(home: Home) -> set[tuple[str, str, str]]:
    with duckdb.connect(str(home.current_publication), read_only=True) as con:
        return set(
            con.execute("SELECT fichier, sha256, statut FROM publication_livraisons").fetchall()
        )


def test_three_shuffled_batches_publish_what_one_refresh_does(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    source = tmp_path_factory.mktemp("order") / "inbox"
    once = Home(tmp_path_factory.mktemp("once") / "home")
    with home_environment(once.root, TRANQUILLITY_PSEUDO_KEY=KEY):
        once.ensure()
        result = CliRunner().invoke(
            main, ["generate", "--scale", "tiny", "--seed", "11", "--out", str(source)]
        )
        assert result.exit_code == 0, result.output
        shutil.copytree(source, once.inbox, dirs_exist_ok=True)
        code, output = _refresh()
        assert code == 0, output
        expected, expected_deliveries = _fingerprints(once), _deliveries(once)

    files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    stocks = [f for f in files if "_patrimoine_" in f.name]
    others = [f for f in files if f not in stocks]
    assert stocks and others
    random.Random(11).shuffle(others)
    third = len(others) // 3
    batches = [others[:third], others[third : 2 * third], others[2 * third :] + stocks]

    batched = Home(tmp_path_factory.mktemp("batched") / "home")
    with home_environment(batched.root, TRANQUILLITY_PSEUDO_KEY=KEY):
        batched.ensure()
        outputs = []
        for batch in batches:
            for relative in batch:
                target = batched.inbox / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / relative, target)  # same bytes, same modification time
            code, output = _refresh()
            assert code in (0, 3), output
            outputs.append(output)
        assert code == 0, outputs[-1]
        assert _deliveries(batched) == expected_deliveries
        got = _fingerprints(batched)
    assert set(got) == set(expected)
    assert {t: got[t] for t in got if got[t] != expected[t]} == {}, outputs
