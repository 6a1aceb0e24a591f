#!/usr/bin/env bash
# Build the no-op dynamic module (tests/bench/noop-native: every hook continues, no callback
# into Envoy) for the host and copy it to OUT. Its own workspace and target dir; not part of
# `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$1
dir=$PWD/target/bench-noop-native
CARGO_TARGET_DIR=$dir cargo build --release --lib --manifest-path tests/bench/noop-native/Cargo.toml
mkdir -p "$(dirname "$out")"
cp "$dir/release/libmeshgate_bench_noop_native.so" "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out: $(stat -c %s "$out") bytes"
