#!/usr/bin/env bash
# Build the container image from the Dockerfile as it is and smoke-test what was built,
# without a Docker daemon: buildah builds, podman runs (with runc), both on a storage root of
# this script's own under a temporary directory that is removed at exit.
#
#   scripts/image-smoke.sh          # `make image`; .ci/run calls it too
#   PYTHON_IMAGE=python:3.11.14-slim-bookworm scripts/image-smoke.sh
#
# The base image is the Dockerfile's PYTHON_IMAGE build argument. Unset, the script makes a
# stand-in for python:3.11-slim-bookworm, which cannot be pulled here, from Debian packages
# with mmdebstrap, using the apt sources this machine is configured with. Where the real base
# can be pulled, pass it and the same checks run unchanged.
#
# Checks, each on the built image: --version; --once --demo prints `notte_up 1` (for
# demo-a); the user is 65532:65532; the root filesystem is read-only (every container runs
# with --read-only); `import pip` and `import setuptools` fail; the HEALTHCHECK command
# reports healthy for a container started with a non-default --web.listen-address, and
# with TLS on through --web.config.file; the OCI labels; and the application layer (the
# venv the final stage copies in) stays under APP_LAYER_LIMIT_MB. Only loopback networking
# is used.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
APP_LAYER_LIMIT_MB=${APP_LAYER_LIMIT_MB:-25}
IMAGE=localhost/notte-exporter:smoke
STAND_IN=localhost/python:3.11-bookworm-local
# The suite of the Dockerfile's base image (python:3.11.N-slim-bookworm).
STAND_IN_SUITE=bookworm
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

WORK=$(mktemp -d "${TMPDIR:-/tmp}/notte-image-smoke.XXXXXX")
# One storage and state root for both tools (they share containers/storage), never the
# machine's default one: nothing outside $WORK is touched, and cleaning up is removing it.
STORAGE=(--root "$WORK/storage" --runroot "$WORK/run" --storage-driver overlay)
PODMAN=(podman "${STORAGE[@]}" --tmpdir "$WORK/libpod" --cgroup-manager cgroupfs
    --events-backend none)
BUILDAH=(buildah "${STORAGE[@]}")
# crun fails on this kernel's cgroup mode, and the default ulimits cannot be raised here:
# ask for what the machine allows. --read-only everywhere: the image must not need writes.
RUN=(run --rm --runtime runc --network host --read-only --no-healthcheck
    --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)

failures=0
step() { printf '\n== %s\n' "$*"; }
pass() { printf 'ok    %s\n' "$*"; }
fail() {
    printf 'FAIL  %s\n' "$*"
    failures=$((failures + 1))
}

cleanup() {
    local status=$?
    "${PODMAN[@]}" rm --all --force --time 0 >/dev/null 2>&1 || true
    "${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true
    # The overlay driver leaves its own mounts under the storage root; unmount, deepest first.
    findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r | xargs -r umount -l 2>/dev/null || true
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

package_version() {
    sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/exporter/notte_exporter/__init__.py"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The apt sources of this machine: sources.list and every enabled file of sources.list.d.
apt_sources() {
    local path
    for path in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -s $path ]] && printf '%s\n' "$path"
    done
}

