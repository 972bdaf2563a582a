"""ZIP archives: every member, read from the archive's own records and unpacked under the limits.

The records are parsed here rather than through `zipfile`: zipfile rejects a whole archive over one
malformed entry (a corrupt extra field, a non-UTF-8 name flagged UTF-8, a high "version needed"),
cuts names at NUL and shows only the central directory, while triage has to report what each kind of
reader sees: the central directory (Explorer, 7-Zip), the local headers (stream readers, recovery
tools) and whatever lies between or around them. Decryption uses pyzipper's ZipCrypto and WinZip
AES decrypters; decompression goes through the bounded streaming decoders of `compressed.py`.
Member names are shown, never used as paths.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from restytriage import findings
from restytriage.analysis import Analysis, Child, Context, Item
from restytriage.analyzers.compressed import (
    OUT_CHUNK,
    Decoder,
    Inflate,
    Native,
    Progress,
    Stored,
    ZipLzma,
    copy_range,
    is_zero_padding,
    pump,
)
from restytriage.blob import Blob, OutOfTime

NAME = "zip"
TYPES = frozenset({"zip"})

LOCAL_SIG, CENTRAL_SIG, DESCRIPTOR_SIG = b"PK\x03\x04", b"PK\x01\x02", b"PK\x07\x08"
EOCD_SIG, EOCD64_SIG, LOCATOR64_SIG = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"
_EOCD = struct.Struct("<4s4H2LH")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_LOCAL = struct.Struct("<4s2B4HL2L2H")
MAX_COMMENT = 0xFFFF

FLAG_ENCRYPTED, FLAG_DESCRIPTOR, FLAG_PATCHED, FLAG_STRONG = 0x1, 0x8, 0x20, 0x40
FLAG_UTF8, FLAG_MASKED_HEADERS = 0x800, 0x2000

METHODS = {
    0: "stored", 1: "shrunk", 2: "reduced-1", 3: "reduced-2", 4: "reduced-3", 5: "reduced-4",
    6: "imploded", 8: "deflate", 9: "deflate64", 10: "PKWARE DCL implode", 12: "bzip2", 14: "LZMA",
    16: "IBM z/OS CMPSC", 18: "IBM TERSE", 19: "IBM LZ77 z", 20: "zstd (old id)", 93: "Zstandard",
    94: "MP3", 95: "XZ", 96: "JPEG", 97: "WavPack", 98: "PPMd", 99: "WinZip AES",
}  # fmt: skip
_DECODERS: dict[int, Callable[[], Decoder]] = {
    0: Stored,
    8: Inflate,
    12: lambda: Native(bz2.BZ2Decompressor()),
    14: ZipLzma,
    95: lambda: Native(lzma.LZMADecompressor(lzma.FORMAT_XZ)),
}
SYSTEMS = {
    0: "MS-DOS",
    3: "Unix",
    6: "OS/2 HPFS",
    7: "Macintosh",
    10: "Windows NTFS",
    11: "MVS",
    14: "VFAT",
    19: "OS X",
}
EXTRA_NAMES = {
    0x0001: "Zip64", 0x0007: "AV info", 0x0009: "OS/2", 0x000A: "NTFS times", 0x000C: "OpenVMS",
    0x000D: "Unix", 0x0014: "PKCS#7 store", 0x0015: "X.509 certificate (file)",
    0x0016: "X.509 certificate (central directory)", 0x0017: "strong encryption header",
    0x5455: "extended timestamp", 0x5855: "Info-ZIP Unix (old)", 0x6375: "Unicode comment",
    0x7075: "Unicode path", 0x7855: "Info-ZIP Unix", 0x7875: "Unix UID/GID", 0x9901: "WinZip AES",
    0xA220: "Microsoft padding", 0xCAFE: "JAR marker", 0xD935: "Android alignment",
}  # fmt: skip
AES_SALT = {1: 8, 2: 12, 3: 16}  # WinZip AES strength -> salt length (128/192/256-bit keys)
AES_MAC = 10
ZIPCRYPTO_HEADER = 12

# What a container delivers to the user, by content type or by the extension Windows acts on.
SHORTCUT_EXTENSIONS = frozenset(
    ["lnk", "url", "website", "appref-ms", "settingcontent-ms", "library-ms", "searchconnector-ms"]
)
SCRIPT_EXTENSIONS = frozenset(
    ["js", "jse", "vbs", "vbe", "wsf", "wsh", "wsc", "hta", "bat", "cmd", "ps1", "psm1", "sct", "reg", "msc"]
)
INSTALLER_EXTENSIONS = frozenset(["msi", "msix", "msixbundle", "appx", "appxbundle"])
DISK_IMAGE_EXTENSIONS = frozenset(["iso", "img", "vhd", "vhdx", "udf"])
EXECUTABLE_TYPES = frozenset(["pe", "elf", "macho"])
ARCHIVE_TYPES = frozenset(["zip", "rar", "7z", "cab", "iso", "gzip", "bzip2", "xz", "tar"])


def delivered_kind(filetype: str, name: str) -> str | None:
    """What running (double-clicking) this object would mean: shortcut, script, executable, disk image."""
    extension = PurePosixPath(name.replace("\\", "/")).suffix.lower().lstrip(".")
    if filetype == "lnk" or extension in SHORTCUT_EXTENSIONS:
        return "shortcut"
    if filetype in EXECUTABLE_TYPES or (extension in INSTALLER_EXTENSIONS and filetype in ("ole", "zip")):
        return "executable"
    if extension in SCRIPT_EXTENSIONS and filetype in ("text", "html", "xml", "data"):
        return "script"
    if filetype == "iso" or extension in DISK_IMAGE_EXTENSIONS:
        return "disk image"
    return None


# --- records ---------------------------------------------------------------------------------


class _Bytes:
    """Bounded random access to the archive through one open handle."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle = handle
        self.size = size

    def at(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset >= self.size or length <= 0:
            return b""
        self.handle.seek(offset)
        return self.handle.read(min(length, self.size - offset))

    def find(self, needle: bytes, start: int, end: int | None = None) -> int:
        """First offset of `needle` in [start, end), read a window at a time; -1 if absent."""
        end = self.size if end is None else min(end, self.size)
        pos = max(0, start)
        while pos < end:
            window = self.at(pos, min(OUT_CHUNK, end - pos) + len(needle) - 1)
            hit = window.find(needle)
            if hit >= 0 and pos + hit + len(needle) <= end:
                return pos + hit
            pos += OUT_CHUNK
        return -1


@dataclass
class _End:
    """The end-of-central-directory record (with its Zip64 counterpart folded in)."""

    offset: int
    disk: int
    cd_disk: int
    entries: int
    cd_size: int
    cd_offset: int  # as declared
    cd_start: int  # where the central directory really is
    shift: int  # where the end record is against where the directory's size and offset put it
    comment: bytes
    comment_truncated: bool
    zip64: bool

    @property
    def end(self) -> int:
        return self.offset + _EOCD.size + len(self.comment)


@dataclass
class _Entry:
    """One member as the central directory (or, failing that, its local header) describes it."""

    index: int
    raw_name: bytes
    name: str
    flags: int
    method: int
    dos_time: int
    dos_date: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    extra: bytes
    comment: bytes = b""
    create_system: int = 0
    create_version: int = 0
    extract_version: int = 0
    external_attr: int = 0
    disk: int = 0
    source: str = "central directory"
    header_name: str = ""  # the name from the name field when a Unicode Path extra overrides it
    data_offset: int | None = None  # where the (possibly encrypted) compressed data starts
    data_end: int | None = None  # where the data plus any data descriptor ends
    checkable: bool = True  # CRC and size known (False: recovered without its data descriptor)
    local_differs: list[str] = field(default_factory=list)

    @property
    def is_dir(self) -> bool:
        looks_like_dir = self.name.endswith(("/", "\\")) or bool(self.external_attr & 0x10)
        return looks_like_dir and self.compressed_size == 0

    @property
    def is_volume_label(self) -> bool:
        """The DOS way of storing the disk's label (corkami drive.zip): an entry, not a file."""
        return (
            self.create_system not in (3, 19)
            and bool(self.external_attr & 0x08)
            and self.compressed_size == 0
        )

    @property
    def is_symlink(self) -> bool:
        return self.create_system in (3, 19) and (self.external_attr >> 16) & 0o170000 == 0o120000

    @property
    def aes(self) -> tuple[int, int, int] | None:
        """(vendor version, strength, real method) when the member is WinZip-AES encrypted."""
        for kind, body in _extra_fields(self.extra):
            if kind == 0x9901 and len(body) >= 7:
                version, _vendor, strength, method = struct.unpack_from("<H2sBH", body)
                return version, strength, method
        return None

    @property
    def real_method(self) -> int:
        aes = self.aes if self.method == 99 else None
        return aes[2] if aes else self.method

    @property
    def self_terminating(self) -> bool:
        """The stream marks its own end (stored data and LZMA without an end marker run to the last byte)."""
        return not (self.real_method == 0 or (self.real_method == 14 and not self.flags & 0x2))

    @property
    def encryption(self) -> str:
        if not self.flags & FLAG_ENCRYPTED:
            return ""
        if self.flags & FLAG_STRONG:
            return "PKWARE strong encryption"
        aes = self.aes if self.method == 99 else None
        if aes:
            return f"AES-{64 + 64 * aes[1]} (AE-{aes[0]})"
        return "ZipCrypto"


def _extra_fields(extra: bytes) -> Iterator[tuple[int, bytes]]:
    at = 0
    while at + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, at)
        yield kind, extra[at + 4 : at + 4 + size]
        at += 4 + size


