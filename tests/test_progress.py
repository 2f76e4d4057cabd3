"""What the operator sees while a refresh runs (pipelines/progress.py): files and rows per
second per ingestion family, nodes done per dbt layer, and no terminal codes where there is
no terminal."""

from __future__ import annotations

import io
import json
import re

import pytest

from pipelines import progress
from pipelines.assets.transform import LayerCounter
from pipelines.dbt_project import dbt_project
from pipelines.settings import Home
from tests.conftest import INCIDENTS_HEADER, ingest, stock, write_delimited


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _inbox(home: Home) -> None:
    stock(home)
    write_delimited(
        home.inbox_family("landlord") / "HMP_incidents_2025-01.csv",
        INCIDENTS_HEADER,
        ["I1;2025-01-03;R1;;DEG;hall;2;;oui;;;", "I2;2025-01-03;R1;;DEG;hall;9;;oui;;;"],
    )


def test_ingestion_reports_files_and_rows_per_second_in_plain_lines(home: Home) -> None:
    _inbox(home)
    out = io.StringIO()
    with progress.shown_on(out):
        ingest(home, "landlord")
        ingest(home, "police")  # an empty folder says so too
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    landlord = re.fullmatch(r"ingested landlord: 2/2 files, 5 rows, ([\d,]+) rows/s", lines[0])
    assert landlord is not None and int(landlord[1].replace(",", "")) > 0
    assert lines[1] == "ingested police: 0/0 files, 0 rows, 0 rows/s"
    assert "\x1b[" not in out.getvalue()
    # Again: both files are already recorded, examined (hashed) but no row read.
    again = io.StringIO()
    with progress.shown_on(again):
        ingest(home, "landlord")
    assert again.getvalue() == "ingested landlord: 2/2 files, 0 rows, 0 rows/s\n"


def test_outside_a_refresh_nothing_is_shown(home: Home, capsys: pytest.CaptureFixture) -> None:
    _inbox(home)
    report = ingest(home, "landlord")
    assert report.rows_read == 5
    assert capsys.readouterr() == ("", "")


def test_a_terminal_gets_bars_a_dumb_one_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    live = Terminal()
    with progress.shown_on(live), progress.ingestion("landlord", 3) as shown:
        shown.update(3, 1_234_567)
    assert "ingesting landlord" in live.getvalue() and "1.2M rows" in live.getvalue()
    assert "\x1b[" in live.getvalue()  # drawn and redrawn in place
    monkeypatch.setenv("TERM", "dumb")
    dumb = Terminal()
    with progress.shown_on(dumb), progress.ingestion("landlord", 3) as shown:
        shown.update(3, 1_234_567)
    assert dumb.getvalue().startswith("ingested landlord: 3/3 files, 1.2M rows, ")
    assert "\x1b[" not in dumb.getvalue()


def test_a_long_step_without_terminal_says_where_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)
    out = io.StringIO()
    with progress.shown_on(out), progress.ingestion("police", 2) as shown:
        shown.update(1, 10)
    assert out.getvalue().splitlines()[0].startswith("ingesting police: 1/2 files, 10 rows, ")


def _event(unique_id: str, status: str, name: str = "NodeExecuting") -> dict:
    return {
        "info": {"name": name},
        "data": {"node_info": {"unique_id": unique_id, "node_status": status}},
    }


def test_dbt_nodes_are_counted_per_layer() -> None:
    manifest = {
        "nodes": {
            "seed.t.departements": {"resource_type": "seed", "fqn": ["t", "departements"]},
            "model.t.stg_a": {"resource_type": "model", "fqn": ["t", "staging", "stg_a"]},
            "model.t.stg_b": {"resource_type": "model", "fqn": ["t", "staging", "stg_b"]},
            "model.t.int_a": {"resource_type": "model", "fqn": ["t", "intermediate", "int_a"]},
            "model.t.eph": {
                "resource_type": "model",
                "fqn": ["t", "intermediate", "eph"],
                "config": {"materialized": "ephemeral"},
            },
            "model.t.m": {"resource_type": "model", "fqn": ["t", "marts", "m"]},
            "test.t.not_null_m": {"resource_type": "test", "fqn": ["t", "marts", "not_null_m"]},
            "test.t.assert_x": {"resource_type": "test", "fqn": ["t", "assert_x"]},
            "analysis.t.a": {"resource_type": "analysis", "fqn": ["t", "a"]},
        },
        "unit_tests": {
            "unit_test.t.m.u": {"resource_type": "unit_test", "fqn": ["t", "marts", "m", "u"]}
        },
    }
    counter = LayerCounter(manifest)
    assert counter.totals == {"seeds": 1, "staging": 2, "intermediate": 1, "marts": 1, "tests": 3}
    stream = [
        _event("model.t.stg_a", "started"),  # not done yet
        _event("model.t.stg_a", "success"),
        _event("model.t.stg_a", "success"),  # the same node again: counted once
        _event("model.t.stg_b", "error"),
        _event("model.t.m", "skipped"),
        _event("test.t.not_null_m", "fail"),
        # A passing unit test's result line carries the status before it ran.
        _event("unit_test.t.m.u", "executing", "LogTestResult"),
        {"info": {"name": "MainReportVersion"}, "data": {}},
    ]
    out = io.StringIO()
    with progress.shown_on(out), progress.dbt_build(counter.totals) as shown:
        for event in stream:
            layer = counter.finished_layer(event)
            if layer is not None:
                shown.advance(layer)
    lines = [re.sub(r", \d+s$", "", line) for line in out.getvalue().splitlines()]
    # A layer complete says so at once; the others at the end of the build.
    assert lines == [
        "dbt staging: 2/2 done",
        "dbt marts: 1/1 done",
        "dbt seeds: 0/1 done",
        "dbt intermediate: 0/1 done",
        "dbt tests: 2/3 done",
    ]
    # A node the manifest did not announce still counts somewhere.
    assert LayerCounter({}).finished_layer(_event("test.t.other", "pass")) == "tests"
    assert LayerCounter({}).finished_layer(_event("model.t.other", "success")) == "dbt"


def test_every_node_of_the_project_has_its_layer() -> None:
    """The real manifest: each model counts in one of the project's layers, each test in
    `tests`: a new model folder would otherwise show up as an unnamed `dbt` line."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    counter = LayerCounter(manifest)
    assert set(counter.totals) == {"seeds", "staging", "intermediate", "marts", "tests"}
    assert sum(counter.totals.values()) == len(counter.layers) > 300
