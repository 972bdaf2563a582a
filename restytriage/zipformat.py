"""ZIP records as the bytes hold them: end records, central directory, local headers, extra fields.

The records are parsed here rather than through `zipfile`: zipfile rejects a whole archive over one
malformed entry (a corrupt extra field, a non-UTF-8 name flagged UTF-8, a high "version needed"),
cuts names at NUL and shows only the central directory, while triage has to report what each kind of
reader sees: the central directory (Explorer, 7-Zip), the local headers (stream readers, recovery
tools) and whatever lies between or around them. So the end record is the one whose directory is
really there (a comment may hide a fake one), offsets are corrected for prepended data, members are
recovered by walking local headers (sized by their data descriptors when need be), and every read
stops at the file's real end whatever a record claims.

Pure reading: no findings, no limits, no children (the `zip` analyzer decides what to unpack and
judges what is read here).
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

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
SEARCH_WINDOW = 1 << 20  # bytes read at once while looking for a signature


class ArchiveBytes:
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
            window = self.at(pos, min(SEARCH_WINDOW, end - pos) + len(needle) - 1)
            hit = window.find(needle)
            if hit >= 0 and pos + hit + len(needle) <= end:
                return pos + hit
            pos += SEARCH_WINDOW
        return -1


@dataclass
class EndRecord:
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
class Entry:
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
    """(header ID, data) of each extra field, as far as the bytes go."""
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


def find_end_record(data: ArchiveBytes) -> EndRecord | None:
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


def _parse_end(data: ArchiveBytes, offset: int, record: bytes) -> EndRecord:
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
    return EndRecord(
        offset, disk, cd_disk, entries, cd_size, cd_offset, cd_start, shift, comment, truncated_comment, zip64
    )


def central_entries(data: ArchiveBytes, end: EndRecord, cap: int) -> tuple[list[Entry], str]:
    """Entries of the central directory, stopping at the first record that is not one."""
    entries: list[Entry] = []
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
            Entry(
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


def _local_header(data: ArchiveBytes, offset: int) -> _Local | None:
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


def _descriptor_after(data: ArchiveBytes, start: int, zip64: bool) -> int:
    """Where the data descriptor that follows data ending at `start` ends (its signature is optional)."""
    signed = data.at(start, 4) == DESCRIPTOR_SIG
    return start + (4 if signed else 0) + (20 if zip64 else 12)


def attach_local(data: ArchiveBytes, entry: Entry) -> bool:
    """Find a central entry's data through its local header, noting where the two disagree.

    False when there is no local header where the entry says.
    """
    local = _local_header(data, entry.header_offset)
    if local is None:
        return False
    entry.data_offset = local.data_offset
    end = local.data_offset + entry.compressed_size
    zip64 = any(kind == 0x0001 for kind, _ in _extra_fields(local.extra))
    entry.data_end = _descriptor_after(data, end, zip64) if entry.flags & FLAG_DESCRIPTOR else end
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
    return True


def local_entries(data: ArchiveBytes, start: int, stop: int, cap: int, first_index: int) -> list[Entry]:
    """Members found by walking local headers (stream readers' view): for damaged or hidden parts."""
    found: list[Entry] = []
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
        entry = Entry(
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


def _next_header(data: ArchiveBytes, start: int, stop: int) -> int:
    """The next local or central header: the search never runs past the nearer of the two."""
    local = data.find(LOCAL_SIG, start, stop)
    central = data.find(CENTRAL_SIG, start, local if local >= 0 else stop)
    return central if central >= 0 else local if local >= 0 else stop


def _sizes_from_descriptor(
    data: ArchiveBytes, data_offset: int, next_header: int
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


def describe_overlaps(entries: list[Entry]) -> str:
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


def describe_entry(entry: Entry) -> dict[str, Any]:
    """A member's records in words: its row in the member list."""
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


def _attributes(entry: Entry) -> str:
    """The external attributes in words: the Unix mode from Unix hosts, else the DOS attribute bits."""
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
    """An MS-DOS date and time in ISO 8601 (local time of the writer: no zone), or why it is none."""
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
