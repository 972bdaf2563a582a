"""Go binaries (PE and ELF): build info, build ID, pclntab function names, and the strings Go hides.

Everything is read from the file's bytes in Python, for any Go release since 1.2, 32/64-bit and
either byte order:

- the build info blob (`\\xff Go buildinf:`; Go 1.13+): Go version, main module, dependencies with
  versions and sums, build settings. Before Go 1.18 it holds two pointers to Go strings (followed
  through the section table); since 1.18 the strings follow the header inline;
- the build ID the linker writes at the start of the text (`\\xff Go build ID: "..."`);
- the pclntab, found by its magic (0xfffffffb Go 1.2-1.15, 0xfffffffa 1.16-1.17, 0xfffffff0
  1.18-1.19, 0xfffffff1 1.20+) and validated, so it is found in stripped binaries too; its function
  name table gives the names of the main module's and third-party functions ("user functions", as
  GoReSym calls them): `main.fetchStage` says more than any string;
- strings: Go does not NUL-terminate string literals but packs them end to end, so each printable
  run is cut at the starts and ends of the literals the code and data point at (amd64/386
  LEA operands, (pointer, length) string headers) before URLs, hosts, IPs and user agents are looked
  for, and known-benign hosts are dropped.

An unpacked image (a UPX child, a carved PE) reaches this analyzer as its own node; it never unpacks.
"""

from __future__ import annotations

import ast
import bisect
import ipaddress
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from restytriage.analysis import Analysis, Context, Item

NAME = "golang"
TYPES = frozenset({"pe", "elf"})
ORDER = 55  # after the PE analyzer, so its metadata is on the item

MAX_BYTES = 192 << 20  # Go binaries past this are read only this far
MAX_FUNCTIONS = 400_000
MAX_NAME = 1024
MAX_REPORTED_FUNCTIONS = 300
MAX_FACT_FUNCTIONS = 6
MAX_DEPS = 300
MAX_MODINFO = 1 << 20
MAX_CANDIDATES = 64  # magic hits tried before giving up
COMMAND_LINE_PACKAGE = "command-line-arguments"  # the main package of `go build file.go`: no module
MAX_CODE_REFS = 2_000_000
MAX_IOCS = 200
MIN_RUN = 6

BUILDINFO_MAGIC = b"\xff Go buildinf:"
BUILDID_MARKER = b'\xff Go build ID: "'
ELF_NOTE_NAME = b"Go\x00\x00"  # .note.go.buildid: name "Go", type 4, the build ID as description
# cmd/go/internal/modload: the sentinels framing the module info string.
MODINFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
MODINFO_END = bytes.fromhex("f932433186182072008242104116d8f2")

PCLNTAB_FAMILIES: dict[int, str] = {
    0xFFFFFFFB: "1.2-1.15",
    0xFFFFFFFA: "1.16-1.17",
    0xFFFFFFF0: "1.18-1.19",
    0xFFFFFFF1: "1.20+",
}
# Go minor versions each pclntab layout was used by (to pick a version string when build info is absent).
FAMILY_MINORS: dict[str, range] = {
    "1.2-1.15": range(2, 16),
    "1.16-1.17": range(16, 18),
    "1.18-1.19": range(18, 20),
    "1.20+": range(20, 100),
}
_PCLNTAB_MAGIC = re.compile(
    rb"(?:[\xfb\xfa\xf0\xf1]\xff\xff\xff|\xff\xff\xff[\xfb\xfa\xf0\xf1])\x00\x00[\x01\x02\x04][\x04\x08]"
)
_GO_VERSION = re.compile(rb"go1\.(\d{1,2})(?:\.\d{1,2})?(?:(?:beta|rc)\d{1,2})?")
_VALID_VERSION = re.compile(r"^(?:go1\.\d+[\w.+-]*|devel [ -~]+)( [ -~]+)?$")
_SYMBOL = re.compile(r"[^\x00-\x20\x7f][^\x00-\x1f\x7f]*")  # Go identifiers may be any Unicode letter

