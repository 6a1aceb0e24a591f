#!/usr/bin/env bash
# Build meshgate as an Envoy dynamic module (host cdylib, cargo profile `native`: release with
# panic=unwind, feature `native`) and copy it to OUT.
#   tests/tools/build-native.sh OUT [extra cargo features]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$1; features=native${2:+,$2}
cargo build --profile native --lib -p meshgate --features "$features"
mkdir -p "$(dirname "$out")"
cp target/native/libmeshgate.so "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out: $(stat -c %s "$out") bytes"
