#!/usr/bin/env bash
# The long soak: MESHGATE_SOAK_REQUESTS (default 200000) mixed requests through a real Envoy with
# two workers running build/meshgate.wasm, JWT-protected calls against a real JWKS server that
# rotates halfway, reconciled per request id, VM memory growth reported
# (tests/kit/tests/e2e_soak.rs). The figures
# (`SOAK ...` lines) are written to build/soak-figures.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MESHGATE_SOAK_REQUESTS=${MESHGATE_SOAK_REQUESTS:-200000}
mkdir -p build
cargo test -p meshgate-kit --test e2e_soak -- --nocapture 2>&1 | tee build/soak.log
grep '^SOAK' build/soak.log > build/soak-figures.txt
echo "soak: figures in build/soak-figures.txt"
