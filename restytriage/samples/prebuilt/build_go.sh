#!/usr/bin/env bash
# Rebuild the committed Go samples (inert replicas; nothing here opens a connection or runs code):
#   go_stager.dll               c-shared Windows DLL replica of the RestyLink Go downloader
#   go_stager.upx.dll           the same, packed with `upx --best`
#   go_stager.upx_tampered.dll  the packed copy with its UPX section names and `UPX!` magic erased
#   go_hello.exe                a benign Go console program
# Needs Go 1.23 (GO=...), x86_64-w64-mingw32-gcc, upx and python3; works offline. The dependency
# github.com/restylink-replica/beaconcfg is served from a throw-away file:// module proxy built from
# src/go/beaconcfg, so the binary records it with a version and an h1: checksum like a real download.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$HERE/src/go"
GO="${GO:-/usr/lib/go-1.23/bin/go}"
DEP_VERSION="v0.3.1"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

export GOTOOLCHAIN=local GOSUMDB=off GOFLAGS=-mod=mod GOWORK=off
export GOPATH="$WORK/gopath" GOMODCACHE="$WORK/modcache" GOCACHE="$WORK/cache"
export GOPROXY="file://$WORK/proxy"
export SOURCE_DATE_EPOCH=1649721600

# A one-module file:// proxy (the layout `go help goproxy` describes), with fixed zip timestamps.
python3 - "$SRC/beaconcfg" "$WORK/proxy" "$DEP_VERSION" <<'PY'
import pathlib, sys, zipfile
src, proxy, version = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
module = "github.com/restylink-replica/beaconcfg"
folder = proxy / module / "@v"
folder.mkdir(parents=True)
(folder / "list").write_text(version + "\n")
(folder / f"{version}.info").write_text('{"Version":"%s","Time":"2022-04-12T00:00:00Z"}\n' % version)
(folder / f"{version}.mod").write_bytes((src / "go.mod").read_bytes())
with zipfile.ZipFile(folder / f"{version}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
    for path in sorted(src.iterdir()):
        info = zipfile.ZipInfo(f"{module}@{version}/{path.name}", (2022, 4, 12, 0, 0, 0))
        archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
PY

LDFLAGS_DLL='-s -w -buildid=rlk-stager-replica/2022-04 -extldflags "-Wl,--no-insert-timestamp"'
LDFLAGS_EXE='-s -w -buildid=greeter-benign/2022-04'

(
  cd "$SRC/stager"
  GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc \
    "$GO" build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="$LDFLAGS_DLL" \
    -o "$WORK/go_stager.dll" .
)
(
  cd "$SRC/hello"
  GOOS=windows GOARCH=amd64 CGO_ENABLED=0 \
    "$GO" build -trimpath -buildvcs=false -ldflags="$LDFLAGS_EXE" -o "$WORK/go_hello.exe" .
)

cp "$WORK/go_stager.dll" "$WORK/go_stager.upx.dll"
upx -q --best "$WORK/go_stager.upx.dll" >/dev/null

# Tampering as seen in the wild: section names UPX0/UPX1/UPX2 renamed and every `UPX!` magic zeroed,
# so `upx -d` refuses the file; the packer header fields after the magic stay, so it can be repaired.
python3 - "$WORK/go_stager.upx.dll" "$WORK/go_stager.upx_tampered.dll" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
pe = struct.unpack_from("<I", data, 0x3C)[0]
sections = struct.unpack_from("<H", data, pe + 6)[0]
table = pe + 24 + struct.unpack_from("<H", data, pe + 20)[0]
renames = {b"UPX0": b".text", b"UPX1": b".data", b"UPX2": b".rdata"}
for index in range(sections):
    entry = table + 40 * index
    name = bytes(data[entry : entry + 8]).rstrip(b"\0")
    if name in renames:
        data[entry : entry + 8] = renames[name].ljust(8, b"\0")
count = 0
while (at := data.find(b"UPX!")) >= 0:
    data[at : at + 4] = b"\0\0\0\0"
    count += 1
assert count, "no UPX! magic found"
open(sys.argv[2], "wb").write(bytes(data))
PY

for name in go_stager.dll go_stager.upx.dll go_stager.upx_tampered.dll go_hello.exe; do
  cp "$WORK/$name" "$HERE/$name"
done
sha256sum "$HERE"/go_*