def _decode_name(raw: bytes, flags: int, extra: bytes) -> tuple[str, str]:
    """(the name 7-Zip and WinRAR show, the name field's own reading)."""
    header = raw.decode("utf-8", "surrogateescape") if flags & FLAG_UTF8 else raw.decode("cp437")
    for kind, body in _extra_fields(extra):
        # Info-ZIP Unicode Path: honoured only while it still matches the name it was made for.
        if (
            kind == 0x7075
            and len(body) > 5
            and body[0] == 1
            and struct.unpack_from("<L", body, 1)[0] == zlib.crc32(raw)
        ):
            return body[5:].decode("utf-8", "surrogateescape"), header
    return header, header


def _zip64_values(extra: bytes, wanted: list[str]) -> dict[str, int]:
    """The 8-byte values a Zip64 extra field carries for the fields that overflowed, in spec order."""
    for kind, body in _extra_fields(extra):
        if kind == 0x0001:
            values: dict[str, int] = {}
            at = 0
            for name in wanted:
                width = 4 if name == "disk" else 8
                if at + width > len(body):
                    break
                values[name] = int.from_bytes(body[at : at + width], "little")
                at += width
            return values
    return {}


def _find_end(data: _Bytes) -> _End | None:
    """The end record whose central directory is really there (a comment may hide a fake one)."""
    tail_start = max(0, data.size - (_EOCD.size + MAX_COMMENT))
    tail = data.at(tail_start, data.size - tail_start)
    candidates = []
    pos = tail.rfind(EOCD_SIG)
    while pos >= 0:
        if pos + _EOCD.size <= len(tail):
            end = _parse_end(data, tail_start + pos, tail[pos : pos + _EOCD.size])
            if end.entries == 0 or data.at(end.cd_start, 4) == CENTRAL_SIG:
                return end
            candidates.append(end)
        pos = tail.rfind(EOCD_SIG, 0, pos)
    return candidates[0] if candidates else None


