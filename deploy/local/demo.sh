#!/usr/bin/env bash
# The local demo: a Hazelcast member, the Falcon app (deploy/demo-app/app.py, the origin, which caches in
# Hazelcast itself), the companion and Envoy with the hzcache filter, all on 127.0.0.1. Stays in the foreground; Ctrl-C (or SIGTERM) stops
# everything it started. `make demo` builds first and then runs this.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
source deploy/versions.sh

ENVOY_PORT=10000 ADMIN_PORT=9901 HZ_PORT=5701 COMPANION_PORT=8090 BACKEND_PORT=8081
RUN="$ROOT/.cache/demo"
mkdir -p "$RUN"
JAR="$ROOT/.cache/hazelcast/hazelcast-$HAZELCAST_VERSION.jar"
WASM="$ROOT/target/wasm32-wasip1/release/hzcache_filter.wasm"
COMPANION="$ROOT/target/release/hzcache-companion"
for f in "$JAR" "$WASM" "$COMPANION" "$ROOT/.cache/venv/bin/envoy" "$ROOT/.cache/venv/bin/gunicorn"; do
  [ -e "$f" ] || { echo "demo: missing $f (run 'make demo', which builds it)" >&2; exit 1; }
done

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $ENVOY_PORT $ADMIN_PORT $HZ_PORT $COMPANION_PORT $BACKEND_PORT; do
  if port_busy "$p"; then echo "demo: port $p on 127.0.0.1 is already in use; stop what holds it" >&2; exit 1; fi
done

PIDS=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "demo: stopping"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  echo "demo: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # what, seconds, command...
  local what=$1 secs=$2 t0=$SECONDS; shift 2
  for _ in $(seq $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then echo "demo: $what is ready ($((SECONDS - t0)) s)"; return 0; fi
    sleep 0.1
  done
  echo "demo: $what did not become ready in ${secs}s; see $RUN/*.log" >&2; exit 1
}

# 1. Hazelcast member: cluster "dev" on 127.0.0.1:5701, so an official client connects with defaults.
sed -e "s/{{CLUSTER_NAME}}/dev/" -e "s/{{PORT}}/$HZ_PORT/" \
    -e "s/{{MEMBER_LIST}}/          - 127.0.0.1:$HZ_PORT/" deploy/local/member.yaml.tmpl > "$RUN/hazelcast.yaml"
java -Dhazelcast.config="$RUN/hazelcast.yaml" -Dhazelcast.local.localAddress=127.0.0.1 \
     -Djava.net.preferIPv4Stack=true -cp "$JAR" com.hazelcast.core.server.HazelcastMemberStarter \
     > "$RUN/hazelcast.log" 2>&1 &
PIDS+=($!)
echo "demo: starting Hazelcast $HAZELCAST_VERSION on 127.0.0.1:$HZ_PORT (log: $RUN/hazelcast.log)"
wait_for "Hazelcast" 120 grep -q "127.0.0.1]:$HZ_PORT is STARTED" "$RUN/hazelcast.log"

# 2. The Falcon app: the origin, caching in the Hazelcast map "cache" itself (map.get → backend
#    → map.put), under gunicorn.
echo "demo: starting the Falcon app on 127.0.0.1:$BACKEND_PORT (log: $RUN/app.log)"
HAZELCAST_MEMBERS="127.0.0.1:$HZ_PORT" HAZELCAST_CLUSTER_NAME=dev \
  "$ROOT/.cache/venv/bin/gunicorn" --bind "127.0.0.1:$BACKEND_PORT" --workers 1 --threads 8 \
  --access-logfile - --chdir "$ROOT/deploy/demo-app" app:app > "$RUN/app.log" 2>&1 &
PIDS+=($!)
wait_for "the app" 30 curl -sf "http://127.0.0.1:$BACKEND_PORT/healthz"

# 3. The companion. The callout secret is made once per demo directory (kept private) and
# reaches the companion and Envoy's filter through the environment, never a command line.
SECRET_FILE="$RUN/callout-secret"
if [ ! -s "$SECRET_FILE" ]; then
  (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$SECRET_FILE")
fi
HZCACHE_CALLOUT_SECRET=$(cat "$SECRET_FILE")
export HZCACHE_CALLOUT_SECRET
RUST_LOG=${RUST_LOG:-info} "$COMPANION" --listen "127.0.0.1:$COMPANION_PORT" \
  --hazelcast "127.0.0.1:$HZ_PORT" --cluster-name dev \
  --map hzcache=envelope --map cache=body:string \
  --origin "default=http://127.0.0.1:$BACKEND_PORT" > "$RUN/companion.log" 2>&1 &
PIDS+=($!)
echo "demo: starting the companion on 127.0.0.1:$COMPANION_PORT (log: $RUN/companion.log)"
wait_for "the companion" 30 curl -sf "http://127.0.0.1:$COMPANION_PORT/readyz"

# 4. Envoy with the filter.
python3 envoy/render.py local "$WASM" > "$RUN/envoy.yaml"
"$ROOT/.cache/venv/bin/envoy" -c "$RUN/envoy.yaml" --concurrency 2 --use-dynamic-base-id \
  > "$RUN/envoy.log" 2>&1 &
PIDS+=($!)
echo "demo: starting Envoy $ENVOY_VERSION on 127.0.0.1:$ENVOY_PORT (log: $RUN/envoy.log)"
wait_for "Envoy" 60 sh -c "curl -sf http://127.0.0.1:$ADMIN_PORT/ready | grep -q LIVE"

cat <<TXT

hzcache demo is up (logs in $RUN):
  Envoy       http://127.0.0.1:$ENVOY_PORT   (admin http://127.0.0.1:$ADMIN_PORT)
  companion   http://127.0.0.1:$COMPANION_PORT
  Hazelcast   127.0.0.1:$HZ_PORT, cluster "dev"
  Falcon app  http://127.0.0.1:$BACKEND_PORT   (the origin; caches in Hazelcast itself)

Try it:
  curl -i http://127.0.0.1:$ENVOY_PORT/                 # x-cache: MISS, then HIT
  curl -i 'http://127.0.0.1:$ENVOY_PORT/data?key=abc'   # 300 ms MISS, then an instant HIT
  curl -i http://127.0.0.1:$ENVOY_PORT/private          # private: never shared, always MISS
  curl -i -H 'Accept-Language: de' http://127.0.0.1:$ENVOY_PORT/vary   # one variant per language
  curl -i http://127.0.0.1:$ENVOY_PORT/slow             # 1 s MISS, then an instant HIT
  curl -s http://127.0.0.1:$BACKEND_PORT/stats          # what reached the app, and its backend calls

The app and hzcache share the Hazelcast map "cache" (/data?key=K is key K in it):
  curl -i 'http://127.0.0.1:$BACKEND_PORT/data?key=xyz'  # straight to the app: it computes and map.put()s
  curl -i 'http://127.0.0.1:$ENVOY_PORT/data?key=xyz'    # HIT through Envoy: what the app put
  curl -s 'http://127.0.0.1:$BACKEND_PORT/cache?key=abc' # the app's map.get of what hzcache stored
Or from Python (.cache/venv/bin/python has the official client):
  import hazelcast; m = hazelcast.HazelcastClient().get_map("cache").blocking()
  m.put("hello", "written by Python"); print(m.get("abc"))

Ctrl-C stops everything.
TXT

# Stay in the foreground until a signal, or until one of the processes dies.
while true; do
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "demo: a process ($pid) exited; see $RUN/*.log" >&2; exit 1; fi
  done
  sleep 1 &
  wait $! || true
done