# Top-level standard-library package path elements (plus the linker's generated prefixes). A package
# whose first element is not here (github.com/..., main, a GOPATH-era "mytool/util") is user code.
STD_TOP = frozenset((
    "archive", "bufio", "builtin", "bytes", "cmp", "compress", "container", "context", "crypto", "database",
    "debug", "embed", "encoding", "errors", "expvar", "flag", "fmt", "go", "hash", "html", "image", "index",
    "internal", "io", "iter", "log", "maps", "math", "mime", "net", "os", "path", "plugin", "reflect",
    "regexp", "runtime", "slices", "sort", "strconv", "strings", "structs", "sync", "syscall", "testing",
    "text", "time", "unicode", "unique", "unsafe", "vendor", "weak", "type", "gclinkname", "cmd",
))  # fmt: skip
_GENERATED = re.compile(r"^(?:go[:.]|type[:.]|_|x_cgo_|gclinkname)")  # "_": cgo, assembler and C helpers
_NOISE_FUNCTION = re.compile(
    r"(?:\.init(?:\.|$)|\.func\d+|\.gowrap\d+|^main\.main$|_cgoexp_|\.deferwrap\d+|glob\.)"
)
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# Words in a user function's name that describe what loaders do. Each group is one finding. A group
# matches a strong word anywhere in the name (receiver type included), or a verb and an object
# together in the function's own name (fetch + stage). Words are camelCase/underscore parts; entries
# of 6+ letters also match inside run-together names (sideloadentry, scheduledtask).
BEHAVIOUR_WORDS: dict[str, dict[str, frozenset[str]]] = {
    "golang.loader_functions": {
        "strong": frozenset({"dropper", "stager", "downloader", "implant"}),
        "verbs": frozenset({"download", "fetch", "retrieve", "drop", "pull"}),
        "objects": frozenset({"stage", "stager", "payload", "shellcode", "implant", "beacon", "second"}),
    },
    "golang.injection_functions": {
        "strong": frozenset(
            {"inject", "injector", "injection", "shellcode", "hollow", "hollowing", "reflective"}
        ),
        "verbs": frozenset({"write", "alloc", "map", "queue", "run", "exec", "execute", "create"}),
        "objects": frozenset({"apc", "sc", "remotethread", "remoteprocess", "processmemory"}),
    },
    "golang.sideload_functions": {
        "strong": frozenset({"sideload", "sideloading", "proxydll", "dllhijack"}),
        "verbs": frozenset({"hijack", "proxy"}),
        "objects": frozenset({"dll", "dllmain", "export"}),
    },
    "golang.persistence_functions": {
        "strong": frozenset(
            {"persist", "persistence", "autorun", "autostart", "runkey", "schtask", "schtasks"}
        ),
        "verbs": frozenset({"install", "add", "create", "register", "set", "write"}),
        "objects": frozenset({"startup", "scheduledtask", "runkey", "autorun", "startupfolder", "winlogon"}),
    },
    "golang.evasion_functions": {
        "strong": frozenset({"antivm", "antidebug", "antisandbox", "unhook", "amsi", "bypassuac"}),
        "verbs": frozenset({"detect", "is", "check", "patch", "bypass", "disable", "evade", "kill"}),
        "objects": frozenset({"vm", "debugger", "sandbox", "amsi", "etw", "uac", "defender", "av", "edr"}),
    },
    "golang.config_decoding_functions": {
        "strong": frozenset(),
        "verbs": frozenset({"decode", "decrypt", "deobfuscate", "unxor", "xor", "unpack"}),
        "objects": frozenset({"config", "cfg", "c2", "payload", "stage", "strings", "settings"}),
    },
}

# Hosts that Go's standard library, its documentation and common dependencies name: never IOCs.
DOCUMENTATION_HOSTS = frozenset((
    "golang.org", "go.dev", "pkg.go.dev", "proxy.golang.org", "sum.golang.org", "golang.google.cn",
    "goo.gl", "google.com", "googleapis.com", "gstatic.com", "googlesource.com", "chromium.org", "w3.org",
    "ietf.org", "iana.org", "microsoft.com", "xmlsoap.org", "purl.org", "unicode.org", "openssl.org",
    "apple.com", "example.com", "example.org", "example.net", "localhost", "mozilla.org", "digicert.com",
    "letsencrypt.org", "verisign.com", "xml.org", "json.org", "python.org", "sourceware.org", "gnu.org",
    "swig.org",
))  # fmt: skip
# Code-hosting sites: module paths name them everywhere, so as bare names they are noise; in a URL
# they stay, since payloads are often hosted there.
CODE_HOSTS = frozenset((
    "github.com", "github.io", "githubusercontent.com", "gitlab.com", "bitbucket.org", "launchpad.net",
    "rsc.io", "gopkg.in", "go.googlesource.com", "chiselapp.com", "apache.org", "openstack.org", "sr.ht",
    "codeberg.org",
))  # fmt: skip
# TLDs accepted for bare host names (a URL may have any). Left out: TLDs that are also common words,
# code properties or file extensions (host, link, app, top, in, is, it, sh, so, py, md, rs, ws, ...).
BARE_TLDS = frozenset((
    "com", "net", "org", "info", "biz", "io", "co", "cc", "xyz", "icu", "buzz", "onion", "invalid", "su",
    "ru", "cn", "ua", "by", "kz", "de", "uk", "fr", "nl", "es", "br", "jp", "kr", "tw", "hk", "sg", "ir",
    "kp", "vn", "au", "ca", "eu", "ch", "se", "fi", "dk", "cz", "sk", "ro", "bg", "hu", "gr", "tr", "il",
    "ae", "sa", "pk", "bd", "lk", "np", "mx", "ar", "cl", "ve", "za", "ng", "ke", "eg", "tn", "tk", "ml",
    "cf", "gq",
))  # fmt: skip
CODE_MARKERS = ("function", "this.", "=>", "return ", "var ", "const ", "){", "};")
MAX_BARE_HOST_TEXT = 512  # bare names are taken from short strings only, not prose or embedded scripts
OID_PREFIXES = ("1.2.840.", "1.3.6.", "2.5.", "2.16.", "0.")
_URL = re.compile(r"(?:https?|ftp|wss?)://[A-Za-z0-9._~%!$&()*+,;=:@/?#\[\]-]{3,2000}")
_HOST = re.compile(
    r"(?<![A-Za-z0-9._/@*\]-])((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[a-z]{2,24})(?![A-Za-z0-9_(/@-])"
)
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
_USER_AGENT = re.compile(r"Mozilla/\d\.\d \([^()]{4,200}\)[ -~]{0,300}")
_RUN = re.compile(rb"[\x20-\x7e]{%d,}" % MIN_RUN)
_PRINTABLE = re.compile(rb"[\x20-\x7e]+")
_LEA64 = re.compile(rb"[\x48\x4c]\x8d[\x05\x0d\x15\x1d\x25\x2d\x35\x3d]")
_LEA32 = re.compile(rb"\x8d[\x05\x0d\x15\x1d\x25\x2d\x35\x3d]")


