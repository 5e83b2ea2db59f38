#!/usr/bin/env bash
# A Docker Engine of the project's own, for `make test-compose` on machines where none runs:
# Debian's docker.io with its own data root, exec root and socket, no default bridge and no
# iptables rules (user-defined bridge networks, service DNS, health checks and ports published
# on 127.0.0.1 through docker-proxy all work without them). Compose v2 comes from the Go module
# proxy as the docker-compose CLI plugin, in a config folder of its own.
#
#   source tests/compose/dockerd.sh; hz_docker_up     # exports DOCKER_HOST, DOCKER_CONFIG
#   hz_docker_down                                    # stops the daemon only if hz_docker_up started it
#
# Idempotent: a daemon already answering on the socket is reused (and left running).
HZ_DOCKER_DIR=${HZ_DOCKER_DIR:-/var/lib/hzcache-docker}
HZ_DOCKER_RUN=${HZ_DOCKER_RUN:-/run/hzcache-docker}
HZ_COMPOSE_VERSION=${HZ_COMPOSE_VERSION:-v2.29.7}
export DOCKER_HOST="unix://$HZ_DOCKER_RUN/docker.sock"
export DOCKER_CONFIG="$HZ_DOCKER_DIR/config"
HZ_DOCKER_STARTED=

hz_say() { printf 'test-compose: %s\n' "$*"; }

hz_docker_install() {
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v mmdebstrap >/dev/null 2>&1; then
    hz_say "installing docker.io and mmdebstrap (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io mmdebstrap >/dev/null
  fi
  local plugin="$DOCKER_CONFIG/cli-plugins/docker-compose"
  if [ ! -x "$plugin" ] || ! grep -q "$HZ_COMPOSE_VERSION" "$plugin.version" 2>/dev/null; then
    hz_say "building docker compose $HZ_COMPOSE_VERSION (Go module proxy)"
    mkdir -p "$DOCKER_CONFIG/cli-plugins"
    local gobin
    gobin=$(mktemp -d)
    GOBIN="$gobin" GOFLAGS=-mod=mod go install \
      -ldflags "-X github.com/docker/compose/v2/internal.Version=$HZ_COMPOSE_VERSION" \
      "github.com/docker/compose/v2/cmd@$HZ_COMPOSE_VERSION"
    mv "$gobin/cmd" "$plugin"
    echo "$HZ_COMPOSE_VERSION" > "$plugin.version"
    rm -rf "$gobin"
  fi
}

hz_docker_up() {
  hz_docker_install
  if docker version >/dev/null 2>&1; then
    hz_say "reusing the Docker daemon on $DOCKER_HOST"
    return 0
  fi
  mkdir -p "$HZ_DOCKER_DIR/root" "$HZ_DOCKER_RUN"
  hz_say "starting dockerd (data root $HZ_DOCKER_DIR/root, socket $HZ_DOCKER_RUN/docker.sock)"
  dockerd --bridge=none --iptables=false --ip6tables=false \
    --data-root "$HZ_DOCKER_DIR/root" --exec-root "$HZ_DOCKER_RUN/exec" \
    --pidfile "$HZ_DOCKER_RUN/dockerd.pid" --host "$DOCKER_HOST" \
    > "$HZ_DOCKER_DIR/dockerd.log" 2>&1 &
  HZ_DOCKER_STARTED=$!
  for _ in $(seq 300); do
    docker version >/dev/null 2>&1 && return 0
    kill -0 "$HZ_DOCKER_STARTED" 2>/dev/null || break
    sleep 0.1
  done
  hz_say "dockerd did not start; its log:"; tail -20 "$HZ_DOCKER_DIR/dockerd.log" >&2
  return 1
}

hz_docker_down() {
  [ -n "$HZ_DOCKER_STARTED" ] || return 0
  hz_say "stopping dockerd ($HZ_DOCKER_STARTED)"
  kill "$HZ_DOCKER_STARTED" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$HZ_DOCKER_STARTED" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$HZ_DOCKER_STARTED" 2>/dev/null || true
  HZ_DOCKER_STARTED=
}