def _parse_end(data: _Bytes, offset: int, record: bytes) -> _End:
    _sig, disk, cd_disk, _disk_entries, entries, cd_size, cd_offset, comment_size = _EOCD.unpack(record)
    comment = data.at(offset + _EOCD.size, comment_size)
    zip64 = False
    structures = 0  # bytes of Zip64 records between the central directory and this record
    locator = data.at(offset - _LOCATOR64.size, _LOCATOR64.size)
    if len(locator) == _LOCATOR64.size and locator.startswith(LOCATOR64_SIG):
        _sig, _disk, eocd64_offset, _disks = _LOCATOR64.unpack(locator)
        # The locator's offset is absolute unless data was prepended: the record sits just before it.
        for where in (eocd64_offset, offset - _LOCATOR64.size - _EOCD64.size):
            record64 = data.at(where, _EOCD64.size)
            if len(record64) == _EOCD64.size and record64.startswith(EOCD64_SIG):
                _sig, _size, _made_by, _needed, disk, cd_disk, _here, entries, cd_size, cd_offset = (
                    _EOCD64.unpack(record64)
                )
                zip64 = True
                structures = offset - where
                break
    # Offsets are relative to the archive's start: data prepended to it shifts them all (zipfile's "concat").
    shift = offset - structures - cd_size - cd_offset
    cd_start = cd_offset
    if shift and data.at(cd_offset + shift, 4) == CENTRAL_SIG:
        cd_start = cd_offset + shift
    truncated_comment = len(comment) < comment_size
    return _End(
        offset, disk, cd_disk, entries, cd_size, cd_offset, cd_start, shift, comment, truncated_comment, zip64
    )


def _central_entries(data: _Bytes, end: _End, cap: int) -> tuple[list[_Entry], str]:
    """Entries of the central directory, stopping at the first record that is not one."""
    entries: list[_Entry] = []
    shift = end.cd_start - end.cd_offset
    pos = end.cd_start
    problem = ""
    while len(entries) < cap:
        head = data.at(pos, _CENTRAL.size)
        if len(head) < _CENTRAL.size or not head.startswith(CENTRAL_SIG):
            if len(entries) < end.entries:
                problem = f"central directory holds {len(entries)} of the {end.entries} entries it declares"
            break
        (_sig, create_version, create_system, extract_version, _reserved, flags, method, dos_time, dos_date,
         crc, csize, usize, name_size, extra_size, comment_size, disk, _internal, external, offset) = _CENTRAL.unpack(head)  # fmt: skip
        variable = data.at(pos + _CENTRAL.size, name_size + extra_size + comment_size)
        raw_name, extra = variable[:name_size], variable[name_size : name_size + extra_size]
        wanted = [k for k, v in (("size", usize), ("csize", csize), ("offset", offset)) if v == 0xFFFFFFFF]
        wanted += ["disk"] if disk == 0xFFFF else []
        wide = _zip64_values(extra, wanted) if wanted else {}
        name, header_name = _decode_name(raw_name, flags, extra)
        entries.append(
            _Entry(
                index=len(entries),
                raw_name=raw_name,
                name=name,
                header_name=header_name if header_name != name else "",
                flags=flags,
                method=method,
                dos_time=dos_time,
                dos_date=dos_date,
                crc=crc,
                compressed_size=wide.get("csize", csize),
                size=wide.get("size", usize),
                header_offset=wide.get("offset", offset) + shift,
                extra=extra,
                comment=variable[name_size + extra_size :],
                create_system=create_system,
                create_version=create_version,
                extract_version=extract_version,
                external_attr=external,
                disk=wide.get("disk", disk),
            )
        )
        pos += _CENTRAL.size + name_size + extra_size + comment_size
        if len(variable) < name_size + extra_size + comment_size:
            problem = f"central directory entry #{len(entries)} is truncated"
            break
    return entries, problem


@dataclass
class _Local:
    flags: int
    method: int
    dos_time: int
    dos_date: int
    crc: int
    compressed_size: int
    size: int
    raw_name: bytes
    extra: bytes
    data_offset: int


def _local_header(data: _Bytes, offset: int) -> _Local | None:
    head = data.at(offset, _LOCAL.size)
    if len(head) < _LOCAL.size or not head.startswith(LOCAL_SIG):
        return None
    (_sig, _version, _os, flags, method, dos_time, dos_date, crc, csize, usize, name_size, extra_size) = (
        _LOCAL.unpack(head)
    )
    variable = data.at(offset + _LOCAL.size, name_size + extra_size)
    if len(variable) < name_size + extra_size:
        return None
    extra = variable[name_size:]
    wanted = [k for k, v in (("size", usize), ("csize", csize)) if v == 0xFFFFFFFF]
    wide = _zip64_values(extra, wanted) if wanted else {}
    return _Local(
        flags=flags,
        method=method,
        dos_time=dos_time,
        dos_date=dos_date,
        crc=crc,
        compressed_size=wide.get("csize", csize),
        size=wide.get("size", usize),
        raw_name=variable[:name_size],
        extra=extra,
        data_offset=offset + _LOCAL.size + name_size + extra_size,
    )


def _descriptor_after(data: _Bytes, start: int, zip64: bool) -> int:
    """Where the data descriptor that follows data ending at `start` ends (its signature is optional)."""
    signed = data.at(start, 4) == DESCRIPTOR_SIG
    return start + (4 if signed else 0) + (20 if zip64 else 12)


