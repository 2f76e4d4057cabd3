"""Runs the YAML suites with Great Expectations and turns results into audit outcomes.

GX 1.x validates pandas frames only (no polars, no usable DuckDB SQL path), so frames are
converted at the boundary, column-limited, and large tables are validated in hash partitions
(`partition_by`) to bound memory while keeping uniqueness exact. One ephemeral GX context is
kept per Dagster run (`QualityRun`, owned by the run's `QualityResource`), so the Data Docs
written under `<home>/data_docs/<run_id>/` at the end of the run show every validation of the
run on one index page, made readable offline (pipelines.quality.offline_docs).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.audit import CheckOutcome
from pipelines.quality.offline_docs import make_offline
from pipelines.quality.suites import Dataset, Expectation, Suite, gx_class_name

EXAMPLES = 5


@dataclass
class ExpectationResult:
    """One expectation's verdict over a whole dataset (all partitions or batches)."""

    suite: str
    dataset: str
    expectation: Expectation
    cible: str
    success: bool = True
    evaluated: bool = False
    unexpected: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    # Every failing row of one batch, kept only where the caller acts on each of them (the
    # delivery gate blocks each failing delivery).
    failing_rows: list[dict[str, Any]] = field(default_factory=list)
    keep_all: bool = False

    def merge(self, success: bool, unexpected: int, examples: list[dict[str, Any]]) -> None:
        self.evaluated = True
        self.success = self.success and success
        self.unexpected += unexpected
        room = EXAMPLES - len(self.examples)
        if room > 0:
            self.examples.extend(examples[:room])
        if self.keep_all:
            self.failing_rows.extend(examples)

    def outcome(self) -> CheckOutcome:
        e = self.expectation
        if self.error:
            statut = "error"
        elif self.success:
            statut = "pass"
        else:
            statut = "fail" if e.blocking else "warn"
        return CheckOutcome(
            controle=f"{self.suite}.{e.id}",
            origine="gx",
            cible=self.cible,
            bloquant=e.blocking,
            statut=statut,
            nb_echecs=self.unexpected if self.evaluated else None,
            message=self.error or e.why,
            exemples=json.dumps(self.examples, ensure_ascii=False, default=str)
            if self.examples
            else None,
        )


class QualityRun:
    """The GX context of one refresh run and its Data Docs folder."""

    def __init__(self, docs_dir: Path | None):
        self.docs_dir = docs_dir
        self._context: Any = None
        self._count = 0
        # Seconds spent per suite (and rendering the docs): the cost of the gates, which
        # `make bench` reports as a share of the refresh.
        self.seconds: dict[str, float] = {}

    def _gx(self) -> Any:
        if self._context is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            logging.getLogger("great_expectations").setLevel(logging.ERROR)
            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
                analytics_enabled=False,
                data_docs_sites={
                    "run": {
                        "class_name": "SiteBuilder",
                        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                        "store_backend": {
                            "class_name": "TupleFilesystemStoreBackend",
                            "base_directory": str(self.docs_dir),
                        },
                    }
                }
                if self.docs_dir
                else {},
            )
            self._context = gx.get_context(mode="ephemeral", project_config=config)
            self._source = self._context.data_sources.add_pandas("tranquillity")
        return self._context

    def _validation(self, suite: Suite, dataset: Dataset) -> Any:
        """The GX validation definition of one dataset (built once per run)."""
        import great_expectations as gx
        import great_expectations.expectations as gxe

        context = self._gx()
        name = f"{suite.name}.{dataset.name}"
        try:
            return context.validation_definitions.get(name)
        except Exception:  # not built yet in this run
            pass
        gx_suite = context.suites.add(gx.ExpectationSuite(name=name))
        for e in dataset.expectations:
            kwargs = dict(e.kwargs)
            if e.when:
                kwargs |= {"row_condition": e.when, "condition_parser": "pandas"}
            meta = {"id": e.id, "severity": e.severity, "why": e.why}
            gx_suite.add_expectation(
                getattr(gxe, gx_class_name(e.expectation))(**kwargs, meta=meta)
            )
        asset = self._source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe("frame")
        return context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=gx_suite)
        )

    def validate(
        self,
        suite: Suite,
        dataset: Dataset,
        frame: pl.DataFrame,
        results: dict[str, ExpectationResult],
    ) -> None:
        """Validate one frame (a batch or a partition); merge into `results` by expectation id."""
        started = time.perf_counter()
        validation = self._validation(suite, dataset)
        index = [c for c in dataset.index_columns if c in frame.columns]
        result_format: dict[str, Any] = {
            "result_format": "COMPLETE" if index else "SUMMARY",
            "partial_unexpected_count": EXAMPLES,
        }
        if index:
            result_format["unexpected_index_column_names"] = index
        run = validation.run(
            batch_parameters={"dataframe": frame.to_pandas()}, result_format=result_format
        )
        self._count += 1
        for item in run.results:
            meta = item.expectation_config.meta or {}
            target = results[meta["id"]]
            if item.exception_info and item.exception_info.get("raised_exception"):
                target.error = str(item.exception_info.get("exception_message"))[:500]
                target.evaluated = True
                target.success = False
                continue
            detail = item.result or {}
            examples = [
                {k: _plain(v) for k, v in example.items()}
                for example in detail.get("unexpected_index_list")
                or [{"valeur": v} for v in detail.get("partial_unexpected_list") or []]
            ]
            unexpected = detail.get("unexpected_count")
            if unexpected is None:  # table-level expectation: one failing table
                unexpected = 0 if item.success else 1
                if not item.success and "observed_value" in detail:
                    examples = [{"valeur_observee": detail["observed_value"]}]
            target.merge(bool(item.success), int(unexpected), list(examples))
        self.seconds[suite.name] = self.seconds.get(suite.name, 0.0) + (
            time.perf_counter() - started
        )

    def build_docs(self) -> Path | None:
        """Render the Data Docs of everything validated so far in this run."""
        if not self._count or self.docs_dir is None:
            return None
        started = time.perf_counter()
        self._gx().build_data_docs(site_names=["run"])
        dropped = make_offline(self.docs_dir)
        if dropped:
            logging.getLogger(__name__).warning(
                "Data Docs: no local copy of %s (dropped; vendor it in pipelines/quality/static)",
                ", ".join(dropped),
            )
        self.seconds["data_docs"] = self.seconds.get("data_docs", 0.0) + (
            time.perf_counter() - started
        )
        (self.docs_dir / "timings.json").write_text(json.dumps(self.seconds, indent=1))
        return self.docs_dir / "index.html"


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so that examples read `-1`, not `"-1"` (json's
    `default=str` would quote them)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str | bytes) else value


def new_results(
    suite: Suite, dataset: Dataset, cible: str, keep_all: bool = False
) -> dict[str, ExpectationResult]:
    return {
        e.id: ExpectationResult(suite.name, dataset.name, e, cible, keep_all=keep_all)
        for e in dataset.expectations
    }
