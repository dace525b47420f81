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
# Extra flags for `make bench`, e.g. BENCH_FLAGS=--breakdown
BENCH_FLAGS ?=
# pytest-xdist workers of `make test`. More than two cores' worth: the end-to-end tests spend
# most of their time waiting for Prometheus, and other workers use the CPU meanwhile. Each
# test module goes whole to one worker, so a module's fixture (a Prometheus stack, the
# image's venv) starts once.
TEST_WORKERS ?= 4
# Workers of `make test-fast`: one more than two cores, as a fifth of its tests' time is
# waiting (timeouts and trickles on loopback) that another worker's CPU fills.
FAST_WORKERS ?= 3
# Tests run with bytecode caching on, even where the environment turns it off
# (PYTHONDONTWRITEBYTECODE): otherwise every pytest worker of every run compiles the package
# and assertion-rewrites each test module anew. The caches are __pycache__/, ignored by git.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest

.PHONY: demo test test-fast lint generate check-generated bench soak image clean

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

## test: run the whole test suite, after installing (once, as root) the Debian packages
## it needs: prometheus, chromium, curl, openssl (scripts/install-system-deps.sh)
test: $(STAMP)
	scripts/install-system-deps.sh test
	$(PYTEST) -n $(TEST_WORKERS) --dist loadscope

## test-fast: the fast tier, for every edit: the unit tests and the exporter against its
## simulated API, without Debian packages, Helm or the image (tests/tiers.py)
test-fast: $(STAMP)
	$(PYTEST) -n $(FAST_WORKERS) --fast

## lint: ruff, mypy (strict) and hadolint
lint: $(STAMP)
	$(BIN)/ruff check exporter tests mixin bench soak
	$(BIN)/ruff format --check exporter tests mixin bench soak
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

## generate: regenerate dashboards, rules and the metrics reference from code
generate: $(STAMP)
	$(BIN)/python -m mixin
	$(BIN)/python -m mixin.catalogue > docs/metrics.md

## check-generated: fail if committed generated files differ from what the generators produce
check-generated: generate
	git diff --exit-code -- grafana prometheus helm/notte-exporter/files \
		helm/notte-exporter/values.yaml helm/notte-exporter/values.schema.json \
		docs/metrics.md docs/alerts.md

## image: build the container image with buildah and smoke-test it with podman (as root;
## installs buildah, podman, runc, mmdebstrap, curl and openssl first if missing)
image:
	scripts/install-system-deps.sh image
	scripts/image-smoke.sh

## bench: the performance benchmark and its guards, each target against a floor measured in
## the same run; fails if a guard is missed (BENCH_FLAGS=--breakdown: where the costs go)
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_FLAGS)

## soak: a simulated month (minutes of wall time): accuracy against the simulator's truth,
## memory per day, and the bundle's alerts in a real Prometheus (see docs/accuracy.md)
SOAK_DAYS ?= 30
soak: $(STAMP)
	mkdir -p build
	$(BIN)/python -m soak --days $(SOAK_DAYS) --scrapes build/soak --alerts

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
