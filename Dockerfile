# hzcache's images, all from one multi-stage build (compose.yaml builds the ones it runs):
#
#   companion    the companion, release build, on Debian slim, as a non-root user, with a
#                HEALTHCHECK on /readyz (connected to Hazelcast)
#   filter       the filter's .wasm at /plugin.wasm; run with a volume at /wasm it copies it
#                there (how compose.yaml hands it to the unmodified official Envoy image)
#   wasm-plugin  the filter alone, FROM scratch: one layer with /plugin.wasm, the layout Istio's
#                WasmPlugin accepts for oci:// URLs (docker compose --profile oci build wasm-plugin)
#   app          the demo's Falcon app (deploy/demo-app/app.py) under gunicorn, as a non-root user
#
# Both Rust artefacts are compiled here, in the `build` stage, from the source in the build
# context. BuildKit cache mounts keep cargo's registry and target folder between builds, so a
# rebuild after a source change compiles only what changed (and nothing of them ends up in an
# image). No `# syntax=` line: the Dockerfile frontend built into the engine is enough.
#
# Base images are pinned by tag; the ARGs let a mirror be named without editing this file.
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The official Rust image has only the host target.
RUN rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
# The whole workspace (cargo needs every member's manifest; .dockerignore keeps out target/,
# .cache/ and .git). A change anywhere reruns the next step, which the target cache mount
# makes a no-op unless Rust sources changed.
COPY . .
RUN --mount=type=cache,id=hzcache-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=hzcache-cargo-target,target=/src/target \
    cargo build --locked --release -p hzcache-companion \
 && cargo build --locked --release -p hzcache-filter --target wasm32-wasip1 \
 && mkdir -p /out \
 && cp target/release/hzcache-companion target/wasm32-wasip1/release/hzcache_filter.wasm /out/

# ---------------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS companion
RUN groupadd --system --gid 10001 hzcache \
 && useradd --system --uid 10001 --gid hzcache --no-create-home --shell /usr/sbin/nologin hzcache
COPY --from=build /out/hzcache-companion /usr/local/bin/hzcache-companion
USER 10001:10001
ENV HZCACHE_LISTEN=0.0.0.0:8090
EXPOSE 8090
# /readyz is 200 once the companion is connected to Hazelcast. Debian slim has no HTTP client;
# bash's /dev/tcp is enough for one GET. A different HZCACHE_LISTEN port needs its own check.
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8090 && printf 'GET /readyz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/hzcache-companion"]

# ---------------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS filter
COPY --from=build /out/hzcache_filter.wasm /plugin.wasm
RUN mkdir /wasm && chown 10001:10001 /wasm
USER 10001:10001
VOLUME /wasm
CMD ["cp", "/plugin.wasm", "/wasm/hzcache_filter.wasm"]

# ---------------------------------------------------------------------------------------------
FROM scratch AS wasm-plugin
COPY --from=build /out/hzcache_filter.wasm /plugin.wasm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS app
COPY deploy/demo-app/requirements.txt /opt/app/requirements.txt
RUN python3 -m venv /opt/app/venv \
 && /opt/app/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /opt/app/requirements.txt
COPY deploy/demo-app/app.py /opt/app/app.py
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
USER 10001:10001
ENV PYTHONUNBUFFERED=1
EXPOSE 8081
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
  CMD ["/opt/app/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=2)"]
CMD ["/opt/app/venv/bin/gunicorn", "--bind", "0.0.0.0:8081", "--workers", "1", "--threads", "8", \
     "--access-logfile", "-", "--chdir", "/opt/app", "app:app"]
