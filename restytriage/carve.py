"""Carving: find files embedded in a byte range by signature and measure each from its own structure.

Used for data appended to shortcuts, PE overlays and resources, undocumented blocks: anywhere a
format carries bytes it does not describe. `carve_embedded(data)` returns each embedded file with
its offset and the extent its own headers give:

    OLE/CFB  the highest allocated sector in its FAT (header sector counts, DIFAT chain)
    PDF      up to the last ``%%EOF`` before the next embedded file (incremental updates included)
    ZIP      from a local header to the end of the EOCD comment whose central directory it starts
    PE       headers, section table, COFF symbols and the certificate table (no overlay)
    CAB      CFHEADER.cbCabinet
    RAR      its block chain up to the end-of-archive block (RAR 4 and 5)
    7z       signature header + next-header offset and size (start-header CRC checked)
    gzip     the first member's deflate stream, decompressed to find where it ends (bounded)

False positives are kept out by validating each header beyond its magic (versions, byte order,
CRCs, a central directory where the EOCD says, a PE signature where e_lfanew points). A file whose
structure runs past the data is still returned, cut at the end, with ``complete=False``.
Bytes inside a carved file are not searched again: nested files are the child's own analyzer's job.
The module knows no container format that uses it; it works on ``bytes`` or an ``mmap``.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from mmap import mmap

Buffer = bytes | bytearray | mmap

MAX_CARVED = 256  # files returned at most: a range of repeated magic must not explode a report
GZIP_OUTPUT_MAX = 64 << 20  # decompressed bytes spent finding a gzip member's end


@dataclass(frozen=True)
class Carved:
    offset: int  # base_offset + position in the searched data
    size: int
    type: str  # ole, pdf, zip, pe, cab, rar, 7z, gzip
    extension: str  # a fitting extension for naming the carved file
    description: str
    complete: bool  # False: the structure claims more bytes than the data holds (cut at its end)
    data: bytes = field(repr=False, default=b"")


@dataclass(frozen=True)
class _Extent:
    size: int
    description: str
    extension: str
    complete: bool = True


_Measure = Callable[[Buffer, int, int], "_Extent | None"]


def carve_embedded(
    data: Buffer, base_offset: int = 0, *, start: int = 0, stop: int | None = None
) -> list[Carved]:
    """Embedded files in ``data[start:stop]``, in order of offset, never overlapping.

    ``base_offset`` is added to every offset so callers can report positions in the outer file.
    """
    stop = len(data) if stop is None else min(stop, len(data))
    candidates = sorted(
        (pos, kind)
        for kind, (magic, _) in _SIGNATURES.items()
        for pos in _positions(data, magic, start, stop)
    )
    found: list[Carved] = []
    cursor = start
    for index, (pos, kind) in enumerate(candidates):
        if pos < cursor:
            continue  # inside a file already carved
        if kind == "pdf":
            extent = _measure_pdf(data, pos, stop, _next_other_file(data, candidates, index, stop))
        else:
            extent = _SIGNATURES[kind][1](data, pos, stop)
        if extent is None or extent.size <= 0:
            continue
        size = min(extent.size, stop - pos)
        found.append(
            Carved(
                offset=base_offset + pos,
                size=size,
                type=kind,
                extension=extent.extension,
                description=extent.description,
                complete=extent.complete and size == extent.size,
                data=bytes(data[pos : pos + size]),
            )
        )
        cursor = pos + size
        if len(found) >= MAX_CARVED:
            break
    return found


def gaps(carved: list[Carved], start: int, stop: int) -> list[tuple[int, int]]:
    """The (offset, size) ranges of ``[start, stop)`` that no carved file covers (same offset base)."""
    ranges: list[tuple[int, int]] = []
    cursor = start
    for item in sorted(carved, key=lambda c: c.offset):
        if item.offset > cursor:
            ranges.append((cursor, item.offset - cursor))
        cursor = max(cursor, item.offset + item.size)
    if cursor < stop:
        ranges.append((cursor, stop - cursor))
    return ranges


def is_blank(data: Buffer, start: int, stop: int) -> bool:
    """Only one repeated byte value in data[start:stop] (zero or 0xFF padding, sector slack)."""
    if stop <= start:
        return True
    first = data[start : start + 1]
    step = 1 << 20  # compared a slice at a time: a mapped tail is never copied whole
    return all(not data[at : min(stop, at + step)].strip(first) for at in range(start, stop, step))


def _positions(data: Buffer, magic: bytes, start: int, stop: int) -> list[int]:
    found: list[int] = []
    pos = data.find(magic, start, stop)
    while pos >= 0 and len(found) < 65_536:
        found.append(pos)
        pos = data.find(magic, pos + 1, stop)
    return found


def _u16(data: Buffer, pos: int) -> int:
    return struct.unpack_from("<H", data, pos)[0]


def _u32(data: Buffer, pos: int) -> int:
    return struct.unpack_from("<I", data, pos)[0]


def _u64(data: Buffer, pos: int) -> int:
    return struct.unpack_from("<Q", data, pos)[0]


# --- OLE / CFB ------------------------------------------------------------------------------------

_FREESECT, _MAXREGSECT = 0xFFFFFFFF, 0xFFFFFFFA


def _measure_ole(data: Buffer, pos: int, stop: int) -> _Extent | None:
    if pos + 512 > stop:
        return None
    major, byte_order, shift, mini_shift = struct.unpack_from("<HHHH", data, pos + 0x1A)
    if byte_order != 0xFFFE or mini_shift != 6 or (major, shift) not in ((3, 9), (4, 12)):
        return None
    sector = 1 << shift
    fat_count, _, _, cutoff = struct.unpack_from("<IIII", data, pos + 0x2C)
    if cutoff != 4096 or not 0 < fat_count <= 1 << 20:
        return None
    fat_sectors = _ole_fat_sectors(data, pos, stop, sector, fat_count)
    entries = sector // 4
    highest = -1
    complete = len(fat_sectors) == fat_count
    for number, fat_sector in enumerate(fat_sectors):
        where = pos + (fat_sector + 1) * sector
        if where + sector > stop:
            complete = False
            continue
        table = struct.unpack_from(f"<{entries}I", data, where)
        for index in range(entries - 1, -1, -1):
            if table[index] != _FREESECT:
                highest = max(highest, number * entries + index)
                break
    if highest < 0:
        return None
    size = (highest + 2) * sector  # sector n sits at (n + 1) * size: the header fills "sector -1"
    return _Extent(size, f"OLE2 compound file (CFB v{major})", "cfb", complete)


def _ole_fat_sectors(data: Buffer, pos: int, stop: int, sector: int, fat_count: int) -> list[int]:
    """FAT sector numbers from the header's 109 DIFAT entries, then the DIFAT sector chain."""
    difat_start, difat_count = struct.unpack_from("<II", data, pos + 0x44)
    listed = [s for s in struct.unpack_from("<109I", data, pos + 0x4C) if s <= _MAXREGSECT]
    next_sector, seen = difat_start, 0
    per_sector = sector // 4 - 1
    while len(listed) < fat_count and next_sector <= _MAXREGSECT and seen < difat_count:
        where = pos + (next_sector + 1) * sector
        if where + sector > stop:
            break
        values = struct.unpack_from(f"<{per_sector + 1}I", data, where)
        listed.extend(s for s in values[:per_sector] if s <= _MAXREGSECT)
        next_sector = values[per_sector]
        seen += 1
    # A FAT never lists a sector twice; a DIFAT chain naming one sector a million times would cost
    # a million scans of it.
    return list(dict.fromkeys(listed))[:fat_count]


