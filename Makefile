# The two README commands: `make run` and `make test`. Everything else is done by them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export DO_NOT_TRACK := 1
export TRANQUILLITY_HOME ?= $(CURDIR)/warehouse
export DAGSTER_HOME ?= $(TRANQUILLITY_HOME)/dagster

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv from PATH, else bootstrapped once into .tools/ with pip.
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
SCALE ?= small
SEED ?= 42
BENCH_SCALE ?= national

.PHONY: help install manifest docs run refresh status test lint format ui bench clean-warehouse

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

install: $(VENV)/.installed  ## Create .venv from uv.lock (idempotent)

# @dbt_assets reads dbt's manifest at import time: parse the project when it changed.
manifest: install  ## Parse the dbt project (dbt_project/target/manifest.json) if stale
	@$(BIN)/python -c "from pipelines.dbt_project import ensure_manifest; ensure_manifest()"

docs: manifest  ## dbt docs (offline) for the working warehouse -> dbt_project/target/index.html
	@mkdir -p "$(TRANQUILLITY_HOME)/work"
	$(BIN)/dbt docs generate \
		--project-dir dbt_project --profiles-dir dbt_project
	@echo "docs: $(CURDIR)/dbt_project/target/index.html (serve: $(BIN)/dbt docs serve --project-dir dbt_project --profiles-dir dbt_project)"

run: manifest  ## Generate the small sample into an empty inbox, refresh, say where things are
	@mkdir -p "$(TRANQUILLITY_HOME)/inbox"
	@if [ -z "$$(find "$(TRANQUILLITY_HOME)/inbox" -type f -print -quit)" ]; then \
		$(BIN)/tranquillity generate --scale $(SCALE) --seed $(SEED); \
	else \
		echo "inbox not empty: refreshing what is there (make clean-warehouse to start over)"; \
	fi
	$(BIN)/tranquillity refresh
	@echo "publication: $(TRANQUILLITY_HOME)/published/current.duckdb (history and open data: $(TRANQUILLITY_HOME)/published/)"
	@index="$$(ls -d "$(TRANQUILLITY_HOME)"/published/open/2*/rapports/index.html 2>/dev/null | tail -n 1)"; \
		if [ -n "$$index" ]; then echo "reports (CIL allocation review, CLSPD tranquillity review, per EPCI): $$index"; \
		else echo "reports: none (TRANQUILLITY_RAPPORTS=off?)"; fi
	@echo "try: $(BIN)/tranquillity status ; $(BIN)/tranquillity sql \"SELECT * FROM indicateurs_mixite_epci_annee LIMIT 10\""

refresh: manifest  ## Refresh from the inbox as it is
	$(BIN)/tranquillity refresh

status: install  ## Current publication and last refresh
	$(BIN)/tranquillity status

test: lint  ## Lint, then the test suite (fast tests; `make test PYTEST_ARGS="-m slow"` for slow ones)
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# sqlfluff's dbt templater compiles the project and opens the profile's database: a scratch
# home, never the working warehouse (a running refresh holds its write lock).
lint: manifest  ## ruff (Python), sqlfluff (dbt SQL, DuckDB dialect) and mypy (pipelines/), all clean
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@scratch=$$(mktemp -d) && mkdir -p "$$scratch/work" && \
		TRANQUILLITY_HOME="$$scratch" $(BIN)/sqlfluff lint dbt_project; \
		status=$$?; rm -rf "$$scratch"; exit $$status
	$(BIN)/mypy

format: install  ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

ui: manifest  ## Dagster web UI and daemon: the inbox sensor and schedules run (http://127.0.0.1:3000)
	@$(BIN)/python -c "import sys, pathlib, pipelines.settings as s; s.write_dagster_yaml(pathlib.Path(sys.argv[1]))" "$(DAGSTER_HOME)"
	$(BIN)/dagster dev -m pipelines.definitions -h 127.0.0.1 -p 3000

bench: manifest  ## Time and peak memory of generate and the monthly cycle: full, new month, nothing new (BENCH_SCALE=national|small|tiny)
	$(BIN)/python -m tests.bench $(BENCH_SCALE)

clean-warehouse:  ## Delete runtime data under TRANQUILLITY_HOME (keeps its README)
	find "$(TRANQUILLITY_HOME)" -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