def _local_entries(data: _Bytes, start: int, stop: int, cap: int, first_index: int) -> list[_Entry]:
    """Members found by walking local headers (stream readers' view): for damaged or hidden parts."""
    found: list[_Entry] = []
    pos = start
    while pos < stop and len(found) < cap:
        pos = data.find(LOCAL_SIG, pos, stop)
        if pos < 0:
            break
        local = _local_header(data, pos)
        if local is None:
            pos += 4
            continue
        csize, crc, usize = local.compressed_size, local.crc, local.size
        data_end = local.data_offset + csize
        checkable = True
        if local.flags & FLAG_DESCRIPTOR and csize == 0:
            next_header = _next_header(data, local.data_offset, stop)
            described = _sizes_from_descriptor(data, local.data_offset, next_header)
            # without a descriptor the data is taken up to the next header (compressed streams end by themselves)
            csize, crc, usize, data_end = described or (next_header - local.data_offset, 0, 0, next_header)
            checkable = described is not None
        name, header_name = _decode_name(local.raw_name, local.flags, local.extra)
        entry = _Entry(
            index=first_index + len(found),
            raw_name=local.raw_name,
            name=name,
            header_name=header_name if header_name != name else "",
            flags=local.flags,
            method=local.method,
            dos_time=local.dos_time,
            dos_date=local.dos_date,
            crc=crc,
            compressed_size=csize,
            size=usize,
            header_offset=pos,
            extra=local.extra,
            source="local header",
            data_offset=local.data_offset,
            data_end=max(data_end, local.data_offset),
            checkable=checkable,
        )
        found.append(entry)
        pos = max(pos + 4, local.data_offset + csize)
    return found


def _next_header(data: _Bytes, start: int, stop: int) -> int:
    """The next local or central header: the search never runs past the nearer of the two."""
    local = data.find(LOCAL_SIG, start, stop)
    central = data.find(CENTRAL_SIG, start, local if local >= 0 else stop)
    return central if central >= 0 else local if local >= 0 else stop


def _sizes_from_descriptor(
    data: _Bytes, data_offset: int, next_header: int
) -> tuple[int, int, int, int] | None:
    """(compressed size, CRC, size, end) for data whose sizes only its trailing descriptor gives."""
    pos = data_offset
    while (hit := data.find(DESCRIPTOR_SIG, pos, next_header)) >= 0:
        fields = data.at(hit + 4, 20).ljust(20, b"\x00")
        crc, csize, usize = struct.unpack_from("<3L", fields)
        if data_offset + csize == hit:
            return csize, crc, usize, hit + 16
        csize64, usize64 = struct.unpack_from("<2Q", fields, 4)
        if data_offset + csize64 == hit:
            return csize64, crc, usize64, hit + 24
        pos = hit + 1
    if next_header - 12 >= data_offset:  # a descriptor without its optional signature
        crc, csize, usize = struct.unpack("<3L", data.at(next_header - 12, 12).ljust(12, b"\x00"))
        if data_offset + csize == next_header - 12:
            return csize, crc, usize, next_header
    return None


# --- analysis -------------------------------------------------------------------------------


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    with item.blob.open() as handle:
        archive = _Archive(ctx, out, _Bytes(handle, item.blob.size))
        try:
            archive.read_structure()
            archive.unpack_members()
            archive.carve_outside_data()
        except OutOfTime as hit:  # report what was read and unpacked so far
            out.findings.append(findings.make(hit.finding_id, NAME, hit.evidence))
        archive.report()
    return out


@dataclass
class _CryptInfo:
    """The attributes pyzipper's decrypters read from a ZipInfo."""

    filename: str
    CRC: int
    _raw_time: int
    use_datadescripter: bool
    wz_aes_strength: int | None = None


@dataclass
class _Outcome:
    blob: Blob | None  # None: an extraction limit stopped it (the limit finding is recorded)
    progress: Progress
    complete: bool  # all the data was there and the decoder reached its end
    failed_checks: list[str]
    password: str | None = None


class _Range:
    """A member's bytes as a stream, without ever reading past its extent."""

    def __init__(self, data: _Bytes, start: int, length: int) -> None:
        self._data, self._pos, self._left = data, start, length

    def read(self, size: int) -> bytes:
        chunk = self._data.at(self._pos, min(size, self._left))
        self._pos += len(chunk)
        self._left -= len(chunk)
        return chunk

    def shorten(self, by: int) -> None:
        self._left = max(0, self._left - by)