# --- PDF ------------------------------------------------------------------------------------------

_PDF_HEADER = re.compile(rb"%PDF-[12]\.\d")
_EOF = b"%%EOF"


def _next_other_file(data: Buffer, candidates: list[tuple[int, str]], index: int, stop: int) -> int:
    """Where the next valid non-PDF file starts after a PDF's first %%EOF (the PDF's search limit)."""
    pos = candidates[index][0]
    first_eof = data.find(_EOF, pos, stop)
    if first_eof < 0:
        return stop
    for later, kind in candidates[index + 1 :]:
        if later <= first_eof or kind == "pdf":
            continue
        if _SIGNATURES[kind][1](data, later, stop) is not None:
            return later
    return stop


def _measure_pdf(data: Buffer, pos: int, stop: int, limit: int | None = None) -> _Extent | None:
    limit = stop if limit is None else limit
    if not _PDF_HEADER.match(bytes(data[pos : pos + 8])):
        return None
    version = bytes(data[pos + 5 : pos + 8]).decode("ascii")
    last_eof = data.rfind(_EOF, pos, limit)
    if last_eof < 0:
        return _Extent(limit - pos, f"PDF {version} document (no %%EOF)", "pdf", complete=False)
    end = last_eof + len(_EOF)
    for eol in (b"\r\n", b"\n", b"\r"):  # the end-of-line after %%EOF belongs to the file
        if bytes(data[end : end + len(eol)]) == eol:
            end += len(eol)
            break
    return _Extent(end - pos, f"PDF {version} document", "pdf")