# --------------------------------------------------------------------------- executable layout


@dataclass(frozen=True)
class Region:
    address: int  # virtual address of the first byte
    offset: int  # file offset of the first byte
    size: int  # bytes present in the file
    executable: bool


@dataclass
class Image:
    """Enough of a PE or ELF header to turn addresses into file offsets."""

    format: str
    arch: str
    pointer_size: int
    big_endian: bool
    regions: list[Region] = field(default_factory=list)

    def offset_of(self, address: int, size: int = 1) -> int | None:
        for region in self.regions:
            if region.address <= address and address + size <= region.address + region.size:
                return region.offset + (address - region.address)
        return None


PE_MACHINES = {0x14C: "386", 0x8664: "amd64", 0x1C0: "arm", 0x1C4: "arm", 0xAA64: "arm64"}
ELF_MACHINES = {
    3: "386",
    62: "amd64",
    40: "arm",
    183: "arm64",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    243: "riscv64",
    258: "loong64",
}


def parse_image(data: bytes) -> Image | None:
    """The section map of a PE or ELF file, or None when the headers do not hold together."""
    try:
        if data.startswith(b"MZ"):
            return _parse_pe(data)
        if data.startswith(b"\x7fELF"):
            return _parse_elf(data)
    except struct.error:
        return None
    return None


def _parse_pe(data: bytes) -> Image | None:
    (pe,) = struct.unpack_from("<I", data, 0x3C)
    if data[pe : pe + 4] != b"PE\x00\x00":
        return None
    machine, count = struct.unpack_from("<HH", data, pe + 4)
    (optional_size,) = struct.unpack_from("<H", data, pe + 20)
    optional = pe + 24
    (magic,) = struct.unpack_from("<H", data, optional)
    if magic == 0x20B:
        (image_base,) = struct.unpack_from("<Q", data, optional + 24)
        pointer_size = 8
    elif magic == 0x10B:
        (image_base,) = struct.unpack_from("<I", data, optional + 28)
        pointer_size = 4
    else:
        return None
    image = Image("pe", PE_MACHINES.get(machine, f"pe-machine-{machine:#x}"), pointer_size, False)
    table = optional + optional_size
    for index in range(min(count, 96)):
        entry = table + 40 * index
        vsize, rva, raw_size, raw_offset = struct.unpack_from("<IIII", data, entry + 8)
        (flags,) = struct.unpack_from("<I", data, entry + 36)
        present = min(raw_size, vsize or raw_size, max(0, len(data) - raw_offset))
        if present > 0:
            image.regions.append(Region(image_base + rva, raw_offset, present, bool(flags & 0x20000020)))
    return image


def _parse_elf(data: bytes) -> Image | None:
    bits, order = data[4], data[5]
    if bits not in (1, 2) or order not in (1, 2):
        return None
    endian = "<" if order == 1 else ">"
    (machine,) = struct.unpack_from(endian + "H", data, 18)
    if bits == 2:
        phoff, _shoff = struct.unpack_from(endian + "QQ", data, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 54)
        layout, pointer_size = endian + "IIQQQQQQ", 8
    else:
        (phoff,) = struct.unpack_from(endian + "I", data, 28)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 42)
        layout, pointer_size = endian + "IIIIIIII", 4
    image = Image("elf", ELF_MACHINES.get(machine, f"elf-machine-{machine}"), pointer_size, order == 2)
    for index in range(min(phnum, 256)):
        fields = struct.unpack_from(layout, data, phoff + phentsize * index)
        if bits == 2:
            kind, flags, offset, vaddr, _paddr, filesz = fields[:6]
        else:
            kind, offset, vaddr, _paddr, filesz, _memsz, flags = fields[:7]
        if kind == 1 and filesz:  # PT_LOAD
            present = min(filesz, max(0, len(data) - offset))
            if present > 0:
                image.regions.append(Region(vaddr, offset, present, bool(flags & 1)))
    return image


# --------------------------------------------------------------------------- build info


