#!/usr/bin/env bash
# A local CA and certificates for the demo's and the tests' TLS listeners, made with the openssl
# CLI; nothing here is committed (private keys are generated on the machine that uses them).
#
#   tls-certs.sh DIR                       ca.pem/ca.key, server.pem/server.key (localhost,
#                                          127.0.0.1), unless DIR/ca.pem already exists
#   tls-certs.sh DIR client NAME SAN       NAME.pem/NAME.key signed by DIR's CA, subject CN=NAME,
#                                          subjectAltName SAN (e.g. URI:spiffe://partner/acme)
#   tls-certs.sh DIR server NAME SAN       NAME.pem/NAME.key, a server certificate for SAN
#                                          (e.g. DNS:payments.internal)
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077

ca() {
  [ -f ca.pem ] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=meshgate local CA" -keyout ca.key -out ca.pem.tmp \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  mv ca.pem.tmp ca.pem
}

# leaf NAME SAN EXTENDED-KEY-USAGE
leaf() {
  local name=$1 san=$2 eku=$3
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
    -keyout "$name.key" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
    -out "$name.pem" -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$san" "$eku") \
    2>/dev/null
  rm -f "$name.csr"
}

ca
case "${2:-}" in
  "")
    [ -f server.pem ] || leaf server "DNS:localhost,IP:127.0.0.1" serverAuth ;;
  client) leaf "$3" "$4" clientAuth ;;
  server) leaf "$3" "$4" serverAuth ;;
  *) echo "tls-certs.sh: unknown kind $2" >&2; exit 2 ;;
esac
chmod 644 ./*.pem
