#!/usr/bin/env bash
# The crypto tests (tests/crypto/: Wycheproof vectors and crafted encodings) built for
# wasm32-wasip1 and run in Node's V8 (node:wasi), the engine Envoy runs the module in: the RSA
# verifier on 32-bit limbs, P-256 on meshgate's own 26-bit field, P-384 on the p384 crate's. Any
# wrong verdict fails the run (and `make test`).
#   tests/tools/crypto-wasm.sh [test-name-filter]
#   tests/tools/crypto-wasm.sh --ignored timing   (µs per RS256 / ES256 verification in V8)
#   tests/tools/crypto-wasm.sh --build-only       (build the test binary, run nothing: make test)
# Same routes as build-wasm.sh: rustup's wasm32-wasip1 target when installed, else Debian's
# rustc-web with the standard library built from source. Its own target dir; optimised (the
# vectors take minutes unoptimised), debug assertions and overflow checks kept on.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v node >/dev/null || { echo "crypto-wasm: node is required (Node.js 20+)" >&2; exit 1; }
export CARGO_PROFILE_DEV_OPT_LEVEL=2 CARGO_PROFILE_DEV_DEBUG=0 CARGO_TARGET_DIR=target/wasm-test
args=(test -p meshgate --test crypto --target wasm32-wasip1 --no-run)
if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  out=$(cargo "${args[@]}" 2>&1) || { echo "$out" >&2; exit 1; }
else
  sysroot=$(rustc --print sysroot)
  lld=$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld
  [ -x "$lld" ] || lld=$(command -v rust-lld || true)
  [ -n "$lld" ] || { echo "crypto-wasm: no rust-lld found" >&2; exit 1; }
  out=$(RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-L /usr/lib/wasm32-wasi" \
    WASI_LLD="$lld" CARGO_TARGET_WASM32_WASIP1_LINKER="$PWD/tests/tools/wasi-ld.sh" \
    /usr/bin/cargo "${args[@]}" -Zbuild-std=std,panic_abort 2>&1) || { echo "$out" >&2; exit 1; }
fi
[ "${1:-}" = --build-only ] && exit 0
# "Executable tests/crypto/main.rs (target/wasm-test/wasm32-wasip1/debug/deps/crypto-HASH.wasm)"
bin=$(sed -n 's/.*Executable .*(\(.*\.wasm\))$/\1/p' <<<"$out" | tail -1)
[ -f "$bin" ] || { echo "$out" >&2; echo "crypto-wasm: no test binary found" >&2; exit 1; }
echo "crypto-wasm: running $bin in node $(node --version) (wasm32, V8)"
node --no-warnings tests/tools/wasi-run.mjs "$bin" --test-threads=1 ${1:+"$1"}