# --- ZIP ------------------------------------------------------------------------------------------

_ZIP_METHODS = frozenset({0, 1, 2, 3, 4, 5, 6, 8, 9, 12, 14, 18, 19, 93, 94, 95, 96, 97, 98, 99})


def _measure_zip(data: Buffer, pos: int, stop: int) -> _Extent | None:
    if pos + 30 > stop:
        return None
    version, _, method = struct.unpack_from("<HHH", data, pos + 4)
    name_len = _u16(data, pos + 26)
    if version > 100 or method not in _ZIP_METHODS or not 0 < name_len <= 4096:
        return None
    eocd = data.find(b"PK\x05\x06", pos + 30, stop)
    while eocd >= 0:
        end = _zip_end(data, pos, eocd, stop)
        if end is not None:
            return _Extent(end - pos, "ZIP archive", "zip", complete=end <= stop)
        eocd = data.find(b"PK\x05\x06", eocd + 1, stop)
    return _Extent(
        _zip_walk_local_headers(data, pos, stop) - pos,
        "ZIP archive (no end of central directory)",
        "zip",
        complete=False,
    )


def _zip_end(data: Buffer, zip_start: int, eocd: int, stop: int) -> int | None:
    """End of the archive if this EOCD closes a central directory that starts after zip_start."""
    if eocd + 22 > stop:
        return None
    cd_size, cd_offset, comment_len = struct.unpack_from("<IIH", data, eocd + 12)
    record = eocd
    if 0xFFFFFFFF in (cd_size, cd_offset):  # Zip64: sizes live in the Zip64 end record
        locator = eocd - 20
        if locator < zip_start or bytes(data[locator : locator + 4]) != b"PK\x06\x07":
            return None
        record = data.rfind(b"PK\x06\x06", zip_start, locator)
        if record < 0 or record + 56 > stop:
            return None
        cd_size = _u64(data, record + 40)
    cd_start = record - cd_size
    if cd_start < zip_start + 30 or bytes(data[cd_start : cd_start + 4]) != b"PK\x01\x02":
        return None
    return eocd + 22 + comment_len


def _zip_walk_local_headers(data: Buffer, pos: int, stop: int) -> int:
    """End of what still parses of an archive without a valid end record: local entries, then the
    central directory, then a cut end record (which runs to the end of the data)."""
    while pos + 30 <= stop and bytes(data[pos : pos + 4]) == b"PK\x03\x04":
        flags, _, _, _, _, packed, _, name_len, extra_len = struct.unpack_from("<HHHHIIIHH", data, pos + 6)
        if flags & 0x08 and packed == 0:
            return stop  # sizes only in a trailing data descriptor: the end cannot be known
        pos += 30 + name_len + extra_len + packed
    while pos + 46 <= stop and bytes(data[pos : pos + 4]) == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        pos += 46 + name_len + extra_len + comment_len
    if pos < stop and b"PK\x05\x06".startswith(bytes(data[pos : min(stop, pos + 4)])):
        return stop
    return min(pos, stop)


