#!/usr/bin/env bash
# `make test-compose`: runs the docker compose demo (compose.yaml, unchanged) for real and checks
# it, then shows that broken copies of it fail (tests/compose/mutants.sh).
#
#   tests/compose/run.sh            the whole test: engine, stand-in base images, build, up, checks, down, mutants
#   tests/compose/run.sh DIR        only the scenario, against the compose.yaml and Dockerfile in DIR
#                                   (what mutants.sh runs on its broken copies)
#
# It starts what it needs itself (a Docker Engine of its own, tests/compose/dockerd.sh), builds
# local stand-ins for the public base images (tests/compose/standins.sh; no registry is reachable
# here), builds the project's images from its Dockerfile with `docker compose build`, and brings
# everything up with `docker compose up --wait`. Every exit path tears down what it brought up
# (containers, network, volume) and checks nothing is left; the engine it started is stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DIR=${1:-$ROOT}
PROJECT=${HZCACHE_COMPOSE_PROJECT:-hzcache-test}
WAIT=${HZCACHE_COMPOSE_WAIT:-300}
start=$(date +%s)
source tests/compose/dockerd.sh

export HZCACHE_BUILD_NETWORK=${HZCACHE_BUILD_NETWORK:-host}
compose() { docker compose --project-directory "$DIR" -f "$DIR/compose.yaml" -p "$PROJECT" "$@"; }
elapsed() { echo "$(( $(date +%s) - start ))s"; }

leftovers() {
  local f="label=com.docker.compose.project=$PROJECT"
  echo "$(docker ps -aq --filter "$f")$(docker network ls -q --filter "$f")$(docker volume ls -q --filter "$f")"
}

UP=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$UP" ]; then
    if [ "$rc" != 0 ]; then
      hz_say "FAILED; the services' state and logs:"
      compose ps -a >&2 || true
      compose logs --no-color --tail 40 >&2 || true
    fi
    compose down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
  fi
  if [ -n "$(leftovers)" ]; then hz_say "containers, networks or volumes were left behind" >&2; rc=1; fi
  [ "$DIR" = "$ROOT" ] && hz_docker_down
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for p in 10000 8081; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    hz_say "port $p on 127.0.0.1 is in use (is 'make demo' running?); stop it first" >&2; exit 1
  fi
done

hz_docker_up
if [ "$DIR" = "$ROOT" ]; then
  bash tests/compose/standins.sh
  hz_say "engine and base images ready ($(elapsed))"
fi

hz_say "building the images from $DIR/Dockerfile"
compose build
hz_say "built ($(elapsed)); starting the services"
UP=1
compose up --wait --wait-timeout "$WAIT"
hz_say "all services healthy ($(elapsed))"
compose ps --format '{{.Service}} {{.Status}} {{.Ports}}'

# Nothing but Envoy's listener and the app is published, and only on 127.0.0.1.
published=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Ports}}' | tr ',' '\n' | grep -- '->' | sed 's/^ *//' | sort)
expected=$(printf '127.0.0.1:10000->10000/tcp\n127.0.0.1:8081->8081/tcp\n')
if [ "$published" != "$expected" ]; then
  hz_say "published ports are not exactly Envoy's listener and the app on 127.0.0.1:"; echo "$published" >&2; exit 1
fi

python3 tests/compose/check.py cache

hz_say "killing hazelcast-2"
compose kill hazelcast-2 >/dev/null
python3 tests/compose/check.py failover

hz_say "tearing down"
compose down -v --remove-orphans --timeout 10
UP=
if [ -n "$(leftovers)" ]; then hz_say "teardown left containers, networks or volumes behind" >&2; exit 1; fi
hz_say "teardown left no container, network or volume ($(elapsed))"

# The Istio WasmPlugin image: one layer holding /plugin.wasm, the very .wasm Envoy loaded.
if [ "$DIR" = "$ROOT" ]; then
  compose --profile oci build wasm-plugin
  oci=$(mktemp -d)
  docker save hzcache/wasm-plugin:dev | tar -x -C "$oci"
  layers=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))[0]; print(" ".join(m["Layers"]))' "$oci/manifest.json")
  [ "$(echo "$layers" | wc -w)" = 1 ] || { hz_say "the wasm-plugin image has not exactly one layer: $layers" >&2; exit 1; }
  [ "$(tar -tf "$oci/$layers" | grep -v '/$')" = plugin.wasm ] || { hz_say "its layer is not just plugin.wasm" >&2; exit 1; }
  tar -xf "$oci/$layers" -C "$oci" plugin.wasm
  cid=$(docker create hzcache/filter:dev)
  docker cp -q "$cid:/plugin.wasm" "$oci/filter.wasm"
  docker rm "$cid" >/dev/null
  cmp -s "$oci/plugin.wasm" "$oci/filter.wasm" || { hz_say "the wasm-plugin image holds another .wasm than Envoy loaded" >&2; exit 1; }
  head -c 4 "$oci/plugin.wasm" | od -An -c | grep -q 'a   s   m' || { hz_say "plugin.wasm is not a wasm module" >&2; exit 1; }
  hz_say "wasm-plugin image: one layer, /plugin.wasm ($(stat -c %s "$oci/plugin.wasm") bytes), the .wasm Envoy ran"
  rm -rf "$oci"
fi

if [ "$DIR" = "$ROOT" ] && [ "${HZCACHE_COMPOSE_MUTANTS:-1}" = 1 ]; then
  bash tests/compose/mutants.sh
fi
hz_say "passed ($(elapsed))"
