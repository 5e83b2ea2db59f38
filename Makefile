# hzcache: `make demo` runs the demo, `make test` runs every test, `make test-compose` the compose
# demo. All install what they need.
.PHONY: setup build build-release test test-compose demo bench bench-http compare faults clean

CARGO ?= cargo

setup:
	@deploy/local/setup.sh

build: setup
	$(CARGO) build --locked -p hzcache-filter --target wasm32-wasip1 --release
	$(CARGO) build --locked -p hzcache-companion

build-release: setup
	$(CARGO) build --locked -p hzcache-filter --target wasm32-wasip1 --release
	$(CARGO) build --locked -p hzcache-companion --release

# Formatting and lints first, native and for the wasm target (the filter's no-panic lints,
# lib.rs, apply to the code Envoy runs), then the Hazelcast client's rustdoc with warnings as errors (a broken
# link or an undocumented public item fails; its doctests run with `cargo test`).
test: build
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked -p hzcache-filter --target wasm32-wasip1 -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --no-deps -p hazelcast-client
	$(CARGO) test --locked --workspace

# The docker compose demo (compose.yaml) run for real: a Docker Engine of its own, local
# stand-ins for the public base images, the project's images built from its Dockerfile, the
# checks, teardown, and broken copies that must fail (tests/compose/run.sh). Needs root.
test-compose: setup
	@tests/compose/run.sh

demo: build-release
	@deploy/local/demo.sh

# Not part of `make test`: hzcache's Hazelcast client against the official Java and Python
# clients on one local member (docs/benchmarks.md). BENCH_ARGS="--seconds 5" etc. to tune.
bench: setup
	$(CARGO) run --locked --release -p hzcache-bench -- $(BENCH_ARGS)

# Not part of `make test`: HTTP req/s, latency, CPU and RSS through hzcache (L1 and L2 hits, no
# matching rule) next to Envoy's direct_response, plain proxying, Envoy's cache filter, Varnish
# and nginx proxy_cache, interleaved rounds, all on 127.0.0.1 (docs/benchmarks.md, "HTTP").
# Installs wrk, nginx, varnish (apt-get) and matplotlib (.cache/venv); writes
# docs/bench-http.{json,png} and its section of docs/benchmarks.md. About 9 minutes;
# BENCH_HTTP_ARGS="--quick" for a smoke run (results under target/bench-http/, docs untouched).
bench-http: build-release
	@benchmarks/http/setup.sh
	$(CARGO) run --locked --release -p hzcache-bench-http -- $(BENCH_HTTP_ARGS)

# Not part of `make test`: one set of RFC 9111 shared-cache cases run against hzcache, Envoy's
# own cache filters, nginx and Varnish, printing a scorecard (docs/comparison.md). Installs
# nginx and varnish with apt-get. COMPARE_ARGS="--caches hzcache,nginx --cases vary" etc.
compare: build
	@benchmarks/compare/setup.sh
	$(CARGO) run --locked -p hzcache-compare -- --out target/compare-scorecard.md $(COMPARE_ARGS)

# The real stack (3 members, 2 companions, 2 Envoys, a controllable origin) under a steady load
# while companions, members, the cluster and the origin fail, plus hostile requests, a 5 MB body
# and a stampede; prints a table and fails on a missed target (docs/faults.md). Its short form
# is part of `make test` (tests/faults/tests/short.rs). FAULTS_ARGS="--scenario origin-hang --seconds 6".
faults: build
	$(CARGO) run --locked -p hzcache-faults -- --out target/faults-table.md $(FAULTS_ARGS)

clean:
	$(CARGO) clean
