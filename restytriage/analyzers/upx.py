"""UPX: find packed PEs (also when an attacker renamed the sections or erased the pack header), unpack
them with `upx -d` in a private, resource-limited subprocess, repair tampered headers when upx refuses,
and hand the unpacked image back to the engine as a child that every analyzer and YARA see.

UPX is the only external program restytriage starts. The pack header ("PackHeader", upx
src/packhead.cpp) is 32 bytes: "UPX!", version, format, method, level, adler32 of the unpacked and
of the packed data, their lengths, the original file size, filter bytes and a checksum byte; for PE,
upx reads it within 1 KiB from 64 bytes before the data of the second section, and only if the first
section's name starts with "UPX". The adler32 of the packed data that follows the header finds the
header again when its magic is gone.
"""

from __future__ import annotations

import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from restytriage.analysis import UPX_UNPACKED, Analysis, Child, Context, Item
from restytriage.blob import Blob
from restytriage.carve import Buffer
from restytriage.entropy import shannon_entropy

NAME = "upx"
TYPES = frozenset({"pe"})
ORDER = 40  # before pe, golang, ...: they read metadata["upx"] to know that what they see is packed

MAGIC = b"UPX!"
HEADER_SIZE = 32  # the PackHeader for PE (header version > 9, format < 128)
HEADER_BACK = 64  # upx starts looking this far before the second section's data...
HEADER_WINDOW = 1024  # ...and looks this far
MAX_SECTIONS = 16  # UPX writes three or four; more are read only to describe the file
UPX_TIMEOUT_S = 60.0
UPX_MEMORY_FLOOR = 256 << 20
UPX_MEMORY_CEILING = 4 << 30
PACKED_ENTROPY = 7.0  # UPX1 holds compressed data: its entropy sits near 8 bits per byte

FORMATS = {9: "win32/pe", 21: "wince/arm-pe", 36: "win64/pe"}
FORMAT_OF_MACHINE = {0x14C: 9, 0x1C0: 21, 0x8664: 36}
METHODS = {
    2: "NRV2B", 3: "NRV2B", 4: "NRV2B", 5: "NRV2D", 6: "NRV2D", 7: "NRV2D",
    8: "NRV2E", 9: "NRV2E", 10: "NRV2E", 14: "LZMA", 15: "DEFLATE", 16: "ZSTD",
}  # fmt: skip
UNPACKABLE_VERSIONS = (12, 13)  # pack-header versions upx can unpack for PE (UPX 1.2 and later)
CURRENT_VERSION = 13

# The first instructions of UPX's PE stubs (upx src/stub/src/*win*.S): a DLL stub first checks
# fdwReason == DLL_PROCESS_ATTACH, then both save registers and point esi/rsi at the packed data and
# edi/rdi at the unpacked image.
STUBS: tuple[tuple[str, re.Pattern[bytes]], ...] = tuple(
    (label, re.compile(pattern, re.DOTALL))
    for label, pattern in (
        ("win32 DLL", rb"\A\x80\x7c\x24\x08\x01\x0f\x85.{4}\x60\xbe.{4}\x8d\xbe"),
        ("win32 EXE", rb"\A\x60\xbe.{4}\x8d\xbe"),
        (
            "win64 DLL",
            rb"\A\x48\x89\x4c\x24\x08\x48\x89\x54\x24\x10\x4c\x89\x44\x24\x18\x80\xfa\x01\x0f\x85.{4}\x53\x56\x57\x55\x48\x8d\x35",
        ),
        ("win64 EXE", rb"\A\x53\x56\x57\x55\x48\x8d\x35.{4}\x48\x8d\xbe"),
    )
)
# The NRV decompressor's bit-refill step (mov ebx,[esi]; sub esi,-4; adc ebx,ebx), as upx itself
# looks for it to call a file "modified/hacked/protected".
NRV_LOOPS = (b"\x8b\x1e\x83\xee\xfc\x11\xdb", b"\x8b\x1e\x48\x83\xee\xfc\x11\xdb")
VERSION_STRING = re.compile(rb"(\d\.\d\d)\x00\Z")


