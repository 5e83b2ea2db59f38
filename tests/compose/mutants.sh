#!/usr/bin/env bash
# Shows that `make test-compose` catches a broken compose demo: each case copies the source,
# breaks one thing (the Dockerfile, a service name, a published port, a mount, a health check)
# and runs the same scenario (tests/compose/run.sh DIR) on the copy, which must fail.
# Run by tests/compose/run.sh after the real scenario passed (the engine is up, the images
# and build caches are warm, so each case costs about its own failure's time).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
source tests/compose/dockerd.sh

MUTANTS=(
  "Dockerfile|Dockerfile|s#COPY --from=build /out/hzcache-companion #COPY --from=build /out/hzcache-companio #"
  "service name|compose.yaml|s#^  app:#  backend:#; s#      app: { condition#      backend: { condition#"
  "published port|compose.yaml|s#127.0.0.1:10000:10000#127.0.0.1:10001:10000#"
  "mount|compose.yaml|s#/etc/envoy/envoy.yaml:ro#/etc/envoy/envoy-config.yaml:ro#"
  "health check|compose.yaml|s#/dev/tcp/127.0.0.1/8090#/dev/tcp/127.0.0.1/8091#"
)

failed=0
for m in "${MUTANTS[@]}"; do
  IFS='|' read -r what file expr <<< "$m"
  copy=$(mktemp -d /tmp/hzcache-mutant.XXXXXX)
  # Timestamps kept (-p): cargo in the build stage then sees the sources unchanged.
  git ls-files -co --exclude-standard -z | xargs -0 cp -p --parents -t "$copy"
  sed -i "$expr" "$copy/$file"
  if cmp -s "$ROOT/$file" "$copy/$file"; then
    hz_say "mutant '$what': the edit did not apply to $file" >&2; failed=1; rm -rf "$copy"; continue
  fi
  hz_say "mutant '$what' ($file: $expr)"
  if HZCACHE_COMPOSE_PROJECT=hzcache-mutant HZCACHE_COMPOSE_WAIT=90 \
       bash tests/compose/run.sh "$copy" > "$copy.log" 2>&1; then
    hz_say "mutant '$what' PASSED the test: the test does not catch it (log: $copy.log)" >&2; failed=1
  else
    hz_say "  caught: $(grep -E 'FAILED|error|Error|unhealthy|exited|not exactly|failed' "$copy.log" | grep -v '^check: ok' | head -1 | cut -c1-160)"
    rm -f "$copy.log"
  fi
  rm -rf "$copy"
done
exit "$failed"
