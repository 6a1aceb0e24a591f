#!/usr/bin/env bash
# clippy -D warnings for wasm32-wasip1, through the same route as the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  CARGO_TARGET_DIR=target/wasm-rustup cargo clippy --lib --target wasm32-wasip1 --features test-trap -- -D warnings
else
  sysroot=$(rustc --print sysroot)
  # Debian's clippy (rust-web-clippy) matches Debian's rustc; /usr/bin goes first so that
  # cargo finds its cargo-clippy rather than rustup's.
  PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-L /usr/lib/wasm32-wasi" \
  CARGO_TARGET_WASM32_WASIP1_LINKER="$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld" \
  CARGO_TARGET_DIR=target/wasm-debian \
    /usr/bin/cargo clippy --lib --target wasm32-wasip1 --features test-trap -Zbuild-std=std,panic_abort -- -D warnings
fi
