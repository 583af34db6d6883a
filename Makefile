# The README's commands. Every target sets up .venv first (pinned, pip + venv, no uv).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)

# dvc.yaml commands say `python`: make it the venv's. Telemetry off for our own commands.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test bench publish drift ui lint clean
.DEFAULT_GOAL := repro

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)  ## create .venv with the pinned dependencies (once)

repro: setup  ## run the pipeline: data, grid, comparison, walkthrough, MLflow
	dvc repro

test: setup  ## the whole test suite
	$(PY) -m pytest

bench: setup  ## speed of a clean and a no-op `dvc repro`, MLflow ingest, peak memory
	$(PY) benchmarks/bench.py

publish: setup  ## publish to MLflow whatever is missing there, without re-training
	dvc repro --single-item publish

ui: setup  ## the MLflow UI on the local store, bound to 127.0.0.1
	mlflow ui --backend-store-uri sqlite:///$(abspath .)/mlflow.db --host 127.0.0.1 --port 5000

lint: setup
	$(PY) -m ruff check pipeline tests benchmarks
	$(PY) -m ruff format --check pipeline tests benchmarks
	$(PY) -m mypy
