"""raw -> staging -> intermediate -> marts: the dbt project, one Dagster asset per model.

Two asset definitions, two `dbt build`s per refresh: every model rebuilt whole, then the
models incremental by month (monthly partitions, pipelines/partitions.py), over the run's
window of months (pipelines/window.py).

dbt tests attached to a model surface as Dagster asset checks; in addition every test, unit
test and model outcome of the build is written to `audit.controles` for this run, because the
publish step must decide from a record it reads itself (see `pipelines.audit`).

While the build runs, the operator's terminal shows its nodes done per layer
(`LayerCounter`, pipelines.progress), counted from dbt's events as they stream.
"""

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy, Failure, MetadataValue, Output
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from pipelines import progress
from pipelines.audit import CheckOutcome, record
from pipelines.dbt_project import dbt_project
from pipelines.partitions import (
    CHANGED,
    EVERY,
    WINDOW_TAG,
    monthly_partitions,
    partition_months,
)
from pipelines.resources import WarehouseResource
from pipelines.window import Window, describe_months, record_window, required_window

_LAYERS = ("staging", "intermediate", "marts")


class TranquillityTranslator(DagsterDbtTranslator):
    """Groups assets by dbt layer so the UI reads left to right like the data path."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        for layer in _LAYERS:
            if layer in fqn:
                return layer
        return "seeds" if dbt_resource_props.get("resource_type") == "seed" else "dbt"


# What `dbt build` runs, and where each counts on the operator's terminal: tests (data and
# unit tests, two thirds of the nodes) on their own line, the rest by their UI group.
_BUILT = ("seed", "model", "snapshot", "test", "unit_test")
_TESTS = ("test", "unit_test")
_LAYER_ORDER = ("seeds", *_LAYERS, "dbt", "tests")
# A node is done at its result line or its skip, or at any event giving it a final status
# (a passing unit test's result line carries the status of the node before it ran).
_RESULTS = frozenset(
    (
        *("LogModelResult", "LogSeedResult", "LogSnapshotResult", "LogTestResult"),
        *("SkippingDetails", "LogSkipBecauseError", "NodeFinished"),
    )
)
_FINISHED = frozenset(
    ("success", "error", "skipped", "pass", "fail", "warn", "partial success", "runtime error")
)


def in_monthly_build(node: Mapping[str, Any], nodes: Mapping[str, Any]) -> bool:
    """Whether dbt runs the node in the build of the models incremental by month: those
    models, and the tests and unit tests of one of them (dbt's eager indirect selection)."""

    def incremental(unique_id: str) -> bool:
        return nodes.get(unique_id, {}).get("config", {}).get("materialized") == "incremental"

    if node.get("resource_type") == "unit_test":
        return incremental(f"model.{node.get('package_name')}.{node.get('model')}")
    if node.get("resource_type") == "test":
        return any(incremental(n) for n in node.get("depends_on", {}).get("nodes", []))
    return bool(node.get("config", {}).get("materialized") == "incremental")


def node_layer(node: Mapping[str, Any]) -> str:
    if node.get("resource_type") in _TESTS:
        return "tests"
    return TranquillityTranslator().get_group_name(node) or "dbt"


class LayerCounter:
    """The build's nodes done, per layer, from dbt's streamed events."""

    def __init__(self, manifest: Mapping[str, Any], monthly: bool | None = None):
        """`monthly`: count only the nodes of the monthly build (True: its layers are shown
        as `monthly marts`, `monthly tests`) or of the other one (False), as
        `in_monthly_build` splits them; None: every node."""
        self.prefix = "monthly " if monthly else ""
        nodes = {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}
        self.layers = {
            unique_id: node_layer(node)
            for unique_id, node in nodes.items()
            if node.get("resource_type") in _BUILT
            and node.get("config", {}).get("materialized") != "ephemeral"
            and (monthly is None or in_monthly_build(node, nodes) == monthly)
        }
        self.finished: set[str] = set()

    @property
    def totals(self) -> dict[str, int]:
        """Nodes per layer, in the order the data flows (a subset build runs fewer)."""
        counts = Counter(self.layers.values())
        return {self.prefix + layer: counts[layer] for layer in _LAYER_ORDER if counts[layer]}

    def finished_layer(self, raw_event: Mapping[str, Any]) -> str | None:
        """The layer of the node this event finishes, or None (not a node's end, or again)."""
        node = (raw_event.get("data") or {}).get("node_info") or {}
        unique_id = node.get("unique_id")
        name = (raw_event.get("info") or {}).get("name")
        if not unique_id or unique_id in self.finished:
            return None
        if name not in _RESULTS and node.get("node_status") not in _FINISHED:
            return None
        self.finished.add(unique_id)
        if unique_id in self.layers:
            return self.prefix + self.layers[unique_id]
        return self.prefix + ("tests" if unique_id.split(".")[0] in _TESTS else "dbt")


def outcomes_from_run_results(
    run_results: Mapping[str, Any], manifest: Mapping[str, Any]
) -> list[CheckOutcome]:
    """One outcome per dbt test, unit test and model of the invocation."""
    nodes = {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}
    outcomes = []
    for result in run_results.get("results", []):
        unique_id: str = result["unique_id"]
        node = nodes.get(unique_id, {})
        status = str(result.get("status"))
        kind = unique_id.split(".", 1)[0]
        if kind == "test":
            severity = str(node.get("config", {}).get("severity", "error")).lower()
            attached = node.get("attached_node") or ""
            outcomes.append(
                CheckOutcome(
                    controle=node.get("name", unique_id),
                    origine="dbt_test",
                    cible=attached.split(".")[-1] if attached else _refs(node),
                    bloquant=severity == "error",
                    statut={"pass": "pass", "fail": "fail", "warn": "warn"}.get(status, status),
                    nb_echecs=result.get("failures"),
                    message=result.get("message"),
                    exemples=result.get("relation_name"),
                )
            )
        elif kind == "unit_test":
            outcomes.append(
                CheckOutcome(
                    controle=node.get("name", unique_id),
                    origine="dbt_unit_test",
                    cible=node.get("model"),
                    bloquant=True,
                    statut="pass" if status == "pass" else "fail" if status == "fail" else status,
                    message=result.get("message"),
                )
            )
        elif kind in ("model", "seed"):
            outcomes.append(
                CheckOutcome(
                    controle=f"build {node.get('name', unique_id)}",
                    origine=f"dbt_{kind}",
                    cible=node.get("name"),
                    bloquant=True,
                    statut="pass" if status == "success" else status,
                    message=None if status == "success" else result.get("message"),
                )
            )
    return outcomes


def _refs(node: Mapping[str, Any]) -> str | None:
    refs = [r.get("name") if isinstance(r, dict) else r[-1] for r in node.get("refs", [])]
    return ", ".join(r for r in refs if r) or None


# The models incremental by month (pipelines/window.py) are their own, partitioned, asset
# definition; every other model is rebuilt whole at each refresh, before them.
INCREMENTAL = "config.materialized:incremental"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=INCREMENTAL,
    dagster_dbt_translator=TranquillityTranslator(),
)
def dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """`dbt build` (seeds, models, tests, unit tests) of every model rebuilt whole.

    profiles.yml finds the warehouse from `TRANQUILLITY_HOME`, like the warehouse resource.
    dbt's artifacts and logs belong to the home, not the repository; a fixed target folder
    per home keeps dbt's partial-parse cache between refreshes.
    """
    yield from _build(context, dbt, warehouse, ["build"], monthly=False)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=INCREMENTAL,
    partitions_def=monthly_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    # Their dbt tests are not Dagster asset checks: a check result of a partitioned asset in
    # a run without partitions (the sensor's, the schedules', a plain refresh) makes Dagster
    # fail the step. They still run in the build, are recorded in the audit and gate the
    # publication like every other test; the models' publication suite stays an asset check.
    dagster_dbt_translator=TranquillityTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=False)
    ),
)
def dbt_monthly_models(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """`dbt build` of the models incremental by month, over the run's window of months.

    The window (pipelines/window.py) is every month the deliveries changed since the current
    publication, plus the run's partitions when it has some (a backfill); every month when
    that cannot be known. It is recorded for the run, so that the publication suites and the
    publication of this run read it rather than work it out again.
    """
    if not context.has_partition_key_range:
        raise Failure(
            description="the refresh job runs over a range of monthly partitions: launch it "
            "with one (every partition to recompute what the deliveries changed)"
        )
    home = warehouse.get_home()
    mode = context.run.tags.get(WINDOW_TAG)
    with warehouse.get_connection() as con:
        window = required_window(con, home.current_publication)
        if mode == EVERY:
            window = window.union(Window.every_month("refresh --force"))
        elif mode != CHANGED:
            months = partition_months(context.partition_key_range)
            window = window.union(Window(months, (f"partitions {describe_months(months)}",)))
        record_window(con, context.run.run_id, window)
    context.log.info(f"months recomputed: {window.describe()} {list(window.reasons)}")
    args = ["build", "--vars", json.dumps(window.dbt_vars())]
    if window.every:
        args.append("--full-refresh")
    yield from _build(
        context,
        dbt,
        warehouse,
        args,
        monthly=True,
        metadata={"tranquillity/mois_recalcules": MetadataValue.text(window.describe())},
    )


def _build(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    args: list[str],
    *,
    monthly: bool,
    metadata: dict[str, Any] | None = None,
) -> Iterator[Any]:
    """One dbt invocation: its events (with row counts) and its outcomes in the audit."""
    home = warehouse.get_home()
    # No colour codes: dbt's lines go to the run's log file, never to a terminal.
    invocation = dbt.cli(
        [*args, "--no-use-colors"],
        context=context,
        raise_on_error=False,
        target_path=home.work / "dbt_target",
    )
    manifest = json.loads(dbt_project.manifest_path.read_text())
    # dagster-dbt's `fetch_row_counts()` would open the file while dbt's process holds
    # DuckDB's write lock: the events wait for the end of the build, then get their counts.
    # dbt's raw events are read here (what `stream()` does) to count them as they come.
    events: list[Any] = []
    counter = LayerCounter(manifest, monthly)
    with progress.dbt_build(counter.totals) as shown:
        for message in invocation.stream_raw_events():
            layer = counter.finished_layer(message.raw_event)
            if layer is not None:
                shown.advance(layer)
            events.extend(
                message.to_default_asset_events(
                    manifest=invocation.manifest,
                    dagster_dbt_translator=invocation.dagster_dbt_translator,
                    context=context,
                    target_path=invocation.target_path,
                    project=invocation.project,
                )
            )
    run_results = invocation.get_artifact("run_results.json")
    # A refresh runs dbt twice into one target folder (the models, then the monthly ones):
    # each invocation's results are also kept under its own name, for the timings of both.
    kept = Path(invocation.target_path) / f"run_results.{'monthly' if monthly else 'models'}.json"
    kept.write_text(json.dumps(run_results), encoding="utf-8")
    outcomes = outcomes_from_run_results(run_results, manifest)
    with warehouse.get_connection() as con:
        outcomes = [_with_examples(con, o) for o in outcomes]
        record(con, context.run.run_id, outcomes)
        counts = _row_counts(con, manifest)
    for event in events:
        if isinstance(event, Output):
            model = context.asset_key_for_output(event.output_name).path[-1]
            event = event.with_metadata(
                {**event.metadata, **counts.get(model, {}), **(metadata or {})}
            )
        yield event
    failed = [o for o in outcomes if o.blocks]
    if failed:
        context.log.warning(
            f"{len(failed)} blocking dbt checks failed: "
            + ", ".join(f"{o.controle} ({o.nb_echecs})" for o in failed[:10])
        )


def _row_counts(con: Any, manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Rows of every table dbt built, by model name (views are not counted: counting runs
    their query)."""
    counts = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") not in ("model", "seed"):
            continue
        if node.get("config", {}).get("materialized") not in ("table", "seed", "incremental"):
            continue
        relation = node.get("relation_name")
        try:
            rows = con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
        except Exception:  # not built in this run (a failed upstream)
            continue
        # Dagster's standard table metadata keys: the UI shows them on the asset.
        counts[str(node["name"])] = {
            "dagster/row_count": MetadataValue.int(int(rows)),
            "dagster/relation_identifier": MetadataValue.text(str(relation)),
        }
    return counts


def _with_examples(con: Any, outcome: CheckOutcome) -> CheckOutcome:
    """Replace a stored-failures relation name by a few of its rows, as JSON."""
    relation = outcome.exemples
    if not relation or outcome.statut not in ("fail", "warn"):
        return CheckOutcome(**{**outcome.__dict__, "exemples": None})
    try:
        cursor = con.execute(f"SELECT * FROM {relation} LIMIT 5")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        examples = json.dumps(rows, ensure_ascii=False, default=str)
    except Exception:  # the relation is only there when failures are stored
        examples = None
    return CheckOutcome(**{**outcome.__dict__, "exemples": examples})
