#!/usr/bin/env bash
# `make run`: the demo backends, Envoy with meshgate in front of them, example requests; stops
# everything it started on Ctrl-C. `tests/tools/run.sh native` (`make run-native`): the same
# demo with the native module (build/libmeshgate_native.so, docs/native.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
LISTEN=${MESHGATE_LISTEN:-127.0.0.1:8080}
ADMIN=${MESHGATE_ADMIN:-127.0.0.1:9901}
TLS_LISTEN=${MESHGATE_TLS_LISTEN:-127.0.0.1:8443}
PAYMENTS=${MESHGATE_PAYMENTS:-127.0.0.1:50051}
WALLETS=${MESHGATE_WALLETS:-127.0.0.1:50052}
# The demo page: another origin than the gateway's, allowed by envoy/gateway.yaml's `cors`.
PAGE=${MESHGATE_DEMO_PAGE:-127.0.0.1:8088}
# The demo issuer's JWKS (envoy/gateway.yaml's `demo` provider, cluster demo_issuer).
ISSUER=${MESHGATE_ISSUER:-127.0.0.1:8090}
# Where the binaries are and where the run's files go (the end-to-end test of this script sets
# them: tests/kit/tests/make_run.rs).
BIN=${MESHGATE_BIN_DIR:-target/release}
OUT=${MESHGATE_RUN_DIR:-build}
WASM=${MESHGATE_WASM:-$PWD/build/meshgate.wasm}
NATIVE=${MESHGATE_NATIVE:-$PWD/build/libmeshgate_native.so}
FLAVOUR=${1:-${MESHGATE_FLAVOUR:-wasm}}
case "$FLAVOUR" in
  wasm) MODULE=(--wasm "$WASM"); FLAVOUR_NOTE="the wasm module" ;;
  native) MODULE=(--native "$NATIVE"); FLAVOUR_NOTE="the native module (Envoy dynamic module)" ;;
  *) echo "run: flavour is wasm or native, not $FLAVOUR" >&2; exit 2 ;;
esac
ENVOY=$(tests/tools/envoy-path.sh) || { echo "run: no Envoy (make setup)" >&2; exit 1; }
mkdir -p "$OUT"
# TLS: a local CA and a certificate for localhost and 127.0.0.1, made once (docs/tls.md).
tests/tools/tls-certs.sh "$OUT/tls"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$BIN/meshgate" envoy envoy/gateway.yaml "${MODULE[@]}" \
  --listen "$LISTEN" --admin "$ADMIN" \
  --cluster "payments=$PAYMENTS" --cluster "wallets=$WALLETS" \
  --cluster "outbound|8090||127.0.0.1=$ISSUER/h1" \
  --tls-listen "$TLS_LISTEN" --tls-cert "$OUT/tls/server.pem" --tls-key "$OUT/tls/server.key" \
  -o "$OUT/envoy.yaml"

# The descriptor set, for gRPC tools that cannot use server reflection (grpcurl -protoset).
"$BIN/meshgate" compile envoy/gateway.yaml | python3 -c \
  'import base64, json, sys; sys.stdout.buffer.write(base64.b64decode(json.load(sys.stdin)["descriptors"]["descriptor_set"]))' \
  > "$OUT/payments.pb"

# The demo page (tests/browser/demo, its gRPC-Web client bundled by esbuild), served by Python's
# static file server on 127.0.0.1 only.
tests/browser/build.sh "$OUT/site" envoy/gateway.yaml
python3 -m http.server "${PAGE##*:}" --bind "${PAGE%:*}" --directory "$OUT/site" \
  > "$OUT/page.log" 2>&1 & pids+=($!)
PAGE_URL="http://$PAGE/"
[ "$LISTEN" = 127.0.0.1:8080 ] || PAGE_URL="http://$PAGE/?gateway=http://$LISTEN"
# Demo identity: the demo issuer's P-256 key is generated at first run into
# $OUT/demo-identity/ (never committed) and its JWKS served for Envoy's fetch; a token valid
# for a day is minted on every run. The demo partner's API key is public on purpose.
"$BIN/demo-identity" --dir "$OUT/demo-identity" --issuer https://issuer.demo.meshgate.local \
  --audience meshgate-demo --subject demo-user > /dev/null
TOKEN=$(cat "$OUT/demo-identity/token")
PARTNER_KEY=mgk_demo_partner
"$BIN/jwks-server" --listen "$ISSUER" --jwks "$OUT/demo-identity/jwks.json" > /dev/null & pids+=($!)

"$BIN/demo-backend" --listen "$PAYMENTS" --services payments --name payments & pids+=($!)
"$BIN/demo-backend" --listen "$WALLETS" --services wallets --name wallets & pids+=($!)
"$ENVOY" -c "$OUT/envoy.yaml" --concurrency 1 --log-level warn --component-log-level wasm:info,dynamic_modules:info \
  --use-dynamic-base-id > "$OUT/access.log" 2> "$OUT/envoy.log" & pids+=($!)

