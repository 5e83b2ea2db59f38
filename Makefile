# hzcache: `make demo` runs the demo, `make test` runs every test. Both install what they need.
.PHONY: setup build build-release test demo bench clean

CARGO ?= cargo

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --locked -p hzcache-filter --target wasm32-wasip1 --release
	$(CARGO) build --locked -p hzcache-companion

build-release: setup
	$(CARGO) build --locked -p hzcache-filter --target wasm32-wasip1 --release
	$(CARGO) build --locked -p hzcache-companion --release

test: build
	$(CARGO) test --locked --workspace

demo: build-release
	@scripts/demo.sh

clean:
	$(CARGO) clean
