#!/usr/bin/env bash
# `make bench` / `make bench-quick` (pass --quick): install h2load if missing, build the module,
# the no-op filters (wasm and native) and the host tools, then run tests/bench/bench.py (writes
# BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v h2load >/dev/null 2>&1; then
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nghttp2-client >/dev/null
fi
command -v openssl >/dev/null || { echo "bench: openssl is needed for the JWT keys" >&2; exit 1; }
tests/tools/setup.sh wasm envoy
tests/tools/build-wasm.sh build/meshgate.wasm
tests/bench/build-noop.sh build/noop.wasm
tests/tools/build-native.sh build/libmeshgate_native.so
tests/bench/build-noop-native.sh build/noop-native.so
cargo build --release --bin meshgate -p meshgate
cargo build --release -p meshgate-kit --bin demo-backend
ENVOY=$(tests/tools/envoy-path.sh) || { echo "bench: no Envoy" >&2; exit 1; }
bin=${CARGO_TARGET_DIR:-target}/release
MESHGATE_ENVOY=$ENVOY exec python3 tests/bench/bench.py --meshgate "$bin/meshgate" \
  --backend "$bin/demo-backend" "$@"
