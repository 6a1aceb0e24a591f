# meshgate: `make run` serves the demo, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

WASM        := build/meshgate.wasm
WASM_TEST   := build/meshgate-test.wasm
# The same core as an Envoy dynamic module (docs/native.md).
NATIVE      := build/libmeshgate_native.so
NATIVE_TEST := build/libmeshgate_native-test.so
GATEWAY     := envoy/gateway.yaml
# Where `cargo test --workspace` leaves the kit's programs (demo-backend, ...): make test hands
# them to the end-to-end harness, which otherwise runs `cargo build -p meshgate-kit --bins` in
# each test process, a second feature set of the kit that makes the next `cargo test` compile
# the kit and every suite again (tests/kit/src/harness/bins.rs).
KIT_BIN_DIR ?= $(abspath $(or $(CARGO_TARGET_DIR),target))/debug
CARGO       ?= cargo
# Host cargo and rustup's toolchain; the wasm build picks its own route (tests/tools/build-wasm.sh).
export CARGO_TERM_COLOR ?= never

.PHONY: help setup build wasm wasm-test host native native-test run run-native test test-host test-e2e lint fmt clean validate oci istio bench bench-quick fuzz soak \
  test-lane-host test-lane-wasm test-lane-native test-lane-crypto test-lane-fuzz

help:
	@echo "make run       build and start Envoy + meshgate + demo gRPC backends on 127.0.0.1:8080"
	@echo "make test      install what is missing, build, run unit, integration and end-to-end tests"
	@echo "make lint      rustfmt check, clippy -D warnings for the host and for wasm32-wasip1"
	@echo "make build     build build/meshgate.wasm (release), the native module and the host tools"
	@echo "make run-native  the same demo as make run, with the native module (an Envoy dynamic module)"
	@echo "make validate  check envoy/gateway.yaml as the filter would"
	@echo "make oci       build/oci: the module as an OCI image layout Istio pulls (push with skopeo)"
	@echo "make istio     regenerate istio/examples/ from istio/gateway.yaml and the image"
	@echo "make bench     meshgate vs Envoy's native filters and a bare proxy (h2load, ~13 min): BENCHMARKS.md"
	@echo "make bench-quick  the same in ~2 minutes (one short round)"
	@echo "make fuzz      run every fuzz target for FUZZ_SECONDS (default 300) each"
	@echo "make soak      200k mixed requests through real Envoy (2 workers), reconciled per request id"

setup:
	@tests/tools/setup.sh wasm envoy test lint istio browser

# The release module: LTO, one codegen unit, panic=abort, stripped (Cargo.toml [profile.release]).
wasm:
	@tests/tools/setup.sh wasm
	@tests/tools/build-wasm.sh $(WASM)

# The same module with the test-only trap trigger, for the VM failure-policy test.
wasm-test:
	@tests/tools/setup.sh wasm
	@tests/tools/build-wasm.sh $(WASM_TEST) test-trap

host: native
	$(CARGO) build --release --bin meshgate -p meshgate
	$(CARGO) build --release -p meshgate-kit --bins

# The native module: a host cdylib, profile `native` (release with panic=unwind), feature `native`.
native:
	@tests/tools/build-native.sh $(NATIVE)

# The native module with the test-only panic trigger (tests/kit/tests/e2e_native.rs).
native-test:
	@tests/tools/build-native.sh $(NATIVE_TEST) test-trap

build: wasm host

# Istio's "compat" image (one tar+gzip layer holding plugin.wasm) as an OCI layout, no Docker:
#   skopeo copy oci:build/oci:$(OCI_TAG) docker://REGISTRY/meshgate:$(OCI_TAG)
OCI_TAG     ?= 0.1.0
OCI_IMAGE   ?= oci://registry.example.com/meshgate/meshgate:$(OCI_TAG)
oci: wasm
	$(CARGO) run -q --release --bin meshgate -- oci $(WASM) build/oci --tag $(OCI_TAG)

istio: oci
	$(CARGO) run -q --release --bin meshgate -- istio istio/gateway.yaml -d istio/examples \
	  --oci-layout build/oci --image $(OCI_IMAGE) --wasm $(WASM)

validate: host
	target/release/meshgate validate $(GATEWAY)

# Only what the demo needs (no test or Istio tools).
run: build
	@tests/tools/setup.sh envoy demo
	@tests/tools/run.sh

# The same demo, banner and examples, with build/libmeshgate_native.so in Envoy.
run-native: build
	@tests/tools/setup.sh envoy demo
	@tests/tools/run.sh native

# rustfmt first (cheap to fail); then the lints and every build in lanes side by side (below);
# then every test: unit, host-side integration, promtool, and the end-to-end suites against a
# real Envoy running build/meshgate.wasm; then the foundation, transcoding, auth, routing, SLO
# and reliability suites again on the native module; the crypto vectors in V8; the fuzz targets.
test: setup
	$(CARGO) fmt --all -- --check
	@$(MAKE) --no-print-directory -j3 --output-sync=target \
	  test-lane-host test-lane-wasm test-lane-native test-lane-crypto test-lane-fuzz
	MESHGATE_KIT_BIN_DIR=$(KIT_BIN_DIR) $(CARGO) test --workspace --no-fail-fast
	@MESHGATE_KIT_BIN_DIR=$(KIT_BIN_DIR) tests/tools/e2e-native.sh
	$(CARGO) test -p meshgate --features native --test native_calls
	@tests/tools/crypto-wasm.sh
	@tests/tools/fuzz.sh 5
	@echo "make test: all tests passed"

# make test's lints and builds, one lane per cargo target dir (no lane waits on another's lock
# or copies an artifact another lane is rewriting), run three at a time: the fat-LTO link of one
# module and the single-crate steps of a build leave a core idle that another lane uses. Within
# a lane the order is `make lint`'s, then the build. The host lane also builds the test binaries
# (and, with them, the kit's programs the end-to-end harness runs).
test-lane-host:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p meshgate --lib --test native_calls --features native,test-trap -- -D warnings
	$(CARGO) test --workspace --no-run

test-lane-wasm:
	@tests/tools/clippy-wasm.sh
	@tests/tools/build-wasm.sh $(WASM)
	@tests/tools/build-wasm.sh $(WASM_TEST) test-trap

test-lane-native:
	@tests/tools/build-native.sh $(NATIVE)
	@tests/tools/build-native.sh $(NATIVE_TEST) test-trap

test-lane-crypto:
	@tests/tools/crypto-wasm.sh --build-only

test-lane-fuzz:
	@tests/tools/fuzz.sh --build-only

# Every fuzz target for FUZZ_SECONDS each (nightly, cargo-fuzz; address sanitizer).
FUZZ_SECONDS ?= 300
fuzz:
	@tests/tools/fuzz.sh $(FUZZ_SECONDS)

# The long soak (200k mixed requests through real Envoy, counts reconciled; figures in build/).
soak: setup wasm
	@tests/tools/soak.sh

test-host:
	$(CARGO) test -p meshgate

lint:
	@tests/tools/setup.sh lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p meshgate --lib --test native_calls --features native,test-trap -- -D warnings
	@tests/tools/clippy-wasm.sh

# Benchmarks (tests/bench/): h2load against Envoy in each configuration; writes BENCHMARKS.md.
bench:
	@tests/bench/run.sh

bench-quick:
	@tests/bench/run.sh --quick

fmt:
	$(CARGO) fmt --all

clean:
	rm -rf build target
