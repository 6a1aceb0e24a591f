#!/usr/bin/env bash
# `make test`, second pass: the end-to-end suites again with the native module in Envoy
# (MESHGATE_FLAVOUR=native, build/libmeshgate_native.so from `make native`). The first pass
# (`cargo test --workspace`) ran every suite on the wasm module. Here: the foundation,
# transcoding, auth, routing, SLO, browser (Chromium, which `make test` installs) and
# reliability suites, and the local rate limit (a GET's quota: a side call's under wasm, Envoy's
# filter's on native), and `make run-native` (make_run: `run.sh native`, every printed example);
# a test that only makes sense on wasm
# (VM traps and reloads, Istio's WasmPlugin) says so and returns (harness::skip_on_native).
# Usage: tests/tools/e2e-native.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/../.."
SUITES=(
  e2e_foundation
  e2e_transcode_errors e2e_transcode_fidelity e2e_transcode_mapping e2e_transcode_stream
  e2e_auth_jwks_attacks e2e_auth_outputs e2e_auth_providers e2e_auth_remote e2e_auth_security
  e2e_route_policies e2e_route_tracing e2e_route_upstreams e2e_route_retry
  e2e_slo_grpc e2e_slo_policy e2e_slo_transcoded
  e2e_ratelimit_local
  e2e_browser make_run
  e2e_reliability_count e2e_reliability_input e2e_reliability_resilience e2e_reliability_upstream
  e2e_reliability_traps e2e_reliability_reload e2e_reliability_jwks_trap e2e_reliability_istio
)
args=()
for s in "${SUITES[@]}"; do args+=(--test "$s"); done
start=$(date +%s)
status=0
# --workspace (the suites are meshgate-kit's): the feature set of the first pass's `cargo test
# --workspace`, so its test binaries are reused; `-p meshgate-kit` alone would leave out the
# root crate's dev-dependency features and compile meshgate, the kit and every suite again.
MESHGATE_FLAVOUR=native ${CARGO:-cargo} test --workspace --no-fail-fast "${args[@]}" "$@" || status=$?
echo "e2e on the native module: ${#SUITES[@]} suites in $(( $(date +%s) - start )) s"
exit $status