# --- PE -------------------------------------------------------------------------------------------

_PE_MACHINES = frozenset(
    {
        0x14C,
        0x8664,
        0x1C0,
        0x1C2,
        0x1C4,
        0xAA64,
        0x200,
        0x166,
        0x169,
        0x1A2,
        0x1A6,
        0x1A8,
        0x1D3,
        0xEBC,
        0x5032,
        0x5064,
        0x6232,
        0x6264,
    }
)


def _measure_pe(data: Buffer, pos: int, stop: int) -> _Extent | None:
    if pos + 0x40 > stop:
        return None
    header = pos + _u32(data, pos + 0x3C)
    if header + 24 > stop or header - pos > 0x10000 or bytes(data[header : header + 4]) != b"PE\x00\x00":
        return None
    machine, sections, _, symbols_at, symbols, optional_size, characteristics = struct.unpack_from(
        "<HHIIIHH", data, header + 4
    )
    optional = header + 24
    if machine not in _PE_MACHINES or not 0 < sections <= 96 or optional + optional_size > stop:
        return None
    magic = _u16(data, optional) if optional_size >= 2 else 0
    layout = {0x10B: (96, 92, "PE32"), 0x20B: (112, 108, "PE32+")}.get(magic)
    if layout is None or optional_size < layout[0]:
        return None
    directories_at, count_at, bits = layout
    end = _u32(data, optional + 60)  # SizeOfHeaders
    table = optional + optional_size
    if table + 40 * sections > stop:
        return None
    for index in range(sections):
        raw_size, raw_pointer = struct.unpack_from("<II", data, table + 40 * index + 16)
        if raw_size:
            end = max(end, raw_pointer + raw_size)
    if symbols_at and symbols:  # COFF symbols then the string table (MinGW builds keep them)
        strings_at = symbols_at + 18 * symbols
        end = max(end, strings_at)
        if pos + strings_at + 4 <= stop:
            end = max(end, strings_at + _u32(data, pos + strings_at))
    if _u32(data, optional + count_at) > 4 and optional_size >= directories_at + 40:
        cert_offset, cert_size = struct.unpack_from("<II", data, optional + directories_at + 32)
        if cert_offset and cert_size:  # the certificate table is addressed by file offset
            end = max(end, cert_offset + cert_size)
    kind = "DLL" if characteristics & 0x2000 else "executable"
    return _Extent(
        end, f"{bits} {kind}", "dll" if characteristics & 0x2000 else "exe", complete=pos + end <= stop
    )


# --- CAB, 7z, RAR ---------------------------------------------------------------------------------


def _measure_cab(data: Buffer, pos: int, stop: int) -> _Extent | None:
    if pos + 36 > stop:
        return None
    total, _, files_at, _, minor, major, folders, files = struct.unpack_from("<IIIIBBHH", data, pos + 8)
    if (major, minor) != (1, 3) or total < 36 or not 36 <= files_at < total or not folders or not files:
        return None
    return _Extent(total, f"Microsoft Cabinet ({files} file(s))", "cab", complete=pos + total <= stop)


def _measure_7z(data: Buffer, pos: int, stop: int) -> _Extent | None:
    if pos + 32 > stop or data[pos + 6] != 0:
        return None
    crc, next_offset, next_size = struct.unpack_from("<IQQ", data, pos + 8)
    if zlib.crc32(bytes(data[pos + 12 : pos + 32])) != crc or next_size == 0:
        return None
    size = 32 + next_offset + next_size
    return _Extent(size, f"7-Zip archive (v0.{data[pos + 7]})", "7z", complete=pos + size <= stop)


def _measure_rar(data: Buffer, pos: int, stop: int) -> _Extent | None:
    if bytes(data[pos + 6 : pos + 8]) == b"\x01\x00":
        return _measure_rar5(data, pos, stop)
    if data[pos + 6 : pos + 7] == b"\x00":
        return _measure_rar4(data, pos, stop)
    return None


