"""The Go DLL stage of Operation RestyLink and the Cobalt Strike stage it fetched, as inert replicas.

Go binaries cannot be built here without a cross compiler, so they are committed in `prebuilt/`
(rebuilt by `prebuilt/build_go.sh` from `prebuilt/src/go/`, reproducibly): a c-shared Go DLL whose
functions only build strings (stage URL, user agent, a TEST-NET fallback address), its UPX-packed
and tampered-UPX copies, and a benign Go console program.

The Cobalt Strike samples are built here in code: a beacon settings block (the library has no
builder, so the records are written as dissect.cobaltstrike parses them: big-endian index, type,
length, value, XOR 0x2e over the 4 KiB block) inside a PE with no code, the same PE as a raw
"xorencoded" payload, and the strings and API-hash operands of an x86 reverse-https stager with none
of its code: no hash-resolution routine, no calls, every push followed by int3.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from restytriage.samples import Sample

PREBUILT = Path(__file__).resolve().parent / "prebuilt"

GO_VERSION = "go1.23.5"
STAGER_MODULE = "github.com/restylink-replica/stager"
HELLO_MODULE = "example.com/greeter"
C2_HOST = "cdn.restylink.invalid"
C2_IP = "192.0.2.47"  # TEST-NET-1 (RFC 5737): documentation only, never routed
WATERMARK = 20220412
STAGER_URI_X86 = "/rLe9"  # checksum8 92: what a team server answers with an x86 beacon
STAGER_URI_X64 = "/rLf9"  # checksum8 93: x64
BEACON_USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Trident/7.0; rv:11.0) like Gecko"
STAGER_USER_AGENT = "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0; NP08)"
BEACON_URI = "/jquery-3.3.1.min.js"
PIPE_NAME = "\\\\.\\pipe\\mojo.5688.8052.183894939787088877"
SPAWNTO_X86 = "%windir%\\syswow64\\dllhost.exe"
SPAWNTO_X64 = "%windir%\\sysnative\\dllhost.exe"
CONFIG_KEY = 0x2E  # Cobalt Strike 4.x masks the settings block with 0x2e (3.x: 0x69)
CONFIG_BLOCK_SIZE = 0x1000
FIXED_TIMESTAMP = 0x62551A00  # 2022-04-12T06:19:44Z


def prebuilt(name: str) -> bytes:
    return (PREBUILT / name).read_bytes()


def _stream(seed: bytes, size: int) -> bytes:
    """Deterministic filler bytes (a SHA-256 chain)."""
    out = bytearray()
    block = seed
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


# --------------------------------------------------------------------------- beacon configuration

TYPE_SHORT, TYPE_INT, TYPE_PTR = 1, 2, 3


def _setting(index: int, kind: int, value: int | bytes, size: int = 0) -> bytes:
    if kind == TYPE_SHORT:
        body = struct.pack(">H", value)
    elif kind == TYPE_INT:
        body = struct.pack(">I", value)
    else:
        assert isinstance(value, bytes) and len(value) <= size
        body = value.ljust(size, b"\x00")
    return struct.pack(">HHH", index, kind, len(body)) + body


def _public_key() -> bytes:
    """A DER SubjectPublicKeyInfo (rsaEncryption, e=65537) around a random modulus nobody holds the key to."""
    modulus = bytearray(_stream(b"restylink beacon modulus", 128))
    modulus[0] |= 0x80
    head = bytes.fromhex("30819f300d06092a864886f70d010101050003818d0030818902818100")
    return head + bytes(modulus) + bytes.fromhex("0203010001")


def beacon_settings(protocol: int = 8, port: int = 443) -> bytes:
    """The plain settings records of an HTTPS beacon (SETTING_* numbers as in dissect.cobaltstrike)."""
    domains = f"{C2_HOST},{BEACON_URI},{C2_IP},{BEACON_URI}".encode()
    records = [
        _setting(1, TYPE_SHORT, protocol),  # SETTING_PROTOCOL: 8 = https
        _setting(2, TYPE_SHORT, port),
        _setting(3, TYPE_INT, 60000),  # SETTING_SLEEPTIME (ms)
        _setting(4, TYPE_INT, 1048576),  # SETTING_MAXGET
        _setting(5, TYPE_SHORT, 20),  # SETTING_JITTER (%)
        _setting(7, TYPE_PTR, _public_key(), 256),
        _setting(8, TYPE_PTR, domains, 256),  # SETTING_DOMAINS: host,uri pairs
        _setting(9, TYPE_PTR, BEACON_USER_AGENT.encode(), 256),
        _setting(10, TYPE_PTR, b"/jquery-3.3.2.min.js", 64),  # SETTING_SUBMITURI
        _setting(15, TYPE_PTR, PIPE_NAME.encode(), 128),
        _setting(26, TYPE_PTR, b"GET", 16),
        _setting(27, TYPE_PTR, b"POST", 16),
        _setting(29, TYPE_PTR, SPAWNTO_X86.encode(), 64),
        _setting(30, TYPE_PTR, SPAWNTO_X64.encode(), 64),
        _setting(31, TYPE_SHORT, 0),  # SETTING_CRYPTO_SCHEME
        _setting(37, TYPE_INT, WATERMARK),
        _setting(38, TYPE_SHORT, 1),  # SETTING_CLEANUP
        _setting(40, TYPE_INT, 0),  # SETTING_KILLDATE
        _setting(50, TYPE_SHORT, 1),  # SETTING_HTTP_NO_COOKIES
        _setting(52, TYPE_SHORT, 0),  # SETTING_PROCINJ_ALLOCATOR
        _setting(54, TYPE_PTR, b"", 128),  # SETTING_HOST_HEADER
        _setting(55, TYPE_SHORT, 0),  # SETTING_EXIT_FUNK
    ]
    return b"".join(records)


def beacon_config_block(key: int = CONFIG_KEY, **settings: int) -> bytes:
    """The masked 4 KiB block as it sits in a beacon's .data section."""
    plain = beacon_settings(**settings).ljust(CONFIG_BLOCK_SIZE, b"\x00")
    return bytes(byte ^ key for byte in plain)


