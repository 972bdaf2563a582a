"""PE samples: small real PEs built with mingw and packed with UPX (committed in prebuilt/, rebuilt by
prebuilt/build_c.sh), two of them Authenticode-signed with throwaway test certificates
(prebuilt/sign_c.sh), tampered-UPX and changed-after-signing variants derived from them here, and a
side-loading pair.

The binaries hold no working network or execution code: the proxy DLL only names the functions and
the stage URL of the real thing, and the tools only checksum files. Tampering is done in code so the
exact bytes an attacker changes stay readable: renamed UPX0/UPX1 sections, an erased `UPX!` magic and
version string, a scrambled pack header (magic, version and checksum bytes).
"""

from __future__ import annotations

import io
import struct
import zipfile
from functools import cache
from importlib import resources

from restytriage.samples import Sample

PACK_MAGIC = b"UPX!"
ZIP_TIME = (2022, 4, 12, 9, 30, 0)


@cache
def prebuilt(name: str) -> bytes:
    return (resources.files("restytriage.samples") / "prebuilt" / name).read_bytes()


def _section_headers(data: bytes) -> list[int]:
    """File offsets of the section headers."""
    (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
    count, optional_size = (
        struct.unpack_from("<H", data, pe_offset + 6)[0],
        struct.unpack_from("<H", data, pe_offset + 20)[0],
    )
    table = pe_offset + 24 + optional_size
    return [table + 40 * index for index in range(count)]


def rename_sections(data: bytes, names: tuple[bytes, ...]) -> bytes:
    """The first sections renamed, as tools that hide UPX do (UPX0/UPX1/... -> .text/.data/...)."""
    patched = bytearray(data)
    for at, name in zip(_section_headers(data), names, strict=False):
        patched[at : at + 8] = name.ljust(8, b"\0")
    return bytes(patched)


def erase_magic(data: bytes) -> bytes:
    """Every `UPX!` magic and the version string before the pack header zeroed."""
    patched = bytearray(data)
    at = patched.find(PACK_MAGIC)
    if at < 0:
        raise ValueError("no UPX! magic to erase")
    patched[at - 5 : at] = bytes(5)  # "4.22\0"
    while at >= 0:
        patched[at : at + 4] = bytes(4)
        at = patched.find(PACK_MAGIC, at + 4)
    return bytes(patched)


def scramble_header(data: bytes) -> bytes:
    """The pack header's magic replaced by other bytes and its version and checksum bytes zeroed:
    upx then reports "not packed" or "header corrupted" instead of unpacking."""
    patched = bytearray(data)
    at = patched.find(PACK_MAGIC)
    if at < 0:
        raise ValueError("no UPX! magic to scramble")
    patched[at : at + 4] = b"\x0fRLK"
    patched[at + 4] = 0  # pack-header version
    patched[at + 31] = 0  # pack-header checksum
    return bytes(patched)


def patch_code(data: bytes) -> bytes:
    """One byte of the first section's code changed, as a patcher would after signing: the file no
    longer hashes to the digest its signature carries."""
    (raw_offset,) = struct.unpack_from("<I", data, _section_headers(data)[0] + 20)
    patched = bytearray(data)
    patched[raw_offset + 0x10] ^= 0xFF
    return bytes(patched)


def sideload_pair() -> bytes:
    """A ZIP as the early RestyLink waves shipped them: a harmless host program beside a DLL named
    version.dll (here the UPX-packed proxy replica) that Windows loads from the program's folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in (
            ("UpdateHelper/UpdateHelper.exe", prebuilt("c_sideload_host.exe")),
            ("UpdateHelper/version.dll", prebuilt("c_version.upx.dll")),
        ):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


UPX_FACT = ("packer", "UPX 4.22")

SAMPLES = [
    Sample(
        name="c_fsum.exe",
        build=lambda: prebuilt("c_fsum.exe"),
        imitates="a benign console tool (mingw, PE32+) with version information",
        verdict="clean",
        absent=("upx.packed", "pe.imports_process_injection", "pe.wx_section", "pe.packed_section"),
        facts=(("PE", "PE32+ EXE, AMD64"), ("version info", "fsum.exe")),
    ),
    Sample(
        name="c_fsum.upx.exe",
        build=lambda: prebuilt("c_fsum.upx.exe"),
        imitates="a benign tool packed with UPX: packing alone must not make it malicious",
        verdict="suspicious",
        techniques=("T1027.002",),
        findings=("upx.packed",),
        absent=("upx.tampered", "upx.not_unpacked", "pe.wx_section", "pe.packed_section"),
        facts=(UPX_FACT, ("packer", "unpacked"), ("version info", "fsum.exe")),
    ),
    Sample(
        name="c_fsum32.upx.exe",
        build=lambda: prebuilt("c_fsum32.upx.exe"),
        imitates="the benign tool built for i386 (PE32) and packed with upx --best",
        verdict="suspicious",
        techniques=("T1027.002",),
        findings=("upx.packed",),
        absent=("upx.tampered", "upx.not_unpacked"),
        facts=(UPX_FACT, ("PE", "PE32 EXE, I386")),
    ),
    Sample(
        name="c_fsum.upx_renamed.exe",
        build=lambda: rename_sections(prebuilt("c_fsum.upx.exe"), (b".text", b".data", b".rsrc")),
        imitates="UPX-packed PE whose UPX0/UPX1 section names were renamed so that upx -d refuses it",
        verdict="malicious",
        techniques=("T1027.002",),
        findings=("upx.packed", "upx.tampered"),
        absent=("upx.not_unpacked",),
        facts=(("packer", "tampered headers (repaired) - unpacked"), ("version info", "fsum.exe")),
    ),
    Sample(
        name="c_fsum.upx_nomagic.exe",
        build=lambda: erase_magic(prebuilt("c_fsum.upx.exe")),
        imitates="UPX-packed PE with its UPX! pack-header magic and version string erased",
        verdict="malicious",
        techniques=("T1027.002",),
        findings=("upx.packed", "upx.tampered"),
        absent=("upx.not_unpacked",),
        facts=(("packer", "tampered headers (repaired) - unpacked"),),
    ),
    Sample(
        name="c_fsum32.upx_scrambled.exe",
        build=lambda: scramble_header(
            rename_sections(prebuilt("c_fsum32.upx.exe"), (b"CODE", b"DATA", b".rsrc"))
        ),
        imitates="PE32 UPX file with renamed sections and a scrambled pack header (magic, version, checksum)",
        verdict="malicious",
        techniques=("T1027.002",),
        findings=("upx.packed", "upx.tampered"),
        absent=("upx.not_unpacked",),
        facts=(("packer", "tampered headers (repaired) - unpacked"), ("PE", "PE32 EXE, I386")),
    ),
    Sample(
        name="c_sideload_host.exe",
        build=lambda: prebuilt("c_sideload_host.exe"),
        imitates="the harmless program of a side-loading pair, importing VERSION.dll",
        verdict="clean",
        absent=("pe.sideload_host", "pe.sideload_host_windows_dll"),
        facts=(("PE", "PE32+ EXE"),),
    ),
    Sample(
        name="c_version.dll",
        build=lambda: prebuilt("c_version.dll"),
        imitates="a proxy DLL for version.dll: exports forwarded to System32, stage URL and WinHTTP imports",
        verdict="suspicious",
        techniques=("T1574.001",),
        findings=("pe.proxy_dll", "pe.imports_network"),
        absent=("upx.packed",),
        facts=(("exports", "6 forwarded"), ("capabilities", "network")),
    ),
    Sample(
        name="c_version.upx.dll",
        build=lambda: prebuilt("c_version.upx.dll"),
        imitates="the proxy DLL packed with upx --lzma, as side-loaded DLLs were shipped",
        verdict="malicious",
        techniques=("T1027.002", "T1574.001"),
        findings=("upx.packed", "pe.proxy_dll", "pe.imports_network"),
        absent=("upx.tampered", "upx.not_unpacked"),
        facts=(("packer", "UPX 4.22 (LZMA) - unpacked"),),
    ),
    Sample(
        name="c_carrier.exe",
        build=lambda: prebuilt("c_carrier.exe"),
        imitates="a dropper-shaped program carrying another program as an RCDATA resource",
        verdict="suspicious",
        techniques=("T1027.009",),
        findings=("pe.embedded_executable",),
        facts=(("PE", "PE32 EXE, I386"), ("version info", "fsum.exe")),
    ),
    Sample(
        name="c_fsum.selfsigned.exe",
        build=lambda: prebuilt("c_fsum.selfsigned.exe"),
        imitates="a tool Authenticode-signed with a self-signed certificate, as malware signs to look signed",
        verdict="suspicious",
        techniques=("T1553.002",),
        findings=("pe.signature_self_signed",),
        absent=("pe.signature_invalid", "pe.signature_untrusted"),
        facts=(("signature", "Authenticode valid: Resty Tools Test Signing"),),
    ),
    Sample(
        name="c_fsum.selfsigned_patched.exe",
        build=lambda: patch_code(prebuilt("c_fsum.selfsigned.exe")),
        imitates="the signed tool with one byte of code changed after signing",
        verdict="suspicious",
        techniques=("T1036.001", "T1553.002"),
        findings=("pe.signature_invalid", "pe.signature_self_signed"),
        facts=(("signature", "Authenticode INVALID"),),
    ),
    Sample(
        name="c_sideload_host.testca.exe",
        build=lambda: prebuilt("c_sideload_host.testca.exe"),
        imitates="the side-loading host signed by a private CA's certificate that no root store trusts",
        verdict="clean",
        techniques=("T1553.002",),
        findings=("pe.signature_untrusted",),
        absent=("pe.signature_invalid", "pe.signature_self_signed"),
        facts=(("signature", "issued by Resty Tools Test Root CA"),),
    ),
    Sample(
        name="c_sideload_pair.zip",
        build=sideload_pair,
        imitates="RestyLink-style delivery: a program and a UPX-packed version.dll side-loaded from its folder",
        verdict="malicious",
        techniques=("T1574.001", "T1027.002"),
        findings=("pe.sideload_dll_name", "pe.sideload_host_windows_dll", "pe.proxy_dll", "upx.packed"),
        facts=(("side-loading", "version.dll"),),
    ),
]
