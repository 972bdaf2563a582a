#!/usr/bin/env bash
# Rebuild the committed C samples (inert: no network or execution code, only strings and structure):
#   c_fsum.exe            benign console tool (PE32+), with a version resource
#   c_fsum.upx.exe        the same packed with UPX (default method): the benign packed control sample
#   c_fsum32.upx.exe      the tool built for i386 (PE32) and packed with `upx --best`
#   c_sideload_host.exe   a harmless program importing VERSION.dll: the host of a side-loading pair
#   c_version.dll         a proxy DLL named for version.dll: exports forwarded to System32, a stage
#                         URL and WinHTTP/memory imports that nothing calls
#   c_version.upx.dll     the proxy DLL packed with `upx --lzma`
#   c_carrier.exe         a dropper-shaped program carrying c_fsum32.exe as an RCDATA resource
# Tampered-UPX variants are derived from these in restytriage/samples/pe_samples.py, in code.
# Needs x86_64-w64-mingw32-gcc, i686-w64-mingw32-gcc, their windres and upx (4.x); works offline.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$HERE/src/c"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH=1649721600  # 2022-04-12: the PE timestamps GNU ld writes
CFLAGS=(-s -Os -D__USE_MINGW_ANSI_STDIO=0 -fno-asynchronous-unwind-tables -Wall -Wextra -Werror)

x86_64-w64-mingw32-windres "$SRC/fsum.rc" -O coff -o "$WORK/fsum64.res"
i686-w64-mingw32-windres "$SRC/fsum.rc" -O coff -o "$WORK/fsum32.res"
x86_64-w64-mingw32-gcc "${CFLAGS[@]}" -o "$WORK/c_fsum.exe" "$SRC/fsum.c" "$WORK/fsum64.res"
i686-w64-mingw32-gcc "${CFLAGS[@]}" -o "$WORK/c_fsum32.exe" "$SRC/fsum.c" "$WORK/fsum32.res"
x86_64-w64-mingw32-windres -I "$WORK" "$SRC/carrier.rc" -O coff -o "$WORK/carrier.res"
x86_64-w64-mingw32-gcc "${CFLAGS[@]}" -o "$WORK/c_carrier.exe" "$SRC/carrier.c" "$WORK/carrier.res"
x86_64-w64-mingw32-gcc "${CFLAGS[@]}" -municode -o "$WORK/c_sideload_host.exe" "$SRC/sideload_host.c" -lversion
x86_64-w64-mingw32-gcc "${CFLAGS[@]}" -shared -Wl,--disable-auto-image-base -o "$WORK/c_version.dll" \
  "$SRC/version_proxy.c" "$SRC/version_proxy.def" -lwinhttp

upx -q -o "$WORK/c_fsum.upx.exe" "$WORK/c_fsum.exe" >/dev/null
upx -q --best -o "$WORK/c_fsum32.upx.exe" "$WORK/c_fsum32.exe" >/dev/null
upx -q --lzma -o "$WORK/c_version.upx.dll" "$WORK/c_version.dll" >/dev/null

for name in c_fsum.exe c_fsum.upx.exe c_fsum32.upx.exe c_sideload_host.exe c_version.dll c_version.upx.dll \
  c_carrier.exe; do
  install -m 0644 "$WORK/$name" "$HERE/$name"
done
sha256sum "$HERE"/c_*
