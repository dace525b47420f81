# One command per routine job; CI runs the same ones (.ci/run).
# Every target creates or reuses the local virtual environment in .venv: `make demo` puts
# only the runtime in it (the package and its dependencies, seconds on a warm cache), the
# other targets add the development extras (linters, Helm engine, schema validators).

PYTHON ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP   := $(VENV)/.installed
# Extra flags for `make demo`, e.g. DEMO_FLAGS=--web.listen-address=127.0.0.1:9999
DEMO_FLAGS ?=

.PHONY: demo test lint generate check-generated bench soak image clean

$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## demo: run the exporter against its built-in simulated Notte API (no key needed)
demo: $(RUNTIME)
	$(BIN)/notte-exporter --demo $(DEMO_FLAGS)

## test: run the whole test suite
test: $(STAMP)
	$(BIN)/pytest

## lint: ruff, mypy (strict) and hadolint
lint: $(STAMP)
	$(BIN)/ruff check exporter tests mixin bench soak
	$(BIN)/ruff format --check exporter tests mixin bench soak
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

## image: build the container image with buildah and smoke-test it with podman (as root;
## needs buildah, podman, runc, mmdebstrap, curl and openssl: see .ci/run)
image:
	scripts/image-smoke.sh

## bench: rerunnable performance benchmark (ratios against an in-run baseline)
bench: $(STAMP)
	$(BIN)/python -m bench

## soak: a simulated month (minutes of wall time): accuracy against the simulator's truth,
## memory per day, and the bundle's alerts in a real Prometheus (see docs/accuracy.md)
SOAK_DAYS ?= 30
soak: $(STAMP)
	mkdir -p build
	$(BIN)/python -m soak --days $(SOAK_DAYS) --scrapes build/soak.om --alerts

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
