#!/usr/bin/env bash
# Build the filter for wasm32-wasip1 and copy it to OUT.
#   tests/tools/build-wasm.sh OUT [cargo features]
# Uses rustup's wasm32-wasip1 target when installed (the ordinary route on a user's machine),
# otherwise Debian's rustc-web with the standard library built from source (these machines
# cannot download rustup targets). Each route has its own target dir so caches do not thrash.
# The module is linked with its name section (the size breakdown, tests/bench/wasm_size.py,
# reads target/wasm-*/wasm32-wasip1/release/meshgate.wasm); OUT gets it without custom sections,
# through wasm_size.py --strip, or with MESHGATE_WASM_OPT=1 through binaryen's `wasm-opt -Oz`
# (−14 % bytes, no measured memory gain, and the JSON rows' suspected CPU regression: not the
# default; docs/footprint.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$1; features=${2:-}
args=(build --release --lib --target wasm32-wasip1 --config profile.release.strip=false)
[ -n "$features" ] && args+=(--features "$features")
# One target dir per route (features only rebuild this crate; std and dependencies are shared).
if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  CARGO_TARGET_DIR=target/wasm-rustup cargo "${args[@]}"
  dir=target/wasm-rustup
else
  sysroot=$(rustc --print sysroot)
  lld=$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld
  [ -x "$lld" ] || lld=$(command -v rust-lld || true)
  [ -n "$lld" ] || { echo "build-wasm: no rust-lld found" >&2; exit 1; }
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-L /usr/lib/wasm32-wasi" \
  CARGO_TARGET_WASM32_WASIP1_LINKER="$lld" CARGO_TARGET_DIR=target/wasm-debian \
    /usr/bin/cargo "${args[@]}" -Zbuild-std=std,panic_abort
  dir=target/wasm-debian
fi
mkdir -p "$(dirname "$out")"
linked=$dir/wasm32-wasip1/release/meshgate.wasm
if [ "${MESHGATE_WASM_OPT:-0}" != 0 ] && command -v wasm-opt >/dev/null; then
  # The features rustc enables for wasm32-wasip1; --strip-* drop the name and producers sections.
  # -ocimfs 40: no unbounded inlining of single-caller functions (binaryen's default): it made
  # 100 KB functions, and V8 kept 15 MB more of compile memory for them (docs/footprint.md).
  wasm-opt -Oz -ocimfs 40 --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types \
    --strip-debug --strip-producers "$linked" -o "$out.tmp"
else
  python3 tests/bench/wasm_size.py --strip "$linked" "$out.tmp"
fi
mv "$out.tmp" "$out"
echo "built $out: $(stat -c %s "$out") bytes"