make_stand_in() {
    local sources
    mapfile -t sources < <(apt_sources)
    if ((${#sources[@]} == 0)); then
        echo "no apt sources configured in /etc/apt; pass PYTHON_IMAGE=<an image you can pull>" >&2
        exit 2
    fi
    # The hooks make the stand-in behave like python:slim where the Dockerfile relies on it:
    # pip, setuptools and wheel installed into /usr/local (the Dockerfile uninstalls them)
    # and no EXTERNALLY-MANAGED marker. `env -i`: the host's PIP_* settings stay out.
    mmdebstrap --quiet --variant=minbase \
        --include=python3,python3-venv,python3-wheel-whl,python-is-python3,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED' \
        --customize-hook='chroot "$1" env -i PATH=/usr/local/bin:/usr/bin:/bin sh -c "python3 $(ls /usr/share/python-wheels/pip-*.whl)/pip install --quiet --root-user-action=ignore --no-cache-dir --no-index --find-links /usr/share/python-wheels pip setuptools wheel"' \
        "$STAND_IN_SUITE" "$WORK/base.tar" "${sources[@]}"
    "${PODMAN[@]}" import --quiet --change 'ENV LANG=C.UTF-8' "$WORK/base.tar" "$STAND_IN" >/dev/null
    rm -f "$WORK/base.tar"
}

image_run() { "${PODMAN[@]}" "${RUN[@]}" "$@"; }

# `expect_output NAME PATTERN COMMAND...`: the command succeeds and prints PATTERN (grep -E).
expect_output() {
    local name=$1 pattern=$2 output
    shift 2
    if output=$("$@" 2>&1) && grep -Eq -- "$pattern" <<<"$output"; then
        pass "$name"
    else
        fail "$name: expected /$pattern/, got: $(tail -c 600 <<<"$output")"
    fi
}

# `expect_python_error NAME ERROR CODE`: python -c CODE fails in the image with ERROR.
expect_python_error() {
    local name=$1 error=$2 code=$3 output
    if output=$(image_run --entrypoint python "$IMAGE" -c "$code" 2>&1); then
        fail "$name: succeeded"
    elif grep -q -- "$error" <<<"$output"; then
        pass "$name"
    else
        fail "$name: expected $error, got: $(tail -c 600 <<<"$output")"
    fi
}

label() {
    "${PODMAN[@]}" image inspect --format "{{ index .Labels \"org.opencontainers.image.$1\" }}" "$IMAGE"
}

# `wait_healthy CONTAINER`: the image's own HEALTHCHECK command, run by podman, passes
# within 20 s (bounded; the exporter is ready in about a second).
wait_healthy() {
    local attempt
    for attempt in $(seq 40); do
        if "${PODMAN[@]}" healthcheck run "$1" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# `start_exporter PODMAN_RUN_ARGS...`: run the image detached, print the container id.
start_exporter() {
    "${PODMAN[@]}" run --detach --runtime runc --network host --read-only \
        --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096 \
        "$@" 2>>"$WORK/podman.log"
}

# `answers URL`: something serves URL (bounded wait of 20 s for the exporter to start).
answers() {
    local attempt
    for attempt in $(seq 40); do
        curl --silent --fail --insecure --max-time 2 --output /dev/null "$1" && return 0
        sleep 0.5
    done
    return 1
}

# `scheme_of HOST:PORT`: https or http, whichever the exporter there answers /healthz on
# (bounded wait of 20 s for it to start); nothing when neither.
scheme_of() {
    local attempt scheme
    for attempt in $(seq 40); do
        for scheme in https http; do
            if curl --silent --fail --insecure --max-time 2 --output /dev/null \
                "$scheme://$1/healthz"; then
                echo "$scheme"
                return 0
            fi
        done
        sleep 0.5
    done
}

# `check_healthcheck NAME CONTAINER URL`: the image's HEALTHCHECK passes for the running
# CONTAINER, and the exporter really serves URL (so the check did not pass by asking some
# other port or scheme).
check_healthcheck() {
    local name=$1 container=$2 url=$3
    if ! wait_healthy "$container"; then
        fail "$name: HEALTHCHECK never passed; exporter log: $("${PODMAN[@]}" logs "$container" 2>&1 | tail -5)"
    elif ! answers "$url"; then
        fail "$name: HEALTHCHECK passed but nothing answers at $url"
    else
        pass "$name"
    fi
}

stop_exporter() { "${PODMAN[@]}" rm --force --time 2 "$1" >/dev/null 2>&1 || true; }

started=$SECONDS
version=$(package_version)
revision=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

step "base image"
if [[ -n ${PYTHON_IMAGE:-} ]]; then
    base=$PYTHON_IMAGE
    "${PODMAN[@]}" pull --quiet "$base" >/dev/null
    echo "pulled $base"
else
    base=$STAND_IN
    make_stand_in
    echo "built $base from $STAND_IN_SUITE with mmdebstrap ($(apt_sources | tr '\n' ' '))"
fi
echo "($((SECONDS - started)) s)"

step "build"
build_args=(--build-arg "PYTHON_IMAGE=$base" --build-arg "VERSION=$version"
    --build-arg "REVISION=$revision" --build-arg "CREATED=$created")
# --format docker keeps the HEALTHCHECK (OCI image configs have none). --layers gives each
# instruction its own layer, so the application layer can be measured on its own. HTTPS
# may go through an intercepting proxy: the machine's CA bundle is mounted for the build's
# RUN steps only, never copied into the image.
mounts=()
[[ -s $CA_BUNDLE ]] && mounts=(--volume "$CA_BUNDLE:$CA_BUNDLE:ro")
"${BUILDAH[@]}" build --quiet --layers --format docker --isolation chroot --network host \
    "${mounts[@]}" "${build_args[@]}" --tag "$IMAGE" --file "$REPO/Dockerfile" "$REPO" \
    >"$WORK/build.log" 2>&1 || {
    tail -40 "$WORK/build.log"
    echo "the image build failed" >&2
    exit 1
}
echo "built $IMAGE ($((SECONDS - started)) s)"

step "checks"
expect_output "--version names the package version" "^notte-exporter $version " \
    image_run "$IMAGE" --version
expect_output "--once --demo prints notte_up 1 for its first account" \
    '^notte_up\{account="demo-a"\} 1(\.0)?$' \
    image_run "$IMAGE" --once --demo
expect_output "runs as 65532:65532" "^65532 65532$" \
    image_run --entrypoint python "$IMAGE" -c 'import os; print(os.getuid(), os.getgid())'
expect_python_error "the root filesystem is read-only" "Read-only file system" \
    'open("/probe", "w")'
expect_python_error "import pip fails" "No module named 'pip'" 'import pip'
expect_python_error "import setuptools fails" "No module named 'setuptools'" 'import setuptools'

port=$(free_port)
container=$(start_exporter "$IMAGE" --demo --web.listen-address="127.0.0.1:$port")
check_healthcheck "HEALTHCHECK passes with --web.listen-address=127.0.0.1:$port" \
    "$container" "http://127.0.0.1:$port/healthz"
stop_exporter "$container"

port=$(free_port)
tls=$WORK/tls
mkdir -p "$tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$tls/tls.key" -out "$tls/tls.crt" 2>/dev/null
chmod 0644 "$tls/tls.key" # readable by the image's user 65532
printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n' >"$tls/web-config.yml"
container=$(start_exporter --volume "$tls:/etc/notte-exporter/tls:ro" "$IMAGE" --demo \
    --web.listen-address="127.0.0.1:$port" \
    --web.config.file=/etc/notte-exporter/tls/web-config.yml)
scheme=$(scheme_of "127.0.0.1:$port")
if [[ $scheme == https ]]; then
    check_healthcheck "HEALTHCHECK passes with TLS on (--web.config.file), port $port" \
        "$container" "https://127.0.0.1:$port/healthz"
else
    fail "HEALTHCHECK with TLS on: the exporter does not answer HTTPS on port $port (${scheme:-nothing} answers); log: $("${PODMAN[@]}" logs "$container" 2>&1 | tail -5)"
fi
stop_exporter "$container"

for name in title description licenses source created; do
    value=$(label "$name")
    [[ -n $value && $value != unknown ]] && pass "label $name: $value" || fail "label $name is empty"
done
[[ $(label version) == "$version" ]] && pass "label version: $version" ||
    fail "label version: $(label version), expected $version"
[[ $(label revision) == "$revision" ]] && pass "label revision: $revision" ||
    fail "label revision: $(label revision), expected $revision"
[[ $(label base.name) == "$base" ]] && pass "label base.name: $base" ||
    fail "label base.name: '$(label base.name)', expected $base"

step "size"
image_size=$("${PODMAN[@]}" image inspect --format '{{ .Size }}' "$IMAGE")
base_size=$("${PODMAN[@]}" image inspect --format '{{ .Size }}' "$base")
# The application layer is the one `COPY --from=builder /opt/venv` makes.
app_bytes=$("${PODMAN[@]}" history --no-trunc --format json "$IMAGE" | python3 -c '
import json, sys
sizes = [layer["size"] for layer in json.load(sys.stdin)
         if "COPY" in layer.get("CreatedBy", "") and "/opt/venv" in layer.get("CreatedBy", "")]
print(sizes[0] if sizes else "")')
mb() { awk -v bytes="$1" 'BEGIN { printf "%.1f MB", bytes / 1e6 }'; }
echo "image:             $(mb "$image_size")"
echo "base image:        $(mb "$base_size") ($base)"
echo "added to the base: $(mb $((image_size - base_size)))"
if [[ -z $app_bytes ]]; then
    fail "the application layer (COPY of /opt/venv) was not found in the image history"
else
    echo "application layer: $(mb "$app_bytes") (limit $APP_LAYER_LIMIT_MB MB)"
    if ((app_bytes < APP_LAYER_LIMIT_MB * 1000000)); then
        pass "the application layer is under $APP_LAYER_LIMIT_MB MB"
    else
        fail "the application layer is $(mb "$app_bytes"), not under $APP_LAYER_LIMIT_MB MB"
    fi
fi

step "result"
echo "took $((SECONDS - started)) s"
if ((failures)); then
    echo "$failures check(s) failed"
    exit 1
fi
echo "every check passed"