@dataclass
class BuildInfo:
    offset: int
    layout: str  # "inline" (Go 1.18+) or "pointers"
    pointer_size: int
    big_endian: bool
    go_version: str = ""
    path: str = ""
    main: dict[str, str] = field(default_factory=dict)
    deps: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "layout": self.layout,
            "pointer_size": self.pointer_size,
            "big_endian": self.big_endian,
            "go_version": self.go_version,
            "path": self.path,
            "main_module": self.main,
            "dependencies": self.deps[:MAX_DEPS],
            "dependency_count": len(self.deps),
            "settings": self.settings,
            **({"problems": self.problems} if self.problems else {}),
        }


def find_buildinfo(data: bytes, image: Image | None) -> BuildInfo | None:
    """The first build info blob that decodes to a Go version."""
    start = 0
    for _ in range(MAX_CANDIDATES):
        at = data.find(BUILDINFO_MAGIC, start)
        if at < 0 or len(data) - at < 32:
            return None
        start = at + 1
        found = _decode_buildinfo(data, at, image)
        if found is not None:
            return found
    return None


def _decode_buildinfo(data: bytes, at: int, image: Image | None) -> BuildInfo | None:
    pointer_size, flags = data[at + 14], data[at + 15]
    if pointer_size not in (4, 8) or flags > 3:
        return None
    if flags & 2:
        info = BuildInfo(at, "inline", pointer_size, bool(flags & 1))
        version, rest = _varint_string(data, at + 32, 256)
        modinfo, _ = _varint_string(data, rest, MAX_MODINFO) if rest else (b"", 0)
    else:
        info = BuildInfo(at, "pointers", pointer_size, bool(flags))
        if image is None:
            return None
        pair = ("<", ">")[info.big_endian] + ("II" if pointer_size == 4 else "QQ")
        version_at, modinfo_at = struct.unpack_from(pair, data, at + 16)
        version = _go_string(data, image, version_at, pair, 256)
        modinfo = _go_string(data, image, modinfo_at, pair, MAX_MODINFO)
    text = version.decode("utf-8", "replace")
    if not _VALID_VERSION.match(text):
        return None
    info.go_version = text
    if len(modinfo) >= 33 and modinfo[-17:-16] == b"\n":
        if not (modinfo.startswith(MODINFO_START) and modinfo.endswith(MODINFO_END)):
            info.problems.append("module info framing differs from the toolchain's sentinels")
        _parse_modinfo(modinfo[16:-16].decode("utf-8", "replace"), info)
    elif modinfo:
        info.problems.append(f"module info of {len(modinfo)} bytes without the usual framing")
    return info


def _varint_string(data: bytes, at: int, limit: int) -> tuple[bytes, int]:
    """A uvarint-length-prefixed string and the offset after it ((b"", 0) when it does not fit)."""
    length, shift, pos = 0, 0, at
    while pos < len(data) and shift < 64:
        byte = data[pos]
        length |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            break
        shift += 7
    else:
        return b"", 0
    if length > limit or pos + length > len(data):
        return b"", 0
    return data[pos : pos + length], pos + length


def _go_string(data: bytes, image: Image, address: int, pair: str, limit: int) -> bytes:
    """The bytes of the Go string whose (pointer, length) header is at `address` (`pair`: its format)."""
    header = image.offset_of(address, struct.calcsize(pair))
    if header is None:
        return b""
    pointer, length = struct.unpack_from(pair, data, header)
    if length > limit:
        return b""
    body = image.offset_of(pointer, max(1, length))
    return data[body : body + length] if body is not None else b""


def _parse_modinfo(text: str, info: BuildInfo) -> None:
    """The lines runtime/debug.BuildInfo.String writes: path, mod, dep, =>, build."""
    last: dict[str, Any] | None = None
    for number, line in enumerate(text.split("\n")[:5000], 1):
        kind, _, rest = line.partition("\t")
        columns = rest.split("\t")
        if kind == "path":
            info.path = rest
        elif kind in ("mod", "dep") and len(columns) in (2, 3):
            module = {
                "path": columns[0],
                "version": columns[1],
                "sum": columns[2] if len(columns) == 3 else "",
            }
            if kind == "mod":
                info.main = module
            else:
                info.deps.append(module)
            last = module
        elif kind == "=>" and len(columns) == 3 and last is not None:
            last["replace"] = {"path": columns[0], "version": columns[1], "sum": columns[2]}
            last = None
        elif kind == "build" and rest:
            key, value = _build_setting(rest)
            if key:
                info.settings[key] = value
            else:
                info.problems.append(f"line {number}: unreadable build setting {rest[:80]!r}")
        elif line:
            info.problems.append(f"line {number}: unexpected {line[:80]!r}")


def _build_setting(text: str) -> tuple[str, str]:
    """key=value, either side possibly Go-quoted."""
    if text[0] in '"`':
        match = re.match(r'"(?:[^"\\]|\\.)*"|`[^`]*`', text)
        if not match or text[match.end() : match.end() + 1] != "=":
            return "", ""
        key, raw = _unquote(match.group()), text[match.end() + 1 :]
    else:
        key, sep, raw = text.partition("=")
        if not sep:
            return "", ""
    value = _unquote(raw) if raw[:1] in ('"', "`") else raw
    return key, value


