#!/usr/bin/env bash
# Linker for wasm32-wasip1 test binaries on the Debian route (tests/tools/crypto-wasm.sh): rust-lld
# ($WASI_LLD) with std's pthread_join/pthread_detach left as imports. Rust 1.96's std links
# them on WASI, the test harness's thread code references them (it never spawns a thread on
# wasm), and Debian's single-threaded wasi-libc has no stubs for them; tests/tools/wasi-run.mjs
# provides stubs that return ENOSYS.
exec "${WASI_LLD:?}" "$@" --allow-undefined-file="$(dirname "$0")/wasi-undefined.txt"
