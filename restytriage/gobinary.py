"""Go binary formats, read from the file's bytes for any Go release since 1.2, 32/64-bit, either byte order.

The layouts come from the Go source tree:

- `src/debug/buildinfo/buildinfo.go`: the build info blob (`\\xff Go buildinf:`; Go 1.13+), its pointer
  size and flags bytes. Before Go 1.18 it holds two pointers to Go strings (followed through the
  section table); since 1.18 the uvarint-prefixed strings follow the 32-byte header inline;
- `src/cmd/go/internal/modload/build.go`: the sentinels framing the module info string, and
  `src/runtime/debug/mod.go` (`BuildInfo.String`): its path/mod/dep/=>/build lines;
- `src/cmd/internal/buildid/buildid.go` and `note.go`: the build ID the linker writes at the start of
  the text (`\\xff Go build ID: "..."`) and in the ELF note "Go"/4;
- `src/debug/gosym/pclntab.go`, `src/runtime/symtab.go` (`pcHeader`, `_func`) and
  `src/cmd/link/internal/ld/pcln.go`: the pclntab, found by its magic (0xfffffffb Go 1.2-1.15,
  0xfffffffa 1.16-1.17, 0xfffffff0 1.18-1.19, 0xfffffff1 1.20+) and validated, so it is found in
  stripped binaries too, with its function name table;
- `src/runtime/string.go` (`stringStruct`) and the amd64/386 LEA encoding: Go does not NUL-terminate
  string literals but packs them end to end, so each printable run is cut at the starts and ends of
  the literals the code and data point at (LEA operands, (pointer, length) string headers).
"""

from __future__ import annotations

import ast
import bisect
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restytriage.analysis import Context
    from restytriage.carve import Buffer

MAX_FUNCTIONS = 400_000
MAX_NAME = 1024
MAX_DEPS = 300
MAX_MODINFO = 1 << 20
MAX_CANDIDATES = 64  # magic hits tried before giving up
MAX_CODE_REFS = 2_000_000
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


def parse_image(data: Buffer) -> Image | None:
    """The section map of a PE or ELF file, or None when the headers do not hold together."""
    try:
        if data[:2] == b"MZ":  # slices, not startswith: `data` may be a mapped file
            return _parse_pe(data)
        if data[:4] == b"\x7fELF":
            return _parse_elf(data)
    except struct.error:
        return None
    return None


def _parse_pe(data: Buffer) -> Image | None:
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


def _parse_elf(data: Buffer) -> Image | None:
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
        at = phoff + phentsize * index
        if at + struct.calcsize(layout) > len(data):  # headers past the end (or absurd offsets)
            break
        fields = struct.unpack_from(layout, data, at)
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


def find_buildinfo(data: Buffer, image: Image | None) -> BuildInfo | None:
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


def _decode_buildinfo(data: Buffer, at: int, image: Image | None) -> BuildInfo | None:
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


def _varint_string(data: Buffer, at: int, limit: int) -> tuple[bytes, int]:
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


def _go_string(data: Buffer, image: Image, address: int, pair: str, limit: int) -> bytes:
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


def find_build_id(data: Buffer) -> str:
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


def find_pclntab(data: Buffer, ctx: Context | None = None) -> Pclntab | None:
    """The first magic hit whose header and first function names hold together."""
    for tried, match in enumerate(_PCLNTAB_MAGIC.finditer(data)):
        if tried >= MAX_CANDIDATES:
            break
        table = _read_pclntab(data, match.start(), ctx)
        # Every Go program links the runtime: a table without runtime functions is a stray match.
        if table is not None and any(name.startswith("runtime.") for name in table.names):
            return table
    return None


def _read_pclntab(data: Buffer, at: int, ctx: Context | None) -> Pclntab | None:
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


def guess_version(data: Buffer, family: str | None) -> str:
    """runtime.buildVersion for binaries without build info (before Go 1.13), by its string."""
    allowed = FAMILY_MINORS.get(family or "", range(2, 100))
    counts = Counter(m.group().decode() for m in _GO_VERSION.finditer(data) if int(m.group(1)) in allowed)
    if not counts:
        return ""
    return max(counts, key=lambda v: (counts[v], [int(x) for x in re.findall(r"\d+", v)]))


# --------------------------------------------------------------------------- strings


def string_boundaries(data: Buffer, image: Image | None, ctx: Context | None = None) -> list[int]:
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


def _string_header_marks(data: Buffer, image: Image, regions: list[Region], ctx: Context | None) -> set[int]:
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


def string_areas(data: Buffer, image: Image | None, pclntab: Pclntab | None) -> list[tuple[int, int]]:
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


def go_strings(data: Buffer, boundaries: list[int], areas: list[tuple[int, int]]) -> list[str]:
    """Printable runs cut at string boundaries: Go's packed literals, one by one where known."""
    found: list[str] = []
    for area_start, area_end in areas:
        found.extend(_cut_runs(data, boundaries, area_start, area_end))
    return found


def _cut_runs(data: Buffer, boundaries: list[int], area_start: int, area_end: int) -> list[str]:
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
