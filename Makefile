# One command per routine job; CI runs the same ones (.ci/run).
# Every target creates or reuses the local virtual environment in .venv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint generate check-generated bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: run the exporter against its built-in simulated Notte API (no key needed)
demo: $(STAMP)
	$(BIN)/notte-exporter --demo

## test: run the whole test suite
test: $(STAMP)
	$(BIN)/pytest

## lint: ruff, mypy (strict) and hadolint
lint: $(STAMP)
	$(BIN)/ruff check exporter tests mixin bench
	$(BIN)/ruff format --check exporter tests mixin bench
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

## generate: regenerate dashboards, rules and the metrics reference from code
generate: $(STAMP)
	$(BIN)/python -m mixin
	$(BIN)/python -m notte_exporter.catalogue > docs/metrics.md

## check-generated: fail if committed generated files differ from what the generators produce
check-generated: generate
	git diff --exit-code -- grafana prometheus helm/notte-exporter/files \
		helm/notte-exporter/values.yaml helm/notte-exporter/values.schema.json \
		docs/metrics.md docs/alerts.md

## bench: rerunnable performance benchmark (ratios against an in-run baseline)
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