class _Archive:
    """One archive under analysis: its records, what became of each member, the findings."""

    def __init__(self, ctx: Context, out: Analysis, data: _Bytes) -> None:
        self.ctx, self.out, self.data = ctx, out, data
        self.cap = max(65_536, 4 * ctx.config.limits.max_children)
        self.end: _End | None = None
        self.entries: list[_Entry] = []
        self.hidden: list[_Entry] = []  # local entries the central directory does not list
        self.rows: list[dict[str, Any]] = []
        self.damage: list[str] = []
        self.prepended = 0  # bytes before the first member
        self.unreferenced: list[tuple[int, int]] = []
        self.delivered: dict[str, list[str]] = {}
        self.child_types: list[str] = []
        self.passwords = list(ctx.config.all_passwords)
        self.opened_with: Counter[str] = Counter()
        self.locked: list[str] = []
        self.unsupported: list[str] = []
        self.checks_failed: dict[str, list[str]] = {}
        self.symlinks: list[str] = []
        self.stopped = ""  # why extraction stopped before the last member
        self.source = "central directory"
        self.central_damaged = (
            False  # entries missing or without local headers: local-only ones are lost, not hidden
        )

    # structure

    def read_structure(self) -> None:
        self.end = _find_end(self.data)
        if self.end is not None:
            self.entries, problem = _central_entries(self.data, self.end, self.cap)
            if problem:
                self.damage.append(problem)
            if len(self.entries) >= self.cap:
                self.out.findings.append(
                    findings.make(
                        "limit.children",
                        NAME,
                        f"central directory lists more than {self.cap:,} entries; the rest were not read",
                    )
                )
        if self.end is None or (not self.entries and self.end.entries):
            self.damage.append(
                "no end-of-central-directory record (truncated, or not a whole ZIP)"
                if self.end is None
                else "the central directory is not where the end record says"
            )
            self.source = "local headers"
            self.entries = _local_entries(self.data, 0, self.data.size, self.cap, 0)
            if self.entries:
                self.damage.append(f"{len(self.entries)} member(s) recovered from their local headers")
            return
        for entry in self.entries:
            self._attach_local(entry)
        self.central_damaged = bool(self.damage)
        self._find_hidden_entries()

    def _attach_local(self, entry: _Entry) -> None:
        local = _local_header(self.data, entry.header_offset)
        if local is None:
            self.damage.append(f"member {entry.name!r}: no local header at 0x{entry.header_offset:x}")
            return
        entry.data_offset = local.data_offset
        end = local.data_offset + entry.compressed_size
        zip64 = any(kind == 0x0001 for kind, _ in _extra_fields(local.extra))
        entry.data_end = _descriptor_after(self.data, end, zip64) if entry.flags & FLAG_DESCRIPTOR else end
        local_name = _decode_name(local.raw_name, local.flags, b"")[1]
        if local_name != _decode_name(entry.raw_name, entry.flags, b"")[1]:
            entry.local_differs.append(f"name {local_name!r}")
        if local.method != entry.method:
            entry.local_differs.append(f"method {METHODS.get(local.method, local.method)}")
        if (local.flags ^ entry.flags) & FLAG_ENCRYPTED:
            entry.local_differs.append("encryption flag")
        if not local.flags & FLAG_DESCRIPTOR:
            for label, here, there in (
                ("CRC", local.crc, entry.crc),
                ("compressed size", local.compressed_size, entry.compressed_size),
                ("size", local.size, entry.size),
            ):
                if here != there:
                    entry.local_differs.append(f"{label} {here:,}")

    def _find_hidden_entries(self) -> None:
        """Local entries in the bytes no central entry covers, and what else hides there."""
        assert self.end is not None
        spans = sorted((e.header_offset, e.data_end) for e in self.entries if e.data_end is not None)
        holes, pos = [], 0
        for start, stop in spans:
            if start > pos:
                holes.append((pos, start))
            pos = max(pos, stop)
        if self.end.cd_start > pos:
            holes.append((pos, self.end.cd_start))
        first_member = spans[0][0] if spans else self.end.cd_start
        for start, stop in holes:
            found = _local_entries(self.data, start, stop, self.cap, len(self.entries) + len(self.hidden))
            covered = start
            for entry in found:
                # with a damaged central directory these are members it lost, not members it hides
                entry.source = (
                    "local header (central directory damaged)"
                    if self.central_damaged
                    else "local header only"
                )
                self._note_hole(covered, entry.header_offset, first_member)
                covered = max(covered, entry.data_end or entry.header_offset)
            self._note_hole(covered, stop, first_member)
            self.hidden.extend(found)
        if self.central_damaged and self.hidden:
            self.damage.append(f"{len(self.hidden)} member(s) recovered from their local headers")

    def _note_hole(self, start: int, stop: int, first_member: int) -> None:
        if stop <= start:
            return
        if start == 0 and stop <= first_member:
            self.prepended = stop
        elif self.data.at(stop - 16, 16) == b"APK Sig Block 42":
            self.out.metadata["apk_signing_block"] = {"offset": start, "size": stop - start}
        elif not is_zero_padding(self.data.handle, start, stop - start):
            self.unreferenced.append((start, stop - start))

    # members

    def unpack_members(self) -> None:
        seen_data: dict[tuple[int, int, int], int] = {}
        limit = self.ctx.config.limits.max_children
        for entry in [*self.entries, *self.hidden]:
            row = _describe(entry)
            self.rows.append(row)
            if self.stopped:
                row["status"] = f"not extracted: {self.stopped}"
                continue
            if entry.is_dir or entry.is_volume_label:
                row["status"] = "directory" if entry.is_dir else "volume label"
                continue
            if entry.data_offset is None:
                row["status"] = "not extracted: no local header"
                continue
            key = (entry.data_offset, entry.compressed_size, entry.method)
            if key in seen_data:  # overlapping entries: the same bytes are not unpacked twice
                row["status"] = f"same data as member #{seen_data[key]}"
                continue
            seen_data[key] = entry.index
            if len(self.out.children) > limit or self.ctx.exhausted:
                self.stopped = (
                    "the child limit was reached"
                    if len(self.out.children) > limit
                    else "the total unpacked-size limit was reached"
                )
                row["status"] = f"not extracted: {self.stopped}"
                if self.ctx.exhausted:
                    report_exhausted(self.ctx, self.out, "archive members")
                continue
            self._unpack(entry, row)

    def _unpack(self, entry: _Entry, row: dict[str, Any]) -> None:
        reason = _unsupported(entry)
        if reason:
            row["status"] = f"not extracted: {reason}"
            unreadable = self.locked if entry.encryption == "PKWARE strong encryption" else self.unsupported
            unreadable.append(f"{entry.name!r} ({reason})")
            return
        outcome = self._open(entry)
        if outcome is None:
            row["status"] = "not extracted: encrypted, no password worked"
            self.locked.append(repr(entry.name))
            return
        if outcome.password is not None:
            row["password"] = outcome.password
            self.opened_with[outcome.password] += 1
        if outcome.blob is None:
            row["status"] = "not extracted: an extraction limit stopped it"
            return
        row["actual_size"] = outcome.progress.produced
        for check in outcome.failed_checks:
            self.checks_failed.setdefault(check, []).append(repr(entry.name))
        if outcome.progress.error or not outcome.complete:
            self.damage.append(
                f"member {entry.name!r}: {outcome.progress.error or 'data ends early'} after {outcome.progress.produced:,} bytes"
            )
        row["status"] = "extracted" if outcome.complete and not outcome.progress.error else "partial"
        if entry.is_symlink:
            target = outcome.blob.read(1024).decode("utf-8", "surrogateescape")
            row["status"], row["symlink_target"] = "symlink", target
            self.symlinks.append(f"{entry.name!r} -> {target!r}")
            self.ctx.budget.release(outcome.blob)
            return
        filetype = self.ctx.identify(outcome.blob, entry.name)
        row["type"] = filetype
        self.child_types.append(filetype)
        kind = delivered_kind(filetype, entry.name)
        if kind:
            self.delivered.setdefault(kind, []).append(entry.name)
        labels = [label for label, on in (
            ("encrypted", bool(entry.flags & FLAG_ENCRYPTED)),
            ("partial", row["status"] == "partial"),
            ("not in central directory", entry.source == "local header only"),
        ) if on]  # fmt: skip
        self.out.children.append(
            Child(entry.name, outcome.blob, path=entry.name, offset=entry.header_offset, labels=labels)
        )

    def _open(self, entry: _Entry) -> _Outcome | None:
        """Unpack a member, trying the passwords when it is encrypted; None when none works."""
        if not entry.flags & FLAG_ENCRYPTED:
            return self._attempt(entry, None)
        for password in list(self.passwords):
            outcome = self._attempt(entry, password)
            if outcome is not None:
                self.passwords.remove(password)  # archives use one password: try it first next time
                self.passwords.insert(0, password)
                outcome.password = password
                return outcome
        return None

    def _attempt(self, entry: _Entry, password: str | None) -> _Outcome | None:
        assert entry.data_offset is not None
        available = max(0, min(entry.compressed_size, self.data.size - entry.data_offset))
        raw = _Range(self.data, entry.data_offset, available)
        read: Callable[[int], bytes] = raw.read
        mac = b""
        aes = entry.aes if entry.method == 99 else None
        if password is not None:
            decrypter = _decrypter(entry, password.encode("utf-8"), raw, aes)
            if decrypter is None:
                return None
            if aes:
                raw.shorten(AES_MAC)
                mac = self.data.at(entry.data_offset + entry.compressed_size - AES_MAC, AES_MAC)

            def read(size: int) -> bytes:
                return decrypter.decrypt(raw.read(size))

        progress = Progress()
        decoder = _DECODERS[entry.real_method]()
        blob = self.ctx.extract(
            lambda sink: pump(read, decoder, sink.write, self.ctx, progress),
            f"member {entry.name!r}",
            compressed_size=entry.compressed_size,
            consumed=progress.consumed,
        )
        all_there = available == entry.compressed_size
        complete = all_there and not progress.error and (decoder.eof or not entry.self_terminating)
        failed = []
        if complete and entry.checkable and not (aes and aes[0] == 2) and progress.crc != entry.crc:
            failed.append("CRC")
        if complete and entry.checkable and progress.produced != entry.size:
            failed.append("size")
        if mac and complete and not _mac_ok(decrypter, mac):
            failed.append("HMAC")
        if (
            blob is not None
            and password is not None
            and all_there
            and (not complete or {"CRC", "HMAC"} & set(failed))
        ):
            self.ctx.budget.release(blob)  # the password passed the quick check but the data says no
            return None
        return _Outcome(blob, progress, complete, failed)

    def carve_outside_data(self) -> None:
        """Bytes before the first member and after the end record become children of their own."""
        if self.prepended:
            self._carve(0, self.prepended, "prepended data", "prepended")
        if self.end is not None and self.end.end < self.data.size:
            size = self.data.size - self.end.end
            self.out.metadata["appended_bytes"] = size
            if not is_zero_padding(self.data.handle, self.end.end, size):
                head = self.data.at(self.end.end, 2)
                self.out.flag(
                    "zip.appended_data",
                    f"{size:,} bytes after the end of the archive at 0x{self.end.end:x}"
                    + (" (an executable)" if head == b"MZ" else ""),
                )
                self._carve(self.end.end, size, "appended data", "appended")

    def _carve(self, start: int, size: int, name: str, label: str) -> None:
        blob = self.ctx.extract(lambda sink: copy_range(self.data.handle, start, size, sink, self.ctx), name)
        if blob is not None:
            self.out.children.append(
                Child(name, blob, path=f"{label}@0x{start:x}", offset=start, labels=[label])
            )

    # report

    def report(self) -> None:
        out, end = self.out, self.end
        folders = sum(1 for r in self.rows if r.get("status") == "directory")
        files = sum(1 for r in self.rows if r.get("status") not in ("directory", "volume label"))
        listed = self.rows[: 2 * self.ctx.config.limits.max_children]
        out.metadata.update(
            members=len(self.rows),
            files=files,
            directories=folders,
            source=self.source,
            member_list=listed,
        )
        if len(listed) < len(self.rows):
            out.metadata["member_list_truncated"] = True
        out.facts["members"] = f"{files} file(s), {folders} folder(s)"
        if end is not None:
            out.metadata["central_directory"] = {
                "offset": end.cd_start,
                "size": end.cd_size,
                "entries_declared": end.entries,
                "zip64": end.zip64,
            }
            self._report_end(end)
        self._report_structure()
        self._report_contents()

    def _report_end(self, end: _End) -> None:
        if end.comment:
            comment = end.comment.decode("utf-8") if _is_utf8(end.comment) else end.comment.decode("cp437")
            self.out.metadata["comment"] = comment
            self.out.facts["comment"] = comment[:200]
            self.out.flag("zip.comment", f"archive comment: {comment[:200]!r}")
        if end.comment_truncated:
            self.damage.append("the archive comment is cut short (truncated file)")
        if end.disk or end.cd_disk or any(e.disk for e in self.entries):
            self.out.flag(
                "zip.split_archive",
                f"this is disk {end.disk + 1} of a split archive (central directory on disk {end.cd_disk + 1}); "
                "members stored on other parts are missing",
            )
        elif end.shift < 0 and end.cd_start == end.cd_offset and not self.entries:
            self.out.flag(
                "zip.split_archive",
                f"the central directory starts {-end.shift:,} bytes before this file: "
                "the last part of an archive split into pieces (or one missing its beginning)",
            )
        if end.cd_start != end.cd_offset:
            self.out.metadata["offset_shift"] = end.cd_start - end.cd_offset

    def _report_structure(self) -> None:
        out = self.out
        names = Counter(e.name for e in self.entries if not e.is_dir)
        folded = Counter(e.name.replace("\\", "/").lower() for e in self.entries if not e.is_dir)
        exact = sorted(n for n, count in names.items() if count > 1)
        if exact:
            out.flag(
                "zip.duplicate_names",
                f"{len(exact)} name(s) used by several members: {listing(exact)}; readers disagree on which one they extract",
            )
        elif len(folded) < len(names):
            clashes = sorted(n for n, count in folded.items() if count > 1)
            out.flag(
                "zip.duplicate_names",
                f"names that differ only in case overwrite each other on Windows: {listing(clashes)}",
            )
        overlaps = _overlaps(self.entries)
        if overlaps:
            out.flag("zip.overlapping_entries", overlaps)
        mismatched = [f"{e.name!r}: {', '.join(e.local_differs)}" for e in self.entries if e.local_differs]
        renamed = [f"{e.name!r} (name field {e.header_name!r})" for e in self.entries if _renamed(e)]
        if mismatched or renamed:
            out.flag(
                "zip.local_header_mismatch",
                "local header differs from the central directory: " + listing(mismatched + renamed),
            )
        if self.hidden and not self.central_damaged:
            out.flag(
                "zip.hidden_entries",
                f"{len(self.hidden)} member(s) only in local headers, not in the central directory: {listing([e.name for e in self.hidden])}",
            )
        if self.unreferenced:
            out.flag(
                "zip.unreferenced_data",
                "bytes no member covers: "
                + listing([f"{size:,} at 0x{start:x}" for start, size in self.unreferenced]),
            )
        if self.prepended:
            head = self.data.at(0, 2)
            out.metadata["prepended_bytes"] = self.prepended
            out.flag(
                "zip.prepended_data",
                f"{self.prepended:,} bytes before the first member"
                + (" (an executable stub: self-extractor?)" if head == b"MZ" else ""),
            )
        comments = [f"{e.name!r}: {e.comment.decode('cp437')[:80]!r}" for e in self.entries if e.comment]
        if comments:
            out.flag("zip.comment", "member comments: " + listing(comments))
        if self.damage:
            out.flag("zip.damaged", listing(self.damage, 6, "; "))

    def _report_contents(self) -> None:
        out = self.out
        encrypted = [e for e in [*self.entries, *self.hidden] if e.flags & FLAG_ENCRYPTED and not e.is_dir]
        if encrypted:
            methods = sorted({e.encryption for e in encrypted})
            opened = ", ".join(f"{p!r}" for p in self.opened_with)
            out.flag(
                "zip.encrypted",
                f"{len(encrypted)} encrypted member(s) ({', '.join(methods)})"
                + (f"; opened with {opened}" if opened else ""),
            )
            out.facts["encryption"] = ", ".join(methods)
            if self.opened_with:
                out.facts["password"] = ", ".join(self.opened_with)
        if self.locked:
            out.flag(
                "zip.encrypted_not_analysed",
                f"content not analysed, no known password: {listing(self.locked)}",
            )
        if self.unsupported:
            out.flag("zip.unsupported_method", f"content not analysed: {listing(self.unsupported)}")
        for check, names in self.checks_failed.items():
            out.flag(
                "zip.size_mismatch" if check == "size" else "zip.crc_mismatch",
                f"{check} does not match for {listing(names)}",
            )
        if self.symlinks:
            out.flag("zip.symlink", listing(self.symlinks))
        for kind, names in sorted(self.delivered.items()):
            out.flag(f"zip.delivers_{kind.replace(' ', '_')}", f"{kind}: {listing(names)}")
        if len(self.child_types) == 1 and self.child_types[0] in ARCHIVE_TYPES:
            out.flag(
                "zip.lone_nested_archive", f"the only file inside is another archive ({self.child_types[0]})"
            )
        if self.stopped:
            out.metadata["stopped"] = self.stopped