for _ in $(seq 1 100); do
  curl -sf "http://$ADMIN/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://$ADMIN/ready" >/dev/null || { echo "Envoy did not start:"; tail -20 "$OUT/envoy.log"; exit 1; }
# Python's server may start after Envoy is ready (a loaded machine): give it as long.
for _ in $(seq 1 100); do
  curl -sf "http://$PAGE/" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://$PAGE/" >/dev/null || { echo "The demo page did not start:"; tail -5 "$OUT/page.log"; exit 1; }

cat <<MSG

meshgate is up ($FLAVOUR_NOTE): gateway http://$LISTEN (HTTP/1.1 and HTTP/2), admin http://$ADMIN
TLS: https://localhost:${TLS_LISTEN##*:} (HTTP/2 and HTTP/1.1 by ALPN; local CA $OUT/tls/ca.pem)
Envoy's log: $OUT/envoy.log; meshgate's access records (JSON lines): $OUT/access.log
Demo token (issuer https://issuer.demo.meshgate.local, subject demo-user, valid a day):
  $TOKEN
Demo partner's API key: $PARTNER_KEY (quota: 20 requests a minute per operation)

Open the demo page in a browser: $PAGE_URL
  (another origin: JSON and gRPC-Web calls to the gateway through CORS; docs/browsers.md)
  # its CORS preflight, answered by Envoy (2xx, this origin allowed), and a gRPC-Web call
  curl -si -X OPTIONS http://$LISTEN/v1/payments -H 'Origin: http://$PAGE' -H 'Access-Control-Request-Method: POST'
  printf '\0\0\0\0\11\n\7pay_001' | curl -s http://$LISTEN/meshgate.demo.v1.Payments/GetPayment \\
       -H 'content-type: application/grpc-web+proto' --data-binary @- | tail -c 40 | od -c

Try:
  # HTTP+JSON -> gRPC (GET, query parameters, custom verb, body field)
  curl -s http://$LISTEN/v1/payments/pay_001
  curl -s 'http://$LISTEN/v1/merchants/acme/payments?page_size=2&states=CAPTURED'
  curl -s -X POST http://$LISTEN/v1/payments -H 'content-type: application/json' \\
       -d '{"merchant":"merchants/acme","amount":{"currency_code":"JPY","amount_minor":"1200"}}'
  curl -s -X POST http://$LISTEN/v1/payments/pay_001:cancel -d '{"reason":"duplicate"}'
  curl -s http://$LISTEN/v1/wallets/w_001
  # Errors are google.rpc.Status JSON with the mapped HTTP status
  curl -si http://$LISTEN/v1/payments/nope
  curl -si http://$LISTEN/no/such/path
  # HTTP/2 (prior knowledge) works the same
  curl -s --http2-prior-knowledge http://$LISTEN/v1/payments/pay_001
  # TLS, HTTP/2 by ALPN, trusting the local CA made at first run
  curl -s --cacert $OUT/tls/ca.pem https://localhost:${TLS_LISTEN##*:}/v1/payments/pay_001
  # Native gRPC passes through (grpcurl, if you have it; the descriptor set is $OUT/payments.pb)
  grpcurl -plaintext -protoset $OUT/payments.pb -d '{"id":"pay_001"}' $LISTEN meshgate.demo.v1.Payments/GetPayment
  # Identity (docs/partners.md): DeletePayment needs a token of the demo issuer (401 without;
  # the call deletes pay_004, so it succeeds once per run)
  curl -si -X DELETE http://$LISTEN/v1/payments/pay_004
  curl -s -X DELETE http://$LISTEN/v1/payments/pay_004 -H "authorization: Bearer $TOKEN"
  # The partner-facing GetPaymentStatus and UploadAttachment need a partner's API key (401
  # without); the demo partner's quota is 20 calls a minute per operation: a burst of either
  # gets 429 with a Status of code 8 (uploads meet Envoy's rate limit, status GETs meshgate's)
  curl -si http://$LISTEN/v1/payments/pay_001/status
  curl -s http://$LISTEN/v1/payments/pay_001/status -H 'x-api-key: $PARTNER_KEY'
  curl -s http://$LISTEN/v1/payments/pay_001/attachments -H 'x-api-key: $PARTNER_KEY' \\
       -H 'content-type: text/plain' --data 'receipt scan'
  # The API's OpenAPI document, served by the gateway (envoy/gateway.yaml's openapi.path)
  curl -s http://$LISTEN/openapi.json
  # Health: answered by meshgate (?jwks=1: also waits for remote JWKS keys)
  curl -s http://$LISTEN/healthz
  # Metrics
  curl -s http://$ADMIN/stats/prometheus | grep meshgate

Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
