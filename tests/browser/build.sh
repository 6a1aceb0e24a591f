#!/usr/bin/env bash
# Build the demo page into DIR (default build/browser/site): index.html, app.js (bundled by
# esbuild from tests/browser/demo/app.js with the npm packages pinned in
# tests/browser/package-lock.json, installed into build/browser/npm), and payments.pb, the
# gateway's descriptor set, which the page's gRPC-Web client reads its messages from.
#   tests/browser/build.sh [DIR] [GATEWAY.YAML]
# Needs node and npm (tests/tools/setup.sh browser) and target/release/meshgate (or
# MESHGATE_BIN_DIR).
set -euo pipefail
cd "$(dirname "$0")/../.."
SITE=${1:-build/browser/site}
GATEWAY=${2:-envoy/gateway.yaml}
BIN=${MESHGATE_BIN_DIR:-target/release}
NPM_DIR=build/browser/npm
mkdir -p "$NPM_DIR" "$SITE"
# Install the pinned packages once per lock file.
if ! cmp -s tests/browser/package-lock.json "$NPM_DIR/package-lock.json" ||
   [ ! -x "$NPM_DIR/node_modules/.bin/esbuild" ]; then
  cp tests/browser/package.json tests/browser/package-lock.json "$NPM_DIR/"
  (cd "$NPM_DIR" && npm ci --silent --no-audit --no-fund --ignore-scripts)
fi
# Bundled from beside node_modules, where esbuild resolves the packages.
cp tests/browser/demo/app.js "$NPM_DIR/app.js"
"$NPM_DIR/node_modules/.bin/esbuild" "$NPM_DIR/app.js" --bundle --format=iife \
  --target=es2020 --log-level=warning --outfile="$SITE/app.js"
cp tests/browser/demo/index.html "$SITE/index.html"
"$BIN/meshgate" compile "$GATEWAY" | python3 -c \
  'import base64, json, sys; sys.stdout.buffer.write(base64.b64decode(json.load(sys.stdin)["descriptors"]["descriptor_set"]))' \
  > "$SITE/payments.pb"