def report_exhausted(ctx: Context, out: Analysis, what: str) -> None:
    """The tree's unpacked-size budget is spent: say so once, unless an extraction already did."""
    if not any(f.id == "limit.total_bytes" for f in [*ctx.limit_hits, *out.findings]):
        out.findings.append(
            findings.make(
                "limit.total_bytes",
                out.analyzer,
                f"{what} left unextracted: the tree already unpacked {ctx.budget.total:,} bytes",
            )
        )


def _renamed(entry: _Entry) -> bool:
    """A Unicode Path field that changes the extension of a plain-ASCII name: a disguise, not a charset fix."""
    if not entry.header_name or not entry.header_name.isascii():
        return False
    suffix = PurePosixPath(entry.header_name.replace("\\", "/")).suffix.lower()
    return suffix != PurePosixPath(entry.name.replace("\\", "/")).suffix.lower()


def _unsupported(entry: _Entry) -> str:
    if entry.flags & FLAG_ENCRYPTED and entry.flags & (FLAG_STRONG | FLAG_MASKED_HEADERS):
        return "encrypted with PKWARE strong encryption (not supported)"
    if entry.flags & FLAG_PATCHED:
        return "compressed patch data (not supported)"
    if entry.method == 99:
        aes = entry.aes
        if aes is None or aes[1] not in AES_SALT:
            return "WinZip AES member without a valid AES extra field"
    if entry.real_method not in _DECODERS:
        return f"compression method {entry.real_method} ({METHODS.get(entry.real_method, 'unknown')}) not supported"
    return ""


