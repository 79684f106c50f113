#!/bin/sh
# Test-only TLS material for the fake API server of tests/api.rs (loopback only).
# A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA (to show that
# the shim verifies the API server's certificate). Valid for 100 years; the CA keys are not
# kept. Regenerate with: sh tests/data/tls/regenerate.sh (from crates/shim).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 36500 -subj "/CN=sidecar-shim test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/server.ec"
openssl pkcs8 -topk8 -nocrypt -in "$tmp/server.ec" -out server.key
openssl req -new -key server.key -subj "/CN=127.0.0.1" -out "$tmp/server.csr"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' > "$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA ca.crt -CAkey "$tmp/ca.key" -CAcreateserial -CAserial "$tmp/ca.srl" \
    -days 36500 -sha256 -extfile "$tmp/ext" -out server.crt
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/other.key"
openssl req -x509 -new -key "$tmp/other.key" -sha256 -days 36500 -subj "/CN=unrelated CA" \
    -addext "basicConstraints=critical,CA:TRUE" -out other-ca.crt
