#!/usr/bin/env bash
# Build the no-op benchmark filter (tests/bench/noop) for wasm32-wasip1 and copy it to OUT, by
# the same route as tests/tools/build-wasm.sh (rustup's target, else Debian's rustc-web with std
# built from source; the target dir is shared with the main module's so std is built once).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$1
args=(build --release --lib --target wasm32-wasip1 --manifest-path tests/bench/noop/Cargo.toml)
if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  dir=$PWD/target/wasm-rustup
  CARGO_TARGET_DIR=$dir cargo "${args[@]}"
else
  sysroot=$(rustc --print sysroot)
  lld=$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld
  [ -x "$lld" ] || lld=$(command -v rust-lld || true)
  [ -n "$lld" ] || { echo "build-noop: no rust-lld found" >&2; exit 1; }
  dir=$PWD/target/wasm-debian
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-L /usr/lib/wasm32-wasi" \
  CARGO_TARGET_WASM32_WASIP1_LINKER="$lld" CARGO_TARGET_DIR=$dir \
    /usr/bin/cargo "${args[@]}" -Zbuild-std=std,panic_abort
fi
mkdir -p "$(dirname "$out")"
cp "$dir/wasm32-wasip1/release/meshgate_bench_noop.wasm" "$out"
echo "built $out: $(stat -c %s "$out") bytes"