def _decrypter(entry: _Entry, password: bytes, raw: _Range, aes: tuple[int, int, int] | None) -> Any:
    """pyzipper's decrypter for this member, past its encryption header; None for a wrong password."""
    from pyzipper.zipfile import CRCZipDecrypter
    from pyzipper.zipfile_aes import AESZipDecrypter

    info = _CryptInfo(entry.name, entry.crc, entry.dos_time, bool(entry.flags & FLAG_DESCRIPTOR))
    if aes:
        info.wz_aes_strength = aes[1]
        header = raw.read(AES_SALT[aes[1]] + 2)
        factory: Any = AESZipDecrypter
    else:
        header = raw.read(ZIPCRYPTO_HEADER)
        factory = CRCZipDecrypter
    if len(header) < (AES_SALT[aes[1]] + 2 if aes else ZIPCRYPTO_HEADER):
        return None
    try:
        return factory(info, password, header)
    except RuntimeError:  # pyzipper's "Bad password" on the check byte / verifier
        return None


def _mac_ok(decrypter: Any, mac: bytes) -> bool:
    from pyzipper.zipfile import BadZipFile

    try:
        decrypter.check_hmac(mac)
    except BadZipFile:
        return False
    return True


def _overlaps(entries: list[_Entry]) -> str:
    """Evidence of members sharing or overlapping data (Fifield's non-recursive zip bomb), or ""."""
    spans = sorted(
        (e.header_offset, e.data_offset + e.compressed_size, e.index)
        for e in entries
        if e.data_offset is not None
    )
    involved: set[int] = set()
    reach, reach_index = -1, -1
    for start, stop, index in spans:
        if start < reach:
            involved.update((index, reach_index))
        if stop > reach:
            reach, reach_index = stop, index
    if not involved:
        return ""
    shared = Counter(start for start, _stop, _index in spans)
    most = shared.most_common(1)[0]
    detail = f"; {most[1]} of them start at the same local header (0x{most[0]:x})" if most[1] > 1 else ""
    return f"{len(involved)} members overlap each other's data{detail}"