@dataclass(frozen=True)
class Section:
    index: int
    name: bytes
    header_offset: int  # where its 40-byte header sits in the file (renames are written there)
    virtual_address: int
    virtual_size: int
    raw_offset: int
    raw_size: int


@dataclass(frozen=True)
class Layout:
    """The few PE header fields UPX detection and repair need."""

    machine: int
    entry_point: int
    entry_offset: int | None
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class PackHeader:
    offset: int
    raw: bytes

    @property
    def magic_ok(self) -> bool:
        return self.raw[:4] == MAGIC

    @property
    def version(self) -> int:
        return self.raw[4]

    @property
    def format(self) -> int:
        return self.raw[5]

    @property
    def method(self) -> int:
        return self.raw[6]

    def field(self, at: int) -> int:
        return struct.unpack_from("<I", self.raw, at)[0]

    @property
    def checksum_ok(self) -> bool:
        return self.raw[31] == header_checksum(self.raw)

    def describe(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "magic": self.raw[:4].hex(),
            "version": self.version,
            "format": FORMATS.get(self.format, str(self.format)),
            "method": METHODS.get(self.method, str(self.method)),
            "level": self.raw[7],
            "unpacked_size": self.field(16),
            "packed_size": self.field(20),
            "original_file_size": self.field(24),
            "filter": self.raw[28],
            "checksum_ok": self.checksum_ok,
        }


@dataclass
class Traits:
    """What marks a file as UPX-packed, and what was done to it."""

    section_names: list[str]
    header: PackHeader | None
    version: str | None
    stub: str | None
    nrv_loop: bool
    layout: bool
    tampered: list[str] = field(default_factory=list)

    @property
    def packed(self) -> bool:
        return bool(self.section_names) or self.header is not None or self.stub is not None

    def evidence(self) -> list[str]:
        found = []
        if self.section_names:
            found.append("sections " + "/".join(self.section_names))
        if self.header is not None:
            how = "" if self.header.magic_ok else " (found by its packed-data checksum)"
            found.append(f"pack header at 0x{self.header.offset:x}{how}")
        if self.stub:
            found.append(f"UPX {self.stub} stub at the entry point")
        elif self.nrv_loop:
            found.append("UPX NRV decompressor near the entry point")
        if self.layout:
            found.append("UPX section layout")  # empty first section, entry in compressed second one
        return found


@dataclass
class Attempt:
    input: str  # "as found" or "repaired"
    ok: bool
    message: str
    output: Path | None = None
    too_big: bool = False  # the file-size limit stopped upx's output


def header_checksum(raw: bytes) -> int:
    return sum(raw[4:31]) % 251


def analyze(item: Item, ctx: Context) -> Analysis:
    with item.blob.mapped() as data:  # mapped, not read: most PEs are not packed, some are huge
        return _analyze(item, ctx, data)


def _analyze(item: Item, ctx: Context, data: Buffer) -> Analysis:
    out = Analysis(NAME)
    layout = read_layout(data)
    if layout is None:
        return out
    traits = inspect(data, layout)
    if not traits.packed:
        return out
    header = traits.header
    out.metadata.update(
        packed=True,
        version=traits.version,
        evidence=traits.evidence(),
        header=header.describe() if header else None,
        stub=traits.stub,
    )
    shown = "; ".join(traits.evidence())
    out.flag("upx.packed", f"UPX {traits.version}: {shown}" if traits.version else shown)
    if traits.tampered:
        out.metadata["tampered"] = traits.tampered
        out.flag("upx.tampered", "; ".join(traits.tampered))
    unpacked, unpack = _unpack(data, layout, traits, ctx, out)
    out.metadata["unpack"] = unpack
    if unpacked is not None:
        out.children.append(Child(item.name, unpacked, path=UPX_UNPACKED, labels=[UPX_UNPACKED]))
    else:
        out.flag("upx.not_unpacked", unpack["reason"])
    out.facts["packer"] = _summary(traits, unpack)
    return out