def minimal_pe64_dll(section: bytes, name: bytes = b".data") -> bytes:
    """A PE32+ DLL with one data section and no code, entry point or imports: nothing to run."""
    file_align, section_align, headers = 0x200, 0x1000, 0x200
    raw_size = -(-len(section) // file_align) * file_align
    image_size = section_align + -(-len(section) // section_align) * section_align
    dos = b"MZ".ljust(0x3C, b"\x00") + struct.pack("<I", 0x80)
    dos = dos.ljust(0x80, b"\x00")
    coff = struct.pack("<4sHHIIIHH", b"PE\x00\x00", 0x8664, 1, FIXED_TIMESTAMP, 0, 0, 0xF0, 0x2022)
    optional = struct.pack(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        0x20B, 14, 0, 0, raw_size, 0, 0, section_align,  # magic, linker, sizes, entry point 0, code base
        0x180000000, section_align, file_align,
        6, 0, 0, 0, 6, 0, 0,  # OS, image and subsystem versions, Win32VersionValue
        image_size, headers, 0, 2, 0x0160,  # checksum, GUI subsystem, DYNAMIC_BASE|NX|HIGH_ENTROPY_VA
        0x100000, 0x1000, 0x100000, 0x1000, 0, 16,
    ) + bytes(16 * 8)  # fmt: skip
    table = struct.pack(
        "<8sIIIIIIHHI", name, len(section), section_align, raw_size, headers, 0, 0, 0, 0, 0xC0000040
    )
    head = (dos + coff + optional + table).ljust(headers, b"\x00")
    return head + section.ljust(raw_size, b"\x00")


def beacon_dll() -> bytes:
    """A PE whose .data holds a masked beacon configuration between filler, as a beacon DLL's does."""
    section = (
        _stream(b"beacon data before", 0x600) + beacon_config_block() + _stream(b"beacon data after", 0x400)
    )
    return minimal_pe64_dll(section)


def xorencoded(payload: bytes, nonce: bytes = b"\x5a\x17\xc3\x2b") -> bytes:
    """Cobalt Strike's raw-payload encoding: stub, nonce, size ^ nonce, then each dword XOR the
    previous encoded dword. The stub here is int3 padding, not the decoder."""
    previous = nonce
    encoded = bytearray()
    padded = payload + b"\x00" * (-len(payload) % 4)
    for at in range(0, len(padded), 4):
        word = bytes(a ^ b for a, b in zip(padded[at : at + 4], previous, strict=True))
        encoded += word
        previous = word
    size = struct.pack("<I", len(padded))
    return b"\xcc" * 64 + nonce + bytes(a ^ b for a, b in zip(size, nonce, strict=True)) + bytes(encoded)


# --------------------------------------------------------------------------- stager


def stager_blob(arch: str = "x86", uri: str = STAGER_URI_X86, host: str = C2_HOST, port: int = 443) -> bytes:
    """API-hash operands of a reverse-https stager in call order, then its URI, user agent and host.

    Each operand (x86 `push imm32`, x64 `mov r10d, imm32`) is followed by int3; the ROR-13 resolver
    they feed and every call are absent, so the bytes cannot do anything.
    """
    from restytriage.analyzers.cobaltstrike import ror13_hash

    operand, port_operand = (b"\x68", b"\x68") if arch == "x86" else (b"\x41\xba", b"\x41\xb8")
    calls = [
        ("kernel32.dll", "LoadLibraryA"),
        ("wininet.dll", "InternetOpenA"),
        None,  # the port, pushed before InternetConnectA
        ("wininet.dll", "InternetConnectA"),
        ("wininet.dll", "HttpOpenRequestA"),
        ("wininet.dll", "InternetSetOptionA"),
        ("wininet.dll", "HttpSendRequestA"),
        ("kernel32.dll", "VirtualAlloc"),
        ("wininet.dll", "InternetReadFile"),
        ("kernel32.dll", "ExitProcess"),
    ]
    code = bytearray(b"\xfc")
    for call in calls:
        if call is None:
            code += port_operand + struct.pack("<I", port) + b"\xcc"
        else:
            code += operand + struct.pack("<I", ror13_hash(*call)) + b"\xcc"
    strings = [uri, f"User-Agent: {STAGER_USER_AGENT}\r\n", host]
    return bytes(code) + b"".join(s.encode() + b"\x00" for s in strings)


# --------------------------------------------------------------------------- the sample set

_STAGER_DLL_FINDINGS = (
    "golang.loader_functions",
    "golang.sideload_functions",
    "golang.config_decoding_functions",
    "golang.c_shared",
    "golang.ip_url",
    "golang.browser_user_agent",
    "cobaltstrike.stager_uri",
)
_STAGER_DLL_FACTS = (
    ("Go version", GO_VERSION),
    ("Go module", STAGER_MODULE),
    ("Go functions", "main.fetchStage"),
    ("Go functions", "main.decodeConfig"),
    ("Go functions", "main.sideloadEntry"),
)
_STAGER_DLL_TECHNIQUES = ("T1105", "T1574.001", "T1071.001")

SAMPLES = [
    Sample(
        name="go_stager.dll",
        build=lambda: prebuilt("go_stager.dll"),
        imitates="RestyLink Go downloader DLL (c-shared, side-loaded) that fetched a Cobalt Strike stager",
        verdict="malicious",
        techniques=_STAGER_DLL_TECHNIQUES,
        findings=_STAGER_DLL_FINDINGS,
        facts=_STAGER_DLL_FACTS,
    ),
    Sample(
        name="go_stager.upx.dll",
        build=lambda: prebuilt("go_stager.upx.dll"),
        imitates="the RestyLink Go downloader DLL packed with UPX --best, as shipped in the ISO wave",
        verdict="malicious",
        techniques=(*_STAGER_DLL_TECHNIQUES, "T1027.002"),
        findings=("upx.packed", *_STAGER_DLL_FINDINGS),
        facts=_STAGER_DLL_FACTS,
    ),
    Sample(
        name="go_stager.upx_tampered.dll",
        build=lambda: prebuilt("go_stager.upx_tampered.dll"),
        imitates="the UPX-packed Go downloader with section names and UPX! magic erased so upx -d refuses it",
        verdict="malicious",
        techniques=(*_STAGER_DLL_TECHNIQUES, "T1027.002"),
        findings=("upx.tampered", *_STAGER_DLL_FINDINGS),
        facts=_STAGER_DLL_FACTS,
    ),
    Sample(
        name="go_hello.exe",
        build=lambda: prebuilt("go_hello.exe"),
        imitates="a benign Go console program (false-positive guard for Go heuristics)",
        verdict="clean",
        findings=("golang.go_binary",),
        absent=(
            "golang.loader_functions",
            "golang.injection_functions",
            "golang.sideload_functions",
            "golang.browser_user_agent",
            "golang.ip_url",
            "golang.garbled",
            "golang.buildinfo_removed",
            "cobaltstrike.stager_uri",
        ),
        facts=(("Go version", GO_VERSION), ("Go module", HELLO_MODULE)),
    ),
    Sample(
        name="cs_beacon_x64.dll",
        build=beacon_dll,
        imitates="Cobalt Strike 4.x HTTPS beacon DLL: only its XOR-0x2e settings block, no code",
        verdict="malicious",
        techniques=("T1071.001",),
        findings=("cobaltstrike.beacon_http",),
        facts=(("Cobalt Strike C2", C2_HOST), ("Beacon", f"watermark {WATERMARK}")),
    ),
    Sample(
        name="cs_beacon.xorencoded.bin",
        build=lambda: xorencoded(beacon_dll()),
        imitates="the same beacon as a raw xorencoded payload (nonce, size, rolling XOR) as a stager downloads it",
        verdict="malicious",
        techniques=("T1071.001",),
        findings=("cobaltstrike.beacon_http",),
        facts=(("Cobalt Strike C2", C2_IP),),
    ),
    Sample(
        name="cs_stager_x86.bin",
        build=stager_blob,
        imitates="Cobalt Strike x86 reverse-https stager shellcode (API-hash operands and strings only)",
        verdict="malicious",
        techniques=("T1105", "T1071.001"),
        findings=("cobaltstrike.stager_http", "cobaltstrike.stager_uri"),
        facts=(("Stager C2", f"https://{C2_HOST}{STAGER_URI_X86}"),),
    ),
]