def _measure_rar4(data: Buffer, pos: int, stop: int) -> _Extent | None:
    at = pos + 7
    first = True
    while at + 7 <= stop:
        block_type, flags, head_size = struct.unpack_from("<BHH", data, at + 2)
        if head_size < 7 or (first and block_type != 0x73):
            return None
        size = head_size
        if flags & 0x8000 and at + 11 <= stop:
            size += _u32(data, at + 7)
            if block_type == 0x74 and flags & 0x100 and at + 36 <= stop:
                size += _u32(data, at + 32) << 32  # HIGH_PACK_SIZE
        at += size
        first = False
        if block_type == 0x7B:  # end of archive
            return _Extent(at - pos, "RAR archive (v4)", "rar")
    return _Extent(max(at, stop) - pos, "RAR archive (v4, no end block)", "rar", complete=False)


def _vint(data: Buffer, at: int, stop: int) -> tuple[int, int]:
    """A RAR5 variable-length integer: (value, bytes used); (-1, 0) if it runs past the data."""
    value = shift = 0
    for used in range(1, 11):
        if at + used > stop:
            break
        byte = data[at + used - 1]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, used
    return -1, 0


def _measure_rar5(data: Buffer, pos: int, stop: int) -> _Extent | None:
    at = pos + 8
    first = True
    while at + 7 <= stop:
        head_size, used = _vint(data, at + 4, stop)
        if head_size <= 0 or at + 4 + used + head_size > stop:
            break
        if first and zlib.crc32(bytes(data[at + 4 : at + 4 + used + head_size])) != _u32(data, at):
            return None
        cursor = at + 4 + used
        block_type, n = _vint(data, cursor, stop)
        cursor += n
        flags, n = _vint(data, cursor, stop)
        cursor += n
        if first and block_type != 1:
            return None
        data_size = 0
        if flags & 0x01:
            cursor += _vint(data, cursor, stop)[1]
        if flags & 0x02:
            data_size = max(0, _vint(data, cursor, stop)[0])
        at += 4 + used + head_size + data_size
        first = False
        if block_type == 5:  # end of archive
            return _Extent(at - pos, "RAR archive (v5)", "rar")
    if first:
        return None
    return _Extent(max(at, stop) - pos, "RAR archive (v5, no end block)", "rar", complete=False)


# --- gzip -----------------------------------------------------------------------------------------


def _measure_gzip(data: Buffer, pos: int, stop: int) -> _Extent | None:
    if pos + 18 > stop or data[pos + 3] & 0xE0 or data[pos + 9] not in (*range(14), 255):
        return None
    inflater = zlib.decompressobj(wbits=31)
    at, produced, pending = pos, 0, b""
    try:
        while not inflater.eof:
            if not pending:
                if at >= stop:
                    return _Extent(stop - pos, "gzip data (truncated)", "gz", complete=False)
                pending = bytes(data[at : min(stop, at + (1 << 16))])
                at += len(pending)
            produced += len(inflater.decompress(pending, 1 << 20))
            pending = inflater.unconsumed_tail
            if produced > GZIP_OUTPUT_MAX:
                return _Extent(stop - pos, "gzip data (end not searched: large output)", "gz", complete=False)
    except zlib.error:
        if produced == 0:
            return None  # not a deflate stream after all
        return _Extent(at - pos, "gzip data (corrupt deflate stream)", "gz", complete=False)
    end = at - len(inflater.unused_data) - len(pending)
    return _Extent(end - pos, "gzip compressed data", "gz")


_SIGNATURES: dict[str, tuple[bytes, _Measure]] = {
    "ole": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", _measure_ole),
    "pdf": (b"%PDF-", _measure_pdf),
    "zip": (b"PK\x03\x04", _measure_zip),
    "pe": (b"MZ", _measure_pe),
    "cab": (b"MSCF\x00\x00\x00\x00", _measure_cab),
    "rar": (b"Rar!\x1a\x07", _measure_rar),
    "7z": (b"7z\xbc\xaf\x27\x1c", _measure_7z),
    "gzip": (b"\x1f\x8b\x08", _measure_gzip),
}
