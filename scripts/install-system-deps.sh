#!/usr/bin/env bash
# Install the Debian packages a make target needs, once: every later run finds their
# commands and does nothing.
#
#   scripts/install-system-deps.sh test          # `make test` runs this
#   scripts/install-system-deps.sh image         # `make image` runs this
#   scripts/install-system-deps.sh test image    # .ci/run: one apt-get for both
#
# What each target needs, as "command:package" (the command shows the package is there):
# - test: prometheus brings the server (end-to-end alert tests) and promtool; the status
#   page test screenshots / in headless Chromium, as a person would see it; curl and
#   openssl are the real clients of the TLS tests (tests/integration/test_tls_clients.py).
#   `make test-fast` needs none of them (tests/tiers.py).
# - image: the image is built without a daemon (buildah), run with podman on runc, and its
#   base stand-in made by mmdebstrap (scripts/image-smoke.sh); curl and openssl drive its
#   checks.
# Something missing: as root, it says so in one line and installs with apt-get; otherwise
# it prints the apt-get command to run as root and exits 1, before any test runs.
set -euo pipefail

declare -A NEEDS=(
    [test]="prometheus:prometheus promtool:prometheus chromium:chromium curl:curl openssl:openssl"
    [image]="buildah:buildah podman:podman runc:runc mmdebstrap:mmdebstrap curl:curl openssl:openssl"
)
# Seconds apt-get waits for another apt or dpkg (say, unattended upgrades) to finish.
LOCK_TIMEOUT=600
# runc is in /usr/sbin, which a user's PATH may lack.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

if (($# == 0)); then
    echo "usage: $0 TARGET... (targets: ${!NEEDS[*]})" >&2
    exit 2
fi
missing=()
for target in "$@"; do
    if [[ -z ${NEEDS[$target]:-} ]]; then
        echo "error: no target '$target' (targets: ${!NEEDS[*]})" >&2
        exit 2
    fi
    for need in ${NEEDS[$target]}; do
        package=${need#*:}
        if ! command -v "${need%%:*}" >/dev/null && [[ " ${missing[*]} " != *" $package "* ]]; then
            missing+=("$package")
        fi
    done
done
if ((${#missing[@]} == 0)); then
    exit 0
fi

wanted=$(printf 'make %s and ' "$@")
wanted=${wanted% and }
root=$([[ $(id -u) == 0 ]] && echo yes || echo no)
if [[ $root == no ]] || ! command -v apt-get >/dev/null; then
    why="not root, so not installing them"
    [[ $root == no ]] || why="no apt-get here: install them with your package manager"
    echo "error: missing Debian packages for $wanted: ${missing[*]} ($why)" >&2
    echo "run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "installing the Debian packages for $wanted, once: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp "${TMPDIR:-/tmp}/install-system-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
apt_get() { apt-get -o DPkg::Lock::Timeout=$LOCK_TIMEOUT "$@" >>"$log" 2>&1; }
if ! apt_get update -qq || ! apt_get install -y -qq "${missing[@]}"; then
    tail -20 "$log" >&2
    echo "error: apt-get could not install ${missing[*]} (its last lines above)" >&2
    exit 1
fi

# Where an init system runs, the prometheus package starts a server on :9090 (and its
# recommended node exporter on :9100). The tests start their own on free ports, so that
# one only takes CPU from them: stop the services this run installed, and only those.
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v service >/dev/null; then
    for unit in prometheus prometheus-node-exporter; do
        if service "$unit" status >/dev/null 2>&1; then
            service "$unit" stop >/dev/null 2>&1 && echo "stopped the $unit service apt started"
        fi
    done
fi