def read_layout(data: Buffer) -> Layout | None:
    """The section table and entry point, read directly: every PE passes here, and pefile would
    spend half a second on a file with thousands of sections to tell us what 40 bytes say."""
    try:
        (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
        if data[pe_offset : pe_offset + 4] != b"PE\0\0":
            return None
        machine, count = struct.unpack_from("<HH", data, pe_offset + 4)
        (optional_size,) = struct.unpack_from("<H", data, pe_offset + 20)
        (entry,) = struct.unpack_from("<I", data, pe_offset + 24 + 16)
        table = pe_offset + 24 + optional_size
        sections = []
        for index in range(min(count, MAX_SECTIONS)):
            at = table + 40 * index
            name = data[at : at + 8]
            virtual_size, virtual_address, raw_size, raw_offset = struct.unpack_from("<4I", data, at + 8)
            sections.append(
                Section(index, name.rstrip(b"\0"), at, virtual_address, virtual_size, raw_offset, raw_size)
            )
    except struct.error:  # headers cut short: not a PE upx could have written
        return None
    return Layout(machine, entry, _file_offset(entry, sections), tuple(sections))


def _file_offset(rva: int, sections: list[Section]) -> int | None:
    for section in sections:
        if (
            section.virtual_address
            <= rva
            < section.virtual_address + max(section.virtual_size, section.raw_size)
        ):
            return section.raw_offset + rva - section.virtual_address
    return None


def inspect(data: Buffer, layout: Layout) -> Traits:
    sections = layout.sections
    names = [s.name.decode("latin-1") for s in sections if s.name.upper().lstrip(b".").startswith(b"UPX")]
    code = data[layout.entry_offset : layout.entry_offset + 512] if layout.entry_offset is not None else b""
    stub = next((label for label, pattern in STUBS if pattern.match(code)), None)
    nrv_loop = any(loop in code for loop in NRV_LOOPS)
    shaped = _upx_shaped(data, layout)
    header = find_header(data, sections, structural=bool(names) or stub is not None or shaped)
    version = None
    if header is not None:
        found = VERSION_STRING.search(data[max(0, header.offset - 5) : header.offset])
        version = found.group(1).decode() if found else None
    traits = Traits(names, header, version, stub, nrv_loop, shaped)
    if traits.packed:
        traits.tampered = _tampering(layout, traits)
    return traits


def _upx_shaped(data: Buffer, layout: Layout) -> bool:
    """The layout UPX gives every PE, whatever the section names: an empty first section that the
    unpacked image fills, then compressed data that holds the entry point."""
    if len(layout.sections) < 2:
        return False
    first, second = layout.sections[:2]
    if first.raw_size != 0 or first.virtual_size == 0:
        return False
    if (
        not second.virtual_address
        <= layout.entry_point
        < second.virtual_address + max(second.virtual_size, second.raw_size)
    ):
        return False
    packed = data[second.raw_offset : second.raw_offset + second.raw_size]
    return len(packed) >= 512 and shannon_entropy(packed) >= PACKED_ENTROPY


def find_header(data: Buffer, sections: tuple[Section, ...], structural: bool) -> PackHeader | None:
    """The pack header where upx looks for it: by its magic, else (when other traits say UPX) by the
    adler32 of the packed data that follows it, which survives an erased or overwritten magic."""
    windows = _header_windows(data, sections)
    for start, end in windows:
        at = data.find(MAGIC, start, end)
        while at >= 0:
            header = PackHeader(at, data[at : at + HEADER_SIZE])
            if len(header.raw) == HEADER_SIZE and _plausible(header, len(data)):
                return header
            at = data.find(MAGIC, at + 1, end)
    if not structural or len(sections) < 2:
        return None
    # The packed data lies in the section after the header: a length past that cannot be the
    # header's, which keeps the adler32 checks few and short even in a large file.
    largest = max(s.raw_size for s in sections[1:3]) + HEADER_WINDOW
    for start, end in windows:
        for at in range(start, min(end, len(data) - HEADER_SIZE)):
            packed_size = struct.unpack_from("<I", data, at + 20)[0]
            if not 2 <= packed_size <= min(largest, len(data) - at - HEADER_SIZE):
                continue
            header = PackHeader(at, data[at : at + HEADER_SIZE])
            if header.field(16) >= 2 and _packed_data_matches(data, header):
                return header
    return None


def _header_windows(data: Buffer, sections: tuple[Section, ...]) -> list[tuple[int, int]]:
    """Where upx reads the header: near the second section's data (current versions) or at the
    start of the third section's data (old versions)."""
    windows = []
    if len(sections) >= 2:
        start = max(0, sections[1].raw_offset - HEADER_BACK)
        windows.append((start, min(len(data), start + HEADER_WINDOW)))
    if len(sections) >= 3:
        start = sections[2].raw_offset
        windows.append((start, min(len(data), start + HEADER_WINDOW)))
    return [(start, end) for start, end in windows if start < end]


def _plausible(header: PackHeader, file_size: int) -> bool:
    return 2 <= header.field(20) <= file_size and header.field(16) >= 2


def _packed_data_matches(data: Buffer, header: PackHeader) -> bool:
    start = header.offset + HEADER_SIZE
    return zlib.adler32(data[start : start + header.field(20)]) == header.field(12)


def _tampering(layout: Layout, traits: Traits) -> list[str]:
    """What differs from what upx writes, in the terms upx checks before unpacking."""
    found = []
    first = layout.sections[0].name if layout.sections else b""
    if not first.upper().startswith(b"UPX"):
        shown = "/".join(s.name.decode("latin-1") or "(empty)" for s in layout.sections[:3])
        found.append(f"section names changed from UPX0/UPX1 to {shown}")
    header = traits.header
    if header is None:
        found.append("pack header erased (not found by magic nor by checksum)")
        return found
    if not header.magic_ok:
        found.append(f"pack header magic at 0x{header.offset:x} overwritten with {header.raw[:4].hex()}")
    expected_format = FORMAT_OF_MACHINE.get(layout.machine)
    if header.version not in UNPACKABLE_VERSIONS:
        found.append(f"pack header version byte changed to {header.version}")
    if expected_format is not None and header.format != expected_format:
        found.append(f"pack header format byte changed to {header.format}")
    if header.magic_ok and not header.checksum_ok:
        found.append("pack header checksum does not match its fields")
    if not header.magic_ok and traits.version is None:
        found.append("UPX version string erased")
    return found


def repair(data: Buffer, layout: Layout, header: PackHeader | None) -> tuple[bytes, list[str]]:
    """The file with what upx checks restored: the first two section names and the pack header's
    magic, version, format and checksum. The packed data itself is never touched."""
    fixed = bytearray(data)
    done = []
    renamed = layout.sections and not layout.sections[0].name.upper().startswith(b"UPX")
    for section, wanted in zip(layout.sections[:2] if renamed else (), (b"UPX0", b"UPX1"), strict=False):
        fixed[section.header_offset : section.header_offset + 8] = wanted.ljust(8, b"\0")
        done.append(
            f"section {section.index} renamed {section.name.decode('latin-1')!r} -> {wanted.decode()!r}"
        )
    if header is not None:
        raw = bytearray(header.raw)
        raw[:4] = MAGIC
        if raw[4] not in UNPACKABLE_VERSIONS:
            raw[4] = CURRENT_VERSION
        raw[5] = FORMAT_OF_MACHINE.get(layout.machine, raw[5])
        raw[31] = header_checksum(bytes(raw))
        if bytes(raw) != header.raw:
            fixed[header.offset : header.offset + HEADER_SIZE] = raw
            done.append(f"pack header at 0x{header.offset:x} restored ({header.raw.hex()} -> {raw.hex()})")
    return bytes(fixed), done


def _unpack(
    data: Buffer, layout: Layout, traits: Traits, ctx: Context, out: Analysis
) -> tuple[Blob | None, dict[str, Any]]:
    """Run upx on the file as found, then on a repaired copy; returns the unpacked image (None when
    it could not be had) and the report of what was tried."""
    report: dict[str, Any] = {"status": "not unpacked", "attempts": []}
    upx = find_upx()
    if upx is None:
        report["reason"] = "upx is not installed: packed, unpacked content not analysed"
        return None, report
    # The header's claimed original size is not trusted (a tampered one may lie either way): the
    # file-size limit on the upx process enforces the real one.
    max_output = min(ctx.budget.member_max, ctx.budget.total_max - ctx.budget.total)
    if max_output <= 0:
        report["reason"] = "extraction budget exhausted: packed, unpacked content not analysed"
        return None, report
    repaired, repairs = repair(data, layout, traits.header)
    # A file upx is known to refuse as found goes straight to its repaired copy.
    inputs = [("as found", data)] if not (traits.tampered and repairs) else []
    if repairs:
        report["repairs"] = repairs
        inputs.append(("repaired", repaired))
    workdir = Path(tempfile.mkdtemp(prefix="upx-", dir=ctx.temp_dir))
    try:
        for number, (label, content) in enumerate(inputs):
            attempt = _run_upx(upx, content, label, workdir / f"attempt-{number}", max_output, ctx)
            report["attempts"].append({"input": label, "ok": attempt.ok, "message": attempt.message})
            if attempt.too_big:
                out.flag("limit.member_size", f"UPX-unpacked image: {attempt.message}")
            if attempt.ok and attempt.output is not None:
                with open(attempt.output, "rb") as stream:
                    blob = ctx.extract(stream, "UPX-unpacked image", compressed_size=len(data))
                if blob is None:
                    report["reason"] = (
                        "a limit stopped reading the unpacked image: packed, unpacked content not analysed"
                    )
                    return None, report
                report.update(status="unpacked", input=label, size=blob.size)
                report.pop("reason", None)
                return blob, report
        last = report["attempts"][-1]["message"] if report["attempts"] else "nothing upx could read"
        tried = "even after repair " if repairs else ""
        report["reason"] = f"upx could not unpack it {tried}({last}): packed, unpacked content not analysed"
        return None, report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@cache
def find_upx() -> str | None:
    return shutil.which("upx")


def _run_upx(upx: str, content: bytes, label: str, folder: Path, max_output: int, ctx: Context) -> Attempt:
    """One `upx -d` on a private copy, without a shell, with a timeout and resource limits."""
    remaining = ctx.deadline - time.monotonic()
    if remaining <= 0:
        ctx.check_time()
    timeout = max(1.0, min(UPX_TIMEOUT_S, remaining))
    folder.mkdir()
    packed, unpacked = folder / "packed.bin", folder / "unpacked.bin"
    packed.write_bytes(content)
    memory = min(UPX_MEMORY_CEILING, UPX_MEMORY_FLOOR + 4 * (len(content) + max_output))
    try:
        done = subprocess.run(
            [upx, "-d", "-qq", "--no-color", "-o", str(unpacked), str(packed)],
            capture_output=True,
            timeout=timeout,
            env={},  # no UPX variable (upx reads default options from it), no locale surprises
            stdin=subprocess.DEVNULL,
            cwd=folder,
            preexec_fn=_limits(memory, int(timeout) + 1, max_output + 1),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Attempt(label, False, f"upx did not finish within {timeout:.0f}s")
    except OSError as err:
        return Attempt(label, False, f"upx could not start: {err}")
    message = _upx_message(done.stderr, packed)
    if done.returncode == 0 and unpacked.is_file():
        return Attempt(label, True, message or "unpacked", unpacked)
    if done.returncode == -signal.SIGXFSZ:
        return Attempt(label, False, f"the unpacked image grew past {max_output:,} bytes", too_big=True)
    if done.returncode == -signal.SIGXCPU:
        return Attempt(label, False, f"upx used up its {int(timeout) + 1}s of CPU time")
    if done.returncode < 0:
        message = f"upx died of signal {-done.returncode}" + (f": {message}" if message else "")
    return Attempt(label, False, message or f"upx exited with status {done.returncode}")


def _limits(memory: int, cpu_seconds: int, file_size: int) -> Callable[[], None]:
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _upx_message(stderr: bytes, packed: Path) -> str:
    """upx's last error line without the private temp path it names."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1].replace(f"upx: {packed}: ", "").replace(str(packed), "<file>")[:300]


def _summary(traits: Traits, unpack: dict[str, Any]) -> str:
    parts = ["UPX" + (f" {traits.version}" if traits.version else "")]
    if traits.header is not None:
        parts.append(f"({METHODS.get(traits.header.method, 'unknown method')})")
    if traits.tampered:
        parts.append("with tampered headers" + (" (repaired)" if unpack.get("input") == "repaired" else ""))
    parts.append(
        "- unpacked" if unpack["status"] == "unpacked" else "- packed, unpacked content not analysed"
    )
    return " ".join(parts)
