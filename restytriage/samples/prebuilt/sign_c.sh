#!/usr/bin/env bash
# Sign two of the committed C samples with throwaway test certificates (made here, never kept):
#   c_fsum.selfsigned.exe          c_fsum.exe signed by a self-signed code-signing certificate
#   c_sideload_host.testca.exe     c_sideload_host.exe signed by a leaf of a private test CA (leaf and
#                                  CA carried in the signature; the CA is in no root store)
# Signing time is fixed; no timestamp server is asked (offline). The keys are new on every run, so a
# rebuild gives new bytes: update samples_manifest.json (python -m restytriage.samples manifest).
# A tampered copy (a byte of code changed after signing) is derived in restytriage/samples/pe_samples.py.
# Needs openssl and osslsigncode (Debian: apt install osslsigncode).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
SIGNED_AT=1649721600  # 2022-04-12
ORG="/C=JP/O=Resty Tools (inert test sample)"
CODE_SIGNING=(-addext "extendedKeyUsage=codeSigning" -addext "keyUsage=digitalSignature")

openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$WORK/self.key" -out "$WORK/self.crt" \
  -subj "$ORG/CN=Resty Tools Test Signing" "${CODE_SIGNING[@]}" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$WORK/ca.key" -out "$WORK/ca.crt" \
  -subj "$ORG/CN=Resty Tools Test Root CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$WORK/leaf.key" -out "$WORK/leaf.csr" \
  -subj "$ORG/CN=Resty Tools Update Service" 2>/dev/null
printf 'extendedKeyUsage=codeSigning\nkeyUsage=digitalSignature\n' >"$WORK/leaf.ext"
openssl x509 -req -in "$WORK/leaf.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -set_serial 2 -days 3650 \
  -extfile "$WORK/leaf.ext" -out "$WORK/leaf.crt" 2>/dev/null
cat "$WORK/leaf.crt" "$WORK/ca.crt" >"$WORK/chain.crt"

osslsigncode sign -certs "$WORK/self.crt" -key "$WORK/self.key" -h sha256 -n "fsum" -time "$SIGNED_AT" \
  -in "$HERE/c_fsum.exe" -out "$WORK/c_fsum.selfsigned.exe" >/dev/null
osslsigncode sign -certs "$WORK/chain.crt" -key "$WORK/leaf.key" -h sha256 -n "UpdateHelper" \
  -time "$SIGNED_AT" -in "$HERE/c_sideload_host.exe" -out "$WORK/c_sideload_host.testca.exe" >/dev/null

for name in c_fsum.selfsigned.exe c_sideload_host.testca.exe; do
  install -m 0644 "$WORK/$name" "$HERE/$name"
done
sha256sum "$HERE/c_fsum.selfsigned.exe" "$HERE/c_sideload_host.testca.exe"
