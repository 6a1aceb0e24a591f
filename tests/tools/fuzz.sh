#!/usr/bin/env bash
# Run every cargo-fuzz target of tests/fuzz for SECONDS each (host-side, nightly toolchain).
#   tests/tools/fuzz.sh SECONDS [target...]
#   tests/tools/fuzz.sh --build-only   (build the targets as `fuzz.sh 5` runs them; make test)
# `make test` runs a few seconds per target; `make fuzz` runs long. Installs cargo-fuzz when it
# is missing (fails loudly when it cannot). New corpus entries go to a scratch directory; the
# committed corpus (tests/fuzz/corpus/<target>) is only read. A crash stops the run and names
# the reproducer: copy it to tests/fuzz/regressions/<target>/ (replayed by `cargo test`).
# FUZZ_SANITIZER: address (default for long runs) or none (default for runs under 60 s).
# Always with debug assertions and overflow checks (-a).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:?usage: fuzz.sh SECONDS [target...] | --build-only}; shift
build_only=false
# The short run's build (its sanitizer), made ahead: the run then finds it fresh.
[ "$seconds" = --build-only ] && { build_only=true; seconds=5; }
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(json_to_proto proto_to_json path_query jwt grpc_frames config crypto_diff
  filter jwks discovery stream_render grpc_status traceparent)
sanitizer=${FUZZ_SANITIZER:-$([ "$seconds" -lt 60 ] && echo none || echo address)}

# The nightly toolchain and the pinned cargo-fuzz (setup.sh installs both when missing).
tests/tools/setup.sh test

scratch=$(mktemp -d "${TMPDIR:-/tmp}/meshgate-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
fuzz=(cargo +nightly fuzz)
"${fuzz[@]}" build --fuzz-dir tests/fuzz -s "$sanitizer" -O -a
$build_only && exit 0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  echo "fuzz: $t for ${seconds}s ($sanitizer)"
  rc=0
  "${fuzz[@]}" run --fuzz-dir tests/fuzz -s "$sanitizer" -O -a "$t" "$scratch/$t" "tests/fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$scratch/$t.log" 2>&1 || rc=$?
  grep -E "^stat::(number_of_executed_units|new_units_added)" "$scratch/$t.log" | tr '\n' ' ' || true
  echo
  if [ "$rc" -ne 0 ]; then
    tail -40 "$scratch/$t.log" >&2
    echo "fuzz: $t FAILED: reproducer under tests/fuzz/artifacts/$t/" >&2; exit 1
  fi
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