def _describe(entry: _Entry) -> dict[str, Any]:
    row: dict[str, Any] = {
        "index": entry.index,
        "name": entry.name,
        "method": METHODS.get(entry.real_method, str(entry.real_method)),
        "compressed_size": entry.compressed_size,
        "declared_size": entry.size,
        "crc": f"{entry.crc:08x}",
        "modified": _dos_time(entry.dos_date, entry.dos_time),
        "local_header_offset": entry.header_offset,
        "flags": f"0x{entry.flags:04x}",
    }
    if entry.source != "central directory":
        row["source"] = entry.source
    if entry.header_name:
        row["name_field"] = entry.header_name
    if entry.encryption:
        row["encryption"] = entry.encryption
    if entry.comment:
        row["comment"] = entry.comment.decode("cp437")
    if entry.local_differs:
        row["local_header_differs"] = entry.local_differs
    if entry.source == "central directory":
        row["created_by"] = (
            f"{SYSTEMS.get(entry.create_system, str(entry.create_system))} {entry.create_version // 10}.{entry.create_version % 10}"
        )
        attributes = _attributes(entry)
        if attributes:
            row["attributes"] = attributes
    extras = [EXTRA_NAMES.get(kind, f"0x{kind:04x}") for kind, _ in _extra_fields(entry.extra)]
    if extras:
        row["extra_fields"] = extras
    times = _extra_times(entry.extra)
    if times:
        row["times"] = times
    return row


def _attributes(entry: _Entry) -> str:
    if entry.create_system in (3, 19) and entry.external_attr >> 16:
        return _unix_mode(entry.external_attr >> 16)
    dos = entry.external_attr & 0xFF
    return ", ".join(
        name
        for bit, name in ((1, "read-only"), (2, "hidden"), (4, "system"), (0x10, "directory"))
        if dos & bit
    )


def _unix_mode(mode: int) -> str:
    kind = {0o040000: "d", 0o120000: "l", 0o100000: "-"}.get(mode & 0o170000, "?")
    bits = "".join(flag if mode & (1 << (8 - i)) else "-" for i, flag in enumerate("rwxrwxrwx"))
    return kind + bits


def _dos_time(date: int, time: int) -> str:
    try:
        moment = datetime(
            1980 + (date >> 9),
            (date >> 5) & 0xF,
            date & 0x1F,
            time >> 11,
            (time >> 5) & 0x3F,
            min(59, (time & 0x1F) * 2),
        )
    except ValueError:
        return f"invalid (date 0x{date:04x}, time 0x{time:04x})"
    return moment.isoformat()


def _extra_times(extra: bytes) -> dict[str, str]:
    """Modification/access/creation times from the NTFS and extended-timestamp extra fields (UTC)."""
    times: dict[str, str] = {}
    for kind, body in _extra_fields(extra):
        if kind == 0x000A and len(body) >= 32 and body[4:8] == b"\x01\x00\x18\x00":
            for label, value in zip(
                ("modified", "accessed", "created"), struct.unpack_from("<3Q", body, 8), strict=True
            ):
                if value:
                    try:
                        moment = datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=value // 10)
                    except OverflowError:  # past the year 9999: no clock wrote it
                        times[label] = f"invalid (0x{value:016x})"
                    else:
                        times[label] = moment.isoformat()
        elif kind == 0x5455 and len(body) >= 5 and body[0] & 1:
            (stamp,) = struct.unpack_from("<i", body, 1)
            times.setdefault("modified", datetime.fromtimestamp(stamp, UTC).isoformat())
    return times


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def listing(items: list[str], shown: int = 8, separator: str = ", ") -> str:
    """The first few items of a list for an evidence line, and how many more there are."""
    text = separator.join(items[:shown])
    return text + (f"{separator}and {len(items) - shown} more" if len(items) > shown else "")
