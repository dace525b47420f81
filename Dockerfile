# syntax=docker/dockerfile:1
# Container image of notte-exporter.
#
#   docker build -t notte-exporter:dev --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
#   docker run --rm -p 10717:10717 --read-only notte-exporter:dev --demo
#
# Two stages: the builder turns the source into a wheel and installs it into /opt/venv; the
# final stage receives only that virtual environment, so no compiler, no build backend and
# no source checkout ship in the image.

# Pinned by exact version so that a rebuild gives the same interpreter; both stages must use
# the same image because the venv's interpreter link points at /usr/local/bin/python3.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only what the build backend needs: the .dockerignore keeps tests, charts and venvs out.
COPY pyproject.toml README.md ./
COPY exporter ./exporter

# The project wheel and the wheels of its dependencies land in /wheels; the install then
# works offline from there, so what is installed is exactly what was just built.
RUN python -m pip wheel --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install --no-index --find-links /wheels \
        /wheels/notte_exporter-*.whl \
    && /opt/venv/bin/notte-exporter --version


FROM ${PYTHON_IMAGE}

# Re-declared so that the base.name label can name it (an ARG before FROM is out of scope
# inside a stage).
ARG PYTHON_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="notte-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Notte cloud browser sessions: live sessions, traffic, failures and leaks." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/notte-exporter/notte-exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# A fixed, numeric, unprivileged identity (the distroless "nonroot" id) so that Kubernetes'
# runAsNonRoot can verify it and volume permissions are predictable. The base image's own
# packaging tools are removed: nothing is installed at run time, and scanners stop
# reporting their CVEs.
RUN groupadd --system --gid 65532 notte \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin notte \
    && python -m pip uninstall --yes --quiet pip setuptools wheel

COPY --from=builder /opt/venv /opt/venv

# The venv comes first on PATH so that `python` in the HEALTHCHECK is the exporter's own.
# No bytecode writes: the image runs with a read-only root filesystem.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 65532:65532
EXPOSE 10717

# The slim image has no curl, and a HEALTHCHECK gets none of the entrypoint's arguments: the
# packaged check reads the exporter's flags from PID 1's command line and the environment,
# and asks /healthz over HTTPS when the web config turns TLS on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["notte-exporter-healthcheck"]

# Flags pass straight through: `docker run IMAGE --poll.interval=1m`. Setting ENTRYPOINT
# clears the base image's CMD, so no arguments are added by default.
ENTRYPOINT ["notte-exporter"]