def _unquote(text: str) -> str:
    if text.startswith("`") and text.endswith("`") and len(text) >= 2:
        return text[1:-1]
    if len(text) > 4096:
        return text
    try:
        value = ast.literal_eval(text)  # Go's strconv.Quote escapes are a subset of Python's
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, str) else text


def find_build_id(data: bytes) -> str:
    """The Go build ID: the marker at the start of the text (PE, Mach-O) or the ELF note "Go"/4."""
    at = data.find(BUILDID_MARKER)
    if at >= 0:
        start = at + len(BUILDID_MARKER)
        end = data.find(b'"', start, start + 256)
        if end > start:
            return data[start:end].decode("ascii", "replace")
    start = 12
    for _ in range(MAX_CANDIDATES):
        at = data.find(ELF_NOTE_NAME, start)
        if at < 0:
            break
        start = at + 1
        for endian in "<>":
            name_size, desc_size, kind = struct.unpack_from(endian + "III", data, at - 12)
            body = data[at + 4 : at + 4 + desc_size]
            if name_size == 4 and kind == 4 and 0 < desc_size <= 256 and _PRINTABLE.fullmatch(body):
                return body.decode("ascii")
    return ""


# --------------------------------------------------------------------------- pclntab


@dataclass
class Pclntab:
    offset: int
    magic: int
    family: str
    pointer_size: int
    quantum: int
    big_endian: bool
    function_count: int
    names: list[str]
    names_end: int  # file offset past the last name read (the table is skipped when scanning strings)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "magic": f"{self.magic:#010x}",
            "version_family": self.family,
            "pointer_size": self.pointer_size,
            "quantum": self.quantum,
            "big_endian": self.big_endian,
            "function_count": self.function_count,
        }


def find_pclntab(data: bytes, ctx: Context | None = None) -> Pclntab | None:
    """The first magic hit whose header and first function names hold together."""
    for tried, match in enumerate(_PCLNTAB_MAGIC.finditer(data)):
        if tried >= MAX_CANDIDATES:
            break
        table = _read_pclntab(data, match.start(), ctx)
        # Every Go program links the runtime: a table without runtime functions is a stray match.
        if table is not None and any(name.startswith("runtime.") for name in table.names):
            return table
    return None


def _read_pclntab(data: bytes, at: int, ctx: Context | None) -> Pclntab | None:
    big_endian = data[at] == 0xFF
    endian = ">" if big_endian else "<"
    (magic,) = struct.unpack_from(endian + "I", data, at)
    family = PCLNTAB_FAMILIES.get(magic)
    quantum, pointer_size = data[at + 6], data[at + 7]
    if family is None:
        return None
    word = endian + ("I" if pointer_size == 4 else "Q")

    def read_word(offset: int) -> int:
        return struct.unpack_from(word, data, offset)[0]

    try:
        count = read_word(at + 8)
        if not 0 < count <= MAX_FUNCTIONS * 4 or count * 8 > len(data) - at:
            return None
        if family == "1.2-1.15":
            functab, entry_size, names_base = at + 8 + pointer_size, 2 * pointer_size, at

            def name_offset(index: int) -> int:
                func = at + read_word(functab + index * entry_size + pointer_size)
                return struct.unpack_from(endian + "i", data, func + pointer_size)[0]

        else:
            fields = [read_word(at + 8 + pointer_size * i) for i in range(8)]
            if family == "1.16-1.17":
                names_rel, pcln_rel = fields[2], fields[6]
                entry_size, func_header = 2 * pointer_size, pointer_size
            else:
                names_rel, pcln_rel = fields[3], fields[7]
                entry_size, func_header = 8, 4
            if not 0 < names_rel < len(data) - at or not 0 < pcln_rel < len(data) - at:
                return None
            functab, names_base = at + pcln_rel, at + names_rel
            half = entry_size // 2

            def name_offset(index: int) -> int:
                raw = data[functab + index * entry_size + half : functab + index * entry_size + entry_size]
                funcoff = int.from_bytes(raw, "big" if big_endian else "little")
                return struct.unpack_from(endian + "i", data, functab + funcoff + func_header)[0]

        names: list[str] = []
        names_end = at
        for index in range(min(count, MAX_FUNCTIONS)):
            if ctx is not None and index % 20_000 == 0:
                ctx.check_time()
            start = names_base + name_offset(index)
            if not at <= start < len(data):
                break
            end = data.find(b"\x00", start, start + MAX_NAME)
            name = _symbol(data[start:end] if end > start else b"")
            if not name:
                if index < 16:
                    return None  # the first names of a real table are always clean symbols
                continue
            names.append(name)
            names_end = max(names_end, end)
    except struct.error:
        return None
    if not names:
        return None
    return Pclntab(at, magic, family, pointer_size, quantum, big_endian, count, names, names_end)


def _symbol(raw: bytes) -> str:
    """A function name from the table, or "" when the bytes are not a printable UTF-8 symbol."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return name if _SYMBOL.fullmatch(name) else ""


def package_of(function: str) -> str:
    """The import path of a function symbol: github.com/a/b.(*T).M -> github.com/a/b."""
    base = function.split("[", 1)[0]  # generic instantiation arguments hold dots and slashes
    slash = base.rfind("/")
    dot = base.find(".", slash + 1)
    return base[:dot] if dot > 0 else ""


def is_user_package(package: str) -> bool:
    """Main-module or third-party code: not the standard library, not linker-generated."""
    if not package or _GENERATED.match(package):
        return False
    return package.split("/", 1)[0] not in STD_TOP


def summarise_functions(names: list[str], module_path: str) -> dict[str, Any]:
    """User functions (GoReSym's term), split into the main module's and its dependencies'."""
    user = [n for n in names if is_user_package(package_of(n))]
    packages = Counter(package_of(n) for n in user)
    own = [n for n in user if _in_main_module(package_of(n), module_path)]
    own_set = set(own)
    return {
        "user_function_count": len(user),
        "cgo_exports": [n.split("_", 3)[-1] for n in names if n.startswith("_cgoexp_")][
            :MAX_REPORTED_FUNCTIONS
        ],
        "main_module_functions": own[:MAX_REPORTED_FUNCTIONS],
        "dependency_functions": [n for n in user if n not in own_set][:MAX_REPORTED_FUNCTIONS],
        "user_packages": dict(packages.most_common(100)),
        "standard_function_count": len(names) - len(user),
    }


def _in_main_module(package: str, module_path: str) -> bool:
    if package == "main":
        return True
    return (
        bool(module_path)
        and module_path != COMMAND_LINE_PACKAGE
        and (package == module_path or package.startswith(module_path + "/"))
    )


def notable_functions(functions: list[str]) -> list[str]:
    """The functions an analyst reads first: named ones, not closures, inits or cgo glue."""
    return [n for n in functions if not _NOISE_FUNCTION.search(n)]


def behaviour_hits(functions: list[str]) -> dict[str, list[str]]:
    """Finding id -> the function names whose words describe that loader behaviour."""
    hits: dict[str, list[str]] = {}
    for function in notable_functions(functions):
        local = function[len(package_of(function)) + 1 :]
        own = local.rsplit(".", 1)[-1]  # the method's own name, without its receiver type
        all_words, all_joined = _words(local)
        own_words, own_joined = _words(own)
        for finding_id, groups in BEHAVIOUR_WORDS.items():
            if _has(groups["strong"], all_words, all_joined) or (
                own_words & groups["verbs"] and _has(groups["objects"], own_words, own_joined)
            ):
                hits.setdefault(finding_id, []).append(function)
    return hits


def _words(name: str) -> tuple[set[str], str]:
    return {w.lower() for w in _CAMEL.findall(name.replace("_", " "))}, re.sub(r"[^a-z0-9]", "", name.lower())


def _has(vocabulary: frozenset[str], words: set[str], joined: str) -> bool:
    return bool(words & vocabulary) or any(len(entry) >= 6 and entry in joined for entry in vocabulary)


def looks_garbled(user_packages: dict[str, int]) -> bool:
    """garble replaces package paths with short mixed-case hashes; real Go package names are lower case."""
    if len(user_packages) < 3:
        return False
    hashed = [
        p for p in user_packages if re.fullmatch(r"[A-Za-z0-9_]{5,14}", p) and not p.islower() and p != "main"
    ]
    return len(hashed) >= 3 and len(hashed) * 2 >= len(user_packages)


def guess_version(data: bytes, family: str | None) -> str:
    """runtime.buildVersion for binaries without build info (before Go 1.13), by its string."""
    allowed = FAMILY_MINORS.get(family or "", range(2, 100))
    counts = Counter(m.group().decode() for m in _GO_VERSION.finditer(data) if int(m.group(1)) in allowed)
    if not counts:
        return ""
    return max(counts, key=lambda v: (counts[v], [int(x) for x in re.findall(r"\d+", v)]))


# --------------------------------------------------------------------------- strings and IOCs


def string_boundaries(data: bytes, image: Image | None, ctx: Context | None = None) -> list[int]:
    """File offsets where string literals start or end, from code operands and string headers."""
    if image is None:
        return []
    marks: set[int] = set()
    data_regions = [r for r in image.regions if not r.executable]
    if image.arch in ("amd64", "386"):
        pattern, length = (_LEA64, 7) if image.arch == "amd64" else (_LEA32, 6)
        seen = 0
        for region in image.regions:
            if not region.executable:
                continue
            code = data[region.offset : region.offset + region.size]
            for match in pattern.finditer(code):
                seen += 1
                if seen > MAX_CODE_REFS:
                    break
                if seen % 100_000 == 0 and ctx is not None:
                    ctx.check_time()
                end = match.start() + length
                if end > len(code):
                    break
                operand = int.from_bytes(code[end - 4 : end], "little", signed=image.arch == "amd64")
                target = region.address + end + operand if image.arch == "amd64" else operand
                offset = image.offset_of(target)
                if offset is not None:
                    marks.add(offset)
    marks.update(_string_header_marks(data, image, data_regions, ctx))
    return sorted(marks)


def _string_header_marks(data: bytes, image: Image, regions: list[Region], ctx: Context | None) -> set[int]:
    """Starts and ends of strings whose (pointer, length) headers sit in data (globals, string slices)."""
    size = image.pointer_size
    fmt = ("<", ">")[image.big_endian] + ("I" if size == 4 else "Q")
    marks: set[int] = set()
    for region in regions:
        if ctx is not None:
            ctx.check_time()
        chunk = data[region.offset : region.offset + region.size - region.size % (2 * size)]
        words = struct.unpack(f"{fmt[0]}{len(chunk) // size}{fmt[1]}", chunk) if chunk else ()
        for index in range(0, len(words) - 1):
            length = words[index + 1]
            if not 0 < length <= 4096:
                continue
            start = image.offset_of(words[index], length)
            if start is not None and _PRINTABLE.fullmatch(data, start, start + length) is not None:
                marks.add(start)
                marks.add(start + length)
    return marks


def string_areas(data: bytes, image: Image | None, pclntab: Pclntab | None) -> list[tuple[int, int]]:
    """The file ranges that hold string literals: the non-code sections (all of the file when the
    layout is unknown, and code too when the pclntab sits in it, as in Go before 1.16 on Windows),
    without the pclntab's name table."""
    if image is None or not image.regions:
        areas = [(0, len(data))]
    else:
        in_code = pclntab is not None and any(
            r.executable and r.offset <= pclntab.offset < r.offset + r.size for r in image.regions
        )
        areas = sorted((r.offset, r.offset + r.size) for r in image.regions if in_code or not r.executable)
    if pclntab is None:
        return areas
    cut: list[tuple[int, int]] = []
    for start, end in areas:
        for piece in ((start, min(end, pclntab.offset)), (max(start, pclntab.names_end), end)):
            if piece[1] - piece[0] >= MIN_RUN:
                cut.append(piece)
    return cut


def go_strings(data: bytes, boundaries: list[int], areas: list[tuple[int, int]]) -> list[str]:
    """Printable runs cut at string boundaries: Go's packed literals, one by one where known."""
    found: list[str] = []
    for area_start, area_end in areas:
        found.extend(_cut_runs(data, boundaries, area_start, area_end))
    return found


def _cut_runs(data: bytes, boundaries: list[int], area_start: int, area_end: int) -> list[str]:
    found: list[str] = []
    for match in _RUN.finditer(data, area_start, area_end):
        start, end = match.span()
        cut = bisect.bisect_right(boundaries, start)
        position = start
        while cut < len(boundaries) and boundaries[cut] < end:
            if boundaries[cut] - position >= MIN_RUN:
                found.append(data[position : boundaries[cut]].decode("ascii"))
            position = boundaries[cut]
            cut += 1
        if end - position >= MIN_RUN:
            found.append(data[position:end].decode("ascii"))
    return found


@dataclass
class Indicators:
    urls: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    ip_urls: list[str] = field(default_factory=list)
    dropped: int = 0  # known-benign hosts left out

    def as_metadata(self) -> dict[str, Any]:
        return {
            "urls": self.urls,
            "hosts": self.hosts,
            "ips": self.ips,
            "user_agents": self.user_agents,
            "benign_hosts_dropped": self.dropped,
        }


def indicators(strings: list[str], packages: frozenset[str] = frozenset()) -> Indicators:
    """URLs, hosts, IPs and browser user agents in `strings`.

    A bare dotted name counts as a host only in a short string that is not script code, when it is
    all lower case (Go's `pkg.Type` names and script identifiers are not), has a TLD from
    BARE_TLDS, and its first label is not a Go package of the binary (`packages`: last path elements).
    """
    found = Indicators()
    for text in strings:
        for raw in _URL.findall(text):
            url = raw.rstrip(".,;:)]")
            host = _url_host(url)
            if not host:
                continue
            if _listed(host, DOCUMENTATION_HOSTS):
                found.dropped += 1
                continue
            _add(found.urls, url)
            if _ip(host):
                _add(found.ip_urls, url)
                _add(found.ips, host)
            elif not _listed(host, CODE_HOSTS):
                _add(found.hosts, host.lower())
        without_urls = _URL.sub(" ", text)
        if len(text) <= MAX_BARE_HOST_TEXT and not any(marker in text for marker in CODE_MARKERS):
            for host in _HOST.findall(without_urls):
                labels = host.split(".")
                if (
                    not host.islower()
                    or labels[-1] not in BARE_TLDS
                    or len(labels[-2]) < 3
                    or labels[0] in STD_TOP
                    or labels[0] in packages
                ):
                    continue
                if _listed(host, DOCUMENTATION_HOSTS | CODE_HOSTS):
                    found.dropped += 1
                    continue
                _add(found.hosts, host)
        for address in _IPV4.findall(without_urls):
            if _ip(address):
                _add(found.ips, address)
        for agent in _USER_AGENT.findall(text):
            _add(found.user_agents, agent.strip())
    return found


def _add(values: list[str], value: str) -> None:
    if value not in values and len(values) < MAX_IOCS:
        values.append(value)


def _url_host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    if _ip(host):
        return host
    labels = host.split(".")
    if len(labels) < 2 or not labels[-1].isalpha() or not all(labels):
        return ""
    return host


def _listed(host: str, hosts: frozenset[str]) -> bool:
    """`host` or one of its parent domains is in `hosts`."""
    labels = host.lower().split(".")
    return any(".".join(labels[i:]) in hosts for i in range(len(labels) - 1))


def _ip(text: str) -> bool:
    """A routable-looking IPv4 address (not a version number or OID, not loopback/multicast)."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    if max(int(x) for x in text.split(".")) < 10 or text.startswith(OID_PREFIXES):
        return False  # versions (1.2.0.4) and X.509/SNMP OID prefixes (2.5.4.10), not hosts
    return not (
        address.is_loopback
        or address.is_multicast
        or address.is_link_local
        or address.is_reserved
        or text == "255.255.255.255"
    )


# --------------------------------------------------------------------------- the analyzer


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    data = item.blob.read(MAX_BYTES)
    image = parse_image(data)
    pclntab = find_pclntab(data, ctx)
    ctx.check_time()
    buildinfo = find_buildinfo(data, image) if BUILDINFO_MAGIC in data else None
    build_id = find_build_id(data)
    if pclntab is None and buildinfo is None and not build_id:
        return out

    version = buildinfo.go_version if buildinfo else guess_version(data, pclntab.family if pclntab else None)
    module = buildinfo.main.get("path", "") if buildinfo else ""
    if module == COMMAND_LINE_PACKAGE:  # `go build file.go` before Go 1.18 wrote it as a module line
        module = ""
    main_package = buildinfo.path if buildinfo else ""
    meta: dict[str, Any] = {
        "go_version": version,
        "version_source": "buildinfo" if buildinfo else ("string" if version else ""),
        "module": module,
        "main_package": main_package,
        "build_id": build_id,
        "architecture": image.arch if image else "",
    }
    if len(data) < item.blob.size:
        meta["truncated_at"] = len(data)
    if buildinfo:
        meta["buildinfo"] = buildinfo.as_metadata()
    if pclntab:
        meta["pclntab"] = pclntab.as_metadata()
    out.metadata = meta
    if version:
        out.facts["Go version"] = version
    if module:
        out.facts["Go module"] = module
    elif main_package:
        out.facts["Go main package"] = main_package
    out.flag(
        "golang.go_binary",
        f"{version or 'Go (version unknown)'}"
        + (f", module {module}" if module else "")
        + (f", pclntab {pclntab.family}" if pclntab else ""),
    )

    summary = summarise_functions(pclntab.names, module) if pclntab else None
    if summary:
        meta["functions"] = summary
        own = summary["main_module_functions"] or summary["dependency_functions"]
        shown = notable_functions(own)
        if shown:
            more = len(shown) - MAX_FACT_FUNCTIONS
            out.facts["Go functions"] = ", ".join(shown[:MAX_FACT_FUNCTIONS]) + (
                f" (+{more} more)" if more > 0 else ""
            )
        for finding_id, functions in behaviour_hits(own).items():
            out.flag(finding_id, ", ".join(functions[:8]), details={"functions": functions[:50]})
        if looks_garbled(summary["user_packages"]):
            out.flag("golang.garbled", ", ".join(list(summary["user_packages"])[:8]))
    _flag_build(out, buildinfo, pclntab, summary)

    ctx.check_time()
    strings = go_strings(data, string_boundaries(data, image, ctx), string_areas(data, image, pclntab))
    ctx.check_time()
    packages = frozenset(package_of(n).rsplit("/", 1)[-1] for n in pclntab.names) if pclntab else frozenset()
    found = indicators(strings, packages)
    meta["indicators"] = found.as_metadata()
    _report_indicators(out, found)
    return out


def _flag_build(
    out: Analysis, buildinfo: BuildInfo | None, pclntab: Pclntab | None, summary: dict[str, Any] | None
) -> None:
    if buildinfo is None and pclntab is not None and pclntab.family in ("1.18-1.19", "1.20+"):
        out.flag("golang.buildinfo_removed", f"pclntab of Go {pclntab.family} but no build info blob")
    if buildinfo is None:
        return
    if buildinfo.problems:
        out.flag("golang.buildinfo_malformed", "; ".join(buildinfo.problems[:3]))
    mode = buildinfo.settings.get("-buildmode", "")
    if mode in ("c-shared", "c-archive"):
        exports = (summary or {}).get("cgo_exports", [])
        out.flag(
            "golang.c_shared",
            f"-buildmode={mode}" + (f", exports {', '.join(exports[:8])}" if exports else ""),
        )


def _report_indicators(out: Analysis, found: Indicators) -> None:
    for url in found.urls:
        out.ioc("url", url, "Go string")
    for host in found.hosts:
        out.ioc("domain", host, "Go string")
    for address in found.ips:
        out.ioc("ip", address, "Go string")
    for agent in found.user_agents:
        out.ioc("user_agent", agent, "Go string")
    if found.urls:
        out.flag("golang.embedded_urls", ", ".join(found.urls[:5]), details={"count": len(found.urls)})
    if found.ip_urls:
        out.flag("golang.ip_url", ", ".join(found.ip_urls[:5]))
    if found.user_agents:
        out.flag("golang.browser_user_agent", found.user_agents[0][:200])
